//! The buffer: every event a sink's delivery core holds, owned by the core's
//! one task (`owner`). Events are queued per batch key until the owner takes
//! a due chunk (held while its requests run, one chunk per key at a time, so
//! a stream's requests go out in order) and releases it; the budget is
//! enforced and the overflow policy applied on admission; the write-ahead
//! journal (the spool, when configured) is told whenever a key's events below
//! some sequence number are resolved. All fields are private: the owner
//! changes the buffer only through [`Buffer::admit`], [`Buffer::take_due`],
//! [`Buffer::release`], [`Buffer::set_durable`] and
//! [`Buffer::close`], and every one of them ends
//! by checking the invariants in [`Buffer::check`] (in debug builds and
//! tests).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{Item, KeyQueue};
use super::config::OverflowPolicy;
use super::sink::BatchLimits;
use super::spool::StreamKey as BatchKey;
use crate::event::Target;

/// Below this many queued events [`Buffer::check`] also walks every event.
const DEEP_CHECK_EVENTS: usize = 4_096;

/// What the buffer needs from a write-ahead journal.
pub(crate) trait Journal {
    /// True when `extra` more bytes would not fit the journal's budget.
    fn over_budget(&self, extra: u64) -> bool;
    /// Bytes one event takes in the journal.
    fn cost(&self, job: &str, message: &str) -> u64;
    /// Every event of `key` with `lo ≤ seq ≤ hi` is resolved (delivered or dropped).
    fn resolved(&mut self, key: &BatchKey, lo: u64, hi: u64);
    /// Writes what `resolved` noted (once per admission or release).
    fn flush(&mut self);
}

/// No journal: nothing is written, nothing limits.
#[cfg(test)]
pub(crate) struct NoJournal;

#[cfg(test)]
impl Journal for NoJournal {
    fn over_budget(&self, _: u64) -> bool {
        false
    }
    fn cost(&self, _: &str, _: &str) -> u64 {
        0
    }
    fn resolved(&mut self, _: &BatchKey, _: u64, _: u64) {}
    fn flush(&mut self) {}
}

/// Limits of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most bytes (message + 26) held at once, queued and in requests.
    pub budget: usize,
    /// What happens when an event does not fit.
    pub overflow: OverflowPolicy,
    /// Longest an event waits for its batch to fill.
    pub max_batch_delay: Duration,
    /// Whether events must be made durable (see [`Buffer::set_durable`])
    /// before they may be sent.
    pub journaled: bool,
}

/// Where admitted events come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// A guest run, at this instant (starts the key's batch delay); the
    /// buffer assigns sequence numbers.
    New(Instant),
    /// The spool, at start (due at once; sequence numbers are kept, and must
    /// be ascending per key and below every new one).
    Replayed(Instant),
}

/// The result of [`Buffer::admit`].
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Events queued (the last `accepted` events of the key's queue, see
    /// [`Buffer::newest`]).
    pub accepted: usize,
    /// Incoming events refused for lack of room, per job (`overflow`).
    pub refused: HashMap<Arc<str>, u64>,
    /// Events refused because the buffer is closed, per job (`shutdown`).
    pub closed: HashMap<Arc<str>, u64>,
    /// Queued events evicted to make room, per (target, job) (`overflow`).
    pub evicted: HashMap<(Arc<Target>, Arc<str>), u64>,
}

/// What the owner does next for a key.
#[derive(Debug)]
pub(crate) enum Step {
    /// The key holds nothing (it is forgotten).
    Idle,
    /// A chunk of the key is being sent; ask again after its release.
    Busy,
    /// Nothing due before this instant.
    Wait(Instant),
    /// Due, but no queued event is durable yet; ask again when more is.
    WaitDurable,
    /// Send this chunk (held until [`Buffer::release`]).
    Send(Vec<Item>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    lo: u64,
    hi: u64,
    events: usize,
    bytes: usize,
}

#[derive(Debug)]
struct KeyState {
    q: KeyQueue,
    first_arrival: Option<Instant>,
    held: Option<Held>,
    /// Sequence number of the newest event admitted to this key.
    last_seq: u64,
    /// Events below this sequence number may be sent.
    durable_below: u64,
}

/// The buffer. See the module doc.
#[derive(Debug)]
pub(crate) struct Buffer {
    limits: Limits,
    keys: HashMap<BatchKey, KeyState>,
    queued_events: usize,
    queued_bytes: usize,
    held_events: usize,
    held_bytes: usize,
    next_seq: u64,
    closed: bool,
    /// Bytes held over a budget made smaller by a reload (they stay).
    over_budget_since_retune: usize,
}

impl Buffer {
    /// An empty buffer whose first event gets sequence number `first_seq`.
    pub fn new(limits: Limits, first_seq: u64) -> Buffer {
        Buffer {
            limits,
            keys: HashMap::new(),
            queued_events: 0,
            queued_bytes: 0,
            held_events: 0,
            held_bytes: 0,
            next_seq: first_seq,
            closed: false,
            over_budget_since_retune: 0,
        }
    }

    /// New limits from a reload; whether events are journaled stays as it
    /// was. Events over a smaller budget stay: the budget applies to what
    /// comes next.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = Limits {
            journaled: self.limits.journaled,
            ..limits
        };
        let held = self.queued_bytes + self.held_bytes;
        self.over_budget_since_retune = held.saturating_sub(self.limits.budget);
        self.check();
    }

    /// Events and bytes held (queued and in requests).
    pub fn gauges(&self) -> (usize, usize) {
        (
            self.queued_events + self.held_events,
            self.queued_bytes + self.held_bytes,
        )
    }

    /// The lowest sequence number held (queued or in a chunk being sent).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.keys
            .values()
            .filter_map(|k| {
                let queued = k.q.items.front().map(|i| i.seq);
                let held = k.held.map(|h| h.lo);
                queued.into_iter().chain(held).min()
            })
            .min()
    }

    /// Chunks being sent (at most one per key).
    pub fn busy(&self) -> usize {
        self.keys.values().filter(|k| k.held.is_some()).count()
    }

    /// True when nothing is queued or held.
    pub fn is_empty(&self) -> bool {
        self.queued_events == 0 && self.held_events == 0
    }

    /// Admits the events of one submission to `key` (sequence numbers are
    /// assigned here), making room under the overflow policy: `drop_newest`
    /// refuses what does not fit, `drop_oldest` first evicts the oldest
    /// queued events of any key (never events in requests; this
    /// submission's own events last). Both the memory budget and the
    /// journal's budget must hold. A new key's requests follow `limits`.
    pub fn admit(
        &mut self,
        key: &BatchKey,
        items: Vec<Item>,
        origin: Origin,
        journal: &mut dyn Journal,
        limits: BatchLimits,
    ) -> Admission {
        let mut out = Admission::default();
        if self.closed {
            for it in items {
                *out.closed.entry(it.job).or_default() += 1;
            }
            return out;
        }
        let (arrived, replayed) = match origin {
            Origin::New(at) => (at, false),
            // Replayed events are due at once.
            Origin::Replayed(now) => (
                now.checked_sub(self.limits.max_batch_delay).unwrap_or(now),
                true,
            ),
        };
        let mut accepted: VecDeque<Item> = VecDeque::with_capacity(items.len());
        let mut accepted_disk = 0u64;
        for mut it in items {
            let size = it.size();
            let disk = journal.cost(&it.job, &it.message);
            let disk_over = |disk_extra: u64, j: &dyn Journal| j.over_budget(disk_extra + disk);
            let over = |b: &Buffer, disk_extra: u64, j: &dyn Journal| {
                b.queued_bytes + b.held_bytes + size > b.limits.budget || disk_over(disk_extra, j)
            };
            if over(self, accepted_disk, journal)
                && self.limits.overflow == OverflowPolicy::DropOldest
            {
                while over(self, accepted_disk, journal) {
                    let disk_pressure = disk_over(accepted_disk, journal);
                    if self.evict_oldest_run(&mut out.evicted, journal, disk_pressure, &|b, j| {
                        over(b, accepted_disk, j)
                    }) {
                        continue;
                    }
                    // Nothing older is queued: evict this submission's oldest.
                    let Some(old) = accepted.pop_front() else {
                        break;
                    };
                    self.queued_bytes -= old.size();
                    self.queued_events -= 1;
                    accepted_disk -= journal.cost(&old.job, &old.message);
                    *out.evicted
                        .entry((key.target.clone(), old.job))
                        .or_default() += 1;
                }
            }
            if over(self, accepted_disk, journal) {
                *out.refused.entry(it.job).or_default() += 1;
                continue;
            }
            if replayed {
                debug_assert!(
                    it.seq < self.next_seq,
                    "replayed events keep their sequence numbers"
                );
            } else {
                it.seq = self.next_seq;
                self.next_seq += 1;
            }
            self.queued_bytes += size;
            self.queued_events += 1;
            accepted_disk += disk;
            accepted.push_back(it);
        }
        journal.flush();
        out.accepted = accepted.len();
        if !accepted.is_empty() {
            let durable = if self.limits.journaled { 0 } else { u64::MAX };
            let ks = self.keys.entry(key.clone()).or_insert_with(|| KeyState {
                q: KeyQueue::new(limits),
                first_arrival: None,
                held: None,
                last_seq: 0,
                durable_below: durable,
            });
            ks.first_arrival.get_or_insert(arrived);
            ks.last_seq = accepted.back().map_or(ks.last_seq, |i| i.seq);
            for it in accepted {
                ks.q.push(it);
            }
        }
        self.check();
        out
    }

    /// The newest `n` events queued for `key` (what the last [`Buffer::admit`] accepted).
    pub fn newest(&self, key: &BatchKey, n: usize) -> impl Iterator<Item = &Item> {
        let q = self.keys.get(key).map(|k| &k.q.items);
        let len = q.map_or(0, |q| q.len());
        q.into_iter().flat_map(move |q| q.range(len - n.min(len)..))
    }

    /// Evicts a run of queued events from the key whose front is oldest,
    /// while it stays the oldest and `over` holds. False when nothing is
    /// queued. Under disk pressure the journal frees space only as floors
    /// move, so it is told after every event; otherwise once at the end.
    fn evict_oldest_run(
        &mut self,
        evicted: &mut HashMap<(Arc<Target>, Arc<str>), u64>,
        journal: &mut dyn Journal,
        disk: bool,
        over: &dyn Fn(&Buffer, &dyn Journal) -> bool,
    ) -> bool {
        let mut oldest: Option<(u64, &BatchKey)> = None;
        let mut runner_up = u64::MAX;
        for (k, ks) in &self.keys {
            let Some(front) = ks.q.items.front() else {
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
        let Some(key) = oldest.map(|(_, k)| k.clone()) else {
            return false;
        };
        let mut run: Option<(u64, u64)> = None;
        loop {
            let ks = self.keys.get_mut(&key).expect("key found above");
            if ks.q.items.front().is_none_or(|f| f.seq > runner_up) {
                break;
            }
            let it = ks.q.pop_oldest().expect("front exists");
            if ks.q.items.is_empty() {
                ks.first_arrival = None;
            }
            if disk {
                journal.resolved(&key, it.seq, it.seq);
            } else {
                run = Some((run.map_or(it.seq, |r| r.0), it.seq));
            }
            self.queued_bytes -= it.size();
            self.queued_events -= 1;
            *evicted.entry((key.target.clone(), it.job)).or_default() += 1;
            if !over(self, journal) {
                break;
            }
        }
        if let Some((lo, hi)) = run {
            journal.resolved(&key, lo, hi);
        }
        if self
            .keys
            .get(&key)
            .is_some_and(|ks| ks.q.items.is_empty() && ks.held.is_none())
        {
            self.keys.remove(&key);
        }
        true
    }

    /// What the owner does next for `key` at `now`: send a chunk that is
    /// due (full, waited `max_batch_delay`, or `draining`; only events
    /// already durable), wait, or nothing (busy, or empty — then the key is
    /// forgotten).
    pub fn take_due(&mut self, key: &BatchKey, now: Instant, draining: bool) -> Step {
        let delay = self.limits.max_batch_delay;
        let step = match self.keys.get_mut(key) {
            None => Step::Idle,
            Some(ks) if ks.held.is_some() => Step::Busy,
            Some(ks) if ks.q.items.is_empty() => {
                self.keys.remove(key);
                Step::Idle
            }
            Some(ks) => {
                let due = ks.first_arrival.map_or(now, |t| t + delay);
                if !(draining || ks.q.is_full() || due <= now) {
                    Step::Wait(due)
                } else {
                    let chunk = ks.q.take_chunk_below(ks.durable_below);
                    if chunk.is_empty() {
                        Step::WaitDurable
                    } else {
                        if ks.q.items.is_empty() {
                            ks.first_arrival = None;
                        }
                        let bytes: usize = chunk.iter().map(Item::size).sum();
                        ks.held = Some(Held {
                            lo: chunk[0].seq,
                            hi: chunk[chunk.len() - 1].seq,
                            events: chunk.len(),
                            bytes,
                        });
                        self.queued_bytes -= bytes;
                        self.queued_events -= chunk.len();
                        self.held_bytes += bytes;
                        self.held_events += chunk.len();
                        Step::Send(chunk)
                    }
                }
            }
        };
        self.check();
        step
    }

    /// The chunk `key` held is done: every event of it is resolved (delivered
    /// or dropped) but those whose sequence numbers are in `unresolved`
    /// (ascending; the drain's deadline cut their requests short), which
    /// the journal keeps. Frees the chunk's room and tells the journal.
    pub fn release(&mut self, key: &BatchKey, journal: &mut dyn Journal, unresolved: &[u64]) {
        if let Some(h) = self.unhold(key) {
            // The key's events in [lo, hi] are exactly the chunk's, so the
            // runs between unresolved events can be resolved as ranges.
            let mut from = h.lo;
            for &u in unresolved {
                if u > from {
                    journal.resolved(key, from, u - 1);
                }
                from = u.saturating_add(1);
            }
            if from <= h.hi && unresolved.last().is_none_or(|&u| u < h.hi) {
                journal.resolved(key, from, h.hi);
            }
            journal.flush();
        }
        self.check();
    }

    fn unhold(&mut self, key: &BatchKey) -> Option<Held> {
        let ks = self.keys.get_mut(key)?;
        let h = ks.held.take()?;
        self.held_bytes -= h.bytes;
        self.held_events -= h.events;
        if ks.q.items.is_empty() {
            self.keys.remove(key);
        }
        Some(h)
    }

    /// Every event below `below` is durable; returns the keys that may now
    /// have a chunk to send.
    pub fn set_durable(&mut self, below: u64) -> Vec<BatchKey> {
        let mut ready = Vec::new();
        for (k, ks) in &mut self.keys {
            if below > ks.durable_below {
                ks.durable_below = below;
                if !ks.q.items.is_empty() && ks.held.is_none() {
                    ready.push(k.clone());
                }
            }
        }
        ready
    }

    /// Events of `key` up to its newest are to be sent without waiting for
    /// durability (the journal could not take them).
    pub fn set_durable_key(&mut self, key: &BatchKey) {
        if let Some(ks) = self.keys.get_mut(key) {
            ks.durable_below = ks.durable_below.max(ks.last_seq + 1);
        }
    }

    /// The keys that are not busy, to look at when everything becomes due.
    pub fn idle_keys(&self) -> Vec<BatchKey> {
        self.keys
            .iter()
            .filter(|(_, k)| k.held.is_none())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Closes the buffer: later admissions are refused, and the queued
    /// events are handed back per target (held ones stay with their senders,
    /// who report them).
    pub fn close(&mut self) -> Vec<(Arc<Target>, Vec<Item>)> {
        self.closed = true;
        let mut out = Vec::new();
        for (k, ks) in self.keys.drain() {
            if !ks.q.items.is_empty() {
                out.push((k.target, ks.q.items.into_iter().collect()));
            }
            if let Some(h) = ks.held {
                self.held_bytes -= h.bytes;
                self.held_events -= h.events;
            }
        }
        self.queued_events = 0;
        self.queued_bytes = 0;
        self.check();
        out
    }

    /// The invariants, checked after every change in debug builds:
    /// counters equal what the keys hold, the budget holds, each key's events
    /// are in sequence order below `next_seq`, every key holds something,
    /// and a closed buffer is empty. The checks that walk
    /// every event run while fewer than [`DEEP_CHECK_EVENTS`] are queued, so
    /// debug builds stay usable with large buffers.
    pub fn check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let deep = self.queued_events <= DEEP_CHECK_EVENTS;
        let (mut qe, mut qb, mut he, mut hb) = (0, 0, 0, 0);
        for (k, ks) in &self.keys {
            qe += ks.q.items.len();
            if deep {
                let bytes: usize = ks.q.items.iter().map(Item::size).sum();
                assert_eq!(bytes, ks.q.bytes, "{k:?}: queue bytes");
            }
            qb += ks.q.bytes;
            if let Some(h) = ks.held {
                he += h.events;
                hb += h.bytes;
                assert!(
                    ks.q.items.front().is_none_or(|f| f.seq > h.lo),
                    "{k:?}: held chunk is older than the queue"
                );
            }
            assert!(
                !deep
                    || ks
                        .q
                        .items
                        .iter()
                        .zip(ks.q.items.iter().skip(1))
                        .all(|(a, b)| a.seq < b.seq),
                "{k:?}: queue out of sequence order"
            );
            assert!(
                ks.q.items.back().is_none_or(|b| b.seq <= ks.last_seq)
                    && ks.last_seq < self.next_seq.max(1),
                "{k:?}: sequence numbers ahead of the counter"
            );
            assert_eq!(
                ks.first_arrival.is_some(),
                !ks.q.items.is_empty(),
                "{k:?}: arrival time iff queued"
            );
            assert!(
                !ks.q.items.is_empty() || ks.held.is_some(),
                "{k:?}: a key that holds nothing is forgotten"
            );
        }
        assert_eq!((qe, qb), (self.queued_events, self.queued_bytes), "queued");
        assert_eq!((he, hb), (self.held_events, self.held_bytes), "held");
        assert!(
            self.queued_bytes + self.held_bytes
                <= self.limits.budget + self.over_budget_since_retune,
            "over budget: {} > {}",
            self.queued_bytes + self.held_bytes,
            self.limits.budget
        );
        assert!(!self.closed || self.keys.is_empty(), "closed but not empty");
    }
}

#[cfg(test)]
mod tests;
