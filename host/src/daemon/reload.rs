//! Reloading the configuration of a running daemon (SIGHUP, or `--watch`):
//! everything is checked before anything changes, then the difference is
//! applied.
//!
//! **Check** ([`plan`]): the file is read and checked as `cwpub check` would
//! (every problem at once, with file, job and key); settings only a restart
//! can change are named; every new or changed guest is loaded (compiled off
//! the scheduler's and delivery's threads, with the cache) and its
//! `validate-config` run; the adapters of new and changed sinks are built
//! (clients, API keys). Any problem leaves the running daemon untouched.
//!
//! **Apply** ([`apply`]): sinks whose settings changed are reconfigured in
//! place — they keep what they hold, so nothing buffered is lost or sent
//! twice — or, when their kind changed, replaced (the old one delivers what
//! it holds, then stops); new sinks start; removed ones retire the same way.
//! Unchanged jobs keep their schedule phase and sequence numbers; changed
//! ones run their new guest, config or destinations from their next tick (a
//! new schedule continues the sequence after the run in flight); removed
//! jobs stop, and what they already submitted is delivered; new jobs start,
//! with their run at start.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{self, Config, Env, SinkConfig};
use crate::delivery::Sink;
use crate::guest::{GuestSource, Runtime};
use crate::ledger::Ledger;
use crate::sinks::{self, Output};

use super::jobs::{Change, Jobs};
use super::outputs::Outputs;
use super::prepare::{PreparedJob, prepare};
use super::routes;

/// What a reload will do to one sink.
enum SinkPlan {
    Keep,
    Reconfigure(SinkConfig, Option<Arc<dyn Sink>>),
    Start(SinkConfig, Arc<Output>),
    Replace(SinkConfig, Arc<Output>),
    Retire(Arc<str>),
}

/// A checked reload, ready to apply.
pub(crate) struct Plan {
    config: Config,
    jobs: Vec<(PreparedJob, u64)>,
    sinks: Vec<SinkPlan>,
    compiled: usize,
    compile_time: Duration,
}

/// How one reload ended, for `/readyz` and the log.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// When it ended.
    pub at: SystemTime,
    /// The summary, or every problem (one line each).
    pub result: Result<String, Vec<String>>,
}

/// The settings only a restart can change, that `new` changes.
fn restart_only(old: &Config, new: &Config) -> Vec<String> {
    let file = new.path.display();
    let mut out = Vec::new();
    let mut needs = |what: &str, was: String| {
        out.push(format!(
            "{file}: {what}: changing it needs a restart; the running daemon keeps {was}"
        ));
    };
    if old.delivery.spool_dir != new.delivery.spool_dir {
        needs(
            "[delivery] spool_dir",
            format!("{:?}", old.delivery.spool_dir),
        );
    }
    if old.delivery.drop_log_interval != new.delivery.drop_log_interval {
        needs(
            "[delivery] drop_log_interval",
            format!("{:?}", old.delivery.drop_log_interval),
        );
    }
    if old.max_event_bytes != new.max_event_bytes {
        needs(
            "[delivery] max_event_bytes",
            old.max_event_bytes.to_string(),
        );
    }
    if old.region != new.region {
        needs(
            "the AWS region guests see (the default sink's region)",
            format!("{:?}", old.region),
        );
    }
    if old.observe != new.observe {
        needs(
            "[observe]",
            format!(
                "enabled = {}, listen = {}",
                old.observe.enabled, old.observe.listen
            ),
        );
    }
    if old.log != new.log {
        needs(
            "[log]",
            format!("format = {:?}, level = {:?}", old.log.format, old.log.level),
        );
    }
    for s in &new.sinks.list {
        if let Some(was) = old.sinks.get(&s.name) {
            for (key, a, b) in [
                (
                    "spool_dir",
                    format!("{:?}", was.delivery.spool_dir),
                    format!("{:?}", s.delivery.spool_dir),
                ),
                (
                    "spool_max_bytes",
                    was.delivery.spool_max_bytes.to_string(),
                    s.delivery.spool_max_bytes.to_string(),
                ),
                (
                    "spool_sync",
                    was.delivery.spool_sync.as_str().to_string(),
                    s.delivery.spool_sync.as_str().to_string(),
                ),
            ] {
                if a != b {
                    needs(&format!("sink {:?}: {key}", s.name), a);
                }
            }
            if was.kind() != s.kind() && was.delivery.spool_dir.is_some() {
                needs(
                    &format!(
                        "sink {:?}: kind (it has a spool, which a sink of another kind cannot take over)",
                        s.name
                    ),
                    was.kind().as_str().to_string(),
                );
            }
        }
    }
    out
}

/// A digest of a guest's bytes (read off the runtime's workers), to tell
/// a file changed at the same path.
pub(crate) async fn guest_digest(source: &GuestSource) -> u64 {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        match source.bytes() {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.to_string().hash(&mut h),
        }
        h.finish()
    })
    .await
    .unwrap_or(0)
}

/// Reads and checks the config at `path` against the running daemon, and
/// prepares everything the reload needs; nothing running is changed.
pub(crate) async fn plan(
    path: &Path,
    env: &Env,
    current: &Config,
    runtime: &Runtime,
    outputs: &Outputs,
    jobs: &Jobs,
    ledger: &Ledger,
) -> Result<Plan, Vec<String>> {
    let text_path = path.to_path_buf();
    let read_env = env.clone();
    // Reading the file is disk work: off the runtime's workers.
    let config = tokio::task::spawn_blocking(move || config::load(&text_path, &read_env))
        .await
        .map_err(|e| vec![format!("{}: reading failed: {e}", path.display())])?
        .map_err(|e| e.lines())?;
    let restart = restart_only(current, &config);
    if !restart.is_empty() {
        return Err(restart);
    }
    // Guests: only new or changed ones compile; each job's validate-config runs.
    let started = Instant::now();
    let mut compiled = 0;
    for job in &config.jobs {
        let digest = guest_digest(&job.guest).await;
        let known = jobs
            .config(&job.name)
            .is_some_and(|(was, d)| was.guest == job.guest && d == digest);
        if !known {
            compiled += 1;
        }
    }
    let prepared = prepare(&config, runtime).await.map_err(|e| e.lines())?;
    let compile_time = started.elapsed();
    let mut with_digests = Vec::with_capacity(prepared.len());
    for job in prepared {
        let digest = guest_digest(&job.config.guest).await;
        with_digests.push((job, digest));
    }
    // Sinks: build what changed before changing anything.
    let mut sinks_plan = Vec::new();
    let mut problems = Vec::new();
    let mut started_now: Vec<Arc<Output>> = Vec::new();
    let file = config.path.display().to_string();
    for cfg in &config.sinks.list {
        let step = match outputs.get(&cfg.name) {
            Some(live) if live.cfg == *cfg => Ok(SinkPlan::Keep),
            Some(live) if live.cfg.kind() == cfg.kind() => {
                sinks::adapter(cfg, ledger, env, &config.host)
                    .await
                    .map(|a| SinkPlan::Reconfigure(cfg.clone(), a))
            }
            was => sinks::start(cfg, ledger, env, &config.host).await.map(|o| {
                let o = Arc::new(o);
                started_now.push(o.clone());
                if was.is_some() {
                    SinkPlan::Replace(cfg.clone(), o)
                } else {
                    SinkPlan::Start(cfg.clone(), o)
                }
            }),
        };
        match step {
            Ok(s) => sinks_plan.push(s),
            Err(e) => problems.push(format!("{file}: {e:#}")),
        }
    }
    let keep: BTreeSet<&str> = config.sinks.list.iter().map(|s| &*s.name).collect();
    for live in outputs.all() {
        if !keep.contains(&*live.cfg.name) {
            sinks_plan.push(SinkPlan::Retire(live.cfg.name.clone()));
        }
    }
    if !problems.is_empty() {
        // Sinks started for this reload hold nothing yet: stop them.
        for o in started_now {
            o.drain(Duration::ZERO).await;
        }
        return Err(problems);
    }
    Ok(Plan {
        config,
        jobs: with_digests,
        sinks: sinks_plan,
        compiled,
        compile_time,
    })
}

/// Applies a checked reload; returns the new config and the summary line.
pub(crate) fn apply(
    plan: Plan,
    outputs: &Arc<Outputs>,
    jobs: &mut Jobs,
) -> Result<(Config, String), Vec<String>> {
    let Plan {
        config,
        jobs: prepared,
        sinks: sinks_plan,
        compiled,
        compile_time,
    } = plan;
    // Sinks first, so the jobs' routes point at what runs from now on.
    let (mut s_added, mut s_changed, mut s_removed) = (0, 0, 0);
    let mut problems = Vec::new();
    for step in sinks_plan {
        match step {
            SinkPlan::Keep => {}
            SinkPlan::Reconfigure(cfg, adapter) => {
                let Some(live) = outputs.get(&cfg.name) else {
                    continue;
                };
                match live.output.reconfigure(adapter, &cfg) {
                    Ok(()) => {
                        outputs.insert(cfg, live.output);
                        s_changed += 1;
                    }
                    Err(keys) => problems.push(format!(
                        "sink {:?}: {}: changing it needs a restart",
                        cfg.name,
                        keys.join(", ")
                    )),
                }
            }
            SinkPlan::Start(cfg, output) => {
                outputs.insert(cfg, output);
                s_added += 1;
            }
            SinkPlan::Replace(cfg, output) => {
                outputs.retire(&cfg.name);
                outputs.insert(cfg, output);
                s_changed += 1;
            }
            SinkPlan::Retire(name) => {
                outputs.retire(&name);
                s_removed += 1;
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    let names: BTreeSet<String> = prepared
        .iter()
        .map(|(j, _)| j.config.name.clone())
        .collect();
    for old in jobs.names() {
        if !names.contains(&old) {
            jobs.stop(&old);
            removed += 1;
        }
    }
    for (job, digest) in prepared {
        let routes = routes(&config, &job.config, outputs);
        match jobs.update(job, routes, digest) {
            Change::Added => added += 1,
            Change::Changed => changed += 1,
            Change::Unchanged => {}
        }
    }
    let mut parts = vec![
        count(added, "job added"),
        count(changed, "changed"),
        count(removed, "removed"),
    ];
    if s_added + s_changed + s_removed > 0 {
        parts.push(format!(
            "{}, {}, {}",
            count(s_added, "sink added"),
            count(s_changed, "changed"),
            count(s_removed, "removed")
        ));
    }
    parts.push(format!(
        "guests compiled {compiled} ({:.1} s)",
        compile_time.as_secs_f64()
    ));
    Ok((config, format!("reload: {}", parts.join(", "))))
}

/// `1 job added`, `2 changed`…
fn count(n: usize, what: &str) -> String {
    match (n, what.split_once(' ')) {
        (1, _) | (_, None) => format!("{n} {what}"),
        (_, Some((noun, rest))) => format!("{n} {noun}s {rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1, "job added"), "1 job added");
        assert_eq!(count(2, "job added"), "2 jobs added");
        assert_eq!(count(0, "changed"), "0 changed");
    }
}
