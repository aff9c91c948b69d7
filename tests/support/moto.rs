//! Starts a private moto server (a local AWS mock) on a loopback port of
//! the system's choosing for delivery tests, and kills it when dropped.
//! Finds `moto_server` via `CWPUB_MOTO_SERVER`, then
//! `<repo>/.venv/bin/moto_server`, then `PATH`. A missing moto is a test
//! failure with install instructions, never a skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::PATIENCE;

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};

const INSTALL: &str = "moto_server not found: run ./scripts/test.sh (it creates .venv with moto), \
     or `python3 -m venv .venv && .venv/bin/pip install 'moto[server]>=5,<6'`, \
     or set CWPUB_MOTO_SERVER=/path/to/moto_server";

/// A running moto server; killed on drop.
pub struct Moto {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn find_moto() -> PathBuf {
    if let Some(p) = std::env::var_os("CWPUB_MOTO_SERVER") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "CWPUB_MOTO_SERVER={} is not a file; {INSTALL}",
            p.display()
        );
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{INSTALL}");
}

/// The port in moto's (werkzeug's) " * Running on http://127.0.0.1:PORT"
/// line, which it logs once its socket listens.
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .find_map(|l| l.split_once("Running on http://127.0.0.1:"))
        .and_then(|(_, port)| port.trim().parse().ok())
}

impl Moto {
    /// Starts moto on 127.0.0.1, port 0 (the system picks a free one), and
    /// waits until it says which port it listens on.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`] with extra environment variables for moto, e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` (moto checks every request's SigV4
    /// signature against the IAM access keys it issued, after that many
    /// unchecked requests).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let bin = find_moto();
        let log = tempfile::Builder::new()
            .prefix("cwpub-moto-")
            .suffix(".log")
            .tempfile()
            .expect("moto log file");
        let (log_file, log) = log.keep().expect("keep the moto log");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL}", bin.display()));
        let mut moto = Moto {
            addr: ([127, 0, 0, 1], 0).into(),
            child,
            log,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = std::fs::read_to_string(&moto.log).unwrap_or_default();
            if let Some(port) = listening_port(&out) {
                moto.addr.set_port(port);
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}) before it listened:\n{out}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not say where it listens within {PATIENCE:?}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The AWS configuration of a CloudWatch sink that talks to this moto
    /// only, with static test credentials.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        super::fake_cwl::test_sdk_config(&self.endpoint(), "testing", "testing")
    }

    /// A client with static test credentials that talks to this moto only.
    pub fn client(&self) -> aws_sdk_cloudwatchlogs::Client {
        let conf = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_cloudwatchlogs::Client::from_conf(conf)
    }
}

/// Everything `group`/`stream` holds, oldest first: (timestamp, ingestion
/// time, message); empty while the stream does not exist.
pub async fn stream_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<(i64, i64, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name(group)
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

/// The messages of `group`/`stream`, oldest first.
pub async fn stream_messages(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<String> {
    stream_events(client, group, stream)
        .await
        .into_iter()
        .map(|(_, _, m)| m)
        .collect()
}
