//! CloudWatch Logs delivery: takes the events of guest runs
//! ([`Submission`]s) and ships them with `PutLogEvents`, never losing an event
//! it could have delivered and counting every one it could not.
//!
//! The stage is split by concern, in the spirit of amazon-cloudwatch-agent's
//! `internal/pusher` and Vector's `sinks/aws_cloudwatch_logs`:
//!
//! * [`config`] — [`DeliveryConfig`] / [`AwsSettings`] and their validation.
//! * [`limits`] — the PutLogEvents limits and name rules.
//! * `batch` — per-key queues, the pre-send filter and the request builder
//!   (stable sort, ≤ 10,000 events, ≤ 1 MiB with +26 per event, span < 24 h).
//! * `buffer` — the one owner of everything held: admission under the
//!   budget and overflow policy, due chunks, release; invariants checked.
//! * [`spool`] — the optional write-ahead log on disk (`spool_dir`): events
//!   survive crashes and restarts, and replay in order at start.
//! * `durable` — the spool as the buffer's journal, and the syncer thread
//!   that makes appends durable in groups.
//! * `worker` — one task per key with buffered events: takes due chunks and
//!   sends their requests one at a time, so a stream's batches arrive in order.
//! * `policy` — the retry policy as one pure function, and what each outcome
//!   means for the circuit breaker.
//! * `send` — executes the policy for one batch: breaker, rate, PutLogEvents.
//! * `rate` — the shared PutLogEvents rate, adapted to throttling (AIMD).
//! * [`health`] — per-target circuit breakers and credential state.
//! * `target` — lazy creation of streams and groups, cache of known targets.
//! * `record` — what delivery tells the [`Ledger`] (which owns every counter).
//! * `observe` — delivery's live metrics (rate, circuits, buffer, spool) in
//!   the ledger's registry.
//! * `client` — the AWS client from the default credential chain.
//!
//! Batches are keyed by target **and** payload kind: JSON log lines and EMF
//! documents for the same stream travel in separate requests, so only EMF
//! requests carry `x-amzn-logs-format: json/emf`.
//!
//! Memory is bounded by `buffer_budget_bytes` over everything held (queued
//! and in requests being sent or retried), disk by `spool_max_bytes`; when
//! either is full the overflow policy evicts queued events (in-flight ones
//! cannot be evicted) or refuses new ones, and counts them.

mod batch;
mod buffer;
mod client;
pub mod config;
mod durable;
pub mod health;
pub mod limits;
mod observe;
mod policy;
mod rate;
mod record;
pub(crate) mod retry;
mod send;
pub mod spool;
mod target;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::event::{Submission, Target};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};

pub(crate) use batch::{TimeWindow, prefilter};
pub use client::{check_endpoint_url, check_region, client_from_settings};
pub use config::{AwsSettings, DeliveryConfig, OverflowPolicy, RETENTION_DAYS};
pub use health::{CircuitState, CredentialProblem, Health, OpenCircuit};
pub use spool::{SpoolStats, SyncPolicy};

use batch::Item;
use buffer::{Buffer, Limits, Wake};
use health::HealthState;
use rate::AdaptiveRate;
use record::RecordItems as _;
use spool::{EventRef, Spool, SpoolOptions};
use target::Targets;

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
    /// Events accepted by CloudWatch during the drain.
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

/// The buffer and the spool, changed together under one lock so that
/// admission, the write-ahead append and acknowledgements stay in order.
pub(crate) struct Core {
    /// Everything held in memory.
    pub buffer: Buffer,
    /// The write-ahead log, when `spool_dir` is set.
    pub spool: Option<Spool>,
}

/// State shared by the handle, the workers, the senders and the syncer.
pub(crate) struct Shared {
    pub cfg: Arc<DeliveryConfig>,
    pub client: aws_sdk_cloudwatchlogs::Client,
    pub ledger: Ledger,
    pub health: HealthState,
    pub targets: Targets,
    pub rate: AdaptiveRate,
    pub policy: policy::Policy,
    pub in_flight: Semaphore,
    pub core: Mutex<Core>,
    pub syncer: Option<durable::Syncer>,
    pub cancel: CancellationToken,
    /// Cancelled when the drain starts: wakes every pause so waits are re-decided.
    pub drain_started: CancellationToken,
    pub draining: AtomicBool,
    pub progress: Notify,
    /// Events abandoned by cancelled workers that stay in the spool.
    pub kept: AtomicU64,
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn lock_core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once the drain started.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(s) = &self.syncer {
            s.stop();
        }
    }
}

/// The delivery stage handle. Cheap to clone; all clones share one pipeline.
#[derive(Clone)]
pub struct Delivery {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

impl Delivery {
    /// Starts the stage on the current tokio runtime (panics outside one).
    /// The client's own retries are switched off and its timeouts set from
    /// `cfg.request_timeout`, whatever it was built with. `cfg` should have
    /// passed [`DeliveryConfig::validate`]; out-of-range values are clamped.
    /// With `spool_dir` set, the spool is opened (and locked) and what a
    /// previous process left in it is queued before anything else; an
    /// unusable directory is the only error. Counts into a ledger of its own
    /// (see [`Delivery::ledger`]).
    pub fn start(
        cfg: DeliveryConfig,
        client: aws_sdk_cloudwatchlogs::Client,
    ) -> anyhow::Result<Delivery> {
        let ledger = Ledger::new(cfg.drop_log_interval);
        Delivery::start_with_ledger(cfg, client, ledger)
    }

    /// As [`Delivery::start`], counting into `ledger` and registering the
    /// stage's gauges (buffer, rate, circuits, spool) in its metrics registry.
    pub fn start_with_ledger(
        cfg: DeliveryConfig,
        client: aws_sdk_cloudwatchlogs::Client,
        ledger: Ledger,
    ) -> anyhow::Result<Delivery> {
        let conf = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(client::timeout_config(cfg.request_timeout))
            .build();
        let client = aws_sdk_cloudwatchlogs::Client::from_conf(conf);
        let (spool, recovered) = match &cfg.spool_dir {
            Some(dir) => {
                let (spool, recovered) = Spool::open(SpoolOptions {
                    dir: dir.clone(),
                    max_bytes: cfg.spool_max_bytes,
                    sync: cfg.spool_sync,
                })
                .map_err(|e| spool_open_error(dir, &e))?;
                (Some(spool), Some(recovered))
            }
            None => (None, None),
        };
        let cfg = Arc::new(cfg);
        let limits = Limits {
            budget: cfg.buffer_budget_bytes,
            overflow: cfg.overflow,
            max_batch_delay: cfg.max_batch_delay,
            journaled: spool.is_some() && cfg.spool_sync != SyncPolicy::Never,
        };
        let first_seq = spool.as_ref().map_or(0, Spool::next_seq);
        let syncer = limits.journaled.then(durable::Syncer::new);
        let shared = Arc::new(Shared {
            health: HealthState::new(cfg.circuit_failure_threshold, cfg.circuit_open_max),
            targets: Targets::new(client.clone(), cfg.clone(), ledger.clone()),
            rate: AdaptiveRate::new(cfg.put_rate_per_sec),
            policy: policy::Policy {
                backoff_base: cfg.backoff_base,
                backoff_cap: cfg.backoff_cap,
                credential_base: cfg.credential_backoff_base,
                credential_cap: cfg.credential_backoff_cap,
                create_streams: cfg.create_log_streams,
            },
            in_flight: Semaphore::new(cfg.max_in_flight.clamp(1, 1_000)),
            core: Mutex::new(Core {
                buffer: Buffer::new(limits, first_seq),
                spool,
            }),
            syncer,
            cancel: CancellationToken::new(),
            drain_started: CancellationToken::new(),
            draining: AtomicBool::new(false),
            progress: Notify::new(),
            kept: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
            ledger,
            client,
            cfg,
        });
        if let Some(s) = &shared.syncer {
            s.spawn(Arc::downgrade(&shared));
        }
        observe::register(&shared);
        let delivery = Delivery { shared };
        if let Some(recovered) = recovered {
            durable::replay(&delivery.shared, recovered);
        }
        Ok(delivery)
    }

    /// The ledger this stage counts into.
    pub fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    /// Queues a guest run's events for delivery (and, with a spool, writes
    /// them ahead). Never waits for the network or for `fdatasync`, and never
    /// loses silently: every event that cannot be queued is counted as a drop.
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
        let acc = &self.shared.ledger;
        if let Err(why) = limits::check_target(&target) {
            tracing::error!(job = %job, error = %why, "events dropped: invalid CloudWatch target; fix the job's log group/stream");
            acc.dropped(
                &job,
                &target,
                DropReason::InvalidTarget,
                events.len() as u64,
            );
            return;
        }
        let cfg = &self.shared.cfg;
        let window =
            TimeWindow::around(SystemTime::now(), cfg.drop_older_than, cfg.drop_newer_than);
        let mut drops: BTreeMap<DropReason, u64> = BTreeMap::new();
        let mut items = Vec::with_capacity(events.len());
        for ev in events {
            match prefilter(&ev.message, ev.timestamp_ms, cfg.max_event_bytes, window) {
                Ok(()) => items.push(Item {
                    job: job.clone(),
                    timestamp_ms: ev.timestamp_ms,
                    message: ev.message,
                    seq: 0,
                }),
                Err(r) => *drops.entry(r).or_default() += 1,
            }
        }
        let key = BatchKey { target, kind };
        if !items.is_empty() {
            queue(
                &self.shared,
                &key,
                items,
                buffer::Origin::New(Instant::now()),
            );
        }
        for (reason, n) in drops {
            acc.dropped(&job, &key.target, reason, n);
        }
    }

    /// A copy of all counters plus the buffer gauges.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.shared.ledger.snapshot();
        let g = observe::buffer_gauges(&self.shared);
        (s.buffered_events, s.buffered_bytes, s.in_flight_requests) =
            (g.events, g.bytes, g.in_flight);
        s
    }

    /// The spool's gauges and counters (`None` without `spool_dir`).
    pub fn spool_stats(&self) -> Option<SpoolStats> {
        self.shared.lock_core().spool.as_ref().map(Spool::stats)
    }

    /// The PutLogEvents rate allowed now (requests/s), and its ceiling.
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
        let core = self.shared.lock_core();
        h.buffered_events = core.buffer.gauges().0 as u64;
        h.closed = core.buffer.is_closed();
        h
    }

    /// Flushes everything buffered, waiting at most `deadline`, then stops.
    /// Every open circuit is probed at once and no wait is longer than half
    /// a second from now on, so the whole deadline is used. Whatever is
    /// still buffered or in flight at the deadline stays in the spool for
    /// the next start (with `spool_dir`), or is abandoned and counted as
    /// `shutdown` drops. Later submissions are dropped as `shutdown`.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        let start = Instant::now();
        let end = start + deadline;
        let before = self.shared.ledger.snapshot();
        self.shared.draining.store(true, Ordering::Relaxed);
        self.shared.health.probe_all_now();
        self.shared.drain_started.cancel();
        for n in self.shared.lock_core().buffer.begin_drain() {
            n.notify_one();
        }
        let completed = loop {
            let notified = self.shared.progress.notified();
            let (left, workers) = {
                let core = self.shared.lock_core();
                (core.buffer.gauges().0, core.buffer.workers())
            };
            if left == 0 && workers == 0 {
                break true;
            }
            let now = Instant::now();
            if now >= end {
                break left == 0;
            }
            let nap = (end - now).min(Duration::from_millis(50));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        };
        // Stop everything still running; workers count what they held.
        self.shared.cancel.cancel();
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            let workers = self.shared.lock_core().buffer.workers();
            if workers == 0 || Instant::now() >= give_up {
                if workers > 0 {
                    tracing::error!(
                        workers,
                        "delivery workers did not stop after drain; their events are reported as undelivered"
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (leftovers, spooled) = {
            let mut core = self.shared.lock_core();
            let leftovers = core.buffer.close();
            let spooled = core.spool.is_some();
            (leftovers, spooled)
        };
        let mut kept = self.shared.kept.load(Ordering::Relaxed);
        if spooled {
            kept += leftovers.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
            durable::close(&self.shared);
        } else {
            for (t, items) in &leftovers {
                self.shared
                    .ledger
                    .drop_items(t, DropReason::Shutdown, items.iter());
            }
        }
        self.shared.ledger.flush_drop_log();
        let after = self.shared.ledger.snapshot();
        let mut report = report_between(&before, &after, start.elapsed(), completed);
        report.spooled = kept;
        report.spool = self.spool_stats();
        if report.undelivered > 0 {
            tracing::error!(
                undelivered = report.undelivered,
                per_job = ?report.undelivered_per_job,
                "drain deadline passed with events undelivered"
            );
        }
        if kept > 0 {
            tracing::warn!(
                events = kept,
                "drain deadline passed: undelivered events stay in the spool and are sent after the next start"
            );
        }
        report
    }
}

/// Admits `items` for `key` into the buffer and, with a spool, appends the
/// admitted ones to it in the same critical section; wakes or spawns the
/// key's worker; accounts refused and evicted events. The one path for new
/// and replayed events; returns how many were queued.
pub(crate) fn queue(
    shared: &Arc<Shared>,
    key: &BatchKey,
    items: Vec<Item>,
    origin: buffer::Origin,
) -> usize {
    let (admission, sync) = {
        let mut core = shared.lock_core();
        let Core { buffer, spool } = &mut *core;
        let a = buffer.admit(key, items, origin, spool);
        let mut sync = false;
        if a.accepted > 0
            && let Some(sp) = spool
        {
            let refs: Vec<EventRef<'_>> = buffer
                .newest(key, a.accepted)
                .map(|i| EventRef {
                    seq: i.seq,
                    timestamp_ms: i.timestamp_ms,
                    job: &i.job,
                    message: &i.message,
                })
                .collect();
            match sp.append(key, &refs) {
                Ok(()) => sync = true,
                Err(e) => {
                    drop(refs);
                    buffer.set_durable_key(key);
                    tracing::error!(
                        dir = %sp.dir().display(),
                        error = %e,
                        events = a.accepted,
                        "spool: cannot write events ahead; they are kept in memory only until delivered"
                    );
                }
            }
        }
        (a, sync)
    };
    if sync && let Some(s) = &shared.syncer {
        if s.is_running() {
            s.request();
        } else {
            durable::sync_now(shared);
        }
    }
    match admission.wake {
        Some(Wake::Spawn(notify)) => {
            shared
                .runtime
                .spawn(worker::run(shared.clone(), key.clone(), notify));
        }
        Some(Wake::Notify(notify)) => notify.notify_one(),
        None => {}
    }
    let acc = &shared.ledger;
    for (j, n) in admission.refused {
        acc.dropped(&j, &key.target, DropReason::Overflow, n);
    }
    for (j, n) in admission.closed {
        acc.dropped(&j, &key.target, DropReason::Shutdown, n);
    }
    // Evicted events may belong to other jobs and targets.
    for ((t, j), n) in admission.evicted {
        acc.dropped(&j, &t, DropReason::Overflow, n);
    }
    admission.accepted
}

fn report_between(
    before: &StatsSnapshot,
    after: &StatsSnapshot,
    elapsed: Duration,
    completed: bool,
) -> DrainReport {
    let label = DropReason::Shutdown;
    let mut r = DrainReport {
        elapsed,
        completed,
        delivered: after.totals.events_sent - before.totals.events_sent,
        undelivered: after.totals.dropped(label) - before.totals.dropped(label),
        ..DrainReport::default()
    };
    for (job, c) in after.per_job.iter() {
        let n = c.dropped(label) - before.job(job).dropped(label);
        if n > 0 {
            r.undelivered_per_job.insert(job.clone(), n);
        }
    }
    for (t, c) in after.per_target.iter() {
        let n = c.dropped(label) - before.target(t).dropped(label);
        if n > 0 {
            r.undelivered_per_target.insert(t.clone(), n);
        }
    }
    for (reason, n) in &after.totals.drops {
        let d = n - before.totals.dropped(*reason);
        if d > 0 && *reason != label {
            r.dropped_other.insert(*reason, d);
        }
    }
    r
}

/// Why the spool could not be opened, with the fix when it is a matter of
/// permissions or a read-only file system (a container without a volume).
fn spool_open_error(dir: &std::path::Path, e: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    let fix = match e.kind() {
        PermissionDenied | ReadOnlyFilesystem => {
            "; give cwpub a directory it can write there (in a container: a writable volume \
             owned by its user), or remove spool_dir to keep events in memory only"
        }
        _ => "",
    };
    anyhow::anyhow!("spool_dir {}: {e}{fix}", dir.display())
}
