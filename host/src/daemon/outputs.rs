//! The running sinks, by name: started from the config, changed in place or
//! replaced by a reload, retired when a reload removes them (they keep
//! delivering what they hold, then stop), and drained together at shutdown.
//! Readers (`/readyz`, host facts) see them through a lock held only to copy
//! the list, never across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::config::{Config, Env, SinkConfig};
use crate::delivery::DrainReport;
use crate::ledger::Ledger;
use crate::observe::Readiness;
use crate::sinks::{self, Output};

/// A running sink and the settings it runs with.
#[derive(Clone)]
pub(crate) struct Live {
    pub cfg: SinkConfig,
    pub output: Arc<Output>,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Outputs {
    live: RwLock<BTreeMap<Arc<str>, Live>>,
    /// Removed by a reload, still delivering what they hold.
    retiring: Mutex<Vec<Arc<Output>>>,
}

impl Outputs {
    /// Starts every sink of `config`, counting into `ledger`.
    pub async fn start(config: &Config, env: &Env, ledger: &Ledger) -> anyhow::Result<Outputs> {
        let outputs = Outputs::default();
        for cfg in &config.sinks.list {
            let output = Arc::new(sinks::start(cfg, ledger, env, &config.host).await?);
            outputs.insert(cfg.clone(), output);
        }
        Ok(outputs)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Arc<str>, Live>> {
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Arc<str>, Live>> {
        self.live.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds (or replaces) a running sink.
    pub fn insert(&self, cfg: SinkConfig, output: Arc<Output>) {
        self.write().insert(cfg.name.clone(), Live { cfg, output });
    }

    /// The running sink named `name`.
    pub fn get(&self, name: &str) -> Option<Live> {
        self.read().get(name).cloned()
    }

    /// Every running sink, by name.
    pub fn all(&self) -> Vec<Live> {
        self.read().values().cloned().collect()
    }

    /// Every sink still holding events: the running ones and those retiring.
    fn every_output(&self) -> Vec<Arc<Output>> {
        let mut v: Vec<Arc<Output>> = self.read().values().map(|l| l.output.clone()).collect();
        v.extend(
            self.retiring
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        v
    }

    /// Takes `name` out of the running sinks: it goes on delivering what it
    /// holds, then stops (or is drained with the others at shutdown).
    pub fn retire(self: &Arc<Self>, name: &str) {
        let Some(live) = self.write().remove(name) else {
            return;
        };
        let output = live.output;
        self.retiring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(output.clone());
        let outputs = Arc::downgrade(self);
        tokio::spawn(async move {
            // Nothing new reaches it: once what it holds is out, it stops.
            while output.pending_events() > 0 {
                tokio::time::sleep(RETIRE_POLL).await;
            }
            output.drain(Duration::from_secs(5)).await;
            if let Some(outputs) = outputs.upgrade() {
                outputs
                    .retiring
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|o| !Arc::ptr_eq(o, &output));
            }
        });
    }

    /// Events held by every sink, retiring ones included.
    pub fn pending_events(&self) -> u64 {
        self.every_output().iter().map(|o| o.pending_events()).sum()
    }

    /// Drains every sink at once, each within `deadline`, retiring ones included.
    pub async fn drain(&self, deadline: Duration) -> Vec<(Arc<str>, DrainReport)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, o) in self.every_output().into_iter().enumerate() {
            set.spawn(async move { (i, o.name().clone(), o.drain(deadline).await) });
        }
        let mut out: Vec<(usize, Arc<str>, DrainReport)> = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(error = %e, "a sink's drain failed"),
            }
        }
        out.sort_by_key(|(i, ..)| *i);
        out.into_iter().map(|(_, n, d)| (n, d)).collect()
    }

    /// Ready when no sink has an open circuit or a credential problem.
    pub fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        for o in self.every_output() {
            let health = o.health();
            let sink = o.name();
            if let Some(problem) = &health.credential_problem {
                reasons.push(format!(
                    "sink {sink:?}: credential problem: {}: {}",
                    problem.code,
                    first_line(&problem.message)
                ));
            }
            for open in &health.open_circuits {
                reasons.push(format!(
                    "sink {sink:?}: circuit open for {} after {} failed requests in a row: {}",
                    open.target,
                    open.consecutive_failures,
                    first_line(&open.last_error)
                ));
            }
        }
        Readiness {
            reasons,
            ..Readiness::default()
        }
    }
}

/// How often a retiring sink is asked whether it still holds events.
const RETIRE_POLL: Duration = Duration::from_secs(1);

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
