//! Batching: the per-(target, kind) queue of buffered events, the pre-send
//! filter (empty, oversize, too old, too new, by the sink's [`EventRules`])
//! and the request builder that turns a chunk of events into requests within
//! the sink's [`BatchLimits`]: at most so many events and bytes, stable
//! sorted by timestamp, and a span under the sink's limit (CloudWatch: 24 h).
//!
//! Everything here is synchronous and pure, so the property tests can drive
//! it without a network or a runtime.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ledger::DropReason;

use super::sink::{BatchLimits, EventRules};

/// What one buffered event costs the memory budget beyond its message bytes.
pub const ITEM_OVERHEAD: usize = 26;

/// One buffered event with the job that produced it (for accounting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The job that produced the event.
    pub job: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The message, sent byte for byte.
    pub message: String,
    /// Arrival sequence number, global across queues (for drop-oldest).
    pub seq: u64,
}

impl Item {
    /// The bytes this event counts for in the memory budget.
    #[inline]
    pub fn size(&self) -> usize {
        self.message.len() + ITEM_OVERHEAD
    }
}

/// The accepted timestamp window, computed once per submission / retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWindow {
    /// Oldest accepted timestamp (inclusive), ms.
    pub oldest_ms: i64,
    /// Newest accepted timestamp (inclusive), ms.
    pub newest_ms: i64,
}

impl TimeWindow {
    /// The window around `now` given the configured margins.
    pub fn around(now: SystemTime, older: Duration, newer: Duration) -> TimeWindow {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        TimeWindow {
            oldest_ms: now_ms.saturating_sub(older.as_millis() as i64),
            newest_ms: now_ms.saturating_add(newer.as_millis() as i64),
        }
    }

    /// The window a sink's `rules` allow at `now`.
    pub fn of(rules: &EventRules, now: SystemTime) -> TimeWindow {
        TimeWindow::around(now, rules.max_age, rules.max_ahead)
    }
}

/// Decides whether an event may be buffered at all; `Err` names the drop reason.
#[inline]
pub(crate) fn prefilter(
    message: &str,
    timestamp_ms: i64,
    max_message_bytes: usize,
    window: TimeWindow,
) -> Result<(), DropReason> {
    if message.is_empty() {
        Err(DropReason::EmptyMessage)
    } else if message.len() > max_message_bytes {
        Err(DropReason::Oversize)
    } else if timestamp_ms < window.oldest_ms || timestamp_ms < 0 {
        Err(DropReason::TooOld)
    } else if timestamp_ms > window.newest_ms {
        Err(DropReason::TooNew)
    } else {
        Ok(())
    }
}

/// The buffered events of one (target, kind), in arrival order.
#[derive(Debug)]
pub(crate) struct KeyQueue {
    /// Events not yet taken into a request.
    pub items: VecDeque<Item>,
    /// Σ size of `items` (the memory budget's measure).
    pub bytes: usize,
    /// Σ request bytes of `items` (the sink's measure).
    request_bytes: usize,
    /// The sink's request limits for this stream.
    limits: BatchLimits,
}

impl KeyQueue {
    /// An empty queue for a stream with these request limits.
    pub fn new(limits: BatchLimits) -> KeyQueue {
        KeyQueue {
            items: VecDeque::new(),
            bytes: 0,
            request_bytes: 0,
            limits,
        }
    }

    /// Appends an event.
    #[inline]
    pub fn push(&mut self, item: Item) {
        self.bytes += item.size();
        self.request_bytes += self.limits.event_size(&item.message);
        self.items.push_back(item);
    }

    /// Removes and returns the oldest-arrived event.
    pub fn pop_oldest(&mut self) -> Option<Item> {
        let it = self.items.pop_front()?;
        self.bytes -= it.size();
        self.request_bytes -= self.limits.event_size(&it.message);
        Some(it)
    }

    /// True when at least one full request's worth is buffered.
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.limits.max_events || self.request_bytes >= self.limits.max_bytes
    }

    /// Takes the longest arrival-order prefix that fits one request by
    /// count and bytes (it may still need splitting by time span).
    #[cfg(test)]
    pub fn take_chunk(&mut self) -> Vec<Item> {
        self.take_chunk_below(u64::MAX)
    }

    /// As `take_chunk`, but only events with a sequence number below `below`
    /// (the durable ones).
    pub fn take_chunk_below(&mut self, below: u64) -> Vec<Item> {
        let (mut n, mut bytes, mut request_bytes) = (0, 0, 0);
        for it in &self.items {
            let s = self.limits.event_size(&it.message);
            if n == self.limits.max_events
                || (n > 0 && request_bytes + s > self.limits.max_bytes)
                || it.seq >= below
            {
                break;
            }
            n += 1;
            bytes += it.size();
            request_bytes += s;
        }
        self.bytes -= bytes;
        self.request_bytes -= request_bytes;
        self.items.drain(..n).collect()
    }
}

/// Builds valid requests from a chunk: stable sort by timestamp
/// (same-millisecond events keep their emission order), then cut whenever
/// the next event would break the count, byte or span limit.
pub(crate) fn build_requests(mut items: Vec<Item>, limits: &BatchLimits) -> Vec<Vec<Item>> {
    if !items.is_sorted_by_key(|i| i.timestamp_ms) {
        items.sort_by_key(|i| i.timestamp_ms);
    }
    let span_ok = |first: i64, last: i64| limits.max_span_ms.is_none_or(|m| last - first < m);
    // Common case (one guest run's events): the chunk already is one valid request.
    if let (Some(first), Some(last)) = (items.first(), items.last())
        && span_ok(first.timestamp_ms, last.timestamp_ms)
        && items.len() <= limits.max_events
        && items
            .iter()
            .map(|i| limits.event_size(&i.message))
            .sum::<usize>()
            <= limits.max_bytes
    {
        return vec![items];
    }
    let mut out = Vec::new();
    let mut cur: Vec<Item> = Vec::new();
    let mut bytes = 0usize;
    let mut first_ts = 0i64;
    for it in items {
        let s = limits.event_size(&it.message);
        if !cur.is_empty()
            && (cur.len() == limits.max_events
                || bytes + s > limits.max_bytes
                || !span_ok(first_ts, it.timestamp_ms))
        {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        if cur.is_empty() {
            first_ts = it.timestamp_ms;
        }
        bytes += s;
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Checks one built request against the limits; used by tests and as a
/// debug assertion before sending.
pub(crate) fn check_request(batch: &[Item], limits: &BatchLimits) -> Result<(), String> {
    if batch.is_empty() {
        return Err("empty batch".into());
    }
    if batch.len() > limits.max_events {
        return Err(format!("{} events > {}", batch.len(), limits.max_events));
    }
    let bytes: usize = batch.iter().map(|i| limits.event_size(&i.message)).sum();
    if bytes > limits.max_bytes && batch.len() > 1 {
        return Err(format!("{bytes} bytes > {}", limits.max_bytes));
    }
    if !batch.is_sorted_by_key(|i| i.timestamp_ms) {
        return Err("not in chronological order".into());
    }
    let span = batch[batch.len() - 1].timestamp_ms - batch[0].timestamp_ms;
    if let Some(max) = limits.max_span_ms
        && span >= max
    {
        return Err(format!("span {span} ms ≥ {max} ms"));
    }
    if batch.iter().any(|i| i.message.is_empty()) {
        return Err("empty message".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    // CloudWatch's PutLogEvents limits, as an example sink's.
    const MAX_EVENT_BYTES: usize = 1_048_550;
    const MAX_BATCH_BYTES: usize = 1_048_576;
    const MAX_BATCH_EVENTS: usize = 10_000;
    const MAX_SPAN_MS: i64 = 24 * 3_600_000;
    const LIMITS: BatchLimits = BatchLimits {
        max_events: MAX_BATCH_EVENTS,
        max_bytes: MAX_BATCH_BYTES,
        per_event_bytes: 26,
        max_span_ms: Some(MAX_SPAN_MS),
    };

    const NOW_MS: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn item(job: &str, ts: i64, msg: String, seq: u64) -> Item {
        Item {
            job: Arc::from(job),
            timestamp_ms: ts,
            message: msg,
            seq,
        }
    }

    fn window() -> TimeWindow {
        TimeWindow {
            oldest_ms: NOW_MS - 14 * DAY + 300_000,
            newest_ms: NOW_MS + 2 * 3_600_000 - 300_000,
        }
    }

    #[test]
    fn prefilter_reasons() {
        let w = window();
        assert_eq!(prefilter("", NOW_MS, 10, w), Err(DropReason::EmptyMessage));
        assert_eq!(
            prefilter("12345678901", NOW_MS, 10, w),
            Err(DropReason::Oversize)
        );
        assert_eq!(
            prefilter("é", NOW_MS, 1, w),
            Err(DropReason::Oversize),
            "bytes, not chars"
        );
        assert_eq!(
            prefilter("x", w.oldest_ms - 1, 10, w),
            Err(DropReason::TooOld)
        );
        assert_eq!(
            prefilter("x", w.newest_ms + 1, 10, w),
            Err(DropReason::TooNew)
        );
        assert_eq!(prefilter("x", w.oldest_ms, 10, w), Ok(()));
        assert_eq!(prefilter("x", w.newest_ms, 10, w), Ok(()));
    }

    #[test]
    fn stable_sort_keeps_emission_order_within_a_millisecond() {
        let items = vec![
            item("j", 5, "b1".into(), 0),
            item("j", 3, "a".into(), 1),
            item("j", 5, "b2".into(), 2),
            item("j", 5, "b3".into(), 3),
        ];
        let out = build_requests(items, &LIMITS);
        assert_eq!(out.len(), 1);
        let msgs: Vec<&str> = out[0].iter().map(|i| i.message.as_str()).collect();
        assert_eq!(msgs, ["a", "b1", "b2", "b3"]);
    }

    #[test]
    fn span_is_strictly_under_24h() {
        let items = vec![
            item("j", 0, "a".into(), 0),
            item("j", MAX_SPAN_MS - 1, "b".into(), 1),
            item("j", MAX_SPAN_MS, "c".into(), 2),
        ];
        let out = build_requests(items, &LIMITS);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 2);
        assert_eq!(out[1][0].message, "c");
    }

    #[test]
    fn two_max_events_never_share_a_batch() {
        let big = "x".repeat(MAX_EVENT_BYTES);
        let mut q = KeyQueue::new(LIMITS);
        q.push(item("j", 1, big.clone(), 0));
        q.push(item("j", 2, big, 1));
        assert!(q.is_full());
        let c = q.take_chunk();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].size(), MAX_BATCH_BYTES);
        assert_eq!(q.items.len(), 1);
        assert_eq!(q.bytes, MAX_BATCH_BYTES);
    }

    #[test]
    fn count_limit() {
        let mut q = KeyQueue::new(LIMITS);
        for i in 0..(MAX_BATCH_EVENTS as u64 + 5) {
            q.push(item("j", NOW_MS, "m".into(), i));
        }
        let c = q.take_chunk();
        assert_eq!(c.len(), MAX_BATCH_EVENTS);
        assert_eq!(build_requests(c, &LIMITS).len(), 1);
        assert_eq!(q.items.len(), 5);
    }

    fn arb_event() -> impl Strategy<Value = (u8, i64, usize, bool)> {
        (
            0u8..4,
            // From 20 days ago to 4 h ahead: exercises too old/new and the span
            // rule; whole hours make spans of exactly 24 h common.
            prop_oneof![
                (-20 * DAY)..(4 * 3_600_000),
                (-480i64..4).prop_map(|h| h * 3_600_000),
            ],
            prop_oneof![
                16 => 0usize..200,
                4 => 1_000usize..70_000,
                1 => (MAX_EVENT_BYTES - 10)..(MAX_EVENT_BYTES + 10),
            ],
            any::<bool>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every request built is valid, and every event is delivered
        /// (appears in exactly one request) or dropped with a reason, never
        /// both and never neither.
        #[test]
        fn every_event_delivered_xor_dropped(
            events in prop::collection::vec(arb_event(), 0..1_500),
            max_event_bytes in prop_oneof![Just(MAX_EVENT_BYTES), Just(262_118usize), 100usize..5_000],
        ) {
            let w = window();
            let mut q = KeyQueue::new(LIMITS);
            let mut dropped = BTreeSet::new();
            let mut delivered = BTreeSet::new();
            let total = events.len();
            for (seq, (job, off, len, multibyte)) in events.into_iter().enumerate() {
                let seq = seq as u64;
                let mut msg = if len == 0 { String::new() } else { format!("{seq}:") };
                let fill = if multibyte { "é" } else { "x" };
                if msg.len() < len {
                    msg.push_str(&fill.repeat((len - msg.len()).div_ceil(fill.len())));
                }
                let ts = NOW_MS + off;
                match prefilter(&msg, ts, max_event_bytes, w) {
                    Ok(()) => q.push(item(&format!("job{job}"), ts, msg, seq)),
                    Err(_) => { dropped.insert(seq); }
                }
                // Flush whenever full, as the worker does.
                while q.is_full() {
                    flush_one(&mut q, &mut delivered)?;
                }
            }
            while !q.items.is_empty() {
                flush_one(&mut q, &mut delivered)?;
            }
            prop_assert_eq!(q.bytes, 0);
            prop_assert_eq!(dropped.len() + delivered.len(), total);
            prop_assert!(dropped.is_disjoint(&delivered), "an event was both dropped and delivered");
        }
    }

    fn flush_one(q: &mut KeyQueue, delivered: &mut BTreeSet<u64>) -> Result<(), TestCaseError> {
        let chunk = q.take_chunk();
        prop_assert!(!chunk.is_empty(), "a non-empty queue must yield a chunk");
        for b in build_requests(chunk, &LIMITS) {
            prop_assert_eq!(check_request(&b, &LIMITS), Ok(()));
            for it in b {
                prop_assert!(delivered.insert(it.seq), "event {} delivered twice", it.seq);
            }
        }
        Ok(())
    }
}
