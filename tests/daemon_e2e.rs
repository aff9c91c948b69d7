//! The real `cwpub` binary end to end: `run` against moto delivers every
//! tick exactly once and exits 0 on SIGTERM; invalid EMF is dropped and
//! counted while valid documents are delivered; `/readyz` and `/metrics`
//! reflect a failing guest and an unreachable endpoint; `check` refuses
//! guests that are not cwpub components.

use crate::support::moto;
use crate::support::test_guests;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn cwpub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("CWPUB_SINK_KIND")
        .env_remove("CWPUB_ENDPOINT_URL")
        .env("CWPUB_LOG_LEVEL", "info");
    cmd
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("cwpub.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running `cwpub run` whose stderr is collected line by line.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: String,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = cwpub()
            .args(["run", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cwpub run");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            stderr: String::new(),
        }
    }

    /// Waits (up to a minute, for slow CI machines) until stderr has a line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "cwpub never logged {needle:?}; stderr so far:\n{}",
            self.stderr
        );
    }

    /// Sends SIGTERM and returns the exit status and the whole stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "sending SIGTERM");
        let started = Instant::now();
        let exit = self.child.wait().expect("wait");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "graceful stop took {:?}",
            started.elapsed()
        );
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        (exit, self.stderr)
    }
}

async fn read_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<String> {
    let out = client
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetLogEvents {group}:{stream}: {e:?}"));
    out.events()
        .iter()
        .map(|e| e.message().unwrap_or_default().to_owned())
        .collect()
}

/// The number of a job's events, each checked to carry a distinct sequence
/// number (a tick skipped for overlap uses one up, so gaps are allowed).
fn assert_each_tick_once(events: &[String], field: &str, job: &str) -> u64 {
    let mut sequences: Vec<u64> = events
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_str(m).expect("JSON event");
            v[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{job}: no {field} in {m}"))
        })
        .collect();
    let n = sequences.len();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), n, "{job}: no tick delivered twice");
    assert_eq!(
        sequences.first(),
        Some(&1),
        "{job}: the run at start arrived"
    );
    n as u64
}

fn summary_runs_ok(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("cwpub stopped after"))
        .expect("a summary line");
    let runs = line
        .split("s: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("runs ok count");
    runs.parse()
        .unwrap_or_else(|_| panic!("bad summary: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_every_tick_exactly_once_and_exits_zero() {
    let moto = moto::Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "300ms"

[observe]
enabled = false

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/e2e"
log_stream = "{{job}}"
[jobs.config]
service = "e2e"

[[jobs]]
name = "emf"
guest = "builtin:emf"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/e2e"
log_stream = "{{job}}"
"#,
            endpoint = moto.endpoint()
        ),
    );
    let mut daemon = Daemon::start(&config);
    daemon.wait_for("cwpub started");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (status, stderr) = daemon.stop();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("0 dropped; 0 undelivered at shutdown"),
        "{stderr}"
    );

    let client = moto.client();
    let heartbeats = read_stream(&client, "/cwpub/e2e", "heartbeat").await;
    let documents = read_stream(&client, "/cwpub/e2e", "emf").await;
    let n_heartbeat = assert_each_tick_once(&heartbeats, "sequence", "heartbeat");
    let n_emf = assert_each_tick_once(&documents, "sequence", "emf");
    assert!(
        n_heartbeat >= 3 && n_emf >= 3,
        "run at start plus a tick a second: {n_heartbeat}, {n_emf}"
    );
    assert_eq!(
        n_heartbeat + n_emf,
        summary_runs_ok(&stderr),
        "every run's events arrived"
    );
    for m in &heartbeats {
        let v: Value = serde_json::from_str(m).expect("JSON");
        assert_eq!(
            (v["service"].as_str(), v["event"].as_str()),
            (Some("e2e"), Some("heartbeat"))
        );
    }
    for m in &documents {
        assert!(
            cwpub_emf::validate(m, chrono::Utc::now().timestamp_millis()).is_empty(),
            "valid EMF: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_emf_is_dropped_and_counted_while_valid_documents_are_delivered() {
    let moto = moto::Moto::start();
    let adversary = test_guests::test_guest("adversary");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "200ms"

[observe]
enabled = false

[[jobs]]
name = "mixed"
guest = "{guest}"
schedule = "@hourly"
run_at_start = true
log_group = "/cwpub/emf"
log_stream = "mixed"
[jobs.config]
mode = "emf-mixed"
"#,
            endpoint = moto.endpoint(),
            guest = adversary.display()
        ),
    );
    let mut daemon = Daemon::start(&config);
    daemon.wait_for("dropped an invalid EMF document");
    tokio::time::sleep(Duration::from_millis(500)).await; // past max_batch_delay: the valid ones are sent
    let (status, stderr) = daemon.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "a drop during the daemon's life is in the summary, not the exit status; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("1 dropped (invalid_emf:"),
        "summary counts the drop by reason: {stderr}"
    );
    assert!(
        stderr.contains("job \"mixed\": dropped an invalid EMF document"),
        "the first violation is logged with the job name: {stderr}"
    );
    let delivered = read_stream(&moto.client(), "/cwpub/emf", "mixed").await;
    let probes: Vec<u64> = delivered
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m).expect("JSON")["Probe"]
                .as_u64()
                .expect("Probe")
        })
        .collect();
    assert_eq!(
        probes,
        vec![1, 3],
        "both valid documents delivered, the invalid one not"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the observe endpoint");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn metric(body: &str, name_and_labels: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[test]
fn health_and_metrics_reflect_a_failing_guest_and_an_unreachable_endpoint() {
    let adversary = test_guests::test_guest("adversary");
    let dead_endpoint = free_port(); // nothing listens here: connections are refused
    let observe = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{dead_endpoint}"

[delivery]
max_batch_delay = "100ms"
backoff_base = "50ms"
backoff_cap = "200ms"
circuit_failure_threshold = 2
request_timeout = "1s"

[observe]
listen = "127.0.0.1:{observe}"

[[jobs]]
name = "broken"
guest = "{guest}"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/health"
log_stream = "broken"
[jobs.config]
mode = "panic"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/health"
log_stream = "heartbeat"
"#,
            guest = adversary.display()
        ),
    );
    let mut daemon = Daemon::start(&config);
    daemon.wait_for("cwpub started");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ready, mut metrics) = ((0, String::new()), String::new());
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        if TcpStream::connect(("127.0.0.1", observe)).is_err() {
            continue;
        }
        ready = http_get(observe, "/readyz");
        metrics = http_get(observe, "/metrics").1;
        let target = r#"{sink="cloudwatch",log_group="/cwpub/health",log_stream="heartbeat"}"#;
        if ready.0 == 503 && metric(&metrics, &format!("cwpub_target_retries_total{target}")) >= 2.0
        {
            break;
        }
    }
    let (live, _) = http_get(observe, "/healthz");
    let (status, stderr) = daemon.stop();
    assert_eq!(live, 200, "still alive");
    assert_eq!(
        ready.0, 503,
        "not ready with the endpoint unreachable: {}\n{stderr}",
        ready.1
    );
    assert!(
        ready.1.contains("circuit open"),
        "readyz says why: {}",
        ready.1
    );
    assert!(
        metric(
            &metrics,
            r#"cwpub_job_failures_total{job="broken",kind="panic"}"#
        ) >= 1.0,
        "failures by kind:\n{metrics}"
    );
    assert!(
        metric(
            &metrics,
            r#"cwpub_job_runs_total{job="heartbeat",outcome="success"}"#
        ) >= 1.0,
        "{metrics}"
    );
    let peak = metric(&metrics, r#"cwpub_job_peak_memory_bytes{job="heartbeat"}"#);
    assert!(
        (64.0 * 1024.0..=64.0 * 1024.0 * 1024.0).contains(&peak),
        "peak memory of a heartbeat run: {peak}"
    );
    assert!(
        metric(
            &metrics,
            r#"cwpub_target_retries_total{sink="cloudwatch",log_group="/cwpub/health",log_stream="heartbeat"}"#
        ) >= 2.0,
        "retries against the dead endpoint:\n{metrics}"
    );
    assert!(
        stderr.contains(r#"job "broken": guest panicked: adversary panicked on purpose"#),
        "the failure is logged with the job name: {stderr}"
    );
    assert_eq!(
        status.code(),
        Some(1),
        "undelivered heartbeats at shutdown: exit 1"
    );
}

fn check(config: &Path) -> (bool, String) {
    let output = cwpub()
        .args(["check", config.to_str().expect("utf-8")])
        .output()
        .expect("cwpub check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_refuses_core_modules_and_components_for_another_wit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").expect("core module");
    let wrong = test_guests::test_guest("wrong-version");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[sink]
kind = "stdout"

[[jobs]]
name = "core"
guest = "core.wasm"
schedule = "@every 1m"
log_group = "/cwpub/x"
log_stream = "core"

[[jobs]]
name = "future"
guest = "{wrong}"
schedule = "@every 1m"
log_group = "/cwpub/x"
log_stream = "future"

[[jobs]]
name = "fine"
guest = "builtin:heartbeat"
schedule = "@every 1m"
log_group = "/cwpub/x"
log_stream = "fine"
[jobs.config]
colour = "red"
"#,
            wrong = wrong.display()
        ),
    );
    let (ok, stderr) = check(&config);
    assert!(!ok, "check fails");
    let problems: BTreeMap<&str, &str> = stderr
        .lines()
        .filter_map(|l| l.trim().split_once(": job ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once(": "))
        .collect();
    assert!(
        stderr.contains("error: the config has 3 problems:"),
        "all problems at once: {stderr}"
    );
    assert!(
        problems["\"core\""].contains("this is a core WebAssembly module, not a component"),
        "{stderr}"
    );
    assert!(
        problems["\"future\""].contains(
            "built for cwpub:publisher@0.2.0, but this host speaks cwpub:publisher@0.1.0"
        ),
        "{stderr}"
    );
    assert!(
        problems["\"fine\""].contains("config key `colour`: unknown key"),
        "{stderr}"
    );

    let good = write_config(
        dir.path(),
        "[sink]\nkind = \"stdout\"\n[[jobs]]\nname = \"hb\"\nguest = \"builtin:heartbeat\"\nschedule = \"@every 1m\"\nlog_group = \"/cwpub/x\"\nlog_stream = \"hb\"\n",
    );
    let (ok, stderr) = check(&good);
    assert!(ok, "a good config passes: {stderr}");
}
