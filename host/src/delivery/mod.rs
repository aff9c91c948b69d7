//! CloudWatch Logs delivery: takes the events of guest runs
//! ([`Submission`]s) and ships them with `PutLogEvents`, never losing an event
//! it could have delivered and counting every one it could not.
//!
//! The stage is split by concern, in the spirit of amazon-cloudwatch-agent's
//! `internal/pusher` and Vector's `sinks/aws_cloudwatch_logs`:
//!
//! * [`config`] — [`DeliveryConfig`] / [`AwsSettings`] and their validation.
//! * [`limits`] — the PutLogEvents limits and name rules.
//! * `batch` — per-(target, kind) queues, the pre-send filter and the request
//!   builder (stable sort, ≤ 10,000 events, ≤ 1 MiB with +26 per event, span < 24 h).
//! * `worker` — one task per (target, kind) with buffered events: flushes when
//!   a batch is full or `max_batch_delay` has passed, one request at a time so
//!   a stream's batches arrive in order.
//! * `send` — one batch through rate limiter, in-flight bound and retry loop:
//!   typed retry by error code, split on InvalidParameter, lazy creation on
//!   ResourceNotFound, rejectedLogEventsInfo read into the ledger.
//! * `target` — lazy creation of streams and groups, cache of known targets.
//! * [`health`] — per-target circuit breakers and credential state.
//! * `record` — what delivery tells the [`Ledger`] (which owns every counter).
//! * `client` — the AWS client from the default credential chain.
//!
//! Batches are keyed by target **and** payload kind: JSON log lines and EMF
//! documents for the same stream travel in separate requests, so only EMF
//! requests carry `x-amzn-logs-format: json/emf`.
//!
//! Memory is bounded by `buffer_budget_bytes` over everything held (queued
//! and in requests being sent or retried); when full the overflow policy
//! evicts queued events (in-flight ones cannot be evicted) and counts them.

mod batch;
mod client;
pub mod config;
pub mod health;
pub mod limits;
mod record;
mod retry;
mod send;
mod target;
mod worker;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::event::{PayloadKind, Submission, Target};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};

pub use client::client_from_settings;
pub use config::{AwsSettings, DeliveryConfig, OverflowPolicy, RETENTION_DAYS};
pub use health::{CredentialProblem, Health, OpenCircuit};

use batch::{Item, KeyQueue, TimeWindow, prefilter};
use health::HealthState;
use record::RecordItems as _;
use target::Targets;

/// Batches are formed per target and payload kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BatchKey {
    /// Where the batch goes.
    pub target: Arc<Target>,
    /// JSON log lines or EMF documents.
    pub kind: PayloadKind,
}

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
}

pub(crate) struct QueueState {
    pub q: KeyQueue,
    pub first_arrival: Option<Instant>,
    pub notify: Arc<Notify>,
    pub has_worker: bool,
}

#[derive(Default)]
pub(crate) struct Buffer {
    pub queues: HashMap<BatchKey, QueueState>,
    pub pending_events: usize,
    pub pending_bytes: usize,
    pub held_events: usize,
    pub held_bytes: usize,
    pub next_seq: u64,
    pub draining: bool,
    pub closed: bool,
    pub workers: usize,
}

/// State shared by the handle, the workers and the senders.
pub(crate) struct Shared {
    pub cfg: Arc<DeliveryConfig>,
    pub client: aws_sdk_cloudwatchlogs::Client,
    pub ledger: Ledger,
    pub health: HealthState,
    pub targets: Targets,
    pub put_limiter: DefaultDirectRateLimiter,
    pub in_flight: Semaphore,
    pub buffer: Mutex<Buffer>,
    pub cancel: CancellationToken,
    pub progress: Notify,
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn lock_buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
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
    /// Counts into a ledger of its own (see [`Delivery::ledger`]).
    pub fn start(cfg: DeliveryConfig, client: aws_sdk_cloudwatchlogs::Client) -> Delivery {
        let ledger = Ledger::new(cfg.drop_log_interval);
        Delivery::start_with_ledger(cfg, client, ledger)
    }

    /// As [`Delivery::start`], counting into `ledger` and registering the
    /// buffer gauges in its metrics registry.
    pub fn start_with_ledger(
        cfg: DeliveryConfig,
        client: aws_sdk_cloudwatchlogs::Client,
        ledger: Ledger,
    ) -> Delivery {
        let conf = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(client::timeout_config(cfg.request_timeout))
            .build();
        let client = aws_sdk_cloudwatchlogs::Client::from_conf(conf);
        let cfg = Arc::new(cfg);
        let rate = NonZeroU32::new(cfg.put_rate_per_sec).unwrap_or(NonZeroU32::MIN);
        let shared = Arc::new(Shared {
            health: HealthState::new(cfg.circuit_failure_threshold, cfg.circuit_open_for),
            targets: Targets::new(client.clone(), cfg.clone(), ledger.clone()),
            put_limiter: RateLimiter::direct(Quota::per_second(rate)),
            in_flight: Semaphore::new(cfg.max_in_flight.clamp(1, 1_000)),
            buffer: Mutex::new(Buffer::default()),
            cancel: CancellationToken::new(),
            progress: Notify::new(),
            runtime: tokio::runtime::Handle::current(),
            ledger,
            client,
            cfg,
        });
        register_gauges(&shared);
        Delivery { shared }
    }

    /// The ledger this stage counts into.
    pub fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    /// Queues a guest run's events for delivery. Never blocks and never
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
        let key = BatchKey {
            target: target.clone(),
            kind,
        };
        let mut evicted: HashMap<(Arc<Target>, Arc<str>), u64> = HashMap::new();
        let mut refused = 0u64;
        let mut spawn: Option<Arc<Notify>> = None;
        if !items.is_empty() {
            let mut b = self.shared.lock_buffer();
            if b.closed {
                *drops.entry(DropReason::Shutdown).or_default() += items.len() as u64;
            } else {
                let budget = cfg.buffer_budget_bytes;
                let mut accepted = VecDeque::with_capacity(items.len());
                for mut it in items {
                    let size = it.size();
                    if b.pending_bytes + b.held_bytes + size > budget
                        && cfg.overflow == OverflowPolicy::DropOldest
                    {
                        evict_oldest(&mut b, &target, &mut accepted, size, budget, &mut evicted);
                    }
                    if b.pending_bytes + b.held_bytes + size > budget {
                        refused += 1;
                        continue;
                    }
                    it.seq = b.next_seq;
                    b.next_seq += 1;
                    b.pending_bytes += size;
                    b.pending_events += 1;
                    accepted.push_back(it);
                }
                if !accepted.is_empty() {
                    let draining = b.draining;
                    let qs = b.queues.entry(key.clone()).or_insert_with(|| QueueState {
                        q: KeyQueue::default(),
                        first_arrival: None,
                        notify: Arc::new(Notify::new()),
                        has_worker: false,
                    });
                    if qs.first_arrival.is_none() {
                        qs.first_arrival = Some(Instant::now());
                    }
                    for it in accepted {
                        qs.q.push(it);
                    }
                    if !qs.has_worker {
                        qs.has_worker = true;
                        spawn = Some(qs.notify.clone());
                    } else if draining || qs.q.is_full() {
                        qs.notify.notify_one();
                    }
                    if spawn.is_some() {
                        b.workers += 1;
                    }
                }
            }
        }
        if let Some(notify) = spawn {
            let shared = self.shared.clone();
            self.shared
                .runtime
                .spawn(worker::run(shared, key.clone(), notify));
        }
        if refused > 0 {
            *drops.entry(DropReason::Overflow).or_default() += refused;
        }
        for (reason, n) in drops {
            acc.dropped(&job, &target, reason, n);
        }
        // Evicted events may belong to other jobs and targets.
        for ((t, j), n) in evicted {
            acc.dropped(&j, &t, DropReason::Overflow, n);
        }
    }

    /// A copy of all counters plus the buffer gauges.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.shared.ledger.snapshot();
        let g = buffer_gauges(&self.shared);
        (s.buffered_events, s.buffered_bytes, s.in_flight_requests) =
            (g.events, g.bytes, g.in_flight);
        s
    }

    /// Open circuits and credential problems, if any.
    pub fn health(&self) -> Health {
        let mut h = self.shared.health.snapshot();
        let b = self.shared.lock_buffer();
        h.buffered_events = (b.pending_events + b.held_events) as u64;
        h.closed = b.closed;
        h
    }

    /// Flushes everything buffered, waiting at most `deadline`, then stops:
    /// whatever is still buffered or in flight is abandoned, counted as
    /// `shutdown` drops and listed in the report. Later submissions are
    /// dropped as `shutdown`.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        let start = Instant::now();
        let end = start + deadline;
        let before = self.shared.ledger.snapshot();
        {
            let mut b = self.shared.lock_buffer();
            b.draining = true;
            for qs in b.queues.values() {
                qs.notify.notify_one();
            }
        }
        let completed = loop {
            let notified = self.shared.progress.notified();
            let (left, workers) = {
                let b = self.shared.lock_buffer();
                (b.pending_events + b.held_events, b.workers)
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
            let workers = self.shared.lock_buffer().workers;
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
        let leftovers: Vec<(Arc<Target>, Vec<Item>)> = {
            let mut b = self.shared.lock_buffer();
            b.closed = true;
            let queues = std::mem::take(&mut b.queues);
            b.pending_events = 0;
            b.pending_bytes = 0;
            queues
                .into_iter()
                .map(|(k, qs)| (k.target, qs.q.items.into_iter().collect()))
                .collect()
        };
        for (t, items) in &leftovers {
            self.shared
                .ledger
                .drop_items(t, DropReason::Shutdown, items.iter());
        }
        self.shared.ledger.flush_drop_log();
        let after = self.shared.ledger.snapshot();
        let report = report_between(&before, &after, start.elapsed(), completed);
        if report.undelivered > 0 {
            tracing::error!(
                undelivered = report.undelivered,
                per_job = ?report.undelivered_per_job,
                "drain deadline passed with events undelivered"
            );
        }
        report
    }
}

/// Evicts queued events, oldest arrival first across all queues, until
/// `size` more bytes fit the budget or nothing queued is left; events of the
/// submission being queued (`accepted`, all newer) are evicted last. Only
/// (target, job) counts are kept, so evicted messages are freed at once.
fn evict_oldest(
    b: &mut Buffer,
    this_target: &Arc<Target>,
    accepted: &mut VecDeque<Item>,
    size: usize,
    budget: usize,
    evicted: &mut HashMap<(Arc<Target>, Arc<str>), u64>,
) {
    let Buffer {
        queues,
        pending_bytes,
        pending_events,
        held_bytes,
        ..
    } = b;
    while *pending_bytes + *held_bytes + size > budget {
        // The queue with the oldest front, and the next-oldest front elsewhere.
        let mut oldest: Option<(u64, &BatchKey)> = None;
        let mut runner_up = u64::MAX;
        for (k, qs) in queues.iter() {
            let Some(front) = qs.q.items.front() else {
                continue;
            };
            match oldest {
                Some((seq, _)) if front.seq > seq => runner_up = runner_up.min(front.seq),
                Some((seq, _)) => {
                    runner_up = runner_up.min(seq);
                    oldest = Some((front.seq, k));
                }
                None => oldest = Some((front.seq, k)),
            }
        }
        match oldest.map(|(_, k)| k.clone()) {
            Some(k) => {
                let Some(qs) = queues.get_mut(&k) else {
                    break;
                };
                // Pop a run from this queue while it stays the oldest.
                while *pending_bytes + *held_bytes + size > budget
                    && qs.q.items.front().is_some_and(|f| f.seq <= runner_up)
                {
                    let Some(it) = qs.q.pop_oldest() else {
                        break;
                    };
                    *pending_bytes = pending_bytes.saturating_sub(it.size());
                    *pending_events = pending_events.saturating_sub(1);
                    *evicted.entry((k.target.clone(), it.job)).or_default() += 1;
                }
            }
            None => {
                let Some(it) = accepted.pop_front() else {
                    break;
                };
                *pending_bytes = pending_bytes.saturating_sub(it.size());
                *pending_events = pending_events.saturating_sub(1);
                *evicted.entry((this_target.clone(), it.job)).or_default() += 1;
            }
        }
    }
}

/// What the buffer holds right now.
struct BufferGauges {
    events: u64,
    bytes: u64,
    in_flight: u64,
}

fn buffer_gauges(shared: &Shared) -> BufferGauges {
    let b = shared.lock_buffer();
    let (events, bytes) = (
        b.pending_events + b.held_events,
        b.pending_bytes + b.held_bytes,
    );
    drop(b);
    let in_flight = shared.cfg.max_in_flight.clamp(1, 1_000) - shared.in_flight.available_permits();
    BufferGauges {
        events: events as u64,
        bytes: bytes as u64,
        in_flight: in_flight as u64,
    }
}

/// Registers the buffer gauges, read at each scrape (0 once the stage is gone).
fn register_gauges(shared: &Arc<Shared>) {
    type Read = fn(&BufferGauges) -> u64;
    let gauges: [(&str, &str, Read); 3] = [
        (
            "cwpub_buffered_events",
            "Events buffered or held by requests in progress.",
            |g| g.events,
        ),
        (
            "cwpub_buffered_bytes",
            "Bytes (message + 26 per event) buffered or held by requests in progress.",
            |g| g.bytes,
        ),
        (
            "cwpub_in_flight_requests",
            "PutLogEvents requests on the wire.",
            |g| g.in_flight,
        ),
    ];
    for (name, help, read) in gauges {
        let weak = Arc::downgrade(shared);
        shared.ledger.metrics().gauge_fn(name, help, move || {
            weak.upgrade().map_or(0, |s| {
                i64::try_from(read(&buffer_gauges(&s))).unwrap_or(i64::MAX)
            })
        });
    }
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
