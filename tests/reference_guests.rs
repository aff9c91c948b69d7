//! The reference guests' output, parsed and checked field by field.

use std::sync::Arc;

use cwpub::event::PayloadKind;
use cwpub::guest::{
    Builtin, DeliveryStats, FailureKind, GuestSource, HostFacts, LoadedGuest, RunLimits,
    RunRequest, Runtime,
};
use serde_json::Value;

async fn builtin(b: Builtin) -> LoadedGuest {
    Runtime::new()
        .expect("engine")
        .load(&GuestSource::Builtin(b))
        .await
        .expect("loads")
}

fn facts() -> HostFacts {
    HostFacts {
        hostname: "ip-10-0-0-7".into(),
        task_id: Some("c0ffee".into()),
        region: Some("eu-west-1".into()),
        host_version: "9.8.7".into(),
        uptime_ms: 90_500,
        delivery: DeliveryStats {
            events_delivered: 41,
            bytes_delivered: 4096,
            events_dropped: 2,
            events_pending: 3,
            requests: 7,
            retries: 1,
            throttled: 1,
            runs_succeeded: 40,
            runs_failed: 1,
        },
    }
}

fn request(job: &str, config: &[(&str, &str)]) -> RunRequest {
    let config: Arc<[(String, String)]> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RunRequest {
        job: job.into(),
        scheduled_ms: 1_763_796_600_000, // 2025-11-22T07:30:00Z
        actual_ms: 1_763_796_600_123,
        sequence: 42,
        invocation_id: "6f1c2a9e-0000-4000-8000-000000000001".into(),
        config,
        facts: facts(),
    }
}

#[tokio::test]
async fn heartbeat_event_has_every_field() {
    let guest = builtin(Builtin::Heartbeat).await;
    let req = request(
        "hb",
        &[
            ("service", "orders-api"),
            ("field.env", "prod"),
            ("field.team", "payments"),
        ],
    );
    let out = guest.run(&req, &RunLimits::default()).await.expect("runs");
    assert_eq!(out.kind, PayloadKind::JsonLog);
    assert_eq!(out.events.len(), 1);
    let event = &out.events[0];
    assert_eq!(event.timestamp_ms, 1_763_796_600_123);
    assert!(!event.message.contains('\n'), "one line");
    let v: Value = serde_json::from_str(&event.message).expect("JSON");
    assert_eq!(v["service"], "orders-api");
    assert_eq!(v["event"], "heartbeat");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["timestamp"], "2025-11-22T07:30:00.123Z");
    assert_eq!(v["scheduled_at"], "2025-11-22T07:30:00.000Z");
    assert_eq!(v["event_id"], "hb:6f1c2a9e-0000-4000-8000-000000000001");
    assert_eq!(v["sequence"], 42);
    assert_eq!(v["job"], "hb");
    assert_eq!(v["env"], "prod");
    assert_eq!(v["team"], "payments");
    let m = &v["metadata"];
    assert_eq!(m["hostname"], "ip-10-0-0-7");
    assert_eq!(m["task_id"], "c0ffee");
    assert_eq!(m["region"], "eu-west-1");
    assert_eq!(m["host_version"], "9.8.7");
    assert_eq!(m["uptime_seconds"], 90.5);
    assert_eq!(
        v.as_object().expect("object").len(),
        11,
        "no unexpected fields: {v}"
    );
}

#[tokio::test]
async fn heartbeat_defaults_service_to_the_job_name() {
    let guest = builtin(Builtin::Heartbeat).await;
    let out = guest
        .run(&request("billing-heartbeat", &[]), &RunLimits::default())
        .await
        .expect("runs");
    let v: Value = serde_json::from_str(&out.events[0].message).expect("JSON");
    assert_eq!(v["service"], "billing-heartbeat");
}

#[tokio::test]
async fn heartbeat_rejects_bad_config_with_the_key() {
    let guest = builtin(Builtin::Heartbeat).await;
    let job: Arc<str> = "hb".into();
    for (config, expected) in [
        (vec![("colour", "red")], "config key `colour`: unknown key"),
        (
            vec![("service", "")],
            "config key `service`: must not be empty",
        ),
        (
            vec![("field.event", "x")],
            "config key `field.event`: `event` is set by the heartbeat itself",
        ),
    ] {
        let config: Vec<(String, String)> = config
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let e = guest
            .validate_config(&job, &config, &RunLimits::default())
            .await
            .expect_err("invalid");
        let FailureKind::InvalidConfig(message) = &e.kind else {
            panic!("{e}")
        };
        assert!(message.to_string().starts_with(expected), "{message}");
    }
}
