//! Delivery against moto (a local CloudWatch Logs mock on loopback, static
//! test credentials, never real AWS): JSON and EMF events are read back with
//! GetLogEvents in exact content and order, a missing group and stream are
//! created with retention, events moto rejects are counted from its
//! rejectedLogEventsInfo, and disabled creation is counted as drops.

use crate::support::moto;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cwpub::delivery::DeliveryConfig;
use cwpub::sinks::cloudwatch::{LOG_GROUP, LOG_STREAM};

use crate::support::cw::{self, Cfg};
use cwpub::event::{LogEvent, PayloadKind, Submission, Target};
use cwpub::ledger::DropReason;
use moto::Moto;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn cfg() -> Cfg {
    Cfg::from(DeliveryConfig {
        max_batch_delay: Duration::from_millis(50),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        ..DeliveryConfig::default()
    })
}

fn sub(job: &str, kind: PayloadKind, t: &Arc<Target>, events: Vec<LogEvent>) -> Submission {
    Submission {
        job: Arc::from(job),
        kind,
        target: t.clone(),
        events,
    }
}

async fn read_back(client: &aws_sdk_cloudwatchlogs::Client, t: &Target) -> Vec<(i64, String)> {
    let out = client
        .get_log_events()
        .log_group_name(t.get(LOG_GROUP).expect("group"))
        .log_stream_name(t.get(LOG_STREAM).expect("stream"))
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents");
    out.events()
        .iter()
        .map(|e| {
            (
                e.timestamp().unwrap_or(-1),
                e.message().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn json_and_emf_round_trip_through_moto_with_creation() {
    let moto = Moto::start();
    let client = moto.client();
    let mut c = cfg();
    c.cw.retention_days = Some(7);
    let d = cw::start(c, moto.sdk_config()).await;
    let t = cw::target("/cwpub/moto", "host-1/heartbeat");
    let base = now_ms() - 120_000;
    let json: Vec<LogEvent> = (0..20)
        .rev()
        .map(|i| LogEvent {
            timestamp_ms: base + i * 10,
            message: format!("{{\"job\":\"heartbeat\",\"seq\":{i},\"text\":\"héllo ✓\"}}"),
        })
        .collect();
    d.submit(sub("heartbeat", PayloadKind::JsonLog, &t, json));
    let emf = format!(
        r#"{{"_aws":{{"Timestamp":{ts},"CloudWatchMetrics":[{{"Namespace":"cwpub","Dimensions":[["Job"]],"Metrics":[{{"Name":"Up","Unit":"Count"}}]}}]}},"Job":"heartbeat","Up":1}}"#,
        ts = base + 5
    );
    d.submit(sub(
        "heartbeat",
        PayloadKind::Emf,
        &t,
        vec![LogEvent {
            timestamp_ms: base + 5,
            message: emf.clone(),
        }],
    ));
    let report = d.drain(Duration::from_secs(30)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.delivered, 21);

    let got = read_back(&client, &t).await;
    let mut expected: Vec<(i64, String)> = (0..20)
        .map(|i| {
            (
                base + i * 10,
                format!("{{\"job\":\"heartbeat\",\"seq\":{i},\"text\":\"héllo ✓\"}}"),
            )
        })
        .collect();
    expected.insert(1, (base + 5, emf));
    assert_eq!(got, expected);

    let groups = client
        .describe_log_groups()
        .log_group_name_prefix("/cwpub/moto")
        .send()
        .await
        .expect("DescribeLogGroups");
    let g = groups.log_groups().first().expect("group created");
    assert_eq!(g.retention_in_days(), Some(7));
    let st = d.stats();
    assert_eq!(st.totals.groups_created, 1);
    assert_eq!(st.totals.streams_created, 1);
    assert_eq!(st.job("heartbeat").events_sent, 21);
    assert_eq!(st.totals.dropped_total(), 0);
}

#[tokio::test]
async fn events_moto_rejects_are_counted_from_rejected_log_events_info() {
    let moto = Moto::start();
    let client = moto.client();
    client
        .create_log_group()
        .log_group_name("/cwpub/rejects")
        .send()
        .await
        .expect("CreateLogGroup");
    client
        .create_log_stream()
        .log_group_name("/cwpub/rejects")
        .log_stream_name("s")
        .send()
        .await
        .expect("CreateLogStream");
    // Widen the host's own filter so moto (not the host) judges the timestamps.
    let mut c = cfg();
    c.cw.drop_older_than = Duration::from_secs(20 * 86_400);
    c.cw.drop_newer_than = Duration::from_secs(6 * 3_600);
    let d = cw::start(c, moto.sdk_config()).await;
    let t = cw::target("/cwpub/rejects", "s");
    let now = now_ms();
    let ev = |ts: i64, m: &str| LogEvent {
        timestamp_ms: ts,
        message: m.to_string(),
    };
    // The host splits this into two requests (the too-old pair is > 24 h
    // before the rest): moto rejects the pair and the future event.
    d.submit(sub(
        "job-r",
        PayloadKind::JsonLog,
        &t,
        vec![
            ev(now - 15 * 86_400_000, "old-1"),
            ev(now - 15 * 86_400_000 + 1, "old-2"),
            ev(now - 3_000, "good-1"),
            ev(now - 2_000, "good-2"),
            ev(now - 1_000, "good-3"),
            ev(now + 3 * 3_600_000, "future"),
        ],
    ));
    let report = d.drain(Duration::from_secs(30)).await;
    assert!(report.completed, "{report:?}");
    let got: Vec<String> = read_back(&client, &t)
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, ["good-1", "good-2", "good-3"]);
    let j = d.stats().job("job-r");
    assert_eq!(j.dropped(DropReason::RejectedTooNew), 1);
    // moto 5.x reports tooOldLogEventEndIndex as the index of the *last*
    // too-old event (AWS: one past it), so with AWS semantics one of the two
    // is counted; the fake-server test checks the exact AWS semantics.
    assert_eq!(j.dropped(DropReason::RejectedTooOld), 1);
    assert_eq!(
        j.events_sent + j.dropped_total(),
        6,
        "every event counted exactly once"
    );
}

#[tokio::test]
async fn missing_target_with_creation_disabled_is_counted() {
    let moto = Moto::start();
    let mut c = cfg();
    c.cw.create_log_groups = false;
    c.cw.create_log_streams = false;
    let d = cw::start(c, moto.sdk_config()).await;
    let t = cw::target("/cwpub/absent", "s");
    let now = now_ms();
    let events = (0..4)
        .map(|i| LogEvent {
            timestamp_ms: now + i,
            message: format!("m{i}"),
        })
        .collect();
    d.submit(sub("job-a", PayloadKind::JsonLog, &t, events));
    let report = d.drain(Duration::from_secs(30)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(
        report.dropped_other.get(&DropReason::TargetMissing),
        Some(&4)
    );
    assert_eq!(d.stats().job("job-a").dropped(DropReason::TargetMissing), 4);
}
