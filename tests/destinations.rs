//! Fan-out against the real `cwpub` binary: two jobs `@every 1s` sent to a
//! CloudWatch sink (moto) and a DataDog sink (the strict fake intake) at
//! once. While DataDog is down for 20 s, or throttles 60% of its requests
//! for 20 s, CloudWatch events keep arriving on time; afterwards DataDog
//! catches up, and each destination holds every tick exactly once. With the
//! spool on, a SIGTERM during the outage keeps DataDog's events on disk and
//! the next start delivers every one. What DataDog received passes its own
//! API models.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::chaos;
use crate::support::cli::run_in;
use crate::support::daemon::{Daemon, http_get, runs_ok, summary, tick_of, write_config};
use crate::support::fake_datadog::{FakeDatadog, Outage};
use crate::support::moto::Moto;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const KEY_VAR: &str = "CWPUB_TEST_DD_KEY";
const GROUP: &str = "/cwpub/fanout";
/// Longest a CloudWatch event may take from its run to moto while DataDog
/// is in trouble: the batch delay, a request, and a busy machine's slack.
const ON_TIME: i64 = 5_000;

fn config(moto: &str, dd: &str, spool: Option<&Path>) -> String {
    let spool = spool.map_or(String::new(), |d| {
        format!("spool_dir = \"{}\"\n", d.display())
    });
    format!(
        r#"
[sinks.cw]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{moto}"

[sinks.dd]
kind = "datadog"
endpoint_url = "{dd}"
api_key_env = "{KEY_VAR}"
service = "fanout-test"
ddsource = "cwpub-test"

[delivery]
max_batch_delay = "500ms"
request_timeout = "2s"
backoff_cap = "1s"
circuit_open_max = "2s"
{spool}
[shutdown]
drain_deadline = "10s"

[observe]
enabled = false

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
sinks = ["cw", "dd"]
log_group = "{GROUP}"
log_stream = "{{job}}"

[[jobs]]
name = "emf"
guest = "builtin:emf"
schedule = "@every 1s"
run_at_start = true
sinks = ["cw", "dd"]
log_group = "{GROUP}"
log_stream = "{{job}}"
"#
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Everything moto holds for `stream`: (timestamp, ingestion time, message).
async fn cloudwatch(
    client: &aws_sdk_cloudwatchlogs::Client,
    stream: &str,
) -> Vec<(i64, i64, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name(GROUP)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await;
        let Ok(page) = page else {
            return out; // not created yet
        };
        let before = out.len();
        out.extend(page.events().iter().map(|e| {
            (
                e.timestamp().unwrap_or(0),
                e.ingestion_time().unwrap_or(0),
                e.message().unwrap_or("").to_string(),
            )
        }));
        let next = page.next_forward_token().map(str::to_owned);
        if out.len() == before || next == token {
            return out;
        }
        token = next;
    }
}

/// The `event_id`s of heartbeat messages, asserting none repeats.
fn ids_once(what: &str, messages: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for m in messages {
        let (_, _, id) = tick_of(&m);
        assert!(ids.insert(id.clone()), "{what}: {id} arrived twice");
    }
    ids
}

/// The heartbeat messages DataDog received (the guest's JSON, as the item).
fn datadog_heartbeats(dd: &FakeDatadog) -> Vec<String> {
    dd.logs()
        .into_iter()
        .filter(|item| {
            item["event_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("heartbeat"))
        })
        .map(|item| {
            // The sink fills what the guest left out, and only that.
            assert_eq!(
                item["service"], "heartbeat",
                "the guest's own service: {item}"
            );
            assert_eq!(item["ddsource"], "cwpub-test", "the sink's default: {item}");
            item.to_string()
        })
        .collect()
}

/// Waits (polling) until `cond` holds, at most `within`.
fn until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cond()
}

/// One run: DataDog in `trouble` for 20 s (switched on before the start,
/// off by `recover`), then caught up; asserts every delivery property.
fn fan_out_through(trouble: &dyn Fn(&FakeDatadog), recover: &dyn Fn(&FakeDatadog)) {
    let rt = chaos::background();
    let moto = Moto::start();
    let dd = rt.block_on(FakeDatadog::start(KEY));
    let client = moto.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config(&moto.endpoint(), &dd.endpoint(), None));
    trouble(&dd);
    let mut daemon = Daemon::start_with_env(&path, &[(KEY_VAR, KEY)]);
    daemon.wait_for("cwpub started");
    let trouble_started = now_ms();
    daemon.pause(Duration::from_secs(20));
    recover(&dd);
    // CloudWatch kept up throughout: every heartbeat of the trouble arrived
    // within seconds of its run.
    let cw = rt.block_on(cloudwatch(&client, "heartbeat"));
    let during: Vec<&(i64, i64, String)> = cw
        .iter()
        .filter(|(ts, ..)| *ts >= trouble_started)
        .collect();
    assert!(
        during.len() >= 15,
        "CloudWatch got {} heartbeats in 20 s",
        during.len()
    );
    let late: Vec<i64> = during
        .iter()
        .map(|(ts, ingested, _)| ingested - ts)
        .filter(|lag| *lag > ON_TIME)
        .collect();
    assert!(
        late.is_empty(),
        "CloudWatch events late while DataDog was in trouble: {late:?} ms"
    );
    // DataDog catches up with everything the jobs ran.
    let caught_up = until(Duration::from_secs(60), || {
        let cw = rt.block_on(cloudwatch(&client, "heartbeat"));
        datadog_heartbeats(&dd).len() >= cw.len() && !cw.is_empty()
    });
    assert!(caught_up, "DataDog did not catch up");
    let (status, stderr) = daemon.stop();
    let line = summary(&stderr);
    assert!(status.success(), "{line}\n{stderr}");
    assert!(
        line.contains("; 0 dropped; 0 undelivered at shutdown"),
        "{line}"
    );
    // Exactly once at each destination.
    let cw_ids = ids_once(
        "CloudWatch",
        rt.block_on(cloudwatch(&client, "heartbeat"))
            .into_iter()
            .map(|(.., m)| m),
    );
    let dd_ids = ids_once("DataDog", datadog_heartbeats(&dd));
    assert_eq!(cw_ids, dd_ids, "both destinations hold the same heartbeats");
    let emf_docs = rt.block_on(cloudwatch(&client, "emf")).len() as u64;
    assert_eq!(
        cw_ids.len() as u64 + emf_docs,
        runs_ok(&stderr),
        "every run's event reached CloudWatch: {line}"
    );
    // Every EMF document became points at DataDog, each once.
    let mut per_metric: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for p in dd.points() {
        *per_metric
            .entry((p.metric.clone(), p.timestamp))
            .or_default() += 1;
    }
    let metrics: BTreeSet<&String> = per_metric.keys().map(|(m, _)| m).collect();
    assert!(!metrics.is_empty(), "DataDog received no series");
    for m in &metrics {
        let docs = per_metric.keys().filter(|(n, _)| n == *m).count() as u64;
        assert!(
            docs + 2 >= emf_docs,
            "{m}: points for {docs} of {emf_docs} EMF documents"
        );
    }
    dd.assert_no_violations();
    dd.check_with_datadog_models();
}

#[test]
fn datadog_down_for_20s_delays_nothing_at_cloudwatch_and_catches_up() {
    fan_out_through(&|dd| dd.set_down(Some(Outage::Refused)), &|dd| {
        dd.set_down(None)
    });
}

#[test]
fn datadog_throttling_60_percent_for_20s_delays_nothing_at_cloudwatch() {
    fan_out_through(&|dd| dd.set_throttle_percent(60), &|dd| {
        dd.set_throttle_percent(0)
    });
}

#[test]
fn sigterm_during_a_datadog_outage_keeps_its_events_for_the_next_start() {
    let rt = chaos::background();
    let moto = Moto::start();
    let dd = rt.block_on(FakeDatadog::start(KEY));
    let client = moto.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let path = write_config(
        dir.path(),
        &config(&moto.endpoint(), &dd.endpoint(), Some(&spool)),
    )
    .to_path_buf();
    let short = std::fs::read_to_string(&path)
        .expect("config")
        .replace("drain_deadline = \"10s\"", "drain_deadline = \"2s\"");
    std::fs::write(&path, short).expect("config");

    dd.set_down(Some(Outage::Refused));
    let mut first = Daemon::start_with_env(&path, &[(KEY_VAR, KEY)]);
    first.wait_for("cwpub started");
    first.pause(Duration::from_secs(6));
    let (status, stderr) = first.stop();
    let line = summary(&stderr);
    assert!(
        status.success(),
        "what stays in the spool is not lost: {line}\n{stderr}"
    );
    assert!(line.contains("0 undelivered at shutdown"), "{line}");
    assert!(
        stderr.contains("kept in its spool for the next start"),
        "the DataDog sink says what it kept:\n{stderr}"
    );
    assert!(datadog_heartbeats(&dd).is_empty(), "DataDog was down");
    let first_run = ids_once(
        "CloudWatch",
        rt.block_on(cloudwatch(&client, "heartbeat"))
            .into_iter()
            .map(|(.., m)| m),
    );
    assert!(first_run.len() >= 4, "{first_run:?}");
    assert!(
        spool.join("dd").is_dir() && spool.join("cw").is_dir(),
        "each sink has its own spool directory"
    );

    dd.set_down(None);
    let mut second = Daemon::start_with_env(&path, &[(KEY_VAR, KEY)]);
    second.wait_for("spool: replaying events left by the previous run");
    let all_there = until(Duration::from_secs(60), || {
        let got: BTreeSet<String> = datadog_heartbeats(&dd)
            .into_iter()
            .map(|m| tick_of(&m).2)
            .collect();
        first_run.is_subset(&got)
    });
    let (status, stderr) = second.stop();
    assert!(status.success(), "{}\n{stderr}", summary(&stderr));
    assert!(
        all_there,
        "DataDog did not get every event of the first run"
    );
    ids_once("DataDog", datadog_heartbeats(&dd));
    dd.assert_no_violations();
}

/// The port the daemon's observability endpoint bound (`listen = "127.0.0.1:0"`).
fn observe_port(daemon: &mut Daemon) -> u16 {
    daemon.wait_for("observability endpoint");
    daemon
        .stderr
        .lines()
        .find(|l| l.contains("observability endpoint"))
        .and_then(|l| l.split("address=127.0.0.1:").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no bound address logged:\n{}", daemon.stderr))
}

#[test]
fn the_api_key_never_shows_and_a_rotated_key_file_takes_effect() {
    // A refused key, as the operator mistyped it.
    const OLD: &str = "feedfacefeedfacefeedfacefeedface";
    let rt = chaos::background();
    let dd = rt.block_on(FakeDatadog::start(KEY));
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("dd-api-key");
    std::fs::write(&key_file, format!("{OLD}\n")).expect("key file");
    let text = format!(
        r#"
[sinks.dd]
kind = "datadog"
endpoint_url = "{dd}"
api_key_file = "{file}"

[delivery]
max_batch_delay = "200ms"
credential_backoff_base = "200ms"
credential_backoff_cap = "1s"

[observe]
listen = "127.0.0.1:0"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
"#,
        dd = dd.endpoint(),
        file = key_file.display()
    );
    let path = write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&path);
    let port = observe_port(&mut daemon);
    let refused = until(Duration::from_secs(30), || {
        let (status, body) = http_get(port, "/readyz");
        status == 503 && body.contains("credential")
    });
    let (_, readyz) = http_get(port, "/readyz");
    let (_, metrics) = http_get(port, "/metrics");
    assert!(refused, "a refused key shows on /readyz: {readyz}");
    // The secret is rotated in place, as a mounted secret is.
    std::fs::write(&key_file, format!("{KEY}\n")).expect("rotate");
    let delivered = until(Duration::from_secs(30), || {
        !datadog_heartbeats_any(&dd).is_empty()
    });
    let (ready, _) = http_get(port, "/readyz");
    let (status, stderr) = daemon.stop();
    assert!(delivered, "the rotated key was not used:\n{stderr}");
    assert_eq!(ready, 200, "ready again once the key works");
    assert!(status.success(), "{}", summary(&stderr));
    assert!(stderr.contains("refused our credentials"), "{stderr}");
    for (what, text) in [
        ("the log", &stderr),
        ("/readyz", &readyz),
        ("/metrics", &metrics),
    ] {
        for key in [OLD, KEY] {
            assert!(!text.contains(key), "{what} shows an API key:\n{text}");
            assert!(
                !text.contains(&key[..12]),
                "{what} shows part of an API key:\n{text}"
            );
        }
    }

    // A key written into the config file is refused, and not repeated.
    let literal = text.replace(
        &format!("api_key_file = \"{}\"", key_file.display()),
        &format!("api_key = \"{OLD}\""),
    );
    let path = write_config(dir.path(), &literal);
    let out = run_in(dir.path(), &["check", path.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(out.stderr.contains("api_key"), "{}", out.stderr);
    assert!(
        out.stderr.contains("DD_API_KEY"),
        "names the fix: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(OLD),
        "the refusal repeats the key: {}",
        out.stderr
    );
}

/// Any heartbeat item DataDog accepted.
fn datadog_heartbeats_any(dd: &FakeDatadog) -> Vec<serde_json::Value> {
    dd.logs()
        .into_iter()
        .filter(|i| i["event"] == "heartbeat")
        .collect()
}

#[test]
fn invoke_shows_what_a_datadog_sink_would_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), &["invoke", "builtin:emf", "--sink", "datadog"]);
    assert_eq!(out.code, Some(0), "{}", out.both());
    let payload: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).expect("one series payload");
    let series = payload["series"].as_array().expect("series");
    assert!(
        series.iter().all(|s| s["metric"]
            .as_str()
            .is_some_and(|m| m.starts_with("cwpub."))
            && s["type"] == 3),
        "{payload}"
    );
    // A sink of a config: its defaults fill what the guest left out.
    let config = write_config(
        dir.path(),
        r#"
[sinks.dd]
kind = "datadog"
ddsource = "cwpub"
ddtags = "team:obs"

[[jobs]]
name = "hb"
guest = "builtin:heartbeat"
schedule = "@every 1m"
"#,
    );
    let out = run_in(
        dir.path(),
        &[
            "invoke",
            "builtin:heartbeat",
            "--sink",
            "dd",
            "--from",
            config.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.both());
    let item: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("one log item");
    assert_eq!(
        (item["ddsource"].as_str(), item["ddtags"].as_str()),
        (Some("cwpub"), Some("team:obs"))
    );
    assert_eq!(item["event"], "heartbeat");
    let out = run_in(
        dir.path(),
        &[
            "invoke",
            "builtin:heartbeat",
            "--sink",
            "cw",
            "--from",
            config.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("its sinks are \"dd\""),
        "{}",
        out.both()
    );
}
