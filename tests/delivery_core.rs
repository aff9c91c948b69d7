//! The delivery core on its own, with a scripted sink and a spool on a file
//! layer the tests control: a stalled disk stalls nothing but the spool (jobs
//! submit on schedule, the observability endpoint answers); a full disk and
//! I/O errors on append are counted and the events are sent from memory; a
//! failed write leaves no hole in its segment; an unreadable segment is
//! skipped and counted at start; with `spool_sync = "always"` a request's
//! marker is durable before the request goes out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cwpub::delivery::{Delivery, DeliveryConfig, OverflowPolicy, SyncPolicy};
use cwpub::event::{LogEvent, PayloadKind, Submission, Target};
use cwpub::ledger::{DropReason, Ledger};
use cwpub::observe::{self, ObserveState, Readiness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::support::fake_sink::{FakeSink, Journal};
use crate::support::faulty_fs::FaultyFs;

/// Generous bounds for a machine whose cores are busy with something else.
const RESPONSIVE: Duration = Duration::from_millis(100);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cfg(spool: &std::path::Path, sync: SyncPolicy) -> DeliveryConfig {
    DeliveryConfig {
        max_batch_delay: Duration::from_millis(10),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        spool_dir: Some(spool.to_path_buf()),
        spool_sync: sync,
        ..DeliveryConfig::default()
    }
}

fn target() -> Arc<Target> {
    Arc::new(Target::new("fake", vec![("stream".into(), "s".into())]))
}

fn submission(from: usize, n: usize) -> Submission {
    let ts = now_ms();
    Submission {
        job: Arc::from("job"),
        kind: PayloadKind::JsonLog,
        target: target(),
        events: (from..from + n)
            .map(|i| LogEvent {
                timestamp_ms: ts,
                message: format!("event-{i:05}"),
            })
            .collect(),
    }
}

async fn start(
    cfg: DeliveryConfig,
    sink: &FakeSink,
    fs: &FaultyFs,
    ledger: Option<Ledger>,
) -> anyhow::Result<Delivery> {
    let mut b =
        Delivery::builder("fake", Arc::new(sink.clone()), cfg).spool_fs(Arc::new(fs.clone()));
    if let Some(l) = ledger {
        b = b.ledger(l);
    }
    b.start().await
}

/// Waits (on the sink's answers, polled) until `n` messages were accepted.
async fn accepted(sink: &FakeSink, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = sink.accepted();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (polling) until `cond` holds, at most 30 s.
async fn until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(cond(), "condition not reached in 30 s");
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("event-{i:05}")).collect()
}

/// One GET over a fresh connection; the status and how long it took.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Duration) {
    let t0 = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_stalls_only_the_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::default();
    let (sink, fs) = (FakeSink::new(journal.clone()), FaultyFs::new(journal));
    let ledger = Ledger::default();
    let mut c = cfg(&dir.path().join("spool"), SyncPolicy::Batch);
    c.buffer_budget_bytes = 4 * 1024 * 1024;
    c.overflow = OverflowPolicy::DropOldest;
    let d = start(c, &sink, &fs, Some(ledger.clone()))
        .await
        .expect("start");
    let health = d.clone();
    let state = ObserveState::new(ledger.metrics().clone()).with_readiness(move || {
        let h = health.health();
        if h.is_healthy() {
            Readiness::ready()
        } else {
            Readiness::not_ready("unhealthy")
        }
    });
    let token = CancellationToken::new();
    let server = observe::serve("127.0.0.1:0".parse().expect("addr"), state, token.clone())
        .await
        .expect("serve");
    let addr = server.local_addr();

    d.submit(submission(0, 10));
    assert_eq!(
        accepted(&sink, 10).await,
        expected(0..10),
        "delivers before the stall"
    );

    fs.stall();
    // A job ticking every 20 ms for a second, and scrapes in between.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut slowest_submit, mut slowest_http) = (Duration::ZERO, Duration::ZERO);
    for round in 0..50 {
        tick.tick().await;
        let t0 = Instant::now();
        d.submit(submission(10 + round * 10, 10));
        let _ = (d.stats(), d.health(), d.spool_stats());
        slowest_submit = slowest_submit.max(t0.elapsed());
        if round % 5 == 0 {
            for path in ["/healthz", "/readyz", "/metrics"] {
                let (status, took) = get(addr, path).await;
                assert_eq!(status, 200, "{path} while the disk is stalled");
                slowest_http = slowest_http.max(took);
            }
        }
    }
    assert!(
        slowest_submit < RESPONSIVE,
        "submitting and reading the gauges never wait for the disk: {slowest_submit:?}"
    );
    assert!(
        slowest_http < RESPONSIVE,
        "the endpoint answers while the disk is stalled: {slowest_http:?}"
    );
    assert_eq!(
        sink.accepted().len(),
        10,
        "nothing is sent before it is written ahead"
    );
    fs.unstall();
    let got = accepted(&sink, 510).await;
    assert_eq!(
        got,
        expected(0..510),
        "every event, in order, once the disk answers"
    );
    let report = d.drain(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(d.stats().totals.dropped_total(), 0);
    token.cancel();
    server.stop().await;
}

#[tokio::test]
async fn a_full_disk_and_io_errors_are_counted_and_events_go_from_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::default();
    let (sink, fs) = (FakeSink::new(journal.clone()), FaultyFs::new(journal));
    let d = start(
        cfg(&dir.path().join("spool"), SyncPolicy::Batch),
        &sink,
        &fs,
        None,
    )
    .await
    .expect("start");
    // The segment's creation and the first event write fail with ENOSPC,
    // a later write with EIO.
    fs.fail_next_writes(&[libc::ENOSPC, libc::ENOSPC]);
    d.submit(submission(0, 5));
    d.settle().await;
    fs.fail_next_writes(&[libc::EIO]);
    d.submit(submission(5, 5));
    d.submit(submission(10, 5));
    assert_eq!(accepted(&sink, 15).await, expected(0..15));
    let report = d.drain(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    let spool = d.spool_stats().expect("spool");
    assert!(
        spool.io_errors >= 2,
        "every failed write is counted: {spool:?}"
    );
    assert_eq!(d.stats().totals.dropped_total(), 0, "nothing is lost");
}

#[tokio::test]
async fn a_failed_write_leaves_no_hole_for_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let journal = Journal::default();
    let (sink, fs) = (
        FakeSink::new(journal.clone()),
        FaultyFs::new(journal.clone()),
    );
    sink.fail_with(Some(cwpub::delivery::ErrorClass::Transient));
    {
        let d = start(cfg(&spool, SyncPolicy::Batch), &sink, &fs, None)
            .await
            .expect("start");
        d.submit(submission(0, 5));
        until(|| journal.entries().iter().any(|e| e.ends_with(" tag 2"))).await;
        // Half of the next write of events reaches the file, then it fails.
        fs.fail_next_event_writes(&[libc::EIO]);
        d.submit(submission(5, 5));
        until(|| d.spool_stats().is_some_and(|s| s.io_errors > 0)).await;
        d.submit(submission(10, 5));
        d.settle().await;
        let report = d.drain(Duration::from_millis(200)).await;
        assert!(!report.completed);
        assert_eq!(
            report.spooled,
            10,
            "on disk, kept for the next start: {report:?}\n{:#?}",
            journal.entries()
        );
        assert_eq!(report.undelivered, 5, "only in memory, lost: {report:?}");
    }
    // The next start reads the spool back: no damage, and every event that
    // reached the disk is replayed (those of the failed write were only in
    // memory).
    sink.fail_with(None);
    let d = start(cfg(&spool, SyncPolicy::Batch), &sink, &fs, None)
        .await
        .expect("restart");
    let report = d.drain(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    let st = d.spool_stats().expect("spool");
    assert_eq!(st.corrupt_records, 0, "no hole, no torn frame: {st:?}");
    assert_eq!(st.replayed, 10, "{st:?}");
    let replayed: Vec<String> = sink.accepted().into_iter().collect();
    let mut want = expected(0..5);
    want.extend(expected(10..15));
    assert_eq!(replayed, want);
}

#[tokio::test]
async fn an_unreadable_segment_is_skipped_and_counted_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let journal = Journal::default();
    let (sink, fs) = (FakeSink::new(journal.clone()), FaultyFs::new(journal));
    sink.fail_with(Some(cwpub::delivery::ErrorClass::Transient));
    {
        let d = start(cfg(&spool, SyncPolicy::Batch), &sink, &fs, None)
            .await
            .expect("start");
        d.submit(submission(0, 5));
        let mut other = submission(5, 5);
        other.target = Arc::new(Target::new("fake", vec![("stream".into(), "t".into())]));
        d.submit(other);
        d.settle().await;
        d.drain(Duration::from_millis(100)).await;
    }
    // The first stream's segment (id 0) cannot be read any more.
    fs.unreadable("00000000000000000000.seg");
    sink.fail_with(None);
    let d = start(cfg(&spool, SyncPolicy::Batch), &sink, &fs, None)
        .await
        .expect("an unreadable segment never stops the start");
    let report = d.drain(Duration::from_secs(10)).await;
    assert!(report.completed);
    let st = d.spool_stats().expect("spool");
    assert_eq!(st.unreadable_segments, 1, "{st:?}");
    assert_eq!(
        sink.accepted(),
        expected(5..10),
        "the readable stream is replayed"
    );
    assert!(
        spool.join("00000000000000000000.seg").exists(),
        "the unreadable segment is left in place"
    );
}

/// A write of a SENDING marker (frame tag 4), as the fake file layer notes it.
fn is_marker(entry: &str) -> bool {
    entry.starts_with("write") && entry.ends_with(" tag 4")
}

#[tokio::test]
async fn under_always_a_requests_marker_is_durable_before_it_goes_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::default();
    let (sink, fs) = (
        FakeSink::new(journal.clone()),
        FaultyFs::new(journal.clone()),
    );
    let d = start(
        cfg(&dir.path().join("spool"), SyncPolicy::Always),
        &sink,
        &fs,
        None,
    )
    .await
    .expect("start");
    for round in 0..3 {
        d.submit(submission(round * 5, 5));
        accepted(&sink, (round + 1) * 5).await;
    }
    let report = d.drain(Duration::from_secs(5)).await;
    assert!(report.completed);
    let e = journal.entries();
    let sends: Vec<usize> = e
        .iter()
        .enumerate()
        .filter(|(_, x)| x.starts_with("send"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sends.len(), 3, "{e:#?}");
    for &s in &sends {
        let marker = e[..s]
            .iter()
            .rposition(|x| is_marker(x))
            .unwrap_or_else(|| panic!("no marker written before {}: {e:#?}", e[s]));
        assert!(
            e[marker..s].iter().any(|x| x.starts_with("sync")),
            "the marker is synced before {}: {e:#?}",
            e[s]
        );
    }
    assert_eq!(d.stats().totals.dropped(DropReason::Shutdown), 0);
}
