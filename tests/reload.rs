//! Reloading a running `cwpub run` (SIGHUP, `cwpub reload`, `--watch`)
//! against moto, through the real binary:
//!
//! * with CloudWatch down and events buffered, a reload that removes one
//!   job, gives another a new schedule and adds a third: once CloudWatch is
//!   back every event of the removed job arrives, the changed job continues
//!   its sequence on its new schedule, the added job runs, nothing arrives
//!   twice, and the daemon exits 0;
//! * reloads that must fail — a syntax error, an unknown key, a missing
//!   guest file, a guest refusing its config, a restart-only setting —
//!   change nothing: the job keeps publishing every tick, each problem is
//!   logged with where it is, `cwpub_config_reloads_total` and `/readyz`
//!   show it, `cwpub reload` exits 1 with it, and a correct reload after
//!   them applies;
//! * `--watch` sees a ConfigMap-style symlink swap and reloads exactly once;
//! * reloads under load (1,000 events a run, every second) lose nothing and
//!   do not delay an unchanged job's ticks.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::chaos::{self, ChaosProxy};
use crate::support::daemon::{Daemon, cwpub, job_runs, metric, summary, tick_of, write_config};
use crate::support::moto::{Moto, stream_messages};
use crate::support::test_guests::test_guest;

const GROUP: &str = "/cwpub/reload";

/// A config with one CloudWatch sink at `endpoint`, the observe endpoint on
/// a port of its own, and `jobs` (TOML `[[jobs]]` tables).
fn config(endpoint: &str, jobs: &str) -> String {
    format!(
        r#"
[sinks.cw]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "300ms"
request_timeout = "2s"
backoff_cap = "1s"
circuit_open_max = "2s"

[shutdown]
drain_deadline = "20s"

[observe]
listen = "127.0.0.1:0"
{jobs}"#
    )
}

/// A heartbeat job writing to the stream named after it.
fn heartbeat(name: &str, schedule: &str, service: &str) -> String {
    format!(
        r#"
[[jobs]]
name = "{name}"
guest = "builtin:heartbeat"
schedule = "{schedule}"
run_at_start = true
log_group = "{GROUP}"
log_stream = "{{job}}"
[jobs.config]
service = "{service}"
"#
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A heartbeat as delivered: sequence, scheduled and actual time (ms), service.
#[derive(Debug, Clone)]
struct Beat {
    sequence: u64,
    scheduled: i64,
    actual: i64,
    service: String,
}

fn ms(v: &serde_json::Value, key: &str) -> i64 {
    let text = v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{key} {text:?}: {e}"))
        .timestamp_millis()
}

/// The heartbeats of `stream` in moto, by sequence; asserts none arrived
/// twice and that their sequences run 1, 2, … without a hole.
fn beats(rt: &tokio::runtime::Runtime, moto: &Moto, stream: &str) -> Vec<Beat> {
    let messages = rt.block_on(stream_messages(&moto.client(), GROUP, stream));
    let mut by_sequence = BTreeMap::new();
    for m in messages {
        let (job, sequence, id) = tick_of(&m);
        assert_eq!(job, stream, "{m}");
        let v: serde_json::Value = serde_json::from_str(&m).expect("JSON");
        let beat = Beat {
            sequence,
            scheduled: ms(&v, "scheduled_at"),
            actual: ms(&v, "timestamp"),
            service: v["service"].as_str().unwrap_or_default().to_string(),
        };
        assert!(
            by_sequence.insert(sequence, beat).is_none(),
            "{stream}: sequence {sequence} ({id}) arrived twice"
        );
    }
    let beats: Vec<Beat> = by_sequence.into_values().collect();
    for (i, b) in beats.iter().enumerate() {
        assert_eq!(
            b.sequence,
            i as u64 + 1,
            "{stream}: sequences have a hole: {:?}",
            beats.iter().map(|b| b.sequence).collect::<Vec<_>>()
        );
    }
    beats
}

/// Asserts that `beats` (a job's, in sequence) after its run at start are
/// `period` ms apart: none skipped, none twice.
fn every_period(beats: &[Beat], period: i64) {
    for pair in beats.windows(2).skip(1) {
        assert_eq!(pair[1].scheduled - pair[0].scheduled, period, "{pair:?}");
    }
}

/// When the daemon logged the last line containing `needle` (Unix ms, from
/// the line's own timestamp).
fn logged_at(stderr: &str, needle: &str) -> i64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{stderr}"));
    let stamp = line.split_whitespace().next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("timestamp {stamp:?} of {line:?}: {e}"))
        .timestamp_millis()
}

/// Successful runs of `job`, from the daemon's metrics.
fn runs(daemon: &mut Daemon, job: &str) -> u64 {
    job_runs(&daemon.metrics(), job, "success")
}

/// Reloads counted so far with `result` (ok or error).
fn reloads(daemon: &mut Daemon, result: &str) -> u64 {
    metric(
        &daemon.metrics(),
        &format!("cwpub_config_reloads_total{{result=\"{result}\"}}"),
    ) as u64
}

/// `cwpub reload <config>` run to its end.
fn cwpub_reload(config: &Path) -> Output {
    cwpub()
        .args(["reload", config.to_str().expect("utf-8")])
        .output()
        .expect("cwpub reload")
}

#[test]
fn a_reload_while_cloudwatch_is_down_applies_the_difference_and_loses_nothing() {
    let rt = chaos::background();
    let moto = Moto::start();
    let proxy = rt.block_on(ChaosProxy::start(moto.addr));
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = proxy.endpoint();
    let path = write_config(
        dir.path(),
        &config(
            &endpoint,
            &[
                heartbeat("gone", "@every 1s", "gone"),
                heartbeat("changed", "@every 1s", "changed"),
            ]
            .concat(),
        ),
    );
    let mut daemon = Daemon::start(&path);
    daemon.wait_for("cwpub started");
    proxy.chaos.set_down(true);
    let down_at = runs(&mut daemon, "gone");
    daemon.wait_for_metrics("three runs of `gone` with CloudWatch down", |m| {
        job_runs(m, "gone", "success") >= down_at + 3
    });

    // Remove `gone`, give `changed` a new schedule, add `added`.
    write_config(
        dir.path(),
        &config(
            &endpoint,
            &[
                heartbeat("changed", "@every 2s", "changed"),
                heartbeat("added", "@every 1s", "added"),
            ]
            .concat(),
        ),
    );
    daemon.hup();
    daemon.wait_for("reload: 1 job added, 1 changed, 1 removed");
    let reloaded_at = logged_at(&daemon.stderr, "reload: 1 job added");
    daemon.wait_for_metrics("three runs of `added` and of `changed` since", |m| {
        job_runs(m, "added", "success") >= 3
    });
    let changed_before_up = runs(&mut daemon, "changed");
    daemon.wait_for_metrics("two runs of `changed` on its new schedule", |m| {
        job_runs(m, "changed", "success") >= changed_before_up + 2
    });
    assert_eq!(reloads(&mut daemon, "ok"), 1);
    proxy.chaos.set_down(false);
    let gone_runs = runs(&mut daemon, "gone");
    daemon.wait_until("every run of `gone` delivered", || {
        rt.block_on(stream_messages(&moto.client(), GROUP, "gone"))
            .len() as u64
            >= gone_runs
    });
    let (exit, stderr) = daemon.stop();
    assert!(exit.success(), "exit {exit:?}:\n{stderr}");
    assert!(
        summary(&stderr).contains("0 undelivered at shutdown"),
        "{}",
        summary(&stderr)
    );

    // Every event of the removed job, once each; none after it was removed
    // (a run in flight at the reload may end just after it).
    let gone = beats(&rt, &moto, "gone");
    assert_eq!(gone.len() as u64, gone_runs, "runs of `gone` vs events");
    let last = gone.last().expect("gone ran");
    assert!(
        last.actual <= reloaded_at,
        "`gone` ran after it was removed: {last:?}, reload logged at {reloaded_at}"
    );
    // The changed job: one sequence, no tick twice or skipped; every 1 s
    // before the reload, on 2 s boundaries after it.
    let changed = beats(&rt, &moto, "changed");
    let (before, after): (Vec<Beat>, Vec<Beat>) = changed
        .iter()
        .cloned()
        .partition(|b| b.scheduled < reloaded_at);
    assert!(before.len() >= 3 && after.len() >= 2, "{changed:?}");
    every_period(&before, 1_000);
    for b in &after {
        assert_eq!(b.scheduled % 2_000, 0, "not on the 2 s schedule: {b:?}");
    }
    for pair in after.windows(2) {
        assert_eq!(pair[1].scheduled - pair[0].scheduled, 2_000, "{pair:?}");
    }
    // The added job ran from the reload on, its run at start first.
    let added = beats(&rt, &moto, "added");
    assert!(added.len() >= 3, "{added:?}");
    assert!(added[0].actual >= reloaded_at - 5_000, "{:?}", added[0]);
    every_period(&added, 1_000);
}

#[test]
fn a_reload_that_fails_changes_nothing_and_says_why() {
    let rt = chaos::background();
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = moto.endpoint();
    let good = config(&endpoint, &heartbeat("steady", "@every 1s", "before"));
    let path = write_config(dir.path(), &good);
    let mut daemon = Daemon::start(&path);
    daemon.wait_for("cwpub started");
    let file = path.display().to_string();

    let bad = [
        (
            "a syntax error",
            good.replace("schedule = \"@every 1s\"", "schedule = \"@every 1s"),
            vec![file.as_str(), "TOML syntax error at line"],
        ),
        (
            "an unknown key",
            good.replace("schedule = ", "shedule = \"@every 5s\"\nschedule = "),
            vec![file.as_str(), "job \"steady\": shedule: unknown key"],
        ),
        (
            "a missing guest file",
            good.replace("builtin:heartbeat", "./missing.wasm"),
            vec![file.as_str(), "job \"steady\"", "missing.wasm", "not found"],
        ),
        (
            "a guest refusing its config",
            good.replace(
                "service = \"before\"",
                "service = \"before\"\n\"field.status\" = \"x\"",
            ),
            vec!["steady", "set by the heartbeat itself"],
        ),
        (
            "a restart-only setting",
            good.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
            vec![file.as_str(), "[observe]", "needs a restart"],
        ),
    ];
    for (i, (what, text, expected)) in bad.iter().enumerate() {
        write_config(dir.path(), text);
        let mark = daemon.stderr.len();
        daemon.hup();
        daemon.wait_for("reload failed; the configuration in force is unchanged");
        let logged = &daemon.stderr[mark..];
        for needle in expected {
            assert!(
                logged.contains("reload refused") && logged.contains(needle),
                "{what}: {needle:?} not logged:\n{logged}"
            );
        }
        let n = i as u64 + 1;
        assert_eq!(reloads(&mut daemon, "error"), n, "{what}");
        assert_eq!(reloads(&mut daemon, "ok"), 0, "{what}");
        let (status, body) = daemon.get("/readyz");
        assert_eq!(
            status, 200,
            "{what}: the old config keeps publishing: {body}"
        );
        assert!(
            body.contains(&format!("last reload #{n} at "))
                && body.contains("failed, the configuration in force is unchanged")
                && body.contains(expected[1]),
            "{what}: /readyz says\n{body}"
        );
    }

    // `cwpub reload` refuses a file with problems without asking the daemon…
    write_config(dir.path(), &bad[1].1);
    let out = cwpub_reload(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shedule: unknown key") && err.contains("was not asked to reload"),
        "{err}"
    );
    // …and reports what the daemon refused.
    write_config(dir.path(), &bad[3].1);
    let out = cwpub_reload(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failed, the configuration in force is unchanged")
            && err.contains("set by the heartbeat itself"),
        "{err}"
    );
    assert_eq!(reloads(&mut daemon, "error"), bad.len() as u64 + 1);

    // A correct reload afterwards applies.
    write_config(
        dir.path(),
        &good.replace("service = \"before\"", "service = \"after\""),
    );
    let out = cwpub_reload(&path);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("ok (reload: 0 jobs added, 1 changed, 0 removed"),
        "{said}"
    );
    assert_eq!(reloads(&mut daemon, "ok"), 1);
    daemon.wait_until("a heartbeat with the new config delivered", || {
        rt.block_on(stream_messages(&moto.client(), GROUP, "steady"))
            .iter()
            .any(|m| m.contains("\"service\":\"after\""))
    });
    let steady_runs = runs(&mut daemon, "steady");
    let (exit, stderr) = daemon.stop();
    assert!(exit.success(), "{stderr}");

    // The old config published throughout: every tick, none twice or late
    // by a whole period, the new service only after the good reload.
    let steady = beats(&rt, &moto, "steady");
    assert!(steady.len() as u64 >= steady_runs, "{steady:?}");
    every_period(&steady, 1_000);
    let switched = steady
        .iter()
        .position(|b| b.service == "after")
        .expect("new service");
    assert!(
        steady[switched..].iter().all(|b| b.service == "after")
            && steady[..switched].iter().all(|b| b.service == "before"),
        "{steady:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn watch_reloads_once_on_a_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;

    // A ConfigMap volume: cwpub.toml → ..data/cwpub.toml, ..data → a
    // timestamped directory; an update writes a new directory and renames
    // a new ..data link over the old one.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let version = |name: &str, text: &str| {
        std::fs::create_dir(d.join(name)).expect("version dir");
        std::fs::write(d.join(name).join("cwpub.toml"), text).expect("write");
    };
    let swap_to = |name: &str| {
        symlink(name, d.join("..data_tmp")).expect("link");
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
    };
    let stdout_config = |jobs: &str| {
        format!("[sink]\nkind = \"stdout\"\n\n[observe]\nlisten = \"127.0.0.1:0\"\n{jobs}")
    };
    let one = stdout_config(&heartbeat("first", "@every 1s", "first"));
    let two = stdout_config(
        &[
            heartbeat("first", "@every 1s", "first"),
            heartbeat("second", "@every 1s", "second"),
        ]
        .concat(),
    );
    version("..2026_12_06_a", &one);
    symlink("..2026_12_06_a", d.join("..data")).expect("link");
    symlink("..data/cwpub.toml", d.join("cwpub.toml")).expect("link");
    let path = d.join("cwpub.toml");

    let mut daemon = Daemon::start_args(&["run", "--watch", path.to_str().expect("utf-8")]);
    daemon.wait_for("cwpub started");
    version("..2026_12_06_b", &two);
    swap_to("..2026_12_06_b");
    std::fs::remove_dir_all(d.join("..2026_12_06_a")).expect("old version");
    daemon.wait_for("reload: 1 job added, 0 changed, 0 removed");
    daemon.wait_for_metrics("the added job ran", |m| {
        job_runs(m, "second", "success") >= 1
    });
    // The swap is several file events; what counts is how many reloads
    // they made, so the daemon is given many debounce periods to make more.
    daemon.run_for(Duration::from_secs(3));
    assert_eq!(reloads(&mut daemon, "ok"), 1, "{}", daemon.stderr);
    assert_eq!(
        daemon.stderr.matches("reloading the configuration").count(),
        1
    );

    // The same content again (a resync) reloads nothing; a broken file is
    // refused once, and fixing it reloads.
    version("..2026_12_06_c", &two);
    swap_to("..2026_12_06_c");
    version("..2026_12_06_d", &two.replace("schedule = ", "shedule = "));
    swap_to("..2026_12_06_d");
    daemon.wait_for("reload failed");
    version("..2026_12_06_e", &one);
    swap_to("..2026_12_06_e");
    daemon.wait_for("reload: 0 jobs added, 0 changed, 1 removed");
    daemon.run_for(Duration::from_secs(3));
    assert_eq!(
        (reloads(&mut daemon, "ok"), reloads(&mut daemon, "error")),
        (2, 1),
        "{}",
        daemon.stderr
    );
    let (exit, stderr) = daemon.stop();
    assert!(exit.success(), "{stderr}");
}

#[test]
fn reloads_under_load_lose_nothing_and_do_not_delay_other_jobs() {
    const EVENTS: u64 = 1_000;
    let rt = chaos::background();
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = test_guest("scripted");
    let load = |round: u32| {
        format!(
            r#"
[[jobs]]
name = "load"
guest = "{}"
schedule = "@every 1s"
run_at_start = true
log_group = "{GROUP}"
log_stream = "load"
[jobs.config]
count = "{EVENTS}"
round = "{round}"
"#,
            guest.display()
        )
    };
    let text = |round| {
        config(
            &moto.endpoint(),
            &[load(round), heartbeat("steady", "@every 1s", "steady")].concat(),
        )
    };
    let path = write_config(dir.path(), &text(0));
    let mut daemon = Daemon::start(&path);
    daemon.wait_for("cwpub started");
    daemon.wait_for_metrics("three runs of each job", |m| {
        job_runs(m, "load", "success") >= 3 && job_runs(m, "steady", "success") >= 3
    });
    let first_reload = now_ms();
    for round in 1..=5 {
        write_config(dir.path(), &text(round));
        daemon.hup();
        daemon.wait_for("reload: 0 jobs added, 1 changed, 0 removed");
        let now = runs(&mut daemon, "load");
        daemon.wait_for_metrics("a run of the changed job", |m| {
            job_runs(m, "load", "success") > now
        });
    }
    let last_reload = now_ms();
    let load_runs = runs(&mut daemon, "load");
    let (exit, stderr) = daemon.stop();
    assert!(exit.success(), "{stderr}");
    assert!(
        summary(&stderr).contains("; 0 dropped;") && summary(&stderr).contains("0 undelivered"),
        "{}",
        summary(&stderr)
    );

    // Every event of every run, once.
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for m in rt.block_on(stream_messages(&moto.client(), GROUP, "load")) {
        let v: serde_json::Value = serde_json::from_str(&m).expect("JSON");
        let (seq, n) = (
            v["sequence"].as_u64().expect("sequence"),
            v["n"].as_u64().expect("n"),
        );
        seen.entry(seq).or_default().push(n);
    }
    // Runs 1, 2, … each delivered (the last ones may have run during the stop).
    assert!(
        seen.keys().copied().eq(1..=seen.len() as u64) && seen.len() as u64 >= load_runs,
        "runs delivered: {:?}; runs counted before the stop: {load_runs}",
        seen.keys().collect::<Vec<_>>()
    );
    for (seq, mut ns) in seen {
        ns.sort_unstable();
        assert!(
            ns.iter().copied().eq(0..EVENTS),
            "run {seq}: {} events, not each of 0..{EVENTS} once",
            ns.len()
        );
    }

    // The unchanged job kept its ticks: each on its boundary, none skipped,
    // and started no more than 100 ms later than it did before the reloads.
    let steady = beats(&rt, &moto, "steady");
    every_period(&steady, 1_000);
    let delay = |b: &Beat| b.actual - b.scheduled;
    let baseline = steady
        .iter()
        .filter(|b| b.scheduled < first_reload && b.sequence > 1)
        .map(delay)
        .max()
        .expect("ticks before the reloads");
    for b in steady
        .iter()
        .filter(|b| b.scheduled >= first_reload && b.scheduled <= last_reload)
    {
        assert!(
            delay(b) <= baseline + 100,
            "tick {} started {} ms after its time during the reloads (before them: at most {baseline} ms)",
            b.sequence,
            delay(b)
        );
    }
}
