//! Buffer tests: a property test drives random admissions, owner steps,
//! releases, abandoned chunks, durability and closing against a toy journal with
//! its own budget, and checks after every step that the invariants hold and
//! that every admitted event is in exactly one place: queued, held,
//! delivered, evicted or handed back at close.

use super::*;
use crate::event::PayloadKind;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn key(i: u8) -> BatchKey {
    BatchKey {
        target: Arc::new(Target::new(
            "sink",
            vec![("stream".into(), format!("s{i}"))],
        )),
        kind: PayloadKind::JsonLog,
    }
}

const LIMITS: BatchLimits = BatchLimits {
    max_events: 10_000,
    max_bytes: 1_048_576,
    per_event_bytes: 26,
    max_span_ms: None,
};

fn stream(key: &BatchKey) -> String {
    key.target.get("stream").expect("test key").to_string()
}

fn item(job: &str, len: usize) -> Item {
    Item {
        job: Arc::from(job),
        timestamp_ms: 1,
        message: "m".repeat(len.max(1)),
        seq: 0,
    }
}

/// A journal that charges each event its message length and frees exactly
/// the events below each floor.
#[derive(Default)]
struct ToyJournal {
    budget: u64,
    live: BTreeMap<(String, u64), u64>,
    resolved: BTreeSet<(String, u64)>,
}

impl ToyJournal {
    fn used(&self) -> u64 {
        self.live.values().sum()
    }
    fn append(&mut self, key: &BatchKey, items: impl Iterator<Item = (u64, u64)>) {
        for (seq, cost) in items {
            self.live.insert((stream(key), seq), cost);
        }
    }
}

impl Journal for ToyJournal {
    fn over_budget(&self, extra: u64) -> bool {
        self.used() + extra > self.budget
    }
    fn cost(&self, _: &str, message: &str) -> u64 {
        message.len() as u64
    }
    fn resolved(&mut self, key: &BatchKey, lo: u64, hi: u64) {
        let s = stream(key);
        assert!(lo <= hi);
        self.live
            .retain(|(k, seq), _| *k != s || !(lo..=hi).contains(seq));
        for seq in lo..=hi {
            self.resolved.insert((s.clone(), seq));
        }
    }
    fn flush(&mut self) {}
}

fn limits(budget: usize, overflow: OverflowPolicy, journaled: bool) -> Limits {
    Limits {
        budget,
        overflow,
        max_batch_delay: Duration::from_millis(100),
        journaled,
    }
}

#[test]
fn drop_oldest_evicts_across_keys_oldest_first_and_tells_the_journal() {
    let mut j = ToyJournal {
        budget: u64::MAX,
        ..ToyJournal::default()
    };
    let mut b = Buffer::new(limits(3 * (100 + 26), OverflowPolicy::DropOldest, false), 0);
    let now = Instant::now();
    let a = b.admit(
        &key(0),
        vec![item("j0", 100), item("j0", 100)],
        Origin::New(now),
        &mut j,
        LIMITS,
    );
    assert_eq!(a.accepted, 2);
    let a = b.admit(
        &key(1),
        vec![item("j1", 100), item("j1", 100)],
        Origin::New(now),
        &mut j,
        LIMITS,
    );
    assert_eq!((a.accepted, a.refused.len()), (2, 0));
    assert_eq!(a.evicted.values().sum::<u64>(), 1);
    assert_eq!(a.evicted[&(key(0).target, Arc::from("j0"))], 1);
    assert!(
        j.resolved.contains(&("s0".to_string(), 0)),
        "key 0's first event is resolved"
    );
    assert!(!j.resolved.contains(&("s0".to_string(), 1)));
    assert_eq!(b.gauges(), (3, 3 * 126));
}

#[test]
fn drop_newest_refuses_what_does_not_fit() {
    let mut b = Buffer::new(limits(2 * 126, OverflowPolicy::DropNewest, false), 0);
    let a = b.admit(
        &key(0),
        vec![item("j", 100), item("j", 100), item("j", 100)],
        Origin::New(Instant::now()),
        &mut NoJournal,
        LIMITS,
    );
    assert_eq!((a.accepted, a.refused["j"]), (2, 1));
}

#[test]
fn the_journal_budget_applies_the_same_policy() {
    let mut j = ToyJournal {
        budget: 250,
        ..ToyJournal::default()
    };
    let mut b = Buffer::new(limits(1 << 20, OverflowPolicy::DropOldest, true), 0);
    let k = key(0);
    let a = b.admit(
        &k,
        vec![item("j", 100), item("j", 100)],
        Origin::New(Instant::now()),
        &mut j,
        LIMITS,
    );
    j.append(&k, b.newest(&k, a.accepted).map(|i| (i.seq, 100)));
    let a = b.admit(
        &k,
        vec![item("j", 100)],
        Origin::New(Instant::now()),
        &mut j,
        LIMITS,
    );
    assert_eq!((a.accepted, a.refused.len()), (1, 0));
    assert_eq!(
        a.evicted.values().sum::<u64>(),
        1,
        "the oldest made room on disk"
    );
    assert_eq!(j.used(), 100);
}

#[test]
fn only_durable_events_are_sent() {
    let mut b = Buffer::new(limits(1 << 20, OverflowPolicy::DropOldest, true), 10);
    let k = key(0);
    let now = Instant::now();
    b.admit(
        &k,
        vec![item("j", 5), item("j", 5)],
        Origin::New(now),
        &mut NoJournal,
        LIMITS,
    );
    assert!(matches!(b.take_due(&k, now, true), Step::WaitDurable));
    assert_eq!(b.set_durable(11), std::slice::from_ref(&k));
    let Step::Send(chunk) = b.take_due(&k, now, true) else {
        panic!("the durable event is due");
    };
    assert_eq!(chunk.iter().map(|i| i.seq).collect::<Vec<_>>(), [10]);
}

#[derive(Debug, Clone)]
enum Op {
    Admit(u8, Vec<u16>),
    Take(u8),
    Release(u8),
    Abandon(u8, u8),
    Durable(u8),
    Drain,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, prop::collection::vec(1u16..400, 1..12)).prop_map(|(k, v)| Op::Admit(k, v)),
        4 => (0u8..3).prop_map(Op::Take),
        3 => (0u8..3).prop_map(Op::Release),
        1 => (0u8..3, 1u8..4).prop_map(|(k, n)| Op::Abandon(k, n)),
        2 => (0u8..200).prop_map(Op::Durable),
        1 => Just(Op::Drain),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_event_is_in_exactly_one_place(
        ops in prop::collection::vec(op(), 1..80),
        budget in 200usize..4_000,
        disk in 100u64..3_000,
        drop_oldest in any::<bool>(),
        journaled in any::<bool>(),
    ) {
        let overflow = if drop_oldest { OverflowPolicy::DropOldest } else { OverflowPolicy::DropNewest };
        let mut b = Buffer::new(limits(budget, overflow, journaled), 0);
        let mut j = ToyJournal { budget: if journaled { disk } else { u64::MAX }, ..ToyJournal::default() };
        let mut held: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
        let mut draining = false;
        let mut admitted = BTreeSet::new();
        let mut gone = BTreeSet::new(); // delivered, cancelled or handed back
        let (mut submitted, mut lost) = (0u64, 0u64); // lost: evicted, refused, closed
        // Advance time so batches are due.
        let later = Instant::now() + Duration::from_secs(1);
        for op in ops {
            match op {
                Op::Admit(k, lens) => {
                    submitted += lens.len() as u64;
                    let a = b.admit(&key(k), lens.iter().map(|l| item("j", *l as usize)).collect(), Origin::New(Instant::now()), &mut j, LIMITS);
                    let newest: Vec<(u64, u64)> = b.newest(&key(k), a.accepted).map(|i| (i.seq, i.message.len() as u64)).collect();
                    prop_assert_eq!(newest.len(), a.accepted);
                    for (seq, _) in &newest {
                        prop_assert!(admitted.insert(*seq));
                    }
                    if journaled {
                        j.append(&key(k), newest.into_iter());
                    }
                    lost += a.evicted.values().sum::<u64>() + a.refused.values().sum::<u64>() + a.closed.values().sum::<u64>();
                }
                Op::Take(k) => {
                    match b.take_due(&key(k), later, draining) {
                        Step::Send(chunk) => {
                            prop_assert!(!chunk.is_empty());
                            prop_assert!(held.insert(k, chunk.iter().map(|i| i.seq).collect()).is_none(), "one chunk per key");
                        }
                        Step::Busy => prop_assert!(held.contains_key(&k)),
                        Step::Idle | Step::Wait(_) | Step::WaitDurable => prop_assert!(!held.contains_key(&k)),
                    }
                }
                Op::Release(k) => {
                    if let Some(seqs) = held.remove(&k) {
                        b.release(&key(k), &mut j, &[]);
                        for s in seqs { prop_assert!(gone.insert(s)); }
                    }
                }
                Op::Abandon(k, every) => {
                    // Cut short: every `every`-th event stays unresolved.
                    if let Some(seqs) = held.remove(&k) {
                        let unresolved: Vec<u64> = seqs.iter().copied().step_by(every as usize).collect();
                        b.release(&key(k), &mut j, &unresolved);
                        for s in &seqs {
                            prop_assert!(gone.insert(*s));
                            let resolved = j.resolved.contains(&(format!("s{k}"), *s));
                            prop_assert_eq!(resolved, !unresolved.contains(s), "event {} of a cut chunk", s);
                        }
                    }
                }
                Op::Durable(n) => { b.set_durable(n as u64); }
                Op::Drain => {
                    draining = true;
                    prop_assert_eq!(b.idle_keys().len() + held.len(), b.keys.len());
                }
                Op::Close => {
                    for (_, items) in b.close() {
                        for i in items { prop_assert!(gone.insert(i.seq)); }
                    }
                    for (_, seqs) in std::mem::take(&mut held) {
                        for s in seqs { prop_assert!(gone.insert(s)); }
                    }
                }
            }
            b.check();
            let (events, _) = b.gauges();
            let still: usize = b.keys.values().map(|k| k.q.items.len()).sum::<usize>()
                + held.values().map(Vec::len).sum::<usize>();
            prop_assert_eq!(events, still);
            // Conservation: every submitted event is here, gone, or lost (counted).
            prop_assert_eq!(submitted, (still + gone.len()) as u64 + lost);
            prop_assert!(gone.is_subset(&admitted));
            prop_assert_eq!(b.busy(), held.len());
            if journaled {
                prop_assert!(j.used() <= j.budget, "journal over budget: {} > {}", j.used(), j.budget);
            }
        }
    }
}
