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
pub mod lifecycle;
mod observe;
mod owner;
mod policy;
mod rate;
mod record;
mod send;
pub mod sink;
pub mod spool;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::event::{Submission, Target};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};

pub use batch::{ITEM_OVERHEAD, Item};
pub use config::{DeliveryConfig, MIN_BUDGET_BYTES, OverflowPolicy};
pub use health::{CircuitState, CredentialProblem, Health, OpenCircuit};
pub use lifecycle::Lifecycle;
pub use sink::{Answer, BatchLimits, ErrorClass, EventRules, Failure, Sink};
pub use spool::{SpoolStats, SyncPolicy};

pub(crate) use batch::{TimeWindow, prefilter};
use health::HealthState;
pub(crate) use policy::full_jitter;
use rate::AdaptiveRate;
use spool::io::{OsFs, SpoolFs};

/// Batches are formed per target and payload kind (the spool's streams are the same keys).
pub(crate) use spool::StreamKey as BatchKey;

/// What [`Delivery::drain`] could and could not deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Time the drain took.
    pub elapsed: Duration,
    /// True when everything buffered was delivered (or dropped for a reason
    /// other than the deadline) before the deadline.
    pub completed: bool,
    /// Events accepted during the drain.
    pub delivered: u64,
    /// Events not delivered because the deadline passed (counted as `shutdown` drops).
    pub undelivered: u64,
    /// Undelivered events per job.
    pub undelivered_per_job: BTreeMap<Arc<str>, u64>,
    /// Undelivered events per target.
    pub undelivered_per_target: BTreeMap<Target, u64>,
    /// Events dropped during the drain for any other reason, by reason.
    pub dropped_other: BTreeMap<DropReason, u64>,
    /// Events not delivered before the deadline that stay in the spool and
    /// are sent after the next start (not drops).
    pub spooled: u64,
    /// The spool's state after the drain (`None` without `spool_dir`).
    pub spool: Option<SpoolStats>,
}

/// Sets the in-flight bound to `limit`: permits are added at once; removed
/// ones are taken out as requests give them back.
fn resize(sh: &Arc<Shared>, limit: usize) {
    let old = sh.in_flight_limit.swap(limit, Ordering::AcqRel);
    if limit > old {
        sh.in_flight.add_permits(limit - old);
    } else if limit < old {
        let extra = old - limit;
        let gone = sh.in_flight.forget_permits(extra);
        if gone < extra {
            let sh = sh.clone();
            tokio::spawn(async move {
                if let Ok(p) = sh.in_flight.acquire_many((extra - gone) as u32).await {
                    p.forget();
                }
            });
        }
    }
}

/// What the owner task is told (submissions come through the inbox).
#[derive(Debug)]
pub(crate) enum Msg {
    /// New buffer limits from a reload (`journaled` is kept as it was).
    Retune(buffer::Limits),
    /// Answer once every submission made before this is taken in.
    Settle(oneshot::Sender<()>),
    /// A sender is done with its chunk of `key`: everything resolved but
    /// `undelivered`, which the drain's deadline cut short.
    Sent {
        key: BatchKey,
        undelivered: Vec<Item>,
    },
    /// A request for `[lo, hi]` of `key` is about to go out (`refused`:
    /// it was refused); `durable` answers once the note is durable.
    Mark {
        key: BatchKey,
        lo: u64,
        hi: u64,
        refused: bool,
        durable: Option<oneshot::Sender<()>>,
    },
    /// What the spool's thread reports.
    Io(spool::io::Report),
    /// Flush everything within `deadline`, then stop and report.
    Drain {
        deadline: Duration,
        reply: oneshot::Sender<DrainReport>,
    },
}

/// What the owner publishes for readers that must never wait for it.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub events: AtomicU64,
    pub bytes: AtomicU64,
    pub spool: Mutex<Option<SpoolStats>>,
}

/// What the handle, the owner and the senders share (read-only, or
/// internally synchronised without I/O).
pub(crate) struct Shared {
    /// The sink's name (metrics, logs).
    pub name: Arc<str>,
    /// The settings the core started with (those a reload may not change).
    pub cfg: DeliveryConfig,
    /// The adapter; a reload may swap it (a sender keeps the one it started a chunk with).
    sink: RwLock<Arc<dyn Sink>>,
    pub ledger: Ledger,
    pub health: HealthState,
    pub rate: AdaptiveRate,
    pub policy: RwLock<policy::Policy>,
    pub in_flight: Semaphore,
    /// The in-flight bound in force (the semaphore's size).
    pub in_flight_limit: std::sync::atomic::AtomicUsize,
    pub state: lifecycle::State,
    /// Cancelled at the drain deadline: senders give their events back.
    pub cancel: CancellationToken,
    pub gauges: Gauges,
    /// Submissions not yet taken in by the owner.
    pub inbox: inbox::Inbox,
    /// Whether send markers go to a spool, and must be durable before a send.
    pub marks: Marks,
}

/// Where a sender notes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    /// No spool.
    None,
    /// In the spool, written before the request goes out.
    Written,
    /// In the spool, durable before the request goes out (`spool_sync = "always"`).
    Durable,
}

impl Shared {
    /// True once the drain started.
    pub fn draining(&self) -> bool {
        self.state.draining()
    }

    /// The adapter in force.
    pub fn sink(&self) -> Arc<dyn Sink> {
        self.sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The retry policy in force.
    pub fn policy(&self) -> policy::Policy {
        *self
            .policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

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
        owner::start(self).await
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
