//! The per-key worker: asks the buffer for a due chunk (full, waited
//! `max_batch_delay`, or draining — and durable, with a spool), builds its
//! requests and hands them to the sender one at a time (so a stream's
//! requests arrive in order), then releases the chunk. It exits when its key
//! holds nothing, and the next submission spawns a new one, so idle targets
//! cost nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::Notify;

use crate::ledger::DropReason;

use super::batch::{Item, build_requests};
use super::buffer::Step;
use super::record::RecordItems as _;
use super::{BatchKey, Shared, send};

/// Runs the worker of `key` until its queue is empty or delivery is cancelled.
pub(crate) async fn run(shared: Arc<Shared>, key: BatchKey, notify: Arc<Notify>) {
    loop {
        if shared.cancel.is_cancelled() {
            return leave(&shared, &key, &[]);
        }
        let step = shared.lock_core().buffer.take_due(&key, Instant::now());
        match step {
            Step::Exit => {
                shared.progress.notify_waiters();
                return;
            }
            Step::Wait(until) => {
                let sleep = async {
                    match until {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = sleep => {}
                    _ = shared.cancel.cancelled() => return leave(&shared, &key, &[]),
                }
            }
            Step::Send(chunk) => {
                let mut undelivered: Vec<Item> = Vec::new();
                for batch in build_requests(chunk) {
                    if !undelivered.is_empty() {
                        undelivered.extend(batch);
                    } else if let Err(rest) = send::deliver(&shared, &key, batch).await {
                        undelivered = rest;
                    }
                }
                if !undelivered.is_empty() {
                    return leave(&shared, &key, &undelivered);
                }
                {
                    let mut core = shared.lock_core();
                    let super::Core { buffer, spool } = &mut *core;
                    buffer.release(&key, spool);
                }
                shared.progress.notify_waiters();
            }
        }
    }
}

/// Unregisters a cancelled worker. The events it held stay in the spool
/// for the next start, or without one are counted as `shutdown` drops;
/// its queued events stay for the drain to count.
fn leave(shared: &Shared, key: &BatchKey, undelivered: &[Item]) {
    let spooled = {
        let mut core = shared.lock_core();
        core.buffer.leave(key);
        core.spool.is_some()
    };
    if spooled {
        shared
            .kept
            .fetch_add(undelivered.len() as u64, Ordering::Relaxed);
    } else {
        shared
            .ledger
            .drop_items(&key.target, DropReason::Shutdown, undelivered.iter());
    }
    shared.progress.notify_waiters();
}
