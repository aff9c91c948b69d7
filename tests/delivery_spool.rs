//! The delivery stage with a spool, against the strict fake: what is left
//! at a drain deadline is replayed by the next start in order per stream
//! and before new events, exactly once; a full spool applies the overflow
//! policy with counted drops; two stages cannot share a spool; a throttling
//! storm lowers the shared rate (visible in the stats) without opening a
//! circuit; every sync policy delivers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cwpub::delivery::{DeliveryConfig, OverflowPolicy, SyncPolicy};
use cwpub::event::{LogEvent, PayloadKind, Submission};
use cwpub::ledger::DropReason;

use crate::support::cw;
use crate::support::fake_cwl::FakeCwl;

const G: &str = "/cwpub/spool";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cfg(spool: &Path) -> DeliveryConfig {
    DeliveryConfig {
        max_batch_delay: Duration::from_millis(20),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        put_rate_per_sec: 10_000,
        spool_dir: Some(spool.to_path_buf()),
        ..DeliveryConfig::default()
    }
}

fn sub(stream: &str, from: usize, n: usize, pad: usize) -> Submission {
    let ts = now_ms();
    Submission {
        job: Arc::from("job"),
        kind: PayloadKind::JsonLog,
        target: cw::target(G, stream),
        events: (from..from + n)
            .map(|i| LogEvent {
                timestamp_ms: ts,
                message: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(pad)),
            })
            .collect(),
    }
}

fn numbers(fake: &FakeCwl, stream: &str) -> Vec<u64> {
    fake.events(G, stream)
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.message).expect("JSON")["n"]
                .as_u64()
                .expect("n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_left_at_the_deadline_replay_in_order_before_new_ones() {
    let fake = FakeCwl::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    fake.chaos.set_down(true);
    let d = cw::start(cfg(&spool), fake.sdk_config()).await;
    d.submit(sub("a", 0, 5, 10));
    d.submit(sub("b", 100, 3, 10));
    d.submit(sub("a", 5, 5, 10));
    let report = d.drain(Duration::from_millis(300)).await;
    assert_eq!(report.spooled, 13, "{report:?}");
    assert_eq!(report.undelivered, 0, "kept, not lost: {report:?}");
    assert_eq!(d.stats().totals.dropped_total(), 0);
    drop(d);

    fake.chaos.set_down(false);
    let d = cw::start(cfg(&spool), fake.sdk_config()).await;
    d.submit(sub("a", 10, 2, 10));
    let report = d.drain(Duration::from_secs(20)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(
        numbers(&fake, "a"),
        (0..12).collect::<Vec<_>>(),
        "in order, old first, once"
    );
    assert_eq!(numbers(&fake, "b"), [100, 101, 102]);
    let spool_stats = d.spool_stats().expect("spool stats");
    assert_eq!(spool_stats.replayed, 13);
    assert_eq!(spool_stats.events, 0);
    assert_eq!(spool_stats.corrupt_records, 0);
    drop(d);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().ends_with(".seg"))
        .collect();
    assert!(
        left.is_empty(),
        "everything delivered leaves no segment: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_applies_the_overflow_policy_and_counts_the_drops() {
    for overflow in [OverflowPolicy::DropOldest, OverflowPolicy::DropNewest] {
        let fake = FakeCwl::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        fake.chaos.set_down(true);
        let max = 2 * 1_048_576u64;
        let c = DeliveryConfig {
            spool_max_bytes: max,
            overflow,
            ..cfg(&spool)
        };
        let d = cw::start(c, fake.sdk_config()).await;
        // 60 × 50 KiB ≈ 3 MiB: about a third does not fit on disk.
        for i in 0..60 {
            d.submit(sub("s", i, 1, 50 * 1024));
        }
        d.settle().await;
        let st = d.stats();
        let sp = d.spool_stats().expect("spool stats");
        let dropped = st.totals.dropped(DropReason::Overflow);
        assert!(sp.bytes <= max, "{overflow:?}: {} > {max}", sp.bytes);
        assert!(
            (10..=40).contains(&dropped),
            "{overflow:?}: {dropped} dropped"
        );
        assert_eq!(sp.events + dropped, 60, "{overflow:?}: {sp:?}");
        fake.chaos.set_down(false);
        let report = d.drain(Duration::from_secs(20)).await;
        assert!(report.completed, "{report:?}");
        let got = numbers(&fake, "s");
        assert!(got.is_sorted(), "{overflow:?}: in order: {got:?}");
        let missing: Vec<u64> = (0..60).filter(|n| !got.contains(n)).collect();
        assert_eq!(missing.len() as u64, dropped, "{overflow:?}: {got:?}");
        match overflow {
            // The oldest queued events went first; those already in a
            // request (retried while the endpoint was down) cannot be
            // evicted, so among the events older than the newest one
            // dropped, only one request's run may have been kept.
            OverflowPolicy::DropOldest => {
                let newest_dropped = *missing.last().expect("some");
                assert!(
                    missing[0] <= 20 && newest_dropped < 59,
                    "{overflow:?}: {missing:?}"
                );
                let kept_older: Vec<u64> = got
                    .iter()
                    .copied()
                    .filter(|n| *n < newest_dropped)
                    .collect();
                assert!(
                    kept_older.windows(2).all(|w| w[1] == w[0] + 1),
                    "{overflow:?}: only the request in flight is kept among the oldest: \
                     dropped {missing:?}, kept {kept_older:?}"
                );
            }
            OverflowPolicy::DropNewest => {
                assert_eq!(
                    missing,
                    (60 - dropped..60).collect::<Vec<_>>(),
                    "{overflow:?}"
                )
            }
        }
    }
}

#[tokio::test]
async fn two_stages_cannot_share_a_spool() {
    let fake = FakeCwl::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let _first = cw::start(cfg(&spool), fake.sdk_config()).await;
    let err = cw::try_start(cfg(&spool), fake.sdk_config())
        .await
        .expect_err("a second stage on the same spool");
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot share one spool_dir"), "{msg}");
    assert!(msg.contains(&spool.display().to_string()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_policy_delivers_everything() {
    for sync in [SyncPolicy::Batch, SyncPolicy::Always, SyncPolicy::Never] {
        let fake = FakeCwl::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DeliveryConfig {
            spool_sync: sync,
            ..cfg(&dir.path().join("spool"))
        };
        let d = cw::start(c, fake.sdk_config()).await;
        for i in 0..20 {
            d.submit(sub("s", i * 10, 10, 20));
        }
        let report = d.drain(Duration::from_secs(20)).await;
        assert!(report.completed, "{sync:?}: {report:?}");
        assert_eq!(
            numbers(&fake, "s"),
            (0..200).collect::<Vec<_>>(),
            "{sync:?}"
        );
        assert_eq!(d.spool_stats().expect("stats").events, 0, "{sync:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_storm_lowers_the_rate_and_opens_no_circuit() {
    let fake = FakeCwl::start().await;
    let c = DeliveryConfig {
        spool_dir: None,
        circuit_failure_threshold: 2,
        put_rate_per_sec: 200,
        ..cfg(Path::new("unused"))
    };
    let d = cw::start(c, fake.sdk_config()).await;
    fake.chaos.set_throttle_percent(80);
    // At least 40 submissions 25 ms apart, and on until the rate has come
    // down, however slowly a busy machine lets requests go.
    let mut lowest = f64::MAX;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut submitted = 0;
    while submitted < 40 || lowest >= 200.0 / 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rate did not come down: lowest {lowest}"
        );
        let i = submitted;
        d.submit(sub(&format!("s{}", i % 4), i * 10, 10, 20));
        submitted += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
        lowest = lowest.min(d.put_rate().0);
        assert!(
            d.circuits().is_empty(),
            "throttling opened a circuit: {:?}",
            d.circuits()
        );
    }
    fake.chaos.set_throttle_percent(0);
    let report = d.drain(Duration::from_secs(30)).await;
    assert!(report.completed, "{report:?}");
    let st = d.stats();
    assert_eq!(st.totals.dropped_total(), 0);
    assert_eq!(st.totals.events_sent, submitted as u64 * 10);
    assert!(st.totals.throttles >= 3, "{:?}", st.totals);
    assert!(d.health().open_circuits.is_empty());
}
