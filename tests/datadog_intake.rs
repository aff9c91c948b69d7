//! The DataDog sink's parts end to end against the strict fake intake
//! (`support::fake_datadog`): real batches — the `builtin:emf` guest's
//! documents among them — encoded, sent by the service, received exactly,
//! accepted by DataDog's own API models; every answer class from every fault.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use cwpub::env::{Env, from_pairs};
use cwpub::event::{LogEvent, PayloadKind};
use cwpub::guest::{
    Builtin, DeliveryStats, GuestSource, HostFacts, RunLimits, RunRequest, Runtime,
};
use cwpub::http::{HttpClient, HttpConfig};
use cwpub::sinks::datadog::encode::{
    LogLimits, Payload, Plan, SeriesLimits, encode_logs, encode_series,
};
use cwpub::sinks::datadog::key::{ApiKeyStore, KeySource};
use cwpub::sinks::datadog::logs::LogDefaults;
use cwpub::sinks::datadog::retry::Class;
use cwpub::sinks::datadog::service::{DatadogService, Outcome};
use cwpub::sinks::datadog::site::Endpoints;

use crate::support::fake_datadog::{FakeDatadog, Fault, Outage, array_item_sizes, noise};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn env() -> Env {
    from_pairs(&[("DD_API_KEY", KEY)])
}

fn service_with(
    fake: &FakeDatadog,
    source: KeySource,
    env: &Env,
    http: HttpConfig,
) -> DatadogService {
    DatadogService::new(
        HttpClient::new(http).expect("client"),
        Endpoints::for_base_url(&fake.endpoint()).expect("endpoint"),
        Arc::new(ApiKeyStore::load(source, env).expect("key")),
    )
}

fn service(fake: &FakeDatadog) -> DatadogService {
    service_with(
        fake,
        KeySource::Env("DD_API_KEY".into()),
        &env(),
        HttpConfig::default(),
    )
}

/// Sends every payload of `plan` once, in order.
async fn send_all(svc: &DatadogService, plan: &Plan) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for payload in &plan.payloads {
        outcomes.push(svc.send(payload).await);
    }
    outcomes
}

fn assert_all_accepted(outcomes: &[Outcome]) {
    for o in outcomes {
        assert_eq!(o.class, Class::Accepted, "{}", o.message);
    }
}

fn log_event(ts: i64, message: &str) -> LogEvent {
    LogEvent {
        timestamp_ms: ts,
        message: message.to_string(),
    }
}

/// A request holding one log line, dated now.
fn one_line() -> Payload {
    let now = now_ms();
    encode_logs(
        &[log_event(now, "one line")],
        &LogDefaults::default(),
        now,
        LogLimits::DATADOG,
    )
    .payloads
    .remove(0)
}

#[tokio::test]
async fn datadog_logs_arrive_as_composed_with_defaults_filled_in() {
    let fake = FakeDatadog::start(KEY).await;
    let now = now_ms();
    let composed = json!({
        "ddsource": "guest", "ddtags": "env:dev", "hostname": "h1", "service": "svc",
        "status": "warn", "message": "composed", "timestamp": now - 5, "nested": {"a": [1, 2.5]}
    });
    let events = vec![
        log_event(now - 1000, &composed.to_string()),
        log_event(now - 900, "a plain line with \"quotes\" and\ttabs"),
        log_event(now - 800, r#"{"event":"heartbeat","status":"ok"}"#),
        log_event(now - 700, r#"{"service":42,"message":"not an item"}"#),
    ];
    let defaults = LogDefaults {
        service: Some("orders".into()),
        ddsource: Some("cwpub".into()),
        ddtags: Some("team:pay".into()),
        hostname: Some("ip-10-0-0-7".into()),
    };
    let plan = encode_logs(&events, &defaults, now, LogLimits::DATADOG);
    assert!(plan.skipped.is_empty());
    let svc = service(&fake);
    assert_all_accepted(&send_all(&svc, &plan).await);

    let filled = |v: Value| {
        let mut v = v;
        for (k, d) in [
            ("service", "orders"),
            ("ddsource", "cwpub"),
            ("ddtags", "team:pay"),
            ("hostname", "ip-10-0-0-7"),
        ] {
            v.as_object_mut()
                .expect("object")
                .entry(k)
                .or_insert(json!(d));
        }
        v
    };
    assert_eq!(
        fake.logs(),
        vec![
            composed,
            filled(
                json!({"message": "a plain line with \"quotes\" and\ttabs", "timestamp": now - 900})
            ),
            filled(
                json!({"message": "", "timestamp": now - 800, "event": "heartbeat", "status": "ok"})
            ),
            filled(
                json!({"message": r#"{"service":42,"message":"not an item"}"#, "timestamp": now - 700})
            ),
        ]
    );
    fake.assert_no_violations();
    tokio::task::spawn_blocking(move || fake.check_with_datadog_models())
        .await
        .expect("model check");
}

#[tokio::test]
async fn datadog_log_batches_split_within_the_limits_and_arrive_once_in_order() {
    let fake = FakeDatadog::start(KEY).await;
    let now = now_ms();
    let mut events: Vec<LogEvent> = (0..2_400)
        .map(|i| log_event(now - 60_000 + i, &format!(r#"{{"message":"small {i}"}}"#)))
        .collect();
    // Twelve items near the item limit: 10.8 MB, over two requests' worth.
    for i in 0..12 {
        events.push(log_event(now, &format!("big {i} {}", "x".repeat(899_990))));
    }
    let plan = encode_logs(&events, &LogDefaults::default(), now, LogLimits::DATADOG);
    assert!(plan.skipped.is_empty());
    assert!(plan.payloads.len() >= 5, "{}", plan.payloads.len());
    let svc = service(&fake);
    assert_all_accepted(&send_all(&svc, &plan).await);

    let received = fake.logs();
    assert_eq!(received.len(), events.len(), "every event once");
    for (i, item) in received.iter().enumerate().take(2_400) {
        assert_eq!(item["message"], format!("small {i}"));
    }
    for (i, item) in received[2_400..].iter().enumerate() {
        assert!(
            item["message"]
                .as_str()
                .expect("message")
                .starts_with(&format!("big {i} "))
        );
    }
    for seen in fake.requests() {
        assert!(
            seen.items <= 1_000 && seen.uncompressed <= 5_000_000,
            "{seen:?}"
        );
    }
    fake.assert_no_violations();
}

#[tokio::test]
async fn datadog_series_from_the_builtin_emf_guest() {
    let guest = Runtime::new()
        .expect("engine")
        .load(&GuestSource::Builtin(Builtin::Emf))
        .await
        .expect("loads");
    let now = now_ms();
    let request = RunRequest {
        job: "emf-job".into(),
        scheduled_ms: now as u64 - 120,
        actual_ms: now as u64 - 100,
        sequence: 3,
        invocation_id: "6f1c2a9e-0000-4000-8000-000000000009".into(),
        config: Arc::from(vec![(
            "metric.QueueDepth".to_string(),
            "17 Count".to_string(),
        )]),
        facts: HostFacts {
            hostname: "ip-10-0-0-7".into(),
            uptime_ms: 90_500,
            delivery: DeliveryStats {
                events_delivered: 41,
                bytes_delivered: 4096,
                requests: 7,
                ..DeliveryStats::default()
            },
            ..HostFacts::default()
        },
    };
    let out = guest
        .run(&request, &RunLimits::default())
        .await
        .expect("runs");
    assert_eq!(out.kind, PayloadKind::Emf);

    let fake = FakeDatadog::start(KEY).await;
    let plan = encode_series(
        &out.events,
        Some("ip-10-0-0-7"),
        now_ms(),
        SeriesLimits::DATADOG,
    );
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    assert_all_accepted(&send_all(&service(&fake), &plan).await);

    let timestamp = (now - 100).div_euclid(1000);
    let got: Vec<(String, f64, Option<String>)> = fake
        .points()
        .into_iter()
        .map(|p| {
            assert_eq!(p.tags, ["Service:emf-job", "Host:ip-10-0-0-7"], "{p:?}");
            assert_eq!(p.timestamp, timestamp);
            assert_eq!(p.host.as_deref(), Some("ip-10-0-0-7"));
            (p.metric, p.value, p.unit)
        })
        .collect();
    let unit = |u: &str| Some(u.to_string());
    assert_eq!(
        got,
        vec![
            ("cwpub.Heartbeat".into(), 1.0, None),
            ("cwpub.UptimeSeconds".into(), 90.5, unit("second")),
            ("cwpub.EventsDelivered".into(), 41.0, None),
            ("cwpub.BytesDelivered".into(), 4096.0, unit("byte")),
            ("cwpub.EventsDropped".into(), 0.0, None),
            ("cwpub.EventsPending".into(), 0.0, None),
            ("cwpub.Requests".into(), 7.0, None),
            ("cwpub.Retries".into(), 0.0, None),
            ("cwpub.Throttled".into(), 0.0, None),
            ("cwpub.RunsSucceeded".into(), 0.0, None),
            ("cwpub.RunsFailed".into(), 0.0, None),
            ("cwpub.QueueDepth".into(), 17.0, None),
        ]
    );
    let series = fake.series();
    assert_eq!(series[0]["type"], 3);
    assert_eq!(
        series[0]["resources"],
        json!([{"name": "ip-10-0-0-7", "type": "host"}])
    );
    fake.assert_no_violations();
    tokio::task::spawn_blocking(move || fake.check_with_datadog_models())
        .await
        .expect("model check");
}

/// An EMF document at `ts` with one `Id` dimension and `metrics` metrics.
fn emf(ts: i64, id: &str, metrics: usize) -> LogEvent {
    let mut root = serde_json::Map::new();
    let definitions: Vec<Value> = (0..metrics)
        .map(|i| json!({"Name": format!("m{i}"), "Unit": "Milliseconds"}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": ts, "CloudWatchMetrics": [{
            "Namespace": "load", "Dimensions": [["Id"]], "Metrics": definitions}]}),
    );
    root.insert("Id".into(), json!(id));
    for i in 0..metrics {
        root.insert(format!("m{i}"), json!(i as f64 + 0.5));
    }
    log_event(ts, &Value::Object(root).to_string())
}

#[tokio::test]
async fn datadog_series_split_under_512000_bytes_and_arrive_once_in_order() {
    let fake = FakeDatadog::start(KEY).await;
    let now = now_ms();
    // Distinct 150-character ids compress poorly: several payloads.
    let ids: Vec<String> = (0..8_000).map(|i| noise(i, 150)).collect();
    let events: Vec<LogEvent> = ids.iter().map(|id| emf(now - 30_000, id, 3)).collect();
    let plan = encode_series(&events, Some("h"), now, SeriesLimits::DATADOG);
    assert!(plan.skipped.is_empty());
    assert!(plan.payloads.len() >= 2, "{}", plan.payloads.len());
    assert_all_accepted(&send_all(&service(&fake), &plan).await);

    let points = fake.points();
    assert_eq!(points.len(), 24_000, "every point once");
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p.tags, [format!("Id:{}", ids[i / 3])]);
        assert_eq!(p.metric, format!("load.m{}", i % 3));
        assert_eq!(p.value, (i % 3) as f64 + 0.5);
        assert_eq!(p.unit.as_deref(), Some("millisecond"));
    }
    for seen in fake.requests() {
        assert!(
            seen.compressed <= 512_000 && seen.uncompressed < 5_242_880,
            "{seen:?}"
        );
    }
    fake.assert_no_violations();
}

#[tokio::test]
async fn datadog_every_answer_maps_to_its_class() {
    let fake = FakeDatadog::start(KEY).await;
    let payload = one_line();
    let svc = service_with(
        &fake,
        KeySource::Env("DD_API_KEY".into()),
        &env(),
        HttpConfig {
            request_timeout: Duration::from_millis(500),
            ..HttpConfig::default()
        },
    );
    let table = [
        (Fault::Status(429), Class::Throttled, Some(429)),
        (Fault::Status(408), Class::Transient, Some(408)),
        (Fault::Status(500), Class::Transient, Some(500)),
        (Fault::Status(502), Class::Transient, Some(502)),
        (Fault::Status(503), Class::Transient, Some(503)),
        (Fault::Status(504), Class::Transient, Some(504)),
        (Fault::Status(413), Class::TooLarge, Some(413)),
        (Fault::Status(401), Class::Credentials, Some(401)),
        (Fault::Status(403), Class::Credentials, Some(403)),
        (Fault::Status(404), Class::Permanent, Some(404)),
        (
            Fault::BadRequest("Payload is not valid\n\u{1b}[31mforged"),
            Class::BadRequest,
            Some(400),
        ),
        (Fault::Reset, Class::Transient, None),
        (Fault::Stall, Class::Transient, None),
        (Fault::BigBody(1 << 20), Class::Transient, Some(500)),
    ];
    for (fault, class, status) in table {
        fake.push_faults([fault.clone()]);
        let outcome = svc.send(&payload).await;
        assert_eq!(
            (outcome.class, outcome.status),
            (class, status),
            "{fault:?}: {outcome:?}"
        );
        assert!(!outcome.message.contains(KEY));
        assert!(!outcome.message.contains('\n') && !outcome.message.contains('\u{1b}'));
    }
    assert_eq!(fake.faults_left(), 0);
    assert!(fake.logs().is_empty(), "nothing accepted under faults");

    // The 400's reason is DataDog's text, escaped.
    fake.push_faults([Fault::BadRequest("Invalid \"ddtags\"\nsecond line")]);
    let outcome = svc.send(&payload).await;
    assert_eq!(outcome.reason, "Invalid \"ddtags\"\\nsecond line");

    let outcome = svc.send(&payload).await;
    assert_eq!(outcome.class, Class::Accepted, "{}", outcome.message);
    assert_eq!(fake.logs().len(), 1, "accepted once");
    fake.assert_no_violations();
}

#[tokio::test]
async fn datadog_a_refused_key_is_reread_from_its_file() {
    let fake = FakeDatadog::start("new-key-0000000000000000000000000").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dd-api-key");
    std::fs::write(&path, format!("{KEY}\n")).expect("write key");
    let svc = service_with(
        &fake,
        KeySource::File(path.clone()),
        &Env::new(),
        HttpConfig::default(),
    );
    let payload = one_line();

    let outcome = svc.send(&payload).await;
    assert_eq!(
        (outcome.class, outcome.status),
        (Class::Credentials, Some(403))
    );
    assert!(!outcome.key_reloaded);
    assert!(
        outcome.message.contains("still holds the same key"),
        "{}",
        outcome.message
    );
    assert!(!format!("{outcome:?}").contains(KEY));

    // The secret is rotated: the next refusal re-reads it, the retry passes.
    std::fs::write(&path, "new-key-0000000000000000000000000\n").expect("rotate");
    let outcome = svc.send(&payload).await;
    assert_eq!(outcome.class, Class::Credentials);
    assert!(outcome.key_reloaded, "{}", outcome.message);
    let outcome = svc.send(&payload).await;
    assert_eq!(outcome.class, Class::Accepted, "{}", outcome.message);
    assert_eq!(fake.logs().len(), 1);
    fake.assert_no_violations();
}

#[tokio::test]
async fn datadog_a_60_percent_storm_throttles_three_of_every_five() {
    let fake = FakeDatadog::start(KEY).await;
    let svc = service(&fake);
    let payload = one_line();
    fake.set_throttle_percent(60);
    let mut classes = Vec::new();
    for _ in 0..10 {
        classes.push(svc.send(&payload).await.class);
    }
    let throttled = classes.iter().filter(|c| **c == Class::Throttled).count();
    assert_eq!(throttled, 6, "{classes:?}");
    assert_eq!(fake.throttled(), 6);
    assert_eq!(fake.logs().len(), 4);
    fake.set_throttle_percent(0);
    assert_eq!(svc.send(&payload).await.class, Class::Accepted);
}

#[tokio::test]
async fn datadog_outages_and_failing_spells_are_transient_and_end() {
    let fake = FakeDatadog::start(KEY).await;
    let svc = service(&fake);
    let payload = one_line();
    // A pooled connection first, so the outage has one to break.
    assert_eq!(svc.send(&payload).await.class, Class::Accepted);
    for outage in [Outage::Reset, Outage::Refused] {
        fake.set_down(Some(outage));
        for _ in 0..2 {
            let outcome = svc.send(&payload).await;
            assert_eq!(
                (outcome.class, outcome.status),
                (Class::Transient, None),
                "{outage:?}: {outcome:?}"
            );
        }
        fake.set_down(None);
        let outcome = svc.send(&payload).await;
        assert_eq!(
            outcome.class,
            Class::Accepted,
            "{outage:?}: {}",
            outcome.message
        );
    }
    // A spell of 503s: every request while it lasts.
    fake.set_failing(Some(Fault::Status(503)));
    for _ in 0..3 {
        let outcome = svc.send(&payload).await;
        assert_eq!(
            (outcome.class, outcome.status),
            (Class::Transient, Some(503))
        );
    }
    fake.set_failing(None);
    assert_eq!(svc.send(&payload).await.class, Class::Accepted);
    assert_eq!(fake.logs().len(), 4);
    fake.assert_no_violations();
}

/// Sends `body` (gzip-compressed unless `plain`) to the fake with `key`.
async fn raw_post(
    fake: &FakeDatadog,
    path: &str,
    key: Option<&str>,
    body: &[u8],
    plain: bool,
) -> u16 {
    use std::io::Write;
    let body = if plain {
        body.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).expect("gzip");
        gz.finish().expect("gzip")
    };
    let mut request = hyper::Request::post(format!("{}{path}", fake.endpoint()))
        .header("content-type", "application/json");
    if !plain {
        request = request.header("content-encoding", "gzip");
    }
    if let Some(key) = key {
        request = request.header("dd-api-key", key);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    HttpClient::new(HttpConfig::default())
        .expect("client")
        .send(request)
        .await
        .expect("answer")
        .status
        .as_u16()
}

#[tokio::test]
async fn datadog_the_fake_refuses_what_datadog_refuses() {
    let fake = FakeDatadog::start(KEY).await;
    let now = now_ms();
    let item = json!({"message": "m", "timestamp": now}).to_string();
    let series = |s: Value| json!({ "series": [s] }).to_string();
    let point = json!([{"timestamp": now / 1000, "value": 1.0}]);
    // (path, key, body, sent uncompressed, status, what the violation says)
    type Case<'a> = (&'a str, Option<&'a str>, String, bool, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/api/v2/logs",
            None,
            format!("[{item}]"),
            false,
            401,
            "no DD-API-KEY",
        ),
        (
            "/api/v2/logs",
            Some("wrong"),
            format!("[{item}]"),
            false,
            403,
            "",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            format!("[{item}]"),
            true,
            202,
            "not gzip",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            "[{\"ddsource\":\"x\"}]".into(),
            false,
            400,
            "has no message",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            "{\"message\":\"m\"}".into(),
            false,
            400,
            "not a JSON array",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            format!("[{}]", vec![item.as_str(); 1001].join(",")),
            false,
            413,
            "1001 items",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            format!("[{}]", json!({"message": "y".repeat(1_000_000)})),
            false,
            202,
            "truncates",
        ),
        (
            "/api/v2/logs",
            Some(KEY),
            format!(
                "[{}]",
                json!({"message": "old", "timestamp": now - 19 * 3_600_000})
            ),
            false,
            202,
            "18 h",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "1bad", "type": 3, "points": point})),
            false,
            400,
            "name rules",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "ok", "type": 7, "points": point})),
            false,
            400,
            "not 0, 1, 2 or 3",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "ok", "points": point, "per_unit": "second"})),
            false,
            400,
            "unknown member",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "ok", "points": point, "unit": "Milliseconds"})),
            false,
            400,
            "not a DataDog unit",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "ok", "points": point, "tags": ["t".repeat(201)]})),
            false,
            400,
            "201 characters",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(
                json!({"metric": "ok", "points": [{"timestamp": now / 1000 - 3_700, "value": 1.0}]}),
            ),
            false,
            202,
            "outside DataDog's window",
        ),
        (
            "/api/v2/series",
            Some(KEY),
            series(json!({"metric": "ok", "points": []})),
            false,
            400,
            "non-empty",
        ),
        (
            "/api/v2/other",
            Some(KEY),
            "[]".into(),
            false,
            404,
            "no intake",
        ),
    ];
    for (path, key, body, plain, status, says) in cases {
        let before = fake.violations().len();
        let got = raw_post(&fake, path, key, body.as_bytes(), plain).await;
        assert_eq!(got, status, "{path} {says}");
        let new = fake.violations()[before..].join("\n");
        if says.is_empty() {
            assert!(new.is_empty(), "{path}: no violation expected, got {new:?}");
        } else {
            assert!(
                new.contains(says),
                "{path}: expected a violation saying {says:?}, got {new:?}"
            );
        }
    }
    // Payloads over the series limits: 413 before anything else.
    let big = series(json!({"metric": "ok", "points": point, "tags": [noise(1, 1_000_000)]}));
    assert_eq!(
        raw_post(&fake, "/api/v2/series", Some(KEY), big.as_bytes(), false).await,
        413
    );
    let huge = series(json!({"metric": "ok", "points": point, "tags": ["z".repeat(5_300_000)]}));
    assert_eq!(
        raw_post(&fake, "/api/v2/series", Some(KEY), huge.as_bytes(), false).await,
        413
    );
    assert!(fake.violations().iter().any(|v| v.contains("decompressed")));
}

#[test]
fn datadog_the_model_check_refuses_what_the_models_refuse() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fake = rt.block_on(FakeDatadog::start(KEY));
    // A member DataDog's MetricSeries does not declare: the fake refuses it
    // with 400, and the models must refuse it too.
    let now = now_ms();
    let body = json!({"series": [{"metric": "ok", "points": [{"timestamp": now / 1000, "value": 1.0}], "per_unit": "second"}]});
    let status = rt.block_on(raw_post(
        &fake,
        "/api/v2/series",
        Some(KEY),
        body.to_string().as_bytes(),
        false,
    ));
    assert_eq!(status, 400);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fake.check_with_datadog_models()
    }));
    let message = *refused
        .expect_err("the model check must refuse an undeclared member")
        .downcast::<String>()
        .expect("panic message");
    assert!(message.contains("per_unit"), "{message}");
}

#[test]
fn datadog_the_fake_measures_items_as_sent() {
    let raw = br#"[ {"message":"a,]}\"x"} , "str", 12,[1,[2]],{"a":{"b":[]}} ]"#;
    assert_eq!(
        array_item_sizes(raw),
        vec![
            r#"{"message":"a,]}\"x"}"#.len(),
            r#""str""#.len(),
            2,
            "[1,[2]]".len(),
            r#"{"a":{"b":[]}}"#.len()
        ]
    );
    assert_eq!(array_item_sizes(b"[]"), Vec::<usize>::new());
}
