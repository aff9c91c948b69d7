//! The spool inside the stage: the spool as the buffer's journal (budget,
//! cost, acknowledgements), the syncer thread that makes appends durable in
//! groups and then lets their events be sent, the replay at start, and the
//! final sync at the end of the drain.
//!
//! The syncer is a plain thread blocked on a condition variable: it wakes
//! only when an append asked for a sync, so an idle daemon costs nothing.
//! Appends are `write`s made under the stage's lock (microseconds);
//! `fdatasync` (milliseconds) runs on the syncer without the lock, and every
//! append made while one sync runs is covered by the next (group commit).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

use super::buffer::{Journal, Origin};
use super::spool::{Recovered, Spool, SyncJob, frame};
use super::{BatchKey, Item, Shared, queue};

/// Room kept free for the header and KEY frame of a new segment.
const SEGMENT_SLACK: u64 = 4096;

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

#[derive(Debug, Default)]
struct Signal {
    requested: bool,
    stop: bool,
}

/// The handle of the syncer thread.
#[derive(Debug, Default)]
pub(crate) struct Syncer {
    inner: Arc<(Mutex<Signal>, Condvar)>,
    running: std::sync::atomic::AtomicBool,
}

impl Syncer {
    /// A syncer not yet running.
    pub fn new() -> Syncer {
        Syncer::default()
    }

    /// Starts the thread; it ends when [`Syncer::stop`] is called or the stage is gone.
    pub fn spawn(&self, shared: Weak<Shared>) {
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("cwpub-spoolsync".into())
            .spawn(move || run(&inner, &shared));
        match spawned {
            Ok(_) => self
                .running
                .store(true, std::sync::atomic::Ordering::Relaxed),
            Err(e) => {
                tracing::error!(error = %e, "spool: cannot start the sync thread; appends are synced by the submitting thread")
            }
        }
    }

    /// False when the thread could not be started (the caller syncs itself).
    pub fn is_running(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks for a sync of everything appended so far.
    pub fn request(&self) {
        let (m, cv) = &*self.inner;
        m.lock().unwrap_or_else(|p| p.into_inner()).requested = true;
        cv.notify_one();
    }

    /// Ends the thread after any sync already requested.
    pub fn stop(&self) {
        let (m, cv) = &*self.inner;
        m.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_one();
    }
}

fn run(inner: &(Mutex<Signal>, Condvar), shared: &Weak<Shared>) {
    let (m, cv) = inner;
    loop {
        {
            let mut s = m.lock().unwrap_or_else(|p| p.into_inner());
            while !s.requested && !s.stop {
                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if !s.requested {
                return;
            }
            s.requested = false;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        sync_now(&shared);
    }
}

/// Syncs everything appended so far, then lets those events be sent.
pub(crate) fn sync_now(shared: &Shared) {
    let job: SyncJob = {
        let mut core = shared.lock_core();
        match core.spool.as_mut() {
            Some(s) => s.take_sync(),
            None => return,
        }
    };
    if let Err(e) = job.run() {
        // The data is written, only its durability is in doubt: keep going.
        tracing::error!(error = %e, "spool: fdatasync failed; a crash of the machine now could lose buffered events");
    }
    let wake = shared.lock_core().buffer.set_durable(job.durable_below);
    for n in wake {
        n.notify_one();
    }
}

/// Queues what the spool held at start, before any new event, then deletes
/// the old segments once their events are spooled again and synced.
pub(crate) fn replay(shared: &Arc<Shared>, recovered: Recovered) {
    let Recovered { streams, report } = recovered;
    let dir = shared
        .lock_core()
        .spool
        .as_ref()
        .map(|s| s.dir().display().to_string())
        .unwrap_or_default();
    if report.events > 0 || report.corrupt_records > 0 || !report.foreign.is_empty() {
        tracing::info!(
            spool_dir = %dir,
            events = report.events,
            streams = streams.len(),
            segments = report.segments,
            corrupt_records = report.corrupt_records,
            corrupt_bytes = report.corrupt_bytes,
            foreign_files = report.foreign.len(),
            possible_duplicates = report.possible_duplicates,
            "spool: replaying events left by the previous run before any new ones"
        );
    }
    if report.possible_duplicates > 0 {
        tracing::warn!(
            events = report.possible_duplicates,
            "spool: some replayed events were in a request whose answer was lost in a crash; \
             CloudWatch may already hold them, so they may appear twice (see event_id in docs/delivery.md)"
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
        replayed += queue(shared, &key, items, Origin::Replayed(now)) as u64;
    }
    sync_now(shared);
    let mut core = shared.lock_core();
    if let Some(s) = core.spool.as_mut() {
        s.note_replayed(replayed);
        s.retire_recovered();
    }
}

/// After the drain: a last sync (acknowledgements included), so a clean
/// stop leaves a spool that replays exactly what was not delivered.
pub(crate) fn close(shared: &Shared) {
    let job = {
        let mut core = shared.lock_core();
        core.spool.as_mut().map(Spool::take_sync_all)
    };
    if let Some(job) = job
        && let Err(e) = job.run()
    {
        tracing::error!(error = %e, "spool: final fdatasync failed");
    }
    if let Some(s) = &shared.syncer {
        s.stop();
    }
}
