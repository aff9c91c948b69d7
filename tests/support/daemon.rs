//! Drives the real `cwpub` binary for process-level tests: starts `cwpub
//! run` with a config, collects its stderr line by line, finds its
//! observability endpoint from its own log line (the tests let it bind port
//! 0), waits on what it reports rather than on the clock, stops it with
//! SIGTERM or kills it with SIGKILL, and reads its `/metrics`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for something the daemon should do within seconds:
/// long enough for a machine whose cores are busy with other work, so it
/// only runs out when something is really wrong.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The log line the daemon writes once its observability endpoint listens;
/// its `address=` field is the address actually bound.
const OBSERVE_LINE: &str = "observability endpoint";

/// `cwpub` with test credentials and no ambient AWS configuration.
pub fn cwpub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("CWPUB_SINK_KIND")
        .env_remove("CWPUB_ENDPOINT_URL")
        .env_remove("CWPUB_OBSERVE_LISTEN")
        .env_remove("CWPUB_OBSERVE_ENABLED")
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

/// The address the observability endpoint listens on, from the daemon's
/// "observability endpoint" log line in `stderr` (human or JSON format).
pub fn logged_address(stderr: &str) -> Option<SocketAddr> {
    let line = stderr.lines().find(|l| l.contains(OBSERVE_LINE))?;
    let (_, rest) = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":"))?;
    rest.trim_start_matches('"')
        .split(|c: char| c == '"' || c.is_whitespace() || c == ',')
        .next()?
        .parse()
        .ok()
}

/// Polls `cond` every 100 ms until it holds (true) or `within` passes (false).
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scrapes `/metrics` at `addr` every 100 ms until `cond` holds for a
/// scrape, which it returns; None if it did not within [`PATIENCE`].
pub fn scrape_until(addr: SocketAddr, cond: impl Fn(&str) -> bool) -> Option<String> {
    let mut last = String::new();
    eventually(PATIENCE, || {
        last = http_get(addr, "/metrics").1;
        cond(&last)
    })
    .then_some(last)
}

impl Daemon {
    /// Starts `cwpub run <config>`.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// Starts `cwpub run <config>` with these environment variables set too.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(&["run", config.to_str().expect("utf-8")], env)
    }

    /// Starts `cwpub` with `args` (`["run", "--watch", config]`).
    pub fn start_args(args: &[&str]) -> Daemon {
        Daemon::spawn(args, &[])
    }

    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = cwpub()
            .envs(env.iter().copied())
            .args(args)
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

    /// Waits (up to [`PATIENCE`]) until stderr has a new line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        if collect_until(&self.lines, &mut self.stderr, needle, PATIENCE) {
            return;
        }
        panic!(
            "cwpub never logged {needle:?}; stderr so far:\n{}",
            self.stderr
        );
    }

    /// Reads what stderr has now, without waiting.
    fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
    }

    /// Waits (up to [`PATIENCE`]) until `cond` holds, polling it every 100 ms
    /// while collecting stderr; `what` names the condition if it never does.
    pub fn wait_until(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.collect();
            if cond() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.collect();
                panic!(
                    "cwpub exited ({status}) before {what}; stderr:\n{}",
                    self.stderr
                );
            }
            assert!(
                Instant::now() < deadline,
                "not within {PATIENCE:?}: {what}; stderr so far:\n{}",
                self.stderr
            );
            // Sleeping on the pipe keeps it drained while we wait.
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.stderr.push_str(&line);
                self.stderr.push('\n');
            }
        }
    }

    /// Keeps the daemon running for `d`, collecting its stderr: for a test
    /// whose subject is a duration (an outage, a storm), never as a way to
    /// wait for something to happen.
    pub fn run_for(&mut self, d: Duration) {
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

    /// Where the observability endpoint listens (it binds port 0 in tests),
    /// from the daemon's log line; waits for that line if it has not come yet.
    pub fn observe_addr(&mut self) -> SocketAddr {
        if !self.stderr.contains(OBSERVE_LINE) {
            self.wait_for(OBSERVE_LINE);
        }
        logged_address(&self.stderr).unwrap_or_else(|| {
            panic!(
                "no address in the {OBSERVE_LINE:?} line; stderr:\n{}",
                self.stderr
            )
        })
    }

    /// `GET path` on the observability endpoint: status and body.
    pub fn get(&mut self, path: &str) -> (u16, String) {
        let addr = self.observe_addr();
        http_get(addr, path)
    }

    /// The body of `/metrics`.
    pub fn metrics(&mut self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }

    /// Scrapes `/metrics` (every 100 ms, up to [`PATIENCE`]) until `cond`
    /// holds for it; returns that scrape.
    pub fn wait_for_metrics(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let addr = self.observe_addr();
        let mut last = String::new();
        self.wait_until(what, || {
            last = http_get(addr, "/metrics").1;
            cond(&last)
        });
        last
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let exit = self.child.wait().expect("wait");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        (exit, std::mem::take(&mut self.stderr))
    }

    /// Sends SIGTERM; returns the exit status and the whole stderr. The
    /// stop must end within a minute (the tests' drain deadlines are 10 s
    /// at most; the rest is slack for a busy machine).
    pub fn stop(self) -> (ExitStatus, String) {
        signal(&self.child, "-TERM");
        let started = Instant::now();
        let out = self.finish();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "graceful stop took {:?}",
            started.elapsed()
        );
        out
    }

    /// Sends SIGHUP: reload the config.
    pub fn hup(&self) {
        signal(&self.child, "-HUP");
    }

    /// Kills the process with SIGKILL (no drain, no summary).
    pub fn kill9(self) -> String {
        signal(&self.child, "-KILL");
        self.finish().1
    }
}

impl Drop for Daemon {
    /// A test that fails half-way leaves no daemon behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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

/// A loopback port that refuses connections for as long as the returned
/// socket lives: bound (so nothing else can take it) but not listening.
pub fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind loopback");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

/// `GET path` on `addr`: status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("connect to the observe endpoint {addr}: {e}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
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

/// `cwpub_job_runs_total{job="<job>",outcome="<outcome>"}`.
pub fn job_runs(body: &str, job: &str, outcome: &str) -> u64 {
    metric(
        body,
        &format!("cwpub_job_runs_total{{job=\"{job}\",outcome=\"{outcome}\"}}"),
    ) as u64
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
/// the job; `[delivery]` gets `delivery` (TOML lines) and, with `observe`,
/// `/metrics` listens on a port of the system's choosing
/// ([`Daemon::observe_addr`] finds it).
pub fn two_jobs_config(endpoint: &str, group: &str, delivery: &str, observe: bool) -> String {
    let observe = if observe {
        "listen = \"127.0.0.1:0\""
    } else {
        "enabled = false"
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
