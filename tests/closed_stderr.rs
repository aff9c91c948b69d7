//! A daemon whose stderr is gone (a closed pipe: the reader of
//! `cwpub run … 2>&1 | head` has exited) keeps running and still stops on
//! SIGTERM. Before, the log subscriber reported the failed write with
//! `eprintln!`, which panicked in the signal task before it could start the
//! shutdown, and the daemon ignored every SIGTERM after that.

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::daemon::{cwpub, signal, write_config};

#[test]
fn sigterm_stops_a_daemon_whose_stderr_is_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        r#"
[observe]
enabled = false

[sink]
kind = "stdout"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1h"
run_at_start = true
log_group = "/cwpub/closed-stderr"
log_stream = "heartbeat"
"#,
    );
    let mut child = cwpub()
        .arg("run")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cwpub");
    // Read until the daemon has started, then close our end of the pipe.
    let mut stderr = child.stderr.take().expect("stderr piped");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("cwpub started") {
        let n = stderr.read(&mut buf).expect("read stderr");
        assert!(
            n > 0,
            "cwpub exited before it started: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    drop(stderr);

    signal(&child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cwpub ignored SIGTERM with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}
