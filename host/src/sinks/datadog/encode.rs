//! A batch of events as gzip-compressed requests within DataDog's limits.
//!
//! [`encode_logs`] and [`encode_series`] take the events of one batch (one
//! kind each), check each event ([`Skipped`] says why one cannot be sent:
//! the caller drops and counts it), and pack the rest, in order, into as few
//! [`Payload`]s as the limits allow. Each payload says which run of the input
//! events it carries ([`Payload::events`]), so the caller can account per
//! event; runs never include a skipped event.
//!
//! | intake | per request |
//! |---|---|
//! | logs | ≤ [`LogLimits::items`] items (1,000), ≤ [`LogLimits::bytes`] uncompressed (5,000,000) |
//! | series | ≤ [`SeriesLimits::compressed`] bytes as sent (512,000), < [`SeriesLimits::uncompressed`] once decompressed (5,242,880) |
//!
//! The series limit is on the compressed size, which is only known once a
//! payload is finished. The encoder compresses as it goes and admits a
//! document only while the output so far plus an upper bound of what the
//! unflushed input can still become fits; when that bound is too loose it
//! flushes the compressor (a few bytes) and measures again. A payload is
//! therefore never over the limit, and is closed only when the next
//! document really may not fit. A document whose own series do not fit an
//! empty payload is reported as [`SkipReason::SeriesTooLarge`].
//!
//! Compression is gzip at the fast level: the daemon's CPU is the scarcer
//! resource, and the limits leave room.

use std::fmt;
use std::io::Write;
use std::ops::Range;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::logs::{self, Dated, ItemTooLarge, LogDefaults};
use super::series::{self, MapError, Series};
use super::site::Intake;
use super::window::TimeRefusal;

/// Per-request limits of the logs intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most items per request.
    pub items: usize,
    /// Most bytes per request before compression.
    pub bytes: usize,
}

impl LogLimits {
    /// DataDog's limits (see `logs`).
    pub const DATADOG: LogLimits = LogLimits {
        items: logs::MAX_ITEMS_PER_REQUEST,
        bytes: logs::MAX_REQUEST_BYTES,
    };
}

/// Per-payload limits of the series intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Most bytes as sent (compressed).
    pub compressed: usize,
    /// The decompressed body must be smaller than this.
    pub uncompressed: usize,
}

impl SeriesLimits {
    /// DataDog's limits: "The maximum payload size is 500 kilobytes (512000
    /// bytes). Compressed payloads must have a decompressed size of less
    /// than 5 megabytes (5242880 bytes)."
    pub const DATADOG: SeriesLimits = SeriesLimits {
        compressed: 512_000,
        uncompressed: 5_242_880,
    };
}

/// One request body, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Where it goes.
    pub intake: Intake,
    /// The gzip-compressed JSON body.
    pub body: Bytes,
    /// The input events it carries: a contiguous run, none skipped.
    pub events: Range<usize>,
    /// Log items or series in the body.
    pub items: usize,
    /// The body's size before compression.
    pub uncompressed_bytes: usize,
}

/// An event that cannot be sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its index in the input.
    pub event: usize,
    /// Why.
    pub reason: SkipReason,
}

/// Why an event is not sent; the caller drops and counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A log item over DataDog's item limit.
    ItemTooLarge(ItemTooLarge),
    /// Outside DataDog's time window (logs or metric points).
    OutOfWindow(TimeRefusal),
    /// A document that does not map to series.
    Unmappable(MapError),
    /// A document without any metric: nothing to send.
    NoSeries,
    /// A document whose series alone exceed one payload.
    SeriesTooLarge {
        /// Their size uncompressed, as encoded.
        uncompressed_bytes: usize,
    },
}

impl SkipReason {
    /// A stable label for counters.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::ItemTooLarge(_) => "too_large",
            SkipReason::OutOfWindow(r) => r.label(),
            SkipReason::Unmappable(e) => e.label(),
            SkipReason::NoSeries => "no_series",
            SkipReason::SeriesTooLarge { .. } => "too_large",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ItemTooLarge(r) => r.fmt(f),
            SkipReason::OutOfWindow(r) => write!(f, "the event is {r}"),
            SkipReason::Unmappable(e) => e.fmt(f),
            SkipReason::NoSeries => f.write_str("the EMF document has no metric; nothing to send"),
            SkipReason::SeriesTooLarge { uncompressed_bytes } => write!(
                f,
                "the document's series are {uncompressed_bytes} bytes and do not fit one DataDog \
                 payload (512,000 bytes compressed); split the document into smaller ones"
            ),
        }
    }
}

/// What [`encode_logs`] or [`encode_series`] made of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The requests, in input order.
    pub payloads: Vec<Payload>,
    /// The events not sent, in input order.
    pub skipped: Vec<Skipped>,
}

/// The log requests for `events` (checked against `now_ms`, see
/// [`logs::WINDOW`]), each event one item with `defaults` filled in.
pub fn encode_logs(
    events: &[impl Dated],
    defaults: &LogDefaults,
    now_ms: i64,
    limits: LogLimits,
) -> Plan {
    let mut plan = Plan::default();
    let mut open: Option<Open> = None;
    for (index, event) in events.iter().enumerate() {
        let item = logs::WINDOW
            .check(event.timestamp_ms(), now_ms)
            .map_err(SkipReason::OutOfWindow)
            .and_then(|()| logs::encode_item(event, defaults).map_err(SkipReason::ItemTooLarge))
            .and_then(|item| {
                // `[` + item + `]` must fit a request on its own.
                if item.len() + 2 <= limits.bytes {
                    Ok(item)
                } else {
                    Err(SkipReason::ItemTooLarge(ItemTooLarge { bytes: item.len() }))
                }
            });
        let item = match item {
            Ok(item) => item,
            Err(reason) => {
                skip(&mut plan, &mut open, index, reason);
                continue;
            }
        };
        let fits = open.as_ref().is_some_and(|o| {
            // `,` + item + the closing `]`.
            o.items < limits.items && o.raw + item.len() + 2 <= limits.bytes
        });
        if !fits {
            close(&mut plan, &mut open);
        }
        let o = open.get_or_insert_with(|| Open::new(Intake::Logs, index, b"["));
        o.push(&item);
    }
    close(&mut plan, &mut open);
    plan
}

/// The series requests for the EMF documents `events`: each mapped
/// ([`series::map_document`], `host` as the host resource) and checked
/// against `now_ms` ([`series::check_time`]).
pub fn encode_series(
    events: &[impl Dated],
    host: Option<&str>,
    now_ms: i64,
    limits: SeriesLimits,
) -> Plan {
    let mut plan = Plan::default();
    let mut open: Option<Open> = None;
    for (index, event) in events.iter().enumerate() {
        let fragment = match series::map_document(event.message(), host) {
            Err(e) => Err(SkipReason::Unmappable(e)),
            Ok(doc) if doc.series.is_empty() => Err(SkipReason::NoSeries),
            Ok(doc) => series::check_time(doc.timestamp_ms, now_ms)
                .map(|()| fragment(&doc.series))
                .map_err(SkipReason::OutOfWindow),
        };
        let fragment = match fragment {
            Ok(f) => f,
            Err(reason) => {
                skip(&mut plan, &mut open, index, reason);
                continue;
            }
        };
        let admitted = open.as_mut().is_some_and(|o| o.admit(&fragment, limits));
        if !admitted {
            close(&mut plan, &mut open);
            let mut fresh = Open::new(Intake::Series, index, SERIES_OPEN);
            if fresh.admit(&fragment, limits) {
                open = Some(fresh);
            } else {
                plan.skipped.push(Skipped {
                    event: index,
                    reason: SkipReason::SeriesTooLarge {
                        uncompressed_bytes: fragment.bytes.len(),
                    },
                });
            }
        }
    }
    close(&mut plan, &mut open);
    plan
}

/// `{"series":[` … `]}`.
const SERIES_OPEN: &[u8] = b"{\"series\":[";
const SERIES_CLOSE: &[u8] = b"]}";
/// The gzip trailer (CRC and size) plus the final deflate block's end.
const GZIP_TAIL: usize = 8 + 16;

/// The series of one document as a comma-separated run of JSON objects.
struct Fragment {
    bytes: Vec<u8>,
    series: usize,
}

fn fragment(series: &[Series]) -> Fragment {
    let mut bytes = Vec::with_capacity(series.len() * 160);
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        // Serialising plain structs of strings and finite numbers cannot fail.
        let _ = serde_json::to_writer(&mut bytes, s);
    }
    Fragment {
        bytes,
        series: series.len(),
    }
}

/// The whole `/api/v2/series` body for `series`, uncompressed: what
/// `cwpub invoke` can show as "what DataDog would receive".
pub fn series_body(series: &[Series]) -> Vec<u8> {
    let mut out = SERIES_OPEN.to_vec();
    out.extend(fragment(series).bytes);
    out.extend_from_slice(SERIES_CLOSE);
    out
}

/// The largest size `n` input bytes can take once deflated, with block
/// headers and a sync flush: stored blocks cost 5 bytes per 65,535; this
/// bound allows 1 per 1,024 and a constant.
const fn deflate_bound(n: usize) -> usize {
    n + (n >> 10) + 64
}

/// Finishes the open payload, if any.
fn close(plan: &mut Plan, open: &mut Option<Open>) {
    if let Some(o) = open.take() {
        plan.payloads.push(o.finish());
    }
}

/// Records `index` as skipped, closing the open payload so that runs stay
/// contiguous.
fn skip(plan: &mut Plan, open: &mut Option<Open>, index: usize, reason: SkipReason) {
    close(plan, open);
    plan.skipped.push(Skipped {
        event: index,
        reason,
    });
}

/// A payload being written.
struct Open {
    intake: Intake,
    gz: GzEncoder<Vec<u8>>,
    first: usize,
    next: usize,
    items: usize,
    /// Bytes written so far (uncompressed).
    raw: usize,
    /// Bytes written since the last flush.
    unflushed: usize,
    /// Events in the payload.
    events: usize,
}

impl Open {
    fn new(intake: Intake, first: usize, opening: &[u8]) -> Open {
        let mut open = Open {
            intake,
            gz: GzEncoder::new(Vec::with_capacity(64 << 10), Compression::fast()),
            first,
            next: first,
            items: 0,
            raw: 0,
            unflushed: 0,
            events: 0,
        };
        open.write(opening);
        open
    }

    fn write(&mut self, bytes: &[u8]) {
        // Writing to a Vec cannot fail.
        let _ = self.gz.write_all(bytes);
        self.raw += bytes.len();
        self.unflushed += bytes.len();
    }

    /// Appends one log item (the caller checked the limits).
    fn push(&mut self, item: &[u8]) {
        if self.items > 0 {
            self.write(b",");
        }
        self.write(item);
        self.items += 1;
        self.events += 1;
        self.next += 1;
    }

    /// Output so far plus what the unflushed input and `more` bytes can
    /// still become, closing bytes and gzip trailer included.
    fn compressed_bound(&self, more: usize) -> usize {
        self.gz.get_ref().len()
            + deflate_bound(self.unflushed + more + SERIES_CLOSE.len())
            + GZIP_TAIL
    }

    fn flush(&mut self) {
        // Flushing into a Vec cannot fail.
        let _ = self.gz.flush();
        self.unflushed = 0;
    }

    /// Appends one document's series if the payload stays within `limits`
    /// (see the module docs). `false` leaves a payload that holds documents
    /// unchanged; an empty payload may have been written to and is dropped.
    fn admit(&mut self, fragment: &Fragment, limits: SeriesLimits) -> bool {
        let added = usize::from(self.events > 0) + fragment.bytes.len();
        if self.raw + added + SERIES_CLOSE.len() >= limits.uncompressed {
            return false;
        }
        if self.compressed_bound(added) > limits.compressed && self.unflushed > 0 {
            self.flush();
        }
        if self.compressed_bound(added) > limits.compressed {
            if self.events > 0 {
                return false;
            }
            // The bound is too loose for this document alone: measure it.
            self.write(&fragment.bytes);
            self.flush();
            if self.compressed_bound(0) > limits.compressed {
                return false;
            }
        } else {
            if self.events > 0 {
                self.write(b",");
            }
            self.write(&fragment.bytes);
        }
        self.items += fragment.series;
        self.events += 1;
        self.next += 1;
        true
    }

    fn finish(mut self) -> Payload {
        if self.intake == Intake::Series {
            self.write(SERIES_CLOSE);
        } else {
            self.write(b"]");
        }
        // Finishing into a Vec cannot fail; an empty body would be refused
        // by the intake, never accepted silently.
        let body = self.gz.finish().unwrap_or_default();
        Payload {
            intake: self.intake,
            body: Bytes::from(body),
            events: self.first..self.next,
            items: self.items,
            uncompressed_bytes: self.raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogEvent;

    use std::io::Read;

    use flate2::read::GzDecoder;
    use serde_json::{Value, json};

    const NOW: i64 = 1_767_225_600_000;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(body).read_to_end(&mut out).unwrap();
        out
    }

    fn log(message: &str) -> LogEvent {
        LogEvent {
            timestamp_ms: NOW,
            message: message.to_string(),
        }
    }

    /// The items of every payload, checked against the payload's own claims.
    fn items(plan: &Plan) -> Vec<Vec<Value>> {
        plan.payloads
            .iter()
            .map(|p| {
                let raw = gunzip(&p.body);
                assert_eq!(raw.len(), p.uncompressed_bytes);
                let items: Vec<Value> = serde_json::from_slice(&raw).unwrap();
                assert_eq!(items.len(), p.items);
                assert_eq!(p.events.len(), p.items);
                items
            })
            .collect()
    }

    #[test]
    fn logs_split_at_1000_items() {
        let events: Vec<LogEvent> = (0..2500).map(|i| log(&format!("line {i}"))).collect();
        let plan = encode_logs(&events, &LogDefaults::default(), NOW, LogLimits::DATADOG);
        assert!(plan.skipped.is_empty());
        let ranges: Vec<Range<usize>> = plan.payloads.iter().map(|p| p.events.clone()).collect();
        assert_eq!(ranges, vec![0..1000, 1000..2000, 2000..2500]);
        let all: Vec<Value> = items(&plan).into_iter().flatten().collect();
        for (i, item) in all.iter().enumerate() {
            assert_eq!(item["message"], format!("line {i}"));
        }
        assert!(plan.payloads.iter().all(|p| p.intake == Intake::Logs));
    }

    #[test]
    fn logs_split_at_the_exact_byte_limit() {
        // Items of exactly 100 bytes: `[` + 10 items + 9 commas + `]` = 1011.
        let limits = LogLimits {
            items: 1000,
            bytes: 1011,
        };
        let overhead = logs::encode_item(&log(""), &LogDefaults::default())
            .unwrap()
            .len();
        let events: Vec<LogEvent> = (0..21)
            .map(|i| log(&format!("{i:0>width$}", width = 100 - overhead)))
            .collect();
        let plan = encode_logs(&events, &LogDefaults::default(), NOW, limits);
        let sizes: Vec<usize> = plan.payloads.iter().map(|p| p.uncompressed_bytes).collect();
        assert_eq!(sizes, vec![1011, 1011, 102]);
        let one_less = LogLimits {
            items: 1000,
            bytes: 1010,
        };
        let plan = encode_logs(&events, &LogDefaults::default(), NOW, one_less);
        let counts: Vec<usize> = plan.payloads.iter().map(|p| p.items).collect();
        assert_eq!(counts, vec![9, 9, 3]);
        assert_eq!(items(&plan).concat().len(), 21);
    }

    #[test]
    fn logs_at_the_real_5_mb_limit() {
        // Five items of 999,999 bytes make 5,000,001 bytes with the
        // brackets and commas: the fifth goes to a second request.
        let overhead = logs::encode_item(&log(""), &LogDefaults::default())
            .unwrap()
            .len();
        let big = log(&"y".repeat(999_999 - overhead));
        let plan = encode_logs(
            &vec![big; 6],
            &LogDefaults::default(),
            NOW,
            LogLimits::DATADOG,
        );
        let sizes: Vec<usize> = plan.payloads.iter().map(|p| p.uncompressed_bytes).collect();
        assert_eq!(sizes, vec![4 * 999_999 + 3 + 2, 2 * 999_999 + 1 + 2]);
        assert!(sizes.iter().all(|&s| s <= logs::MAX_REQUEST_BYTES));
    }

    #[test]
    fn refused_log_events_are_skipped_and_break_the_run() {
        let events = vec![
            log("a"),
            LogEvent {
                timestamp_ms: NOW - logs::WINDOW.max_age_ms - 1,
                message: "old".into(),
            },
            log("b"),
            log(&"z".repeat(logs::MAX_ITEM_BYTES)),
            log("c"),
            LogEvent {
                timestamp_ms: NOW + logs::WINDOW.max_ahead_ms + 1,
                message: "future".into(),
            },
        ];
        let plan = encode_logs(&events, &LogDefaults::default(), NOW, LogLimits::DATADOG);
        let ranges: Vec<Range<usize>> = plan.payloads.iter().map(|p| p.events.clone()).collect();
        assert_eq!(ranges, vec![0..1, 2..3, 4..5]);
        let labels: Vec<(usize, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.event, s.reason.label()))
            .collect();
        assert_eq!(
            labels,
            vec![(1, "too_old"), (3, "too_large"), (5, "too_new")]
        );
        assert_eq!(
            items(&plan)
                .concat()
                .iter()
                .map(|i| i["message"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn an_empty_batch_makes_no_request() {
        assert_eq!(
            encode_logs(
                &[] as &[LogEvent],
                &LogDefaults::default(),
                NOW,
                LogLimits::DATADOG
            ),
            Plan::default()
        );
        assert_eq!(
            encode_series(&[] as &[LogEvent], None, NOW, SeriesLimits::DATADOG),
            Plan::default()
        );
    }

    /// An EMF document with `metrics` metrics and a `Tag` dimension `tag`.
    fn emf(metrics: usize, tag: &str) -> LogEvent {
        emf_tags(metrics, &[tag.to_string()])
    }

    /// An EMF document with `metrics` metrics and dimensions `T0`, `T1`, …
    /// valued `tags`.
    fn emf_tags(metrics: usize, tags: &[String]) -> LogEvent {
        let mut root = serde_json::Map::new();
        let definitions: Vec<Value> = (0..metrics)
            .map(|i| json!({"Name": format!("m{i}")}))
            .collect();
        let names: Vec<String> = (0..tags.len()).map(|i| format!("T{i}")).collect();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": NOW, "CloudWatchMetrics": [{
                "Namespace": "app", "Dimensions": [names], "Metrics": definitions}]}),
        );
        for (name, tag) in names.iter().zip(tags) {
            root.insert(name.clone(), json!(tag));
        }
        for i in 0..metrics {
            root.insert(format!("m{i}"), json!(i));
        }
        LogEvent {
            timestamp_ms: NOW,
            message: Value::Object(root).to_string(),
        }
    }

    /// Every payload's series, checked against the limits and its claims.
    fn series_of(plan: &Plan, limits: SeriesLimits) -> Vec<Vec<Value>> {
        plan.payloads
            .iter()
            .map(|p| {
                assert!(
                    p.body.len() <= limits.compressed,
                    "{} > {}",
                    p.body.len(),
                    limits.compressed
                );
                let raw = gunzip(&p.body);
                assert!(raw.len() < limits.uncompressed);
                assert_eq!(raw.len(), p.uncompressed_bytes);
                let body: Value = serde_json::from_slice(&raw).unwrap();
                let series = body["series"].as_array().unwrap().clone();
                assert_eq!(series.len(), p.items);
                series
            })
            .collect()
    }

    /// A tag no compressor can shrink much.
    fn noise(seed: u64, len: usize) -> String {
        use rand::{Rng, SeedableRng};
        let rng = rand::rngs::StdRng::seed_from_u64(seed);
        rng.sample_iter(rand::distr::Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }

    #[test]
    fn series_split_under_the_compressed_limit() {
        let limits = SeriesLimits {
            compressed: 4_000,
            uncompressed: 1_000_000,
        };
        // Incompressible tags: the compressed limit decides.
        let events: Vec<LogEvent> = (0..60).map(|i| emf(3, &noise(i, 150))).collect();
        let plan = encode_series(&events, Some("h"), NOW, limits);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        let sizes: Vec<(usize, usize)> = plan
            .payloads
            .iter()
            .map(|p| (p.body.len(), p.uncompressed_bytes))
            .collect();
        assert!(plan.payloads.len() >= 3, "{sizes:?}");
        let all = series_of(&plan, limits);
        let mut next = 0;
        for p in &plan.payloads {
            assert_eq!(p.events.start, next, "runs are contiguous");
            next = p.events.end;
        }
        assert_eq!(next, 60);
        let tags: Vec<String> = all
            .concat()
            .iter()
            .map(|s| s["tags"][0].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..60)
            .flat_map(|i| std::iter::repeat_n(format!("T0:{}", noise(i, 150)), 3))
            .collect();
        assert_eq!(tags, expected, "every series once, in order");
        // Packed reasonably: each payload but the last is at least half full.
        for p in &plan.payloads[..plan.payloads.len() - 1] {
            assert!(p.body.len() > limits.compressed / 2, "{}", p.body.len());
        }
    }

    #[test]
    fn series_split_under_the_uncompressed_limit() {
        let limits = SeriesLimits {
            compressed: 512_000,
            uncompressed: 20_000,
        };
        // Very compressible: the uncompressed limit decides.
        let events: Vec<LogEvent> = (0..50).map(|_| emf(10, "same")).collect();
        let plan = encode_series(&events, None, NOW, limits);
        assert!(plan.payloads.len() > 1);
        let total: usize = series_of(&plan, limits).iter().map(Vec::len).sum();
        assert_eq!(total, 500);
        for p in &plan.payloads[..plan.payloads.len() - 1] {
            assert!(
                p.uncompressed_bytes > limits.uncompressed - 2_000,
                "{}",
                p.uncompressed_bytes
            );
        }
    }

    #[test]
    fn series_payloads_at_datadogs_limits() {
        // Enough incompressible series for several 512,000-byte payloads.
        let events: Vec<LogEvent> = (0..6000).map(|i| emf(1, &noise(i, 180))).collect();
        let plan = encode_series(&events, Some("host-1"), NOW, SeriesLimits::DATADOG);
        assert!(plan.skipped.is_empty());
        assert!(plan.payloads.len() >= 2, "{}", plan.payloads.len());
        let total: usize = series_of(&plan, SeriesLimits::DATADOG)
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(total, 6000);
        let first = plan.payloads[0].body.len();
        assert!(first > 480_000, "payloads are filled: {first}");
    }

    #[test]
    fn a_document_larger_than_a_payload_is_reported() {
        let limits = SeriesLimits {
            compressed: 1_000,
            uncompressed: 100_000,
        };
        let wide: Vec<String> = (0..10).map(|i| noise(i, 150)).collect();
        let events = vec![emf(1, "small"), emf_tags(1, &wide), emf(1, "small")];
        let plan = encode_series(&events, None, NOW, limits);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].event, 1);
        assert!(matches!(
            plan.skipped[0].reason,
            SkipReason::SeriesTooLarge { .. }
        ));
        assert!(
            plan.skipped[0]
                .reason
                .to_string()
                .contains("split the document")
        );
        let ranges: Vec<Range<usize>> = plan.payloads.iter().map(|p| p.events.clone()).collect();
        assert_eq!(ranges, vec![0..1, 2..3]);
        series_of(&plan, limits);

        // A large but compressible document fits once measured.
        let plan = encode_series(&[emf(40, "same")], None, NOW, limits);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        assert!(plan.payloads[0].uncompressed_bytes > limits.compressed);
        series_of(&plan, limits);
    }

    #[test]
    fn unmappable_and_out_of_window_documents_are_skipped() {
        let mut old = emf(1, "x");
        old.message = old.message.replace(
            &NOW.to_string(),
            &(NOW - series::WINDOW.max_age_ms - 1000).to_string(),
        );
        let events = vec![emf(1, "a"), log("not emf"), old, emf(1, "b")];
        let plan = encode_series(&events, None, NOW, SeriesLimits::DATADOG);
        let labels: Vec<(usize, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.event, s.reason.label()))
            .collect();
        assert_eq!(labels, vec![(1, "unreadable"), (2, "too_old")]);
        let ranges: Vec<Range<usize>> = plan.payloads.iter().map(|p| p.events.clone()).collect();
        assert_eq!(ranges, vec![0..1, 3..4]);
    }

    #[test]
    fn series_body_is_what_a_payload_holds() {
        let doc = series::map_document(&emf(2, "t").message, Some("h")).unwrap();
        let plan = encode_series(&[emf(2, "t")], Some("h"), NOW, SeriesLimits::DATADOG);
        assert_eq!(gunzip(&plan.payloads[0].body), series_body(&doc.series));
        assert_eq!(fragment(&doc.series).series, 2);
    }
}
