//! The inbox: where jobs leave submissions for the owner. It is bounded in
//! bytes (the memory budget) and applies the overflow policy itself, so
//! [`Inbox::put`] never waits: `drop_newest` refuses what does not fit,
//! `drop_oldest` evicts the oldest events still waiting. The owner takes
//! everything waiting at once ([`Inbox::take`]). Its lock guards a queue in
//! memory only and is held for a push or a swap, never across I/O or an
//! await.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::BatchKey;
use super::batch::Item;
use super::config::OverflowPolicy;
use crate::event::Target;

/// One submission waiting for the owner.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub key: BatchKey,
    pub items: VecDeque<Item>,
}

/// Events a [`Inbox::put`] could not keep, per (target, job).
pub(crate) type Refused = BTreeMap<(Arc<Target>, Arc<str>), u64>;

#[derive(Debug)]
struct State {
    waiting: VecDeque<Waiting>,
    bytes: usize,
    closed: bool,
    budget: usize,
    overflow: OverflowPolicy,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Inbox {
    state: Mutex<State>,
    /// Wakes the owner when something arrives.
    pub arrived: Notify,
}

/// What [`Inbox::put`] did with a submission.
#[derive(Debug, Default)]
pub(crate) struct Put {
    /// Events dropped to keep within the budget (`overflow`), which may be
    /// older ones of other submissions.
    pub overflow: Refused,
    /// The inbox is closed: the whole submission was refused (`shutdown`).
    pub closed: bool,
}

impl Inbox {
    /// An inbox holding at most `budget` bytes, full by `overflow`'s rule.
    pub fn new(budget: usize, overflow: OverflowPolicy) -> Inbox {
        Inbox {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                bytes: 0,
                closed: false,
                budget,
                overflow,
            }),
            arrived: Notify::new(),
        }
    }

    /// New limits from a reload (what waits stays).
    pub fn set_limits(&self, budget: usize, overflow: OverflowPolicy) {
        let mut s = self.lock();
        s.budget = budget;
        s.overflow = overflow;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves `items` of `key` for the owner, within the budget.
    pub fn put(&self, key: BatchKey, items: Vec<Item>) -> Put {
        let mut out = Put::default();
        let mut items: VecDeque<Item> = items.into();
        {
            let mut guard = self.lock();
            let s = &mut *guard;
            if s.closed {
                out.closed = true;
                return out;
            }
            let incoming: usize = items.iter().map(Item::size).sum();
            let mut over = (s.bytes + incoming).saturating_sub(s.budget);
            if over > 0 && s.overflow == OverflowPolicy::DropOldest {
                // Oldest waiting events first, then this submission's own oldest.
                while over > 0 {
                    let Some(front) = s.waiting.front_mut() else {
                        break;
                    };
                    let Some(it) = front.items.pop_front() else {
                        s.waiting.pop_front();
                        continue;
                    };
                    let size = it.size();
                    s.bytes -= size;
                    over = over.saturating_sub(size);
                    *out.overflow
                        .entry((front.key.target.clone(), it.job))
                        .or_default() += 1;
                }
                while over > 0 {
                    let Some(it) = items.pop_front() else { break };
                    over = over.saturating_sub(it.size());
                    *out.overflow
                        .entry((key.target.clone(), it.job))
                        .or_default() += 1;
                }
            } else {
                // Keep what fits, in order; refuse the rest.
                let mut room = s.budget.saturating_sub(s.bytes);
                let mut kept = VecDeque::with_capacity(items.len());
                for it in items {
                    let size = it.size();
                    if size <= room {
                        room -= size;
                        kept.push_back(it);
                    } else {
                        *out.overflow
                            .entry((key.target.clone(), it.job))
                            .or_default() += 1;
                    }
                }
                items = kept;
            }
            if !items.is_empty() {
                s.bytes += items.iter().map(Item::size).sum::<usize>();
                s.waiting.push_back(Waiting { key, items });
            }
        }
        self.arrived.notify_one();
        out
    }

    /// Everything waiting, oldest first.
    pub fn take(&self) -> VecDeque<Waiting> {
        let mut s = self.lock();
        s.bytes = 0;
        std::mem::take(&mut s.waiting)
    }

    /// Refuses later submissions; returns what was still waiting.
    pub fn close(&self) -> VecDeque<Waiting> {
        let mut s = self.lock();
        s.closed = true;
        s.bytes = 0;
        std::mem::take(&mut s.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PayloadKind;

    fn key(s: &str) -> BatchKey {
        BatchKey {
            target: Arc::new(Target::new("t", vec![("stream".into(), s.into())])),
            kind: PayloadKind::JsonLog,
        }
    }

    fn items(job: &str, n: usize, len: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                job: Arc::from(job),
                timestamp_ms: i as i64,
                message: "m".repeat(len),
                seq: 0,
            })
            .collect()
    }

    fn count(r: &Refused) -> u64 {
        r.values().sum()
    }

    #[test]
    fn drop_oldest_evicts_waiting_events_first() {
        // Each event is 74 + 26 = 100 bytes; 5 fit.
        let inbox = Inbox::new(500, OverflowPolicy::DropOldest);
        assert_eq!(count(&inbox.put(key("a"), items("old", 4, 74)).overflow), 0);
        let put = inbox.put(key("b"), items("new", 3, 74));
        assert_eq!(count(&put.overflow), 2);
        assert_eq!(put.overflow[&(key("a").target, Arc::from("old"))], 2);
        let waiting = inbox.take();
        let jobs: Vec<(&str, usize)> = waiting
            .iter()
            .map(|w| (&*w.items[0].job, w.items.len()))
            .collect();
        assert_eq!(jobs, [("old", 2), ("new", 3)]);
        assert!(inbox.take().is_empty());
    }

    #[test]
    fn drop_newest_keeps_what_fits_in_order() {
        let inbox = Inbox::new(500, OverflowPolicy::DropNewest);
        inbox.put(key("a"), items("old", 4, 74));
        let put = inbox.put(key("b"), items("new", 3, 74));
        assert_eq!(put.overflow[&(key("b").target, Arc::from("new"))], 2);
        assert_eq!(inbox.take().iter().map(|w| w.items.len()).sum::<usize>(), 5);
    }

    #[test]
    fn a_submission_larger_than_the_budget_keeps_its_newest_under_drop_oldest() {
        let inbox = Inbox::new(300, OverflowPolicy::DropOldest);
        let put = inbox.put(key("a"), items("j", 5, 74));
        assert_eq!(count(&put.overflow), 2);
        let w = inbox.take();
        assert_eq!(w[0].items.front().map(|i| i.timestamp_ms), Some(2));
    }

    #[test]
    fn a_closed_inbox_refuses_and_hands_back_what_waited() {
        let inbox = Inbox::new(1_000, OverflowPolicy::DropOldest);
        inbox.put(key("a"), items("j", 2, 10));
        assert_eq!(inbox.close().len(), 1);
        assert!(inbox.put(key("a"), items("j", 1, 10)).closed);
    }
}
