//! The per-(target, kind) worker: waits until its queue holds a full batch,
//! `max_batch_delay` has passed since the oldest queued event arrived, or a
//! drain started; then takes one request's worth, builds the batches and
//! hands them to the sender one at a time (so a stream's requests arrive in
//! order). It exits when its queue is empty, and a new one is spawned by the
//! next submission, so idle targets cost nothing.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::ledger::DropReason;

use super::batch::{Item, build_requests};
use super::record::RecordItems as _;
use super::{BatchKey, Shared, send};

enum Step {
    Exit,
    Wait(Instant),
    Send(Vec<Item>),
}

/// Runs the worker of `key` until its queue is empty or delivery is cancelled.
pub(crate) async fn run(shared: Arc<Shared>, key: BatchKey, notify: Arc<Notify>) {
    let delay = shared.cfg.max_batch_delay;
    loop {
        if shared.cancel.is_cancelled() {
            return leave(&shared, &key);
        }
        let step = {
            let mut b = shared.lock_buffer();
            let draining = b.draining;
            match b.queues.get_mut(&key) {
                // Decided under the same lock a submission uses to see
                // whether this queue has a worker, so nothing is stranded.
                None => {
                    b.workers = b.workers.saturating_sub(1);
                    Step::Exit
                }
                Some(qs) if qs.q.items.is_empty() => {
                    b.queues.remove(&key);
                    b.workers = b.workers.saturating_sub(1);
                    Step::Exit
                }
                Some(qs) => {
                    let now = Instant::now();
                    let due = qs.first_arrival.map_or(now, |t| t + delay);
                    if draining || qs.q.is_full() || due <= now {
                        let chunk = qs.q.take_chunk();
                        if qs.q.items.is_empty() {
                            qs.first_arrival = None;
                        }
                        let bytes: usize = chunk.iter().map(Item::size).sum();
                        b.pending_bytes = b.pending_bytes.saturating_sub(bytes);
                        b.pending_events = b.pending_events.saturating_sub(chunk.len());
                        b.held_bytes += bytes;
                        b.held_events += chunk.len();
                        Step::Send(chunk)
                    } else {
                        Step::Wait(due)
                    }
                }
            }
        };
        match step {
            Step::Exit => {
                shared.progress.notify_waiters();
                return;
            }
            Step::Wait(due) => {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shared.cancel.cancelled() => return leave(&shared, &key),
                }
            }
            Step::Send(chunk) => {
                let events = chunk.len();
                let bytes: usize = chunk.iter().map(Item::size).sum();
                let mut batches = build_requests(chunk).into_iter();
                let mut cancelled = false;
                for batch in batches.by_ref() {
                    if let Err(undelivered) = send::deliver(&shared, &key, batch).await {
                        shared.ledger.drop_items(
                            &key.target,
                            DropReason::Shutdown,
                            undelivered.iter(),
                        );
                        cancelled = true;
                        break;
                    }
                }
                for rest in batches {
                    shared
                        .ledger
                        .drop_items(&key.target, DropReason::Shutdown, rest.iter());
                }
                {
                    let mut b = shared.lock_buffer();
                    b.held_bytes = b.held_bytes.saturating_sub(bytes);
                    b.held_events = b.held_events.saturating_sub(events);
                }
                shared.progress.notify_waiters();
                if cancelled {
                    return leave(&shared, &key);
                }
            }
        }
    }
}

/// Unregisters a cancelled worker; its queued events stay for drain to count.
fn leave(shared: &Shared, key: &BatchKey) {
    {
        let mut b = shared.lock_buffer();
        if let Some(qs) = b.queues.get_mut(key) {
            qs.has_worker = false;
        }
        b.workers = b.workers.saturating_sub(1);
    }
    shared.progress.notify_waiters();
}
