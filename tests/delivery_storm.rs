//! Throttling storms against the real `cwpub` binary: 60% of PutLogEvents
//! answered ThrottlingException, two jobs `@every 1s`, SIGTERM soon after
//! the storm. Nothing may be lost, no circuit may open (throttling is rate
//! feedback, not failure), every tick arrives exactly once, and cwpub exits
//! 0. One full-length 20 s storm against the strict fake and one against
//! moto (behind a throttling proxy); then ten shorter storms in a row
//! against the fake, each with its own log group.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::chaos::{self, Chaos, ChaosProxy};
use crate::support::daemon::{Daemon, runs_ok, summary, tick_of, two_jobs_config, write_config};
use crate::support::fake_cwl::FakeCwl;
use crate::support::moto::Moto;

/// One storm: returns after asserting everything about the run.
fn storm(
    endpoint: &str,
    chaos: &Chaos,
    group: &str,
    length: Duration,
    read: &dyn Fn() -> Vec<String>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &two_jobs_config(endpoint, group, "", false));
    chaos.set_throttle_percent(60);
    let throttled_before = chaos.throttled();
    let mut daemon = Daemon::start(&config);
    daemon.wait_for("cwpub started");
    daemon.run_for(length);
    // However slowly a busy machine sent requests, the storm hit some.
    daemon.wait_until(&format!("{group}: the storm throttled 3 requests"), || {
        chaos.throttled() - throttled_before >= 3
    });
    chaos.set_throttle_percent(0);
    let (status, stderr) = daemon.stop();
    let line = summary(&stderr);
    assert!(
        status.success(),
        "{group}: exit status {status:?}; summary: {line}\n{stderr}"
    );
    assert!(
        line.contains("; 0 dropped; 0 undelivered at shutdown"),
        "{group}: {line}"
    );
    assert!(
        !stderr.contains("circuit breaker opened"),
        "{group}: throttling opened a circuit:\n{stderr}"
    );
    let messages = read();
    let mut per_job: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in &messages {
        let (job, seq, _) = tick_of(m);
        per_job.entry(job).or_default().push(seq);
    }
    for (job, seqs) in &mut per_job {
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "{group}: {job}: a tick arrived twice");
    }
    assert_eq!(
        per_job.len(),
        2,
        "{group}: both jobs delivered: {per_job:?}"
    );
    assert_eq!(
        messages.len() as u64,
        runs_ok(&stderr),
        "{group}: every run's event arrived: {line}"
    );
}

#[test]
fn a_20s_throttling_storm_against_the_strict_fake_loses_nothing() {
    let rt = chaos::background();
    let fake = rt.block_on(FakeCwl::start());
    let group = "/cwpub/storm/fake";
    storm(
        &fake.endpoint(),
        &fake.chaos,
        group,
        Duration::from_secs(20),
        &|| fake.messages(group),
    );
    assert!(
        fake.limit_violations().is_empty(),
        "{:?}",
        fake.limit_violations()
    );
}

#[test]
fn a_20s_throttling_storm_against_moto_loses_nothing() {
    let moto = Moto::start();
    let rt = chaos::background();
    let proxy = rt.block_on(ChaosProxy::start(moto.addr));
    let client = moto.client();
    let group = "/cwpub/storm/moto";
    let read = || {
        rt.block_on(async {
            let mut all = Vec::new();
            for stream in ["heartbeat", "emf"] {
                let out = client
                    .get_log_events()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .start_from_head(true)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GetLogEvents {group}:{stream}: {e:?}"));
                all.extend(
                    out.events()
                        .iter()
                        .map(|e| e.message().unwrap_or_default().to_owned()),
                );
            }
            all
        })
    };
    storm(
        &proxy.endpoint(),
        &proxy.chaos,
        group,
        Duration::from_secs(20),
        &read,
    );
}

/// Ten storms in a row (3 s each, to keep CI short; the 20 s runs above
/// cover the full length).
#[test]
fn ten_storms_in_a_row_lose_nothing() {
    let rt = chaos::background();
    let fake = rt.block_on(FakeCwl::start());
    for run in 0..10 {
        let group = format!("/cwpub/storm/run-{run}");
        storm(
            &fake.endpoint(),
            &fake.chaos,
            &group,
            Duration::from_secs(3),
            &|| fake.messages(&group),
        );
    }
    assert!(
        fake.limit_violations().is_empty(),
        "{:?}",
        fake.limit_violations()
    );
}
