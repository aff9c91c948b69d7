//! Guests cannot starve the host: with as many CPU-bound guests as CPUs, a
//! heartbeat job beside them still fires on time. Each tick's lateness comes
//! from the scheduler's own records: the run context's scheduled and actual
//! times, which the host sets when the scheduler fires the tick and the
//! heartbeat guest copies into its event (`scheduled_at`, `timestamp`).

use crate::support::test_guests;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How late a heartbeat may fire.
const ON_TIME: i64 = 50;
/// Ticks measured.
const TICKS: usize = 15;

#[test]
fn cpu_bound_guests_do_not_delay_the_schedule() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let adversary = test_guests::test_guest("adversary");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = String::from(
        "[sink]\nkind = \"stdout\"\n\n[observe]\nenabled = false\n\n[log]\nlevel = \"warn\"\n\n\
         [shutdown]\ndrain_deadline = \"1s\"\n\n\
         [[jobs]]\nname = \"heartbeat\"\nguest = \"builtin:heartbeat\"\nschedule = \"@every 1s\"\n\
         log_group = \"/cwpub/test\"\nlog_stream = \"{job}\"\n",
    );
    for i in 0..cpus {
        // Spins for its whole 60 s deadline: the guest threads never idle.
        config.push_str(&format!(
            "\n[[jobs]]\nname = \"spin-{i}\"\nguest = \"{}\"\nschedule = \"@every 1s\"\n\
             run_at_start = true\ntimeout = \"60s\"\nlog_group = \"/cwpub/test\"\n\
             log_stream = \"{{job}}\"\n[jobs.config]\nmode = \"loop\"\n",
            adversary.display()
        ));
    }
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, config).expect("write config");
    let stderr_path = dir.path().join("stderr.log");

    let mut child = Command::new(env!("CARGO_BIN_EXE_cwpub"))
        .args(["run", path.to_str().expect("utf-8")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start cwpub run");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, events) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut lateness_ms = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while lateness_ms.len() < TICKS && Instant::now() < deadline {
        let Ok(line) = events.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(event[field].as_str().expect(field))
                .expect("a timestamp")
                .timestamp_millis()
        };
        lateness_ms.push(at("timestamp") - at("scheduled_at"));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("wait");
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert_eq!(
        lateness_ms.len(),
        TICKS,
        "heartbeats seen; stderr:\n{stderr}"
    );
    for i in 0..cpus {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("tick skipped") && l.contains(&format!("spin-{i}"))),
            "spin-{i} kept its guest thread busy the whole time:\n{stderr}"
        );
    }

    lateness_ms.sort_unstable();
    let at = |q: f64| lateness_ms[((lateness_ms.len() - 1) as f64 * q).round() as usize];
    let (p50, p90, max) = (at(0.5), at(0.9), at(1.0));
    eprintln!(
        "heartbeat lateness beside {cpus} CPU-bound guests on {cpus} CPUs, ms: \
         min {} p50 {p50} p90 {p90} max {max} (all: {lateness_ms:?})",
        lateness_ms[0]
    );
    assert!(
        p90 <= ON_TIME,
        "90% of heartbeats fire within {ON_TIME} ms of their tick: p50 {p50} p90 {p90} max {max} ms"
    );
}
