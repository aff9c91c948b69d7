//! The durable spool against the real `cwpub` binary: the endpoint is down
//! for 30 s while two jobs tick, cwpub is killed with SIGKILL, the endpoint
//! comes back, cwpub restarts on the same spool and every event of the
//! killed process arrives (duplicates, if any, are counted and must not
//! exceed what cwpub reports as possible duplicates) — against the strict
//! fake and against moto. And a spool with a flipped byte, a truncated tail
//! and a foreign file starts cleanly, delivers every intact event and
//! counts the damage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cwpub::delivery::spool::frame;

use crate::support::chaos::{self, Chaos, ChaosProxy};
use crate::support::daemon::{
    Daemon, free_port, http_get, metric, summary, tick_of, two_jobs_config, write_config,
};
use crate::support::fake_cwl::FakeCwl;
use crate::support::moto::Moto;

/// What a reader of the endpoint returns: (timestamp, message) pairs.
type Delivered = Vec<(i64, String)>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn spool_config(endpoint: &str, group: &str, spool: &Path, observe: u16, drain: &str) -> String {
    let mut text = two_jobs_config(
        endpoint,
        group,
        &format!(
            "spool_dir = {:?}\nbackoff_cap = \"2s\"",
            spool.display().to_string()
        ),
        Some(observe),
    );
    text.push_str(&format!("\n[shutdown]\ndrain_deadline = {drain:?}\n"));
    text
}

/// Polls `read` (timestamp, message) until `done` holds, for up to 60 s.
fn wait_until(read: &dyn Fn() -> Delivered, done: &dyn Fn(&Delivered) -> bool) -> Delivered {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = read();
        if done(&got) || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn crash_and_restart(
    endpoint: &str,
    chaos: &Chaos,
    group: &str,
    read: &dyn Fn() -> Vec<(i64, String)>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let observe = free_port();
    let config = write_config(
        dir.path(),
        &spool_config(endpoint, group, &spool, observe, "10s"),
    );
    chaos.set_down(true);
    let mut first = Daemon::start(&config);
    first.wait_for("cwpub started");
    first.pause(Duration::from_secs(30));
    let metrics = http_get(observe, "/metrics").1;
    let ran: u64 = ["heartbeat", "emf"]
        .iter()
        .map(|j| {
            metric(
                &metrics,
                &format!("cwpub_job_runs_total{{job=\"{j}\",outcome=\"success\"}}"),
            ) as u64
        })
        .sum();
    let spooled = metric(&metrics, "cwpub_spool_events{sink=\"cloudwatch\"}") as u64;
    assert!(
        ran >= 40,
        "two jobs ticking for 30 s: {ran} runs\n{metrics}"
    );
    assert!(
        spooled + 2 >= ran,
        "every event written ahead: {spooled} spooled, {ran} runs\n{metrics}"
    );
    let killed_at = now_ms();
    let stderr1 = first.kill9();
    assert!(chaos.refused() > 0, "the endpoint was down");
    assert!(
        !stderr1.contains("cwpub stopped after"),
        "SIGKILL leaves no summary"
    );
    chaos.set_down(false);

    let mut second = Daemon::start(&config);
    second.wait_for("spool: replaying events left by the previous run");
    let before_kill = |evs: &[(i64, String)]| -> Vec<String> {
        evs.iter()
            .filter(|(t, _)| *t <= killed_at)
            .map(|(_, m)| m.clone())
            .collect()
    };
    let got = wait_until(read, &|evs| before_kill(evs).len() as u64 >= ran);
    let (status, stderr2) = second.stop();
    let line = summary(&stderr2);
    assert!(
        status.success(),
        "{group}: exit {status:?}: {line}\n{stderr2}"
    );
    let old = before_kill(&got);
    let ids: BTreeSet<String> = old.iter().map(|m| tick_of(m).2).collect();
    let duplicates = old.len() - ids.len();
    let mut seqs: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for m in &old {
        let (job, seq, _) = tick_of(m);
        seqs.entry(job).or_default().insert(seq);
    }
    for (job, s) in &seqs {
        let max = *s.last().expect("non-empty");
        assert_eq!(
            s.len() as u64,
            max,
            "{group}: {job}: every tick 1..={max} of the killed process arrived"
        );
    }
    assert!(
        ids.len() as u64 >= ran,
        "{group}: {} distinct events arrived, {ran} runs before the kill",
        ids.len()
    );
    let possible: u64 = line
        .split("corrupt records skipped, ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no possible-duplicates count in: {line}"));
    assert!(
        duplicates as u64 <= possible,
        "{group}: {duplicates} duplicates arrived, cwpub reported {possible} possible: {line}"
    );
    eprintln!(
        "{group}: {} events of the killed process arrived, {duplicates} duplicates (reported possible: {possible}); {line}",
        ids.len()
    );
    assert!(line.contains("0 dropped"), "{line}");
}

#[test]
fn kill9_during_an_outage_then_restart_delivers_every_event_fake() {
    let rt = chaos::background();
    let fake = rt.block_on(FakeCwl::start());
    let group = "/cwpub/crash/fake";
    let read = || {
        ["heartbeat", "emf"]
            .iter()
            .flat_map(|s| fake.events(group, s))
            .map(|e| (e.timestamp, e.message))
            .collect()
    };
    crash_and_restart(&fake.endpoint(), &fake.chaos, group, &read);
    assert!(
        fake.limit_violations().is_empty(),
        "{:?}",
        fake.limit_violations()
    );
}

#[test]
fn kill9_during_an_outage_then_restart_delivers_every_event_moto() {
    let moto = Moto::start();
    let rt = chaos::background();
    let proxy = rt.block_on(ChaosProxy::start(moto.addr));
    let client = moto.client();
    let group = "/cwpub/crash/moto";
    let read = || {
        rt.block_on(async {
            let mut all = Vec::new();
            for stream in ["heartbeat", "emf"] {
                let Ok(out) = client
                    .get_log_events()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .start_from_head(true)
                    .send()
                    .await
                else {
                    continue; // not created yet
                };
                all.extend(out.events().iter().map(|e| {
                    (
                        e.timestamp().unwrap_or_default(),
                        e.message().unwrap_or_default().to_owned(),
                    )
                }));
            }
            all
        })
    };
    crash_and_restart(&proxy.endpoint(), &proxy.chaos, group, &read);
}

/// Offsets of the frames of a segment file (after its header).
fn frames(bytes: &[u8]) -> Vec<usize> {
    let mut at = frame::HEADER_LEN;
    let mut v = Vec::new();
    while at < bytes.len() {
        v.push(at);
        at += frame::decode(&bytes[at..]).expect("intact frame").1;
    }
    v
}

#[test]
fn a_damaged_spool_starts_cleanly_and_counts_the_bad_records() {
    let rt = chaos::background();
    let fake = rt.block_on(FakeCwl::start());
    let group = "/cwpub/damaged";
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let observe = free_port();
    let config = write_config(
        dir.path(),
        &spool_config(&fake.endpoint(), group, &spool, observe, "1s"),
    );
    fake.chaos.set_down(true);
    let mut first = Daemon::start(&config);
    first.wait_for("cwpub started");
    first.pause(Duration::from_secs(4));
    let (status, stderr) = first.stop();
    let line = summary(&stderr);
    assert!(
        status.success(),
        "events kept in the spool are not lost: {line}\n{stderr}"
    );
    let kept: u64 = line
        .split("spool: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no kept count: {line}"));
    assert!(kept >= 6, "{line}");

    // The sink of the [sink] table keeps its spool in a subdirectory named after it.
    let spool = spool.join("cloudwatch");
    let mut segments: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    assert_eq!(segments.len(), 2, "one segment per stream: {segments:?}");
    // A flipped byte inside the second event of one stream...
    let mut bytes = std::fs::read(&segments[0]).expect("read");
    let f = frames(&bytes);
    assert!(f.len() >= 4, "KEY frame and events");
    bytes[f[2] + 30] ^= 0x40;
    std::fs::write(&segments[0], &bytes).expect("flip");
    // ...a torn last frame in the other...
    let bytes = std::fs::read(&segments[1]).expect("read");
    let f = frames(&bytes);
    let last = *f.last().expect("frames");
    std::fs::write(&segments[1], &bytes[..last + 7]).expect("truncate");
    // ...and a file that is not the spool's.
    std::fs::write(spool.join("notes.txt"), "not a segment").expect("foreign");

    fake.chaos.set_down(false);
    let restarted_at = now_ms();
    let mut second = Daemon::start(&config);
    second.wait_for("spool: replaying events left by the previous run");
    let delivered = || {
        ["heartbeat", "emf"]
            .iter()
            .flat_map(|s| fake.events(group, s))
            .map(|e| (e.timestamp, e.message))
            .collect::<Vec<_>>()
    };
    let got = wait_until(&delivered, &|evs| evs.len() as u64 >= kept - 2);
    let metrics = http_get(observe, "/metrics").1;
    let (status, stderr) = second.stop();
    assert!(status.success(), "{}\n{stderr}", summary(&stderr));
    assert_eq!(
        metric(
            &metrics,
            "cwpub_spool_corrupt_records_total{sink=\"cloudwatch\"}"
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "cwpub_spool_foreign_files{sink=\"cloudwatch\"}"),
        1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "cwpub_spool_replayed_events_total{sink=\"cloudwatch\"}"
        ) >= (kept - 2) as f64,
        "{metrics}"
    );
    let old = got.iter().filter(|(t, _)| *t < restarted_at).count() as u64;
    assert!(
        (kept - 2..=kept).contains(&old),
        "every intact event arrived, at most the two damaged ones missing: {old} of {kept}"
    );
    assert!(
        stderr.contains("damaged record skipped"),
        "the damage is logged: {stderr}"
    );
    assert!(
        stderr.contains("is not a spool segment"),
        "the foreign file is logged: {stderr}"
    );
    assert!(
        spool.join("notes.txt").exists(),
        "foreign files are left alone"
    );
}
