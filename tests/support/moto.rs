//! Starts a private moto server (a local AWS mock) on a free loopback port
//! for delivery tests, and kills it when dropped. Finds `moto_server` via
//! `CWPUB_MOTO_SERVER`, then `<repo>/.venv/bin/moto_server`, then `PATH`.
//! A missing moto is a test failure with install instructions, never a skip.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

impl Moto {
    /// Starts moto on 127.0.0.1 and waits until it answers (up to 60 s).
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`] with extra environment variables for moto, e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` (moto checks every request's SigV4
    /// signature against the IAM access keys it issued, after that many
    /// unchecked requests).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let bin = find_moto();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            l.local_addr().expect("local addr").port()
        };
        let log =
            std::env::temp_dir().join(format!("cwpub-moto-{port}-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL}", bin.display()));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut moto = Moto { addr, child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                let out = std::fs::read_to_string(&moto.log).unwrap_or_default();
                panic!("moto_server exited ({status}) before it was ready:\n{out}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {addr} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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
