//! Drives the real `cwpub` binary for process-level tests: starts `cwpub
//! run` with a config, collects its stderr line by line, stops it with
//! SIGTERM or kills it with SIGKILL, and reads its `/metrics`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `cwpub` with test credentials and no ambient AWS configuration.
pub fn cwpub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("CWPUB_SINK_KIND")
        .env_remove("CWPUB_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .env("CWPUB_LOG_LEVEL", "info");
    cmd
}

/// Writes `text` to `<dir>/cwpub.toml`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("cwpub.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running `cwpub run`.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything read from stderr so far.
    pub stderr: String,
}

/// The lines of `from` (a child's piped stderr), read on a thread of their
/// own so the pipe never fills up.
pub fn line_reader(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Appends lines from `lines` to `seen` until one contains `needle` (true),
/// `within` passes or the writer is gone (false).
pub fn collect_until(
    lines: &mpsc::Receiver<String>,
    seen: &mut String,
    needle: &str,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    false
}

impl Daemon {
    /// Starts `cwpub run <config>`.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// Starts `cwpub run <config>` with these environment variables set too.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = cwpub()
            .envs(env.iter().copied())
            .args(["run", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cwpub run");
        let lines = line_reader(child.stderr.take().expect("piped stderr"));
        Daemon {
            child,
            lines,
            stderr: String::new(),
        }
    }

    /// Waits (up to a minute) until stderr has a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        if collect_until(
            &self.lines,
            &mut self.stderr,
            needle,
            Duration::from_secs(60),
        ) {
            return;
        }
        panic!(
            "cwpub never logged {needle:?}; stderr so far:\n{}",
            self.stderr
        );
    }

    /// Reads stderr for `d` (keeps the pipe from filling up while waiting).
    pub fn pause(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.stderr.push_str(&line);
                self.stderr.push('\n');
            }
        }
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let exit = self.child.wait().expect("wait");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        (exit, self.stderr)
    }

    /// Sends SIGTERM; returns the exit status and the whole stderr.
    pub fn stop(self) -> (ExitStatus, String) {
        signal(&self.child, "-TERM");
        let started = Instant::now();
        let out = self.finish();
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "graceful stop took {:?}",
            started.elapsed()
        );
        out
    }

    /// Kills the process with SIGKILL (no drain, no summary).
    pub fn kill9(self) -> String {
        signal(&self.child, "-KILL");
        self.finish().1
    }
}

/// Sends `sig` (e.g. `-TERM`) to `child` with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "sending {sig}");
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `GET path` on the loopback port: status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
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

/// The value of one sample (`name{labels}` exactly as exposed), 0 when absent.
pub fn metric(body: &str, name_and_labels: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// The shutdown summary line.
pub fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("cwpub stopped after"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"))
}

/// A config with two jobs, `builtin:heartbeat` and `builtin:emf`, each
/// `@every 1s` with a run at start, writing to `<group>` streams named after
/// the job; `[delivery]` gets `delivery` (TOML lines) and `/metrics` listens
/// on `observe` when given.
pub fn two_jobs_config(
    endpoint: &str,
    group: &str,
    delivery: &str,
    observe: Option<u16>,
) -> String {
    let observe = match observe {
        Some(port) => format!("listen = \"127.0.0.1:{port}\""),
        None => "enabled = false".to_string(),
    };
    format!(
        r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "500ms"
request_timeout = "2s"
{delivery}

[observe]
{observe}

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "{group}"
log_stream = "{{job}}"

[[jobs]]
name = "emf"
guest = "builtin:emf"
schedule = "@every 1s"
run_at_start = true
log_group = "{group}"
log_stream = "{{job}}"
"#
    )
}

/// The `runs ok` count of a summary line.
pub fn runs_ok(stderr: &str) -> u64 {
    let line = summary(stderr);
    line.split("s: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary: {line}"))
}

/// `(job, sequence, event_id)` of a builtin guest's message.
pub fn tick_of(message: &str) -> (String, u64, String) {
    let v: serde_json::Value = serde_json::from_str(message).expect("JSON event");
    let id = v["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no event_id in {message}"))
        .to_string();
    let job = id.split(':').next().unwrap_or_default().to_string();
    let seq = v["sequence"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sequence in {message}"));
    (job, seq, id)
}
