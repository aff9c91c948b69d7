//! The delivery core: takes the events of guest runs ([`Submission`]s) for
//! one sink and delivers them through the sink's adapter ([`Sink`]), never
//! losing an event it could have delivered and counting every one it could
//! not. It knows nothing of any service: CloudWatch Logs, DataDog and the
//! others are adapters under `crate::sinks`, each with a core of its own
//! (its own budget, breakers, rate and spool), so one destination's outage
//! never delays or drops another's events.
//!
//! **One owner.** One task (`owner`) owns everything that changes: the
//! buffer and the spool's bookkeeping. Jobs hand it submissions through an
//! inbox bounded in bytes that applies the overflow policy itself
//! ([`Delivery::submit`] never waits); senders and the spool's thread report
//! back over a channel. Disk work runs on
//! the spool's own thread ([`spool::io`]), never on an async worker and
//! never under a lock; `/metrics` and `/readyz` read gauges the owner
//! publishes, so a stalled disk stalls nothing but the spool.
//!
//! * [`sink`] — the contract a sink adapter fulfils: limits, send, classify.
//! * [`config`] — [`DeliveryConfig`] and its validation.
//! * [`Item`] (`item`) — one buffered event and its cost to the budget.
//! * `batch` — per-key queues, the pre-send filter and the request builder.
//! * `buffer` — admission under the budget and overflow policy, due chunks,
//!   release; invariants checked.
//! * [`spool`] — the optional write-ahead log on disk (`spool_dir`) and its
//!   thread: events survive crashes and restarts, and replay at start.
//! * `inbox` — submissions waiting for the owner, bounded, overflow applied.
//! * `owner` — the task that owns buffer and spool and runs the lifecycle.
//! * `send` — executes the retry policy for one chunk: breaker, rate, sink.
//! * `policy` — the retry policy as one pure function.
//! * `rate` — the sink's request rate, adapted to throttling (AIMD).
//! * [`health`] — per-target circuit breakers and credential state.
//! * [`lifecycle`] — `Running → Draining → Stopped`.
//! * `record` — what delivery tells the [`Ledger`] (which owns every counter).
//! * `observe` — the live gauges in the ledger's registry, labelled by sink.
//!
//! Memory is bounded by `buffer_budget_bytes` over everything held (queued
//! and in requests being sent or retried) plus as much again in submissions
//! not yet taken in, disk by `spool_max_bytes`; when either is full the
//! overflow policy evicts queued events (in-flight ones cannot be evicted)
//! or refuses new ones, and counts them.

mod batch;
mod buffer;
pub mod config;
pub mod health;
mod inbox;
mod item;
pub mod lifecycle;
mod observe;
mod owner;
mod policy;
mod rate;
mod record;
mod send;
mod shared;
pub mod sink;
pub mod spool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::event::{Submission, Target};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};

pub use config::{DeliveryConfig, MIN_BUDGET_BYTES, OverflowPolicy};
pub use health::{CircuitState, CredentialProblem, Health, OpenCircuit};
pub use item::{ITEM_OVERHEAD, Item};
pub use lifecycle::Lifecycle;
pub use sink::{Answer, BatchLimits, ErrorClass, EventRules, Failure, Sink};
pub use spool::{SpoolStats, SyncPolicy};

pub(crate) use batch::BatchKey;
pub(crate) use batch::{TimeWindow, prefilter};
pub(crate) use policy::full_jitter;
pub use shared::DrainReport;
use shared::{Msg, Shared, resize};
use spool::io::{OsFs, SpoolFs};

/// The delivery core of one sink. Cheap to clone; all clones share one core.
#[derive(Clone)]
pub struct Delivery {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("sink", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// How a [`Delivery`] is started: see [`Delivery::builder`].
pub struct Builder {
    name: Arc<str>,
    sink: Arc<dyn Sink>,
    cfg: DeliveryConfig,
    ledger: Option<Ledger>,
    fs: Arc<dyn SpoolFs>,
}

impl Builder {
    /// Counts into `ledger` (and registers the core's gauges in its
    /// registry) instead of a ledger of its own.
    pub fn ledger(mut self, ledger: Ledger) -> Builder {
        self.ledger = Some(ledger);
        self
    }

    /// Puts the spool on this file layer instead of the operating system's
    /// (tests use a slow, stalling or failing one).
    pub fn spool_fs(mut self, fs: Arc<dyn SpoolFs>) -> Builder {
        self.fs = fs;
        self
    }

    /// Starts the core on the current tokio runtime. With `spool_dir` set,
    /// the spool is opened (and locked) off the runtime's workers and what a
    /// previous process left in it is queued before anything else; an
    /// unusable directory is the only error. `cfg` should have passed
    /// [`DeliveryConfig::validate`]; out-of-range values are clamped.
    pub async fn start(self) -> anyhow::Result<Delivery> {
        let Builder {
            name,
            sink,
            cfg,
            ledger,
            fs,
        } = self;
        let ledger = ledger.unwrap_or_else(|| Ledger::new(cfg.drop_log_interval));
        let (shared, tx) = owner::start(name, sink, cfg, ledger, fs).await?;
        Ok(Delivery { shared, tx })
    }
}

impl Delivery {
    /// A core for the sink `name`, delivering through `sink`, set up by `cfg`.
    pub fn builder(name: impl Into<Arc<str>>, sink: Arc<dyn Sink>, cfg: DeliveryConfig) -> Builder {
        Builder {
            name: name.into(),
            sink,
            cfg,
            ledger: None,
            fs: Arc::new(OsFs),
        }
    }

    /// The sink's name.
    pub fn name(&self) -> &Arc<str> {
        &self.shared.name
    }

    /// The ledger this core counts into.
    pub fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    /// Hands a guest run's events to the core (and, with a spool, to the
    /// disk ahead of sending). Never waits for the owner, the network or
    /// the disk, and never loses silently: every event that cannot be taken
    /// is counted as a drop.
    pub fn submit(&self, s: Submission) {
        let Submission {
            job,
            kind,
            target,
            events,
        } = s;
        if events.is_empty() {
            return;
        }
        let sh = &self.shared;
        let sink = sh.sink();
        if let Err(why) = sink.check_target(&target) {
            tracing::error!(sink = %sh.name, job = %job, error = %why, "events dropped: invalid target; fix the job's destination");
            sh.ledger.dropped(
                &job,
                &target,
                DropReason::InvalidTarget,
                events.len() as u64,
            );
            return;
        }
        let rules = sink.rules(kind);
        let window = TimeWindow::of(&rules, SystemTime::now());
        let mut drops: BTreeMap<DropReason, u64> = BTreeMap::new();
        let mut items = Vec::with_capacity(events.len());
        for ev in events {
            match prefilter(
                &ev.message,
                ev.timestamp_ms,
                rules.max_message_bytes,
                window,
            ) {
                Ok(()) => items.push(Item {
                    job: job.clone(),
                    timestamp_ms: ev.timestamp_ms,
                    message: ev.message,
                    seq: 0,
                }),
                Err(r) => *drops.entry(r).or_default() += 1,
            }
        }
        for (reason, n) in drops {
            sh.ledger.dropped(&job, &target, reason, n);
        }
        if items.is_empty() {
            return;
        }
        let n = items.len() as u64;
        let key = BatchKey {
            target: target.clone(),
            kind,
        };
        let put = sh.inbox.put(key, items);
        if put.closed {
            return sh.ledger.dropped(&job, &target, DropReason::Shutdown, n);
        }
        if !put.overflow.is_empty() {
            let n: u64 = put.overflow.values().sum();
            tracing::debug!(sink = %sh.name, job = %job, events = n, "submissions arrive faster than the core takes them in: oldest or newest dropped by the overflow policy");
        }
        for ((t, j), n) in put.overflow {
            sh.ledger.dropped(&j, &t, DropReason::Overflow, n);
        }
    }

    /// A copy of all counters plus the buffer gauges.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.shared.ledger.snapshot();
        let g = &self.shared.gauges;
        s.buffered_events = g.events.load(Ordering::Relaxed);
        s.buffered_bytes = g.bytes.load(Ordering::Relaxed);
        s.in_flight_requests = observe::in_flight(&self.shared);
        s
    }

    /// Events held (buffered, or in requests being sent).
    pub fn pending_events(&self) -> u64 {
        self.shared.gauges.events.load(Ordering::Relaxed)
    }

    /// The spool's gauges and counters (`None` without `spool_dir`).
    pub fn spool_stats(&self) -> Option<SpoolStats> {
        *self
            .shared
            .gauges
            .spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The request rate allowed now (requests/s), and its ceiling.
    pub fn put_rate(&self) -> (f64, f64) {
        (self.shared.rate.current(), self.shared.rate.ceiling())
    }

    /// Targets whose circuit is not closed, with its state.
    pub fn circuits(&self) -> Vec<(Target, CircuitState)> {
        self.shared.health.circuits()
    }

    /// Open circuits and credential problems, if any.
    pub fn health(&self) -> Health {
        let mut h = self.shared.health.snapshot();
        h.buffered_events = self.pending_events();
        h.closed = self.shared.state.get() == Lifecycle::Stopped;
        h
    }

    /// Where the core is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.shared.state.get()
    }

    /// Applies a reload's new settings for this sink in place, keeping what
    /// the core holds (buffered events, the spool) and its request rate:
    /// the adapter is swapped (the next chunk uses it), the budget, overflow
    /// policy, batch delay, in-flight bound, rate ceiling, backoffs and
    /// circuit settings change, and the circuit and credential state start
    /// afresh (the new settings may have fixed them). `Err` names the
    /// settings only a restart can change (the spool's).
    pub fn reconfigure(
        &self,
        sink: Arc<dyn Sink>,
        cfg: &DeliveryConfig,
    ) -> Result<(), Vec<String>> {
        let old = &self.shared.cfg;
        let mut restart = Vec::new();
        if cfg.spool_dir != old.spool_dir {
            restart.push("spool_dir".to_string());
        }
        if cfg.spool_max_bytes != old.spool_max_bytes {
            restart.push("spool_max_bytes".to_string());
        }
        if cfg.spool_sync != old.spool_sync {
            restart.push("spool_sync".to_string());
        }
        if !restart.is_empty() {
            return Err(restart);
        }
        let sh = &self.shared;
        *sh.sink
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sink;
        *sh.policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            policy::Policy::of(cfg, sh.sink().can_create());
        sh.rate.set_ceiling(cfg.put_rate_per_sec);
        sh.health
            .set_limits(cfg.circuit_failure_threshold, cfg.circuit_open_max);
        sh.health.reset();
        sh.inbox.set_limits(cfg.buffer_budget_bytes, cfg.overflow);
        resize(sh, cfg.max_in_flight.clamp(1, 1_000));
        let _ = self.tx.send(Msg::Retune(buffer::Limits {
            budget: cfg.buffer_budget_bytes,
            overflow: cfg.overflow,
            max_batch_delay: cfg.max_batch_delay,
            journaled: false,
        }));
        Ok(())
    }

    /// Resolves once the core has taken in every submission made before the
    /// call: admitted to the buffer (and its spool), or dropped and counted.
    pub async fn settle(&self) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Msg::Settle(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// Flushes everything buffered, waiting at most `deadline`, then stops.
    /// Every open circuit is probed at once and no wait is longer than half
    /// a second from now on, so the whole deadline is used. Whatever is
    /// still buffered or in flight at the deadline stays in the spool for
    /// the next start (with `spool_dir`), or is abandoned and counted as
    /// `shutdown` drops. Later submissions are dropped as `shutdown`. A
    /// second call reports nothing new.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Msg::Drain { deadline, reply }).is_err() {
            return DrainReport {
                completed: true,
                ..DrainReport::default()
            };
        }
        answer.await.unwrap_or(DrainReport {
            completed: true,
            ..DrainReport::default()
        })
    }
}
