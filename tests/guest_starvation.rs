//! Guests cannot starve the host: with as many CPU-bound guests as CPUs, a
//! heartbeat job beside them fires as on time as the same heartbeat in a
//! daemon without guests, running at the same moments on the same machine;
//! and the guest threads run at a lower CPU priority than the host's.
//!
//! Each tick's lateness comes from the scheduler's own records: the run
//! context's scheduled and actual times, which the host sets when the
//! scheduler fires the tick and the heartbeat guest copies into its event
//! (`scheduled_at`, `timestamp`). Both daemons tick on the same whole
//! seconds, so each tick of one is paired with the same tick of the other:
//! whatever else keeps the machine's cores busy delays both alike, and the
//! difference is what the guests cost the host.

use crate::support::daemon::{PATIENCE, eventually, signal};
use crate::support::test_guests;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How much later than the daemon without guests a heartbeat may fire.
const ON_TIME: i64 = 50;
/// Ticks measured.
const TICKS: usize = 15;

/// A `cwpub run` with a heartbeat job `@every 1s` and `spinners` jobs whose
/// adversary guest spins for its whole 60 s deadline; its events arrive on
/// `events`, its stderr goes to `<dir>/stderr.log`.
struct Run {
    child: Child,
    events: mpsc::Receiver<String>,
    stderr: std::path::PathBuf,
}

impl Run {
    fn start(dir: &Path, spinners: usize) -> Run {
        let adversary = test_guests::test_guest("adversary");
        let mut config = String::from(
            "[sink]\nkind = \"stdout\"\n\n[observe]\nenabled = false\n\n[log]\nlevel = \"warn\"\n\n\
             [shutdown]\ndrain_deadline = \"1s\"\n\n\
             [[jobs]]\nname = \"heartbeat\"\nguest = \"builtin:heartbeat\"\nschedule = \"@every 1s\"\n\
             log_group = \"/cwpub/test\"\nlog_stream = \"{job}\"\n",
        );
        for i in 0..spinners {
            config.push_str(&format!(
                "\n[[jobs]]\nname = \"spin-{i}\"\nguest = \"{}\"\nschedule = \"@every 1s\"\n\
                 run_at_start = true\ntimeout = \"60s\"\nlog_group = \"/cwpub/test\"\n\
                 log_stream = \"{{job}}\"\n[jobs.config]\nmode = \"loop\"\n",
                adversary.display()
            ));
        }
        std::fs::create_dir_all(dir).expect("run dir");
        let path = dir.join("cwpub.toml");
        std::fs::write(&path, config).expect("write config");
        let stderr = dir.join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cwpub"))
            .args(["run", path.to_str().expect("utf-8")])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
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
        Run {
            child,
            events,
            stderr,
        }
    }

    /// Lateness in ms of each heartbeat received so far, by scheduled time.
    fn collect(&self, into: &mut BTreeMap<String, i64>) {
        while let Ok(line) = self.events.try_recv() {
            let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
            let text = |field: &str| event[field].as_str().expect(field).to_owned();
            let ms = |field: &str| {
                chrono::DateTime::parse_from_rfc3339(&text(field))
                    .expect("a timestamp")
                    .timestamp_millis()
            };
            into.insert(text("scheduled_at"), ms("timestamp") - ms("scheduled_at"));
        }
    }

    /// The nice value of each thread: (thread id, name, nice).
    fn thread_nice(&self) -> Vec<(u32, String, i64)> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(&tasks)
            .unwrap_or_else(|e| panic!("{tasks}: {e}"))
            .filter_map(|task| {
                let task = task.ok()?.path();
                let tid = task.file_name()?.to_str()?.parse().ok()?;
                let name = std::fs::read_to_string(task.join("comm")).ok()?;
                let stat = std::fs::read_to_string(task.join("stat")).ok()?;
                // Fields after "pid (comm) ": state is field 3, nice field 19.
                let (_, rest) = stat.rsplit_once(") ")?;
                let nice = rest.split_whitespace().nth(19 - 3)?.parse().ok()?;
                Some((tid, name.trim().to_owned(), nice))
            })
            .collect()
    }

    /// Stops it with SIGTERM; returns its stderr, and whether it stopped
    /// within a minute (else it is killed).
    fn stop(mut self) -> (String, bool) {
        signal(&self.child, "-TERM");
        let stopped = eventually(Duration::from_secs(60), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stderr = std::fs::read_to_string(&self.stderr).expect("stderr");
        (stderr, stopped)
    }
}

impl Drop for Run {
    /// A test that fails half-way leaves no spinning daemon behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value at quantile `q` of sorted `v`.
fn quantile(v: &[i64], q: f64) -> i64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn cpu_bound_guests_do_not_delay_the_schedule() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let dir = tempfile::tempdir().expect("temp dir");
    let busy = Run::start(&dir.path().join("busy"), cpus);
    let alone = Run::start(&dir.path().join("alone"), 0);

    let (mut busy_late, mut alone_late) = (BTreeMap::new(), BTreeMap::new());
    let paired = |busy: &BTreeMap<String, i64>, alone: &BTreeMap<String, i64>| -> Vec<(i64, i64)> {
        busy.iter()
            .filter_map(|(tick, b)| Some((*b, *alone.get(tick)?)))
            .collect()
    };
    let deadline = Instant::now() + PATIENCE;
    while paired(&busy_late, &alone_late).len() < TICKS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        busy.collect(&mut busy_late);
        alone.collect(&mut alone_late);
    }
    let threads = busy.thread_nice();
    let busy_pid = busy.child.id();
    let (busy_stderr, busy_stopped) = busy.stop();
    let (alone_stderr, _) = alone.stop();
    assert!(
        busy_stopped,
        "the daemon with guests did not stop within a minute of SIGTERM:\n{busy_stderr}"
    );
    let pairs = paired(&busy_late, &alone_late);
    assert!(
        pairs.len() >= TICKS,
        "{} ticks seen by both daemons; with guests:\n{busy_stderr}\nwithout:\n{alone_stderr}",
        pairs.len()
    );
    for i in 0..cpus {
        assert!(
            busy_stderr
                .lines()
                .any(|l| l.contains("tick skipped") && l.contains(&format!("spin-{i}"))),
            "spin-{i} kept its guest thread busy the whole time:\n{busy_stderr}"
        );
    }

    let mut extra: Vec<i64> = pairs.iter().map(|(b, a)| b - a).collect();
    extra.sort_unstable();
    let mut busy_ms: Vec<i64> = pairs.iter().map(|(b, _)| *b).collect();
    let mut alone_ms: Vec<i64> = pairs.iter().map(|(_, a)| *a).collect();
    busy_ms.sort_unstable();
    alone_ms.sort_unstable();
    eprintln!(
        "heartbeat lateness in ms over {} ticks, beside {cpus} CPU-bound guests on {cpus} CPUs: \
         p50 {} p90 {} max {}; without guests: p50 {} p90 {} max {}; \
         the difference per tick: p50 {} p90 {} max {} (all: {extra:?})",
        pairs.len(),
        quantile(&busy_ms, 0.5),
        quantile(&busy_ms, 0.9),
        quantile(&busy_ms, 1.0),
        quantile(&alone_ms, 0.5),
        quantile(&alone_ms, 0.9),
        quantile(&alone_ms, 1.0),
        quantile(&extra, 0.5),
        quantile(&extra, 0.9),
        quantile(&extra, 1.0),
    );
    // The guest threads yield the CPU to the host's threads.
    let host_nice = threads
        .iter()
        .find(|(tid, ..)| *tid == busy_pid)
        .map(|(.., nice)| *nice)
        .unwrap_or_else(|| panic!("no main thread among {threads:?}"));
    let guests: Vec<i64> = threads
        .iter()
        .filter(|(_, name, _)| name.starts_with("cwpub-guest"))
        .map(|(.., nice)| *nice)
        .collect();
    assert!(!guests.is_empty(), "no guest threads among {threads:?}");
    assert!(
        guests.iter().all(|&g| g > host_nice || g == 19),
        "guest threads run below the host's priority (nice {host_nice}): {threads:?}"
    );

    let p90 = quantile(&extra, 0.9);
    assert!(
        p90 <= ON_TIME,
        "90% of heartbeats beside the guests fire within {ON_TIME} ms of the same tick \
         without guests: p90 of the difference {p90} ms (all: {extra:?})"
    );
}
