//! `cwpub health`: 0 when the daemon's `/healthz` (or `/readyz` with
//! `--ready`) answers 200, 1 otherwise — not ready, nothing listening, a
//! server that never answers, or an observe endpoint switched off — with the
//! address worked out from the config, the environment or `--addr`.

use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, PATIENCE, cwpub, refusing_port, write_config};

fn health(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cwpub()
        .arg("health")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("cwpub health");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A stdout-sink daemon whose observe endpoint listens on 0.0.0.0 and a
/// port the system chose, and its config, which names that port: written
/// with port 0, then rewritten with the port the daemon logged it bound
/// (the daemon reads its config once, at start).
fn start_daemon(dir: &std::path::Path) -> (Daemon, std::path::PathBuf, u16) {
    let config = |port: u16| {
        format!(
            r#"
[sink]
kind = "stdout"
[observe]
listen = "0.0.0.0:{port}"
[[jobs]]
name = "beat"
guest = "builtin:heartbeat"
schedule = "@hourly"
log_group = "/cwpub/health"
"#
        )
    };
    let path = write_config(dir, &config(0));
    let mut daemon = Daemon::start(&path);
    let port = daemon.observe_addr().port();
    write_config(dir, &config(port));
    (daemon, path, port)
}

#[test]
fn health_follows_the_config_and_says_why_it_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, config, port) = start_daemon(dir.path());
    let config = config.to_str().expect("utf-8");

    // The config's listen address (0.0.0.0 is asked on loopback).
    let (code, out, _) = health(&[config], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        format!("healthy: http://127.0.0.1:{port}/healthz answered 200 ok")
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = health(&[config, "--ready"], &[]);
        if code == Some(0) {
            assert!(out.contains("/readyz answered 200 ready"), "{out}");
            break;
        }
        assert!(
            err.contains("answered 503: not ready; - loading guests"),
            "{err}"
        );
        assert!(Instant::now() < deadline, "never ready: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The environment, and --addr over both.
    let listen = format!("127.0.0.1:{port}");
    let (code, ..) = health(&[], &[("CWPUB_OBSERVE_LISTEN", &listen)]);
    assert_eq!(code, Some(0));
    let (code, ..) = health(&["--addr", &format!("localhost:{port}")], &[]);
    assert_eq!(code, Some(0));

    // Nothing listening.
    let (_closed, closed) = refusing_port();
    let closed = closed.port();
    let (code, out, err) = health(&["--addr", &format!("127.0.0.1:{closed}")], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.starts_with(&format!(
            "unhealthy: http://127.0.0.1:{closed}/healthz: cannot connect"
        )),
        "{err}"
    );
    drop(daemon);
}

#[test]
fn health_gives_up_on_a_silent_server_within_the_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let (code, _, err) = health(&["--addr", &addr, "--timeout", "300ms"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        format!("unhealthy: http://{addr}/healthz: no answer within 300ms")
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[test]
fn health_refuses_a_config_without_an_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cwpub.toml");
    std::fs::write(
        &config,
        "[observe]\nenabled = false\n[[jobs]]\nname = \"a\"\nguest = \"builtin:heartbeat\"\nschedule = \"@hourly\"\nlog_group = \"/a\"\n",
    )
    .expect("write");
    let (code, _, err) = health(&[config.to_str().expect("utf-8")], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("the observe endpoint is disabled in"), "{err}");
    let (code, _, err) = health(&["--addr", "not an address"], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--addr \"not an address\": expected HOST:PORT"),
        "{err}"
    );
}
