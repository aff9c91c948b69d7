//! The stdout sink: writes each message on its own line, in the order each
//! run produced them, and counts them as delivered. A message that would
//! break line framing (empty, or containing a line break) is dropped and
//! counted instead of being written.
//!
//! Writing happens on the sink's own thread: a pipe whose reader is slow (a
//! log shipper, `| less`) blocks that thread, never a job or an async
//! worker. What waits for it is bounded ([`QUEUE_BUDGET_BYTES`]); a run that
//! does not fit is dropped and counted as `overflow`. The drain waits for the
//! queue to empty, up to its deadline; what is still waiting then is counted
//! as `shutdown`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::delivery::DrainReport;
use crate::event::{Submission, Target};
use crate::ledger::{DropReason, Ledger, Share};

/// Most bytes waiting for stdout at once.
pub const QUEUE_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// One run's lines, waiting to be written.
struct Batch {
    job: Arc<str>,
    target: Arc<Target>,
    lines: String,
    events: u64,
    bytes: u64,
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    bytes: usize,
    /// The batch being written: its job, target and events.
    writing: Option<(Arc<str>, Arc<Target>, u64)>,
    /// The drain gave up on what was left: a write still under way is no longer counted.
    abandoned: bool,
    stop: bool,
}

struct Inner {
    name: Arc<str>,
    ledger: Ledger,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Signalled after every write, for the drain.
    written: Notify,
    pending: AtomicU64,
}

/// Prints messages to the process's stdout.
#[derive(Clone)]
pub struct StdoutSink {
    inner: Arc<Inner>,
}

impl StdoutSink {
    /// A stdout sink named `name`, counting into `ledger`, with its writer thread.
    pub fn new(name: Arc<str>, ledger: Ledger) -> Self {
        let inner = Arc::new(Inner {
            name,
            ledger,
            queue: Mutex::default(),
            wake: Condvar::new(),
            written: Notify::new(),
            pending: AtomicU64::new(0),
        });
        let writer = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("cwpub-stdout".into())
            .spawn(move || write_loop(&writer));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the stdout writer thread; events for stdout are dropped");
            inner.lock().stop = true;
        }
        StdoutSink { inner }
    }

    /// The sink's name.
    pub fn name(&self) -> &Arc<str> {
        &self.inner.name
    }

    /// The ledger holding this sink's counters.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// Events waiting to be written.
    pub fn pending_events(&self) -> u64 {
        self.inner.pending.load(Ordering::Relaxed)
    }

    /// Queues the submission's messages, one per line, for one write.
    pub fn submit(&self, submission: Submission) {
        let Submission {
            job,
            target,
            events,
            ..
        } = submission;
        let (mut empty, mut multiline) = (0, 0);
        let mut lines = String::new();
        let (mut sent, mut bytes) = (0u64, 0u64);
        for event in &events {
            match drop_reason(&event.message) {
                Some(DropReason::EmptyMessage) => empty += 1,
                Some(_) => multiline += 1,
                None => {
                    lines.push_str(&event.message);
                    lines.push('\n');
                    sent += 1;
                    bytes += event.message.len() as u64;
                }
            }
        }
        let ledger = &self.inner.ledger;
        ledger.dropped(&job, &target, DropReason::EmptyMessage, empty);
        ledger.dropped(&job, &target, DropReason::MultilineMessage, multiline);
        if sent == 0 {
            return;
        }
        let refused = {
            let mut q = self.inner.lock();
            if q.stop {
                Some(DropReason::Shutdown)
            } else if q.bytes + lines.len() > QUEUE_BUDGET_BYTES {
                Some(DropReason::Overflow)
            } else {
                q.bytes += lines.len();
                self.inner.pending.fetch_add(sent, Ordering::Relaxed);
                q.batches.push_back(Batch {
                    job: job.clone(),
                    target: target.clone(),
                    lines,
                    events: sent,
                    bytes,
                });
                None
            }
        };
        match refused {
            None => self.inner.wake.notify_one(),
            Some(reason) => {
                if reason == DropReason::Overflow {
                    tracing::warn!(
                        job = &*job,
                        events = sent,
                        "stdout is not keeping up: events dropped (overflow)"
                    );
                }
                ledger.dropped(&job, &target, reason, sent);
            }
        }
    }

    /// Waits for everything queued to be written, at most `deadline`; what
    /// is left then is counted as `shutdown`. Later submissions are refused.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        let start = Instant::now();
        let end = start + deadline;
        let inner = &self.inner;
        let before = inner.ledger.snapshot().totals.events_sent;
        let completed = loop {
            let written = inner.written.notified();
            {
                let q = inner.lock();
                if q.batches.is_empty() && q.writing.is_none() {
                    break true;
                }
            }
            tokio::select! {
                _ = written => {}
                _ = tokio::time::sleep_until(end.into()) => break false,
            }
        };
        let left = {
            let mut q = inner.lock();
            q.stop = true;
            q.abandoned = !completed;
            let mut left: Vec<(Arc<str>, Arc<Target>, u64)> = q
                .batches
                .drain(..)
                .map(|b| (b.job, b.target, b.events))
                .collect();
            q.bytes = 0;
            if !completed {
                left.extend(q.writing.take());
            }
            left
        };
        inner.wake.notify_one();
        let mut report = DrainReport {
            elapsed: start.elapsed(),
            completed,
            ..DrainReport::default()
        };
        for (job, target, events) in left {
            inner.pending.fetch_sub(events, Ordering::Relaxed);
            inner
                .ledger
                .dropped(&job, &target, DropReason::Shutdown, events);
            report.undelivered += events;
            *report.undelivered_per_job.entry(job).or_default() += events;
            *report
                .undelivered_per_target
                .entry((*target).clone())
                .or_default() += events;
        }
        if !completed {
            tracing::error!(sink = %inner.name, "stdout did not take every event before the drain deadline (a blocked pipe?)");
        }
        inner.ledger.flush_drop_log();
        report.delivered = inner.ledger.snapshot().totals.events_sent - before;
        report
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread: one batch at a time, the queue's lock never held
/// while writing.
fn write_loop(inner: &Inner) {
    loop {
        let batch = {
            let mut q = inner.lock();
            loop {
                if let Some(b) = q.batches.pop_front() {
                    q.bytes -= b.lines.len();
                    q.writing = Some((b.job.clone(), b.target.clone(), b.events));
                    break b;
                }
                if q.stop {
                    return;
                }
                q = inner.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut stdout = std::io::stdout().lock();
        let result = stdout
            .write_all(batch.lines.as_bytes())
            .and_then(|()| stdout.flush());
        drop(stdout);
        let abandoned = {
            let mut q = inner.lock();
            q.writing = None;
            q.abandoned
        };
        if abandoned {
            // The drain already counted it as undelivered.
            return;
        }
        inner.pending.fetch_sub(batch.events, Ordering::Relaxed);
        match result {
            Ok(()) => inner.ledger.delivered(
                &batch.target,
                &[Share {
                    job: &batch.job,
                    events: batch.events,
                    bytes: batch.bytes,
                }],
            ),
            Err(e) => {
                tracing::error!(job = &*batch.job, error = %e, "cannot write events to stdout");
                inner.ledger.dropped(
                    &batch.job,
                    &batch.target,
                    DropReason::StdoutWriteFailed,
                    batch.events,
                );
            }
        }
        inner.written.notify_waiters();
    }
}

/// Why this sink would drop `message` ([`DropReason::EmptyMessage`] or
/// [`DropReason::MultilineMessage`]), or `None` when it can be written as one line.
pub fn drop_reason(message: &str) -> Option<DropReason> {
    if message.is_empty() {
        Some(DropReason::EmptyMessage)
    } else if message.contains(['\n', '\r']) {
        Some(DropReason::MultilineMessage)
    } else {
        None
    }
}
