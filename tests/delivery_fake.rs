//! Delivery against a strict scripted fake of CloudWatch Logs (loopback
//! only): exact content and order, lazy creation, every retryable fault
//! (throttling, 500, connection reset, slow answer past the timeout, stream
//! deleted mid-run, auth errors that heal) with zero loss and zero
//! duplicates, exact drop counts for every permanent outcome, the circuit
//! breaker in health, overflow policies and the drain report.

use crate::support::{cw, fake_cwl};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cw::Cfg;
use cwpub::delivery::{Delivery, DeliveryConfig, OverflowPolicy};
use cwpub::event::{LogEvent, PayloadKind, Submission, Target};
use cwpub::ledger::DropReason;
use fake_cwl::{FakeCwl, Fault};

/// A drop reported by the validation stage rather than by delivery.
const MISSING_NAMESPACE: DropReason =
    DropReason::InvalidEmf(cwpub_emf::ViolationKind::MissingNamespace);

const G: &str = "/cwpub/test";
const S: &str = "host-1/job-a";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn fast_cfg() -> Cfg {
    let core = DeliveryConfig {
        max_batch_delay: Duration::from_millis(20),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(40),
        credential_backoff_base: Duration::from_millis(20),
        credential_backoff_cap: Duration::from_millis(80),
        circuit_failure_threshold: 1_000,
        circuit_open_max: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        put_rate_per_sec: 10_000,
        ..DeliveryConfig::default()
    };
    let mut cfg = Cfg::from(core);
    cfg.cw.create_rate_per_sec = 200;
    cfg
}

fn target(group: &str, stream: &str) -> Arc<Target> {
    cw::target(group, stream)
}

fn json_events(prefix: &str, n: usize, ts: i64) -> Vec<LogEvent> {
    (0..n)
        .map(|i| LogEvent {
            timestamp_ms: ts + i as i64,
            message: format!("{{\"job\":\"{prefix}\",\"seq\":{i}}}"),
        })
        .collect()
}

fn submission(job: &str, kind: PayloadKind, t: &Arc<Target>, events: Vec<LogEvent>) -> Submission {
    Submission {
        job: Arc::from(job),
        kind,
        target: t.clone(),
        events,
    }
}

/// Asserts the stream holds exactly `expected` messages, each once, in order.
fn assert_exactly(fake: &FakeCwl, group: &str, stream: &str, expected: &[String]) {
    let got: Vec<String> = fake
        .events(group, stream)
        .into_iter()
        .map(|e| e.message)
        .collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "duplicates stored");
    assert_eq!(
        got.len(),
        expected.len(),
        "stored {} of {} events",
        got.len(),
        expected.len()
    );
    assert_eq!(got, expected);
}

/// Polls `probe` every 2 ms until it gives a value; fails after a minute,
/// which only a broken test or a broken delivery takes.
async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until `n` PutLogEvents requests have succeeded.
async fn wait_for_requests(d: &Delivery, n: u64) {
    wait_for(|| (d.stats().totals.requests >= n).then_some(())).await;
}

async fn drain_all(d: &Delivery) {
    let report = d.drain(Duration::from_secs(20)).await;
    assert!(report.completed, "drain did not complete: {report:?}");
    assert_eq!(report.undelivered, 0, "{report:?}");
}

#[tokio::test]
async fn delivers_json_and_emf_in_order_with_emf_header_only_on_emf() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    let base = now_ms() - 60_000;
    // Same-millisecond events must keep emission order; shuffled submissions get sorted.
    let mut json = json_events("a", 50, base + 100);
    json.push(LogEvent {
        timestamp_ms: base,
        message: "first-same-ms-1".into(),
    });
    json.push(LogEvent {
        timestamp_ms: base,
        message: "first-same-ms-2".into(),
    });
    d.submit(submission("job-a", PayloadKind::JsonLog, &t, json));
    let emf = vec![LogEvent {
        timestamp_ms: base + 5,
        message: r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"cwpub","Dimensions":[[]],"Metrics":[{"Name":"Up"}]}]},"Up":1}"#.into(),
    }];
    d.submit(submission("job-a", PayloadKind::Emf, &t, emf.clone()));
    drain_all(&d).await;

    let stored = fake.events(G, S);
    let emf_stored: Vec<_> = stored.iter().filter(|e| e.emf_header).collect();
    assert_eq!(
        emf_stored.len(),
        1,
        "exactly the EMF event came with the json/emf header"
    );
    assert_eq!(emf_stored[0].message, emf[0].message);
    let json_msgs: Vec<&str> = stored
        .iter()
        .filter(|e| !e.emf_header)
        .map(|e| e.message.as_str())
        .collect();
    let mut expected = vec!["first-same-ms-1".to_string(), "first-same-ms-2".to_string()];
    expected.extend(json_events("a", 50, 0).into_iter().map(|e| e.message));
    assert_eq!(json_msgs, expected);
    assert!(
        fake.limit_violations().is_empty(),
        "{:?}",
        fake.limit_violations()
    );

    let st = d.stats();
    assert_eq!(st.totals.events_sent, 53);
    let bytes: u64 = stored.iter().map(|e| e.message.len() as u64).sum();
    assert_eq!(st.totals.bytes_sent, bytes);
    assert_eq!(st.job("job-a").events_sent, 53);
    assert_eq!(st.target(&t).requests, 2, "one JSON and one EMF request");
    let mut puts: Vec<(bool, usize)> = fake
        .seen()
        .iter()
        .filter(|s| s.op == "PutLogEvents")
        .map(|s| (s.emf_header, s.events))
        .collect();
    puts.sort_unstable();
    assert_eq!(
        puts,
        [(false, 52), (true, 1)],
        "the EMF request alone carried the header"
    );
    assert_eq!(st.totals.dropped_total(), 0);
    assert_eq!(st.buffered_events, 0);
}

#[tokio::test]
async fn creates_missing_group_and_stream_with_retention_tags_and_kms() {
    let fake = FakeCwl::start().await;
    let t = target("/cwpub/new-group", "stream-1");
    let mut cfg = fast_cfg();
    cfg.cw.retention_days = Some(30);
    cfg.cw.tags.insert("team".into(), "observability".into());
    cfg.cw.kms_key_id = Some("arn:aws:kms:us-east-1:123456789012:key/test".into());
    let d = cw::start(cfg, fake.sdk_config()).await;
    let evs = json_events("c", 10, now_ms() - 1_000);
    let expected: Vec<String> = evs.iter().map(|e| e.message.clone()).collect();
    d.submit(submission("job-c", PayloadKind::JsonLog, &t, evs));
    drain_all(&d).await;
    assert_exactly(&fake, "/cwpub/new-group", "stream-1", &expected);
    let (retention, tags, kms) = fake
        .group_settings("/cwpub/new-group")
        .expect("group created");
    assert_eq!(retention, Some(30));
    assert_eq!(tags.get("team").map(String::as_str), Some("observability"));
    assert_eq!(
        kms.as_deref(),
        Some("arn:aws:kms:us-east-1:123456789012:key/test")
    );
    let st = d.stats();
    assert_eq!(st.totals.groups_created, 1);
    assert_eq!(st.totals.streams_created, 1);
    let ops: Vec<String> = fake.seen().into_iter().map(|s| s.op).collect();
    assert!(!ops.iter().any(|o| o == "DescribeLogStreams"), "{ops:?}");
    assert_eq!(
        ops,
        [
            "PutLogEvents",
            "CreateLogStream",
            "CreateLogGroup",
            "PutRetentionPolicy",
            "CreateLogStream",
            "PutLogEvents"
        ]
    );
}

#[tokio::test]
async fn throttled_and_failing_creation_is_retried_until_it_works() {
    let fake = FakeCwl::start().await;
    let t = target("/cwpub/slow-create", "s");
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    // More failed creation calls than the replay budget for successful ones.
    fake.push_create_faults([
        Fault::Throttle,
        Fault::Throttle,
        Fault::Unavailable,
        Fault::Throttle,
        Fault::Throttle,
        Fault::Auth("AccessDeniedException"),
    ]);
    let evs = json_events("t", 4, now_ms());
    let expected: Vec<String> = evs.iter().map(|e| e.message.clone()).collect();
    d.submit(submission("job-t", PayloadKind::JsonLog, &t, evs));
    drain_all(&d).await;
    assert_exactly(&fake, "/cwpub/slow-create", "s", &expected);
    let st = d.stats();
    assert_eq!(st.totals.groups_created, 1);
    assert_eq!(st.totals.streams_created, 1);
    assert_eq!(st.totals.dropped_total(), 0, "{:?}", st.totals.drops);
    assert!(d.health().is_healthy());
}

#[tokio::test]
async fn existing_group_gets_only_a_stream_and_already_exists_is_success() {
    let fake = FakeCwl::start().await;
    fake.create(G, "other-stream");
    let t = target(G, "fresh");
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    let evs = json_events("e", 3, now_ms());
    let expected: Vec<String> = evs.iter().map(|e| e.message.clone()).collect();
    d.submit(submission("job-e", PayloadKind::JsonLog, &t, evs));
    drain_all(&d).await;
    assert_exactly(&fake, G, "fresh", &expected);
    assert_eq!(d.stats().totals.groups_created, 0);
    assert_eq!(d.stats().totals.streams_created, 1);
}

#[tokio::test]
async fn retryable_faults_lose_nothing_and_duplicate_nothing() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let mut cfg = fast_cfg();
    cfg.request_timeout = Duration::from_secs(1);
    let d = cw::start(cfg, fake.sdk_config()).await;
    fake.push_faults([
        Fault::Throttle,
        Fault::Throttle,
        Fault::Throttle,
        Fault::Unavailable,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Slow(Duration::from_secs(3)),
        Fault::DeleteStream,
        Fault::Reset,
        Fault::Throttle,
    ]);
    let base = now_ms() - 3_600_000;
    let mut expected = Vec::new();
    // 12 submissions spread over time → several batches hit the faults.
    for round in 0..12 {
        let evs: Vec<LogEvent> = (0..500)
            .map(|i| LogEvent {
                timestamp_ms: base + round * 1_000 + i,
                message: format!("r{round}-e{i}"),
            })
            .collect();
        expected.extend(evs.iter().map(|e| e.message.clone()));
        d.submit(submission("job-f", PayloadKind::JsonLog, &t, evs));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    drain_all(&d).await;
    assert_eq!(fake.faults_left(), 0, "every scripted fault was hit");
    assert_exactly(&fake, G, S, &expected);
    let st = d.stats();
    assert_eq!(st.totals.events_sent, 6_000);
    assert_eq!(st.totals.throttles, 4);
    // 4 throttles + 2 unavailable + 2 resets + 1 timeout; the deleted stream is
    // recreated and the same batch replayed without counting a retry.
    assert_eq!(st.totals.retries, 9);
    assert_eq!(st.totals.streams_created, 1);
    assert_eq!(st.totals.dropped_total(), 0, "{:?}", st.totals.drops);
    assert!(fake.limit_violations().is_empty());
}

#[tokio::test]
async fn invalid_parameter_is_isolated_to_the_bad_events() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    fake.poison("POISON");
    let t = target(G, S);
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    let base = now_ms() - 10_000;
    let evs: Vec<LogEvent> = (0..100)
        .map(|i| LogEvent {
            timestamp_ms: base + i,
            message: if [7, 50, 93].contains(&i) {
                format!("POISON-{i}")
            } else {
                format!("ok-{i}")
            },
        })
        .collect();
    let expected: Vec<String> = evs
        .iter()
        .map(|e| e.message.clone())
        .filter(|m| !m.starts_with("POISON"))
        .collect();
    d.submit(submission("job-p", PayloadKind::JsonLog, &t, evs));
    drain_all(&d).await;
    assert_exactly(&fake, G, S, &expected);
    let st = d.stats();
    assert_eq!(st.job("job-p").dropped(DropReason::InvalidParameter), 3);
    assert_eq!(st.job("job-p").events_sent, 97);
    assert_eq!(st.totals.dropped_total(), 3);
}

#[tokio::test]
async fn rejected_log_events_info_is_counted_per_job() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    fake.push_faults([
        Fault::RejectTooOld(2),
        Fault::RejectTooNewFrom(8),
        Fault::RejectExpired(1),
    ]);
    let base = now_ms() - 10_000;
    for (i, job) in ["job-1", "job-2", "job-3"].into_iter().enumerate() {
        let evs = json_events(job, 10, base + i as i64 * 100);
        d.submit(submission(job, PayloadKind::JsonLog, &t, evs));
        // One request per job, in this order.
        wait_for_requests(&d, i as u64 + 1).await;
    }
    drain_all(&d).await;
    let st = d.stats();
    assert_eq!(st.job("job-1").dropped(DropReason::RejectedTooOld), 2);
    assert_eq!(st.job("job-1").events_sent, 8);
    assert_eq!(st.job("job-2").dropped(DropReason::RejectedTooNew), 2);
    assert_eq!(st.job("job-2").events_sent, 8);
    assert_eq!(st.job("job-3").dropped(DropReason::RejectedExpired), 1);
    assert_eq!(st.job("job-3").events_sent, 9);
    assert_eq!(st.totals.events_sent, 25);
    assert_eq!(
        fake.events(G, S).len(),
        25,
        "accounting matches what the server stored"
    );
}

#[tokio::test]
async fn local_drops_are_counted_exactly_and_never_sent() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let mut cfg = fast_cfg();
    cfg.cw.max_event_bytes = 262_118;
    let d = cw::start(cfg, fake.sdk_config()).await;
    let now = now_ms();
    let evs = vec![
        LogEvent {
            timestamp_ms: now,
            message: String::new(),
        },
        LogEvent {
            timestamp_ms: now,
            message: "x".repeat(262_119),
        },
        LogEvent {
            timestamp_ms: now,
            message: "x".repeat(262_118),
        },
        LogEvent {
            timestamp_ms: now - 15 * 86_400_000,
            message: "old".into(),
        },
        LogEvent {
            timestamp_ms: now + 3 * 3_600_000,
            message: "future".into(),
        },
        LogEvent {
            timestamp_ms: now,
            message: "fine".into(),
        },
    ];
    d.submit(submission("job-l", PayloadKind::JsonLog, &t, evs));
    let bad = target("bad group name!", "s");
    d.submit(submission(
        "job-l",
        PayloadKind::JsonLog,
        &bad,
        json_events("b", 4, now),
    ));
    d.ledger().dropped("job-l", &t, MISSING_NAMESPACE, 5);
    drain_all(&d).await;
    let st = d.stats();
    let j = st.job("job-l");
    assert_eq!(j.dropped(DropReason::EmptyMessage), 1);
    assert_eq!(j.dropped(DropReason::Oversize), 1);
    assert_eq!(j.dropped(DropReason::TooOld), 1);
    assert_eq!(j.dropped(DropReason::TooNew), 1);
    assert_eq!(j.dropped(DropReason::InvalidTarget), 4);
    assert_eq!(j.dropped(MISSING_NAMESPACE), 5);
    assert_eq!(j.dropped_total(), 13);
    assert_eq!(j.events_sent, 2);
    let stored = fake.events(G, S);
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].message.len(),
        262_118,
        "the largest allowed event is sent whole"
    );
    assert!(fake.limit_violations().is_empty());
}

#[tokio::test]
async fn max_size_events_and_a_span_of_days_make_only_valid_requests() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    let now = now_ms();
    let mut evs = Vec::new();
    // Three maximum-size events: each must travel alone.
    for i in 0..3 {
        let mut m = format!("big{i}-");
        m.push_str(&"é".repeat((1_048_550 - m.len()) / 2));
        evs.push(LogEvent {
            timestamp_ms: now - 1_000 + i,
            message: m,
        });
    }
    // 25,000 small events over 13 days, in scrambled order.
    for i in 0..25_000i64 {
        let ts = now - 13 * 86_400_000 + (i * 7_919 % 25_000) * 44_000;
        evs.push(LogEvent {
            timestamp_ms: ts,
            message: format!("s{i}"),
        });
    }
    let n = evs.len();
    d.submit(submission("job-s", PayloadKind::JsonLog, &t, evs));
    drain_all(&d).await;
    assert!(
        fake.limit_violations().is_empty(),
        "{:?}",
        fake.limit_violations()
    );
    let stored = fake.events(G, S);
    assert_eq!(stored.len(), n);
    let unique: BTreeSet<&str> = stored.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(unique.len(), n);
    assert_eq!(d.stats().totals.events_sent, n as u64);
}

#[tokio::test]
async fn auth_errors_keep_data_buffered_show_in_health_and_heal() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    fake.push_faults(
        std::iter::repeat_n(Fault::Auth("ExpiredTokenException"), 4)
            .chain(std::iter::repeat_n(
                Fault::Auth("UnrecognizedClientException"),
                4,
            ))
            .chain(std::iter::repeat_n(Fault::Auth("AccessDeniedException"), 4)),
    );
    let evs = json_events("k", 20, now_ms());
    let expected: Vec<String> = evs.iter().map(|e| e.message.clone()).collect();
    d.submit(submission("job-k", PayloadKind::JsonLog, &t, evs));
    // The credential problem is visible in health while the faults last.
    let p = wait_for(|| d.health().credential_problem).await;
    assert!(p.code.ends_with("Exception"), "{p:?}");
    assert!(!d.health().is_healthy());
    drain_all(&d).await;
    assert_exactly(&fake, G, S, &expected);
    assert!(
        d.health().credential_problem.is_none(),
        "healed after success"
    );
    let st = d.stats();
    assert_eq!(st.totals.retries, 12);
    assert_eq!(st.totals.dropped_total(), 0);
}

#[tokio::test]
async fn circuit_breaker_opens_shows_in_health_and_closes() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let mut cfg = fast_cfg();
    cfg.circuit_failure_threshold = 3;
    cfg.circuit_open_max = Duration::from_secs(4);
    let d = cw::start(cfg, fake.sdk_config()).await;
    // Three failures open the circuit for 1 s; the probe after it fails once
    // more (re-opening it for 2 s); the next probe succeeds.
    fake.push_faults(std::iter::repeat_n(Fault::Unavailable, 4));
    let evs = json_events("cb", 5, now_ms());
    let expected: Vec<String> = evs.iter().map(|e| e.message.clone()).collect();
    d.submit(submission("job-cb", PayloadKind::JsonLog, &t, evs));
    let open = wait_for(|| d.health().open_circuits.first().cloned()).await;
    assert_eq!(open.target, *t);
    assert!(open.consecutive_failures >= 3);
    assert!(
        open.last_error.contains("ServiceUnavailableException"),
        "{}",
        open.last_error
    );
    assert!(
        open.retry_in <= Duration::from_secs(2),
        "the first or the second open period: {open:?}"
    );
    assert!(!d.health().is_healthy());
    // Not drained yet: a drain probes open circuits at once.
    wait_for(|| (fake.seen().len() >= 5).then_some(())).await;
    drain_all(&d).await;
    assert_exactly(&fake, G, S, &expected);
    let seen = fake.seen();
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 500, 500, 500, 200],
        "4 failures + 1 success, nothing else"
    );
    // While open, no request reached the target: each probe came no sooner
    // than the circuit's open period after the failure that opened it.
    let gap = |i: usize| seen[i].at - seen[i - 1].at;
    assert!(
        gap(3) >= Duration::from_secs(1),
        "first probe after {:?}",
        gap(3)
    );
    assert!(
        gap(4) >= Duration::from_secs(2),
        "second probe after {:?}",
        gap(4)
    );
    assert!(d.health().open_circuits.is_empty(), "closed after success");
    assert!(d.health().is_healthy());
}

#[tokio::test]
async fn creation_disabled_drops_as_target_missing() {
    let fake = FakeCwl::start().await;
    let t = target("/cwpub/absent", "s");
    let mut cfg = fast_cfg();
    cfg.cw.create_log_groups = false;
    cfg.cw.create_log_streams = false;
    let d = cw::start(cfg, fake.sdk_config()).await;
    d.submit(submission(
        "job-m",
        PayloadKind::JsonLog,
        &t,
        json_events("m", 7, now_ms()),
    ));
    drain_all(&d).await;
    let st = d.stats();
    assert_eq!(st.job("job-m").dropped(DropReason::TargetMissing), 7);
    assert!(
        fake.seen().iter().all(|s| s.op == "PutLogEvents"),
        "no creation calls"
    );
}

#[tokio::test]
async fn group_creation_disabled_drops_when_group_is_missing() {
    let fake = FakeCwl::start().await;
    let t = target("/cwpub/absent", "s");
    let mut cfg = fast_cfg();
    cfg.cw.create_log_groups = false;
    let d = cw::start(cfg, fake.sdk_config()).await;
    d.submit(submission(
        "job-m",
        PayloadKind::JsonLog,
        &t,
        json_events("m", 3, now_ms()),
    ));
    drain_all(&d).await;
    assert_eq!(d.stats().job("job-m").dropped(DropReason::TargetMissing), 3);
    assert!(!fake.seen().iter().any(|s| s.op == "CreateLogGroup"));
}

#[tokio::test]
async fn drain_deadline_reports_exactly_what_was_not_delivered() {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let t2 = target(G, "second");
    fake.create(G, "second");
    let d = cw::start(fast_cfg(), fake.sdk_config()).await;
    fake.push_faults(std::iter::repeat_n(Fault::Throttle, 100_000));
    d.submit(submission(
        "job-x",
        PayloadKind::JsonLog,
        &t,
        json_events("x", 30, now_ms()),
    ));
    d.submit(submission(
        "job-y",
        PayloadKind::Emf,
        &t2,
        json_events("y", 12, now_ms()),
    ));
    let report = d.drain(Duration::from_millis(300)).await;
    assert!(!report.completed);
    assert_eq!(report.undelivered, 42);
    assert_eq!(report.undelivered_per_job.get("job-x"), Some(&30));
    assert_eq!(report.undelivered_per_job.get("job-y"), Some(&12));
    assert_eq!(report.undelivered_per_target.get(&*t), Some(&30));
    assert_eq!(report.undelivered_per_target.get(&*t2), Some(&12));
    assert_eq!(report.delivered, 0);
    assert!(report.elapsed < Duration::from_secs(5));
    assert_eq!(d.stats().totals.dropped(DropReason::Shutdown), 42);
    assert_eq!(d.stats().buffered_events, 0);
    assert!(fake.events(G, S).is_empty());
    // After drain, submissions are refused and counted.
    d.submit(submission(
        "job-x",
        PayloadKind::JsonLog,
        &t,
        json_events("z", 2, now_ms()),
    ));
    assert_eq!(d.stats().job("job-x").dropped(DropReason::Shutdown), 32);
    assert!(d.health().closed);
}

/// Submits 40 events of ~100 KB into a 2 MiB budget before any worker runs
/// (current-thread runtime), then delivers; returns what was stored and the
/// overflow drop count.
async fn overflow_run(policy: OverflowPolicy) -> (Vec<String>, u64) {
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let t = target(G, S);
    let mut cfg = fast_cfg();
    cfg.overflow = policy;
    cfg.buffer_budget_bytes = 2 * 1_048_576;
    let d = cw::start(cfg, fake.sdk_config()).await;
    let base = now_ms() - 1_000;
    for i in 0..40 {
        let mut m = format!("{i:03}-");
        m.push_str(&"p".repeat(100_000));
        let ev = LogEvent {
            timestamp_ms: base + i,
            message: m,
        };
        d.submit(submission("job-o", PayloadKind::JsonLog, &t, vec![ev]));
    }
    d.settle().await;
    let st = d.stats();
    assert!(
        st.buffered_bytes <= 2 * 1_048_576,
        "budget respected: {}",
        st.buffered_bytes
    );
    drain_all(&d).await;
    let stored = fake
        .events(G, S)
        .into_iter()
        .map(|e| e.message[..3].to_string())
        .collect();
    (stored, d.stats().job("job-o").dropped(DropReason::Overflow))
}

fn labels(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{i:03}")).collect()
}

#[tokio::test]
async fn overflow_drop_oldest_keeps_the_newest() {
    // 2 MiB / (100,005 + 26) bytes = 20 events fit.
    let (stored, overflow) = overflow_run(OverflowPolicy::DropOldest).await;
    assert_eq!(overflow, 20);
    assert_eq!(stored, labels(20..40));
}

#[tokio::test]
async fn overflow_drop_newest_keeps_the_oldest() {
    let (stored, overflow) = overflow_run(OverflowPolicy::DropNewest).await;
    assert_eq!(overflow, 20);
    assert_eq!(stored, labels(0..20));
}

/// The fake must refuse what CloudWatch refuses, or the tests above prove nothing.
#[tokio::test]
async fn fake_refuses_every_limit_breaking_request() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let fake = FakeCwl::start().await;
    fake.create(G, S);
    let client = fake.client(Duration::from_secs(10));
    let now = now_ms();
    let ev = |ts: i64, m: String| {
        InputLogEvent::builder()
            .timestamp(ts)
            .message(m)
            .build()
            .expect("event")
    };
    let cases: Vec<(&str, Vec<InputLogEvent>)> = vec![
        (
            "unsorted",
            vec![ev(now, "b".into()), ev(now - 1, "a".into())],
        ),
        (
            "span of 24 h",
            vec![ev(now - 86_400_000, "a".into()), ev(now, "b".into())],
        ),
        ("empty message", vec![ev(now, String::new())]),
        ("event too large", vec![ev(now, "x".repeat(1_048_551))]),
        (
            "10,001 events",
            (0..10_001).map(|i| ev(now, format!("{i}"))).collect(),
        ),
        (
            "batch bytes + 26 > 1 MiB",
            vec![ev(now, "x".repeat(524_262)), ev(now, "y".repeat(524_263))],
        ),
    ];
    for (name, events) in cases {
        let err = client
            .put_log_events()
            .log_group_name(G)
            .log_stream_name(S)
            .set_log_events(Some(events))
            .send()
            .await
            .expect_err(name);
        let code = aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&err);
        assert_eq!(code, Some("InvalidParameterException"), "{name}");
    }
    assert_eq!(fake.limit_violations().len(), 6);
    // The exact limits pass: 2 events of (524,262 + 26) bytes = 1,048,576.
    client
        .put_log_events()
        .log_group_name(G)
        .log_stream_name(S)
        .set_log_events(Some(vec![
            ev(now - 86_399_999, "x".repeat(524_262)),
            ev(now, "y".repeat(524_262)),
        ]))
        .send()
        .await
        .expect("a batch exactly at the limits is accepted");
    assert!(fake.events(G, S).len() == 2);
}

#[tokio::test]
async fn overflow_drop_oldest_works_across_targets_and_jobs() {
    let fake = FakeCwl::start().await;
    fake.create(G, "a");
    fake.create(G, "b");
    let (ta, tb) = (target(G, "a"), target(G, "b"));
    let mut cfg = fast_cfg();
    cfg.buffer_budget_bytes = 2 * 1_048_576;
    let d = cw::start(cfg, fake.sdk_config()).await;
    let base = now_ms() - 1_000;
    // Alternate targets (and jobs); all submitted before any worker runs.
    for i in 0..40 {
        let (t, job) = if i % 2 == 0 {
            (&ta, "job-a")
        } else {
            (&tb, "job-b")
        };
        let mut m = format!("{i:03}-");
        m.push_str(&"p".repeat(100_000));
        let ev = LogEvent {
            timestamp_ms: base + i,
            message: m,
        };
        d.submit(submission(job, PayloadKind::JsonLog, t, vec![ev]));
    }
    drain_all(&d).await;
    let label = |s: &str| -> Vec<String> {
        fake.events(G, s)
            .into_iter()
            .map(|e| e.message[..3].to_string())
            .collect()
    };
    // The 20 oldest (0..20) were evicted, whichever target they were for.
    assert_eq!(
        label("a"),
        (20..40)
            .step_by(2)
            .map(|i| format!("{i:03}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        label("b"),
        (21..40)
            .step_by(2)
            .map(|i| format!("{i:03}"))
            .collect::<Vec<_>>()
    );
    let st = d.stats();
    assert_eq!(st.job("job-a").dropped(DropReason::Overflow), 10);
    assert_eq!(st.job("job-b").dropped(DropReason::Overflow), 10);
    assert_eq!(st.target(&ta).dropped(DropReason::Overflow), 10);
    assert_eq!(st.totals.events_sent, 20);
}
