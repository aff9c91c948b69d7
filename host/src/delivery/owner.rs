//! The owner: the one task of a sink's delivery core that owns what changes —
//! the buffer and the spool's bookkeeping — and runs the lifecycle. It takes
//! messages (submissions, senders' results, the spool thread's reports, the
//! drain) one at a time, decides, and hands work out: due chunks to sender
//! tasks (one per key at a time, tracked), planned disk work to the spool's
//! thread. It never waits for the network or the disk; what readers need
//! (gauges, spool stats) it publishes after every message.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tokio_util::time::{DelayQueue, delay_queue};

use super::batch::BatchKey;
use super::buffer::{Buffer, Journal, Limits, Origin, Step};
use super::config::DeliveryConfig;
use super::health::HealthState;
use super::item::Item;
use super::lifecycle::Lifecycle;
use super::rate::AdaptiveRate;
use super::record::RecordItems as _;
use super::shared::{DrainReport, Gauges, Marks, Msg, Shared};
use super::sink::Sink;
use super::spool::SyncPolicy;
use super::spool::io::SpoolFs;
use super::spool::io::{Io, Op, Report};
use super::spool::{EventRef, Recovered, Spool, SpoolOptions, frame};
use super::{observe, policy, send};
use crate::event::Target;
use crate::ledger::{DropReason, Ledger, StatsSnapshot};

/// Room kept free for the header and KEY frame of a new segment.
const SEGMENT_SLACK: u64 = 4096;
/// After the drain's deadline, how long senders get to give their events back.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long the final sync of the spool may take at the end of a drain.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Spool errors after the first are logged at most this often (all are counted).
const IO_LOG_EVERY: Duration = Duration::from_secs(60);

/// The spool as the buffer's journal: its budget, what an event costs on
/// disk, and acknowledgements.
impl Journal for Option<Spool> {
    fn over_budget(&self, extra: u64) -> bool {
        self.as_ref()
            .is_some_and(|s| s.bytes() + extra + SEGMENT_SLACK > s.max_bytes())
    }

    fn cost(&self, job: &str, message: &str) -> u64 {
        if self.is_some() {
            frame::event_len(job, message) as u64
        } else {
            0
        }
    }

    fn resolved(&mut self, key: &BatchKey, lo: u64, hi: u64) {
        if let Some(s) = self {
            s.ack(key, lo, hi);
        }
    }

    fn flush(&mut self) {
        if let Some(s) = self {
            s.flush_acks();
        }
    }
}

/// Opens the spool (off the runtime's workers), starts its thread and the
/// owner task, and hands back the core's handle.
pub(super) async fn start(
    name: Arc<str>,
    sink: Arc<dyn Sink>,
    cfg: DeliveryConfig,
    ledger: Ledger,
    fs: Arc<dyn SpoolFs>,
) -> anyhow::Result<(Arc<Shared>, mpsc::UnboundedSender<Msg>)> {
    let opened = match &cfg.spool_dir {
        Some(dir) => {
            let opts = SpoolOptions {
                sink: name.clone(),
                dir: dir.clone(),
                max_bytes: cfg.spool_max_bytes,
                sync: cfg.spool_sync,
            };
            let fs = fs.clone();
            let opened = tokio::task::spawn_blocking(move || Spool::open(opts, &*fs))
                .await
                .map_err(|e| anyhow!("spool_dir {}: opening failed: {e}", dir.display()))?;
            Some(opened.map_err(|e| super::spool::unusable_dir(dir, &e))?)
        }
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let marks = match (&opened, cfg.spool_sync) {
        (None, _) => Marks::None,
        (Some(_), SyncPolicy::Always) => Marks::Durable,
        (Some(_), _) => Marks::Written,
    };
    let limits = Limits {
        budget: cfg.buffer_budget_bytes,
        overflow: cfg.overflow,
        max_batch_delay: cfg.max_batch_delay,
        journaled: opened.is_some() && cfg.spool_sync != SyncPolicy::Never,
    };
    let io = match &opened {
        Some((spool, _)) => {
            let to_owner = tx.downgrade();
            let io = Io::spawn(
                spool.dir().to_path_buf(),
                fs,
                cfg.spool_sync,
                Box::new(move |r| {
                    if let Some(tx) = to_owner.upgrade() {
                        let _ = tx.send(Msg::Io(r));
                    }
                }),
            )
            .map_err(|e| anyhow!("spool: cannot start its thread: {e}"))?;
            Some(io)
        }
        None => None,
    };
    let first_seq = opened.as_ref().map_or(0, |(s, _)| s.next_seq());
    let shared = Arc::new(Shared {
        health: HealthState::new(cfg.circuit_failure_threshold, cfg.circuit_open_max),
        rate: AdaptiveRate::new(cfg.put_rate_per_sec),
        policy: std::sync::RwLock::new(policy::Policy::of(&cfg, sink.can_create())),
        in_flight: tokio::sync::Semaphore::new(cfg.max_in_flight.clamp(1, 1_000)),
        in_flight_limit: cfg.max_in_flight.clamp(1, 1_000).into(),
        state: super::lifecycle::State::new(),
        cancel: tokio_util::sync::CancellationToken::new(),
        gauges: Gauges::default(),
        inbox: super::inbox::Inbox::new(cfg.buffer_budget_bytes, cfg.overflow),
        marks,
        name,
        sink: std::sync::RwLock::new(sink),
        ledger,
        cfg,
    });
    observe::register(&shared);
    let (spool, recovered) = match opened {
        Some((s, r)) => (Some(s), Some(r)),
        None => (None, None),
    };
    let owner = Owner {
        shared: shared.clone(),
        rx,
        tx: tx.downgrade(),
        buffer: Buffer::new(limits, first_seq),
        spool,
        io,
        extra_ops: Vec::new(),
        timers: DelayQueue::new(),
        timer_keys: HashMap::new(),
        tracker: TaskTracker::new(),
        drain: None,
        kept: 0,
        memory_only: Vec::new(),
        io_log: IoLog::default(),
        gave_up: false,
        settled: Vec::new(),
        stopped: false,
    };
    tokio::spawn(owner.run(recovered));
    Ok((shared, tx))
}

/// A drain in progress.
struct Drain {
    start: Instant,
    end: Instant,
    before: StatsSnapshot,
    reply: oneshot::Sender<DrainReport>,
    /// The deadline passed and senders were told to give their events back.
    cancelled_at: Option<Instant>,
}

/// Rate limit of spool error lines.
#[derive(Default)]
struct IoLog {
    last: Option<Instant>,
    suppressed: u64,
}

struct Owner {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// For the senders; weak, so the channel closes once every handle is gone.
    tx: mpsc::WeakUnboundedSender<Msg>,
    buffer: Buffer,
    spool: Option<Spool>,
    io: Option<Io>,
    /// Ops that must follow the spool's own (barriers).
    extra_ops: Vec<Op>,
    timers: DelayQueue<BatchKey>,
    timer_keys: HashMap<BatchKey, delay_queue::Key>,
    tracker: TaskTracker,
    drain: Option<Drain>,
    /// Events left in the spool by senders the deadline cut short.
    kept: u64,
    /// Sequence ranges whose write ahead failed: held in memory only.
    memory_only: Vec<(u64, u64)>,
    io_log: IoLog,
    /// Senders did not give their events back within [`CANCEL_GRACE`].
    gave_up: bool,
    /// [`Msg::Settle`]s to answer after the next publish.
    settled: Vec<oneshot::Sender<()>>,
    stopped: bool,
}

impl Owner {
    async fn run(mut self, recovered: Option<Recovered>) {
        if let Some(r) = recovered {
            self.replay(r);
        }
        loop {
            self.flush_io();
            self.publish();
            for reply in self.settled.drain(..) {
                let _ = reply.send(());
            }
            if self.stopped {
                break;
            }
            let deadline = self
                .drain
                .as_ref()
                .map(|d| d.cancelled_at.map_or(d.end, |at| at + CANCEL_GRACE));
            let shared = self.shared.clone();
            let timers = &mut self.timers;
            tokio::select! {
                biased;
                msg = self.rx.recv() => match msg {
                    Some(msg) => {
                        // Submissions made before a message are taken in first.
                        self.take_in();
                        self.handle(msg);
                    }
                    None => {
                        self.abandoned().await;
                        break;
                    }
                },
                _ = shared.inbox.arrived.notified() => self.take_in(),
                Some(expired) = std::future::poll_fn(|cx| timers.poll_expired(cx)), if !timers.is_empty() => {
                    let key = expired.into_inner();
                    self.timer_keys.remove(&key);
                    self.schedule(&key);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                    self.deadline_passed();
                }
            }
            self.check_drain().await;
        }
        self.publish();
    }

    /// Admits every submission waiting in the inbox.
    fn take_in(&mut self) {
        let now = Instant::now();
        for w in self.shared.inbox.take() {
            self.admit(w.key, w.items.into(), Origin::New(now));
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            // Answered once the gauges show what was taken in.
            Msg::Settle(reply) => self.settled.push(reply),
            Msg::Sent { key, undelivered } => {
                let mut unresolved: Vec<u64> = undelivered.iter().map(|i| i.seq).collect();
                unresolved.sort_unstable();
                self.buffer.release(&key, &mut self.spool, &unresolved);
                self.give_back(&key.target, undelivered);
                if !self.shared.cancel.is_cancelled() {
                    self.schedule(&key);
                }
            }
            Msg::Mark {
                key,
                lo,
                hi,
                refused,
                durable,
            } => match &mut self.spool {
                Some(s) => {
                    s.mark(&key, lo, hi, refused);
                    if let Some(reply) = durable {
                        self.extra_ops.push(Op::Barrier { reply });
                    }
                }
                None => {
                    if let Some(reply) = durable {
                        let _ = reply.send(());
                    }
                }
            },
            Msg::Io(report) => self.io_report(report),
            Msg::Retune(limits) => {
                self.buffer.set_limits(limits);
                for key in self.buffer.idle_keys() {
                    self.schedule(&key);
                }
            }
            Msg::Drain { deadline, reply } => self.begin_drain(deadline, reply),
        }
    }

    /// Admits events of `key` (new or replayed), writes the admitted ones
    /// ahead to the spool, counts what did not fit, and looks at the key.
    fn admit(&mut self, key: BatchKey, items: Vec<Item>, origin: Origin) -> usize {
        let limits = self.shared.sink().limits(key.kind);
        let a = self
            .buffer
            .admit(&key, items, origin, &mut self.spool, limits);
        if a.accepted > 0
            && let Some(sp) = &mut self.spool
        {
            let refs: Vec<EventRef<'_>> = self
                .buffer
                .newest(&key, a.accepted)
                .map(|i| EventRef {
                    seq: i.seq,
                    timestamp_ms: i.timestamp_ms,
                    job: &i.job,
                    message: &i.message,
                })
                .collect();
            sp.append(&key, &refs);
        }
        let ledger = &self.shared.ledger;
        for (j, n) in a.refused {
            ledger.dropped(&j, &key.target, DropReason::Overflow, n);
        }
        for (j, n) in a.closed {
            ledger.dropped(&j, &key.target, DropReason::Shutdown, n);
        }
        // Evicted events may belong to other jobs and targets.
        for ((t, j), n) in a.evicted {
            ledger.dropped(&j, &t, DropReason::Overflow, n);
        }
        if a.accepted > 0 {
            self.schedule(&key);
        }
        a.accepted
    }

    /// Looks at `key`: sends its due chunk, or waits for its time (or for
    /// durability, or for its sender).
    fn schedule(&mut self, key: &BatchKey) {
        let draining = self.shared.draining();
        match self.buffer.take_due(key, Instant::now(), draining) {
            Step::Send(chunk) => {
                self.cancel_timer(key);
                self.spawn_sender(key.clone(), chunk);
            }
            Step::Wait(at) => match self.timer_keys.get(key) {
                Some(t) => self.timers.reset_at(t, at.into()),
                None => {
                    let t = self.timers.insert_at(key.clone(), at.into());
                    self.timer_keys.insert(key.clone(), t);
                }
            },
            Step::WaitDurable | Step::Busy | Step::Idle => self.cancel_timer(key),
        }
    }

    fn cancel_timer(&mut self, key: &BatchKey) {
        if let Some(t) = self.timer_keys.remove(key) {
            self.timers.remove(&t);
        }
    }

    fn spawn_sender(&mut self, key: BatchKey, chunk: Vec<Item>) {
        match self.tx.upgrade() {
            Some(tx) => {
                self.tracker
                    .spawn(send::run(self.shared.clone(), tx, key, chunk));
            }
            // Every handle is gone: nobody will drain; keep what the spool holds.
            None => {
                let mut seqs: Vec<u64> = chunk.iter().map(|i| i.seq).collect();
                seqs.sort_unstable();
                self.buffer.release(&key, &mut self.spool, &seqs);
                self.give_back(&key.target, chunk);
            }
        }
    }

    /// Events a sender could not resolve before the deadline: those written
    /// ahead stay in the spool for the next start; the others (no spool, or
    /// their write failed) are lost (`shutdown`).
    fn give_back(&mut self, target: &Target, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let (lost, kept): (Vec<Item>, Vec<Item>) = if self.spool.is_some() {
            items.into_iter().partition(|i| {
                self.memory_only
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&i.seq))
            })
        } else {
            (items, Vec::new())
        };
        self.kept += kept.len() as u64;
        self.shared
            .ledger
            .drop_items(target, DropReason::Shutdown, lost.iter());
    }

    fn io_report(&mut self, report: Report) {
        match report {
            Report::Durable { below } => {
                for key in self.buffer.set_durable(below) {
                    self.schedule(&key);
                }
            }
            Report::EventsFailed {
                span: (key, lo, hi),
                id,
                error,
            } => {
                if let Some(s) = &mut self.spool {
                    s.write_failed(&key, id, lo, hi);
                }
                let oldest = self.buffer.oldest_seq();
                self.memory_only
                    .retain(|(_, hi)| oldest.is_some_and(|o| *hi >= o));
                self.memory_only.push((lo, hi));
                self.buffer.set_durable_key(&key);
                self.schedule(&key);
                self.log_io("writing events ahead", &error, true);
            }
            Report::Failed { what, error } => {
                if let Some(s) = &mut self.spool {
                    s.io_failed();
                }
                self.log_io(what, &error, false);
            }
        }
    }

    /// Logs a spool error: the first at once, later ones at most once per
    /// [`IO_LOG_EVERY`] with the number left out (all are counted).
    fn log_io(&mut self, what: &str, error: &str, events_in_memory: bool) {
        let log = &mut self.io_log;
        if log.last.is_some_and(|t| t.elapsed() < IO_LOG_EVERY) {
            log.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut log.suppressed);
        log.last = Some(Instant::now());
        let dir = self
            .spool
            .as_ref()
            .map(|s| s.dir().display().to_string())
            .unwrap_or_default();
        if events_in_memory {
            tracing::error!(sink = %self.shared.name, spool_dir = %dir, error, similar_errors_not_logged = suppressed,
                "spool: {what} failed; those events are kept in memory only until delivered (check free space and the volume)");
        } else {
            tracing::warn!(sink = %self.shared.name, spool_dir = %dir, error, similar_errors_not_logged = suppressed,
                "spool: {what} failed; nothing is lost, but after a crash some delivered events may be sent again");
        }
    }

    /// Hands the planned disk work to the spool's thread.
    fn flush_io(&mut self) {
        let Some(io) = &self.io else {
            return;
        };
        let mut ops = self.spool.as_mut().map(Spool::take_ops).unwrap_or_default();
        ops.append(&mut self.extra_ops);
        if !ops.is_empty() && !io.send(ops) {
            tracing::error!(sink = %self.shared.name, "spool: its thread is gone; events are kept in memory only");
        }
    }

    /// Publishes the gauges readers see without asking the owner.
    fn publish(&self) {
        let (events, bytes) = self.buffer.gauges();
        let g = &self.shared.gauges;
        g.events.store(events as u64, Ordering::Relaxed);
        g.bytes.store(bytes as u64, Ordering::Relaxed);
        if let Some(s) = &self.spool {
            *g.spool.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.stats());
        }
    }

    /// Queues what a previous process left in the spool, before anything
    /// new; once it is written again, the old files are deleted.
    fn replay(&mut self, recovered: Recovered) {
        let Recovered { streams, report } = recovered;
        let sink = &self.shared.name;
        let dir = self
            .spool
            .as_ref()
            .map(|s| s.dir().display().to_string())
            .unwrap_or_default();
        if report.events > 0
            || report.corrupt_records > 0
            || !report.foreign.is_empty()
            || !report.unreadable.is_empty()
        {
            tracing::info!(
                sink = %sink,
                spool_dir = %dir,
                events = report.events,
                streams = streams.len(),
                segments = report.segments,
                corrupt_records = report.corrupt_records,
                corrupt_bytes = report.corrupt_bytes,
                foreign_files = report.foreign.len(),
                unreadable_segments = report.unreadable.len(),
                possible_duplicates = report.possible_duplicates,
                "spool: replaying events left by the previous run before any new ones"
            );
        }
        if report.possible_duplicates > 0 {
            tracing::warn!(
                sink = %sink,
                events = report.possible_duplicates,
                "spool: some replayed events were in a request whose answer was lost in a crash; \
                 the service may already hold them, so they may appear twice (see event_id in docs/delivery.md)"
            );
        }
        let now = Instant::now();
        let mut replayed = 0u64;
        for (key, events) in streams {
            let items: Vec<Item> = events
                .into_iter()
                .map(|e| Item {
                    job: e.job,
                    timestamp_ms: e.timestamp_ms,
                    message: e.message,
                    seq: e.seq,
                })
                .collect();
            replayed += self.admit(key, items, Origin::Replayed(now)) as u64;
        }
        if let Some(s) = &mut self.spool {
            s.note_replayed(replayed);
            s.retire_recovered();
        }
    }

    fn begin_drain(&mut self, deadline: Duration, reply: oneshot::Sender<DrainReport>) {
        if self.drain.is_some() {
            let _ = reply.send(DrainReport {
                completed: true,
                ..DrainReport::default()
            });
            return;
        }
        let start = Instant::now();
        self.shared.state.advance(Lifecycle::Draining);
        self.shared.health.probe_all_now();
        self.drain = Some(Drain {
            start,
            end: start + deadline,
            before: self.shared.ledger.snapshot(),
            reply,
            cancelled_at: None,
        });
        for key in self.buffer.idle_keys() {
            self.schedule(&key);
        }
    }

    /// The deadline passed: senders give back what they hold; once they all
    /// have (or did not in time), the drain ends.
    fn deadline_passed(&mut self) {
        let Some(d) = &mut self.drain else {
            return;
        };
        if d.cancelled_at.is_none() {
            d.cancelled_at = Some(Instant::now());
            self.shared.cancel.cancel();
            self.tracker.close();
        } else {
            tracing::error!(
                sink = %self.shared.name,
                senders = self.buffer.busy(),
                "delivery senders did not stop after the drain deadline; their events are reported as undelivered"
            );
            self.gave_up = true;
        }
    }

    /// Ends the drain when everything is resolved, or when the deadline
    /// passed and every sender has given its events back.
    async fn check_drain(&mut self) {
        let Some(d) = &self.drain else {
            return;
        };
        if d.cancelled_at.is_none() {
            if self.buffer.is_empty() {
                self.finish(true).await;
            }
        } else if self.buffer.busy() == 0 || self.gave_up {
            self.finish(false).await;
        }
    }

    async fn finish(&mut self, completed: bool) {
        let Some(d) = self.drain.take() else {
            return;
        };
        self.shared.state.advance(Lifecycle::Stopped);
        self.shared.cancel.cancel();
        self.tracker.close();
        self.close_buffer().await;
        let ledger = &self.shared.ledger;
        ledger.flush_drop_log();
        let after = ledger.snapshot();
        let mut report = report_between(&d.before, &after, d.start.elapsed(), completed);
        report.spooled = self.kept;
        report.spool = self.spool.as_ref().map(Spool::stats);
        let sink = &self.shared.name;
        if report.undelivered > 0 {
            tracing::error!(
                sink = %sink,
                undelivered = report.undelivered,
                per_job = ?report.undelivered_per_job,
                "drain deadline passed with events undelivered"
            );
        }
        if self.kept > 0 {
            tracing::warn!(
                sink = %sink,
                events = self.kept,
                "drain deadline passed: undelivered events stay in the spool and are sent after the next start"
            );
        }
        self.publish();
        // Unlock the spool directory before answering: whoever waited for
        // the drain may start the next core on it at once.
        self.spool = None;
        let _ = d.reply.send(report);
        self.stopped = true;
    }

    /// Closes the buffer (what is left stays in the spool, or is lost as
    /// `shutdown`) and makes the spool durable for the next start.
    async fn close_buffer(&mut self) {
        // Never admitted, so never spooled: lost.
        for w in self.shared.inbox.close() {
            self.shared
                .ledger
                .drop_items(&w.key.target, DropReason::Shutdown, w.items.iter());
        }
        for (target, items) in self.buffer.close() {
            self.give_back(&target, items);
        }
        let Some(io) = self.io.take() else {
            return;
        };
        let mut ops = self.spool.as_mut().map(Spool::take_ops).unwrap_or_default();
        let (reply, done) = oneshot::channel();
        ops.push(Op::Close { reply });
        if !io.send(ops) {
            return;
        }
        match tokio::time::timeout(CLOSE_GRACE, done).await {
            Ok(Ok(errors)) => {
                for e in errors {
                    tracing::error!(sink = %self.shared.name, error = %e, "spool: final fdatasync failed");
                }
            }
            Ok(Err(_)) => {}
            Err(_) => tracing::error!(
                sink = %self.shared.name,
                "spool: the final sync did not finish within {CLOSE_GRACE:?}; the disk may be stalled"
            ),
        }
    }

    /// Every handle is gone without a drain: stop; what the spool holds
    /// stays there, the rest is lost as `shutdown`.
    async fn abandoned(&mut self) {
        self.shared.state.advance(Lifecycle::Stopped);
        self.shared.cancel.cancel();
        self.tracker.close();
        self.close_buffer().await;
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
