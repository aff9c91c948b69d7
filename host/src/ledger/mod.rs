//! The ledger: the one place that counts what happened to events — delivered,
//! retried, created, dropped with a typed [`DropReason`] — per job, per sink,
//! per target and in total, whichever stage or sink did it; and the one
//! metrics registry ([`Metrics`]) that `/metrics` renders.
//!
//! Stages report plain facts — (job, target, events, bytes), a reason — and
//! never their own types, so the ledger depends on no stage and every stage
//! (validation, the stdout sink, CloudWatch delivery) can report into it.
//! Drops are also logged, aggregated so a flood of drops makes a few lines
//! ([`droplog`]).
//!
//! * [`reason`] — [`DropReason`], the closed set of reasons and their labels.
//! * [`counters`] — [`Counters`] and [`StatsSnapshot`].
//! * [`registry`] — [`Metrics`], where every stage registers its metrics.
//!
//! Adding a counter a stage updates live (a rate, a spool size): register it
//! once with [`Metrics::counter`] / [`Metrics::gauge`] / [`Metrics::float_gauge`]
//! on [`Ledger::metrics`] and keep the handle. Adding a per-job or per-target
//! count of events: a field in [`Counters`], one method here that bumps it,
//! and one line in this file's `Collector` impl.

pub mod counters;
mod droplog;
pub mod reason;
pub mod registry;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::event::Target;

pub use counters::{Counters, StatsSnapshot};
pub use reason::{DropReason, INVALID_EMF_PREFIX};
pub use registry::{
    CONTENT_TYPE, Collector, Counter, DescriptorEncoder, FloatGauge, Gauge, Metrics,
    encode_counters, encode_gauges,
};

use droplog::{DropLog, Noted};

/// Default least interval between aggregated drop log lines.
pub const DEFAULT_DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One job's part of an answered request: `events` events of `bytes` message bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share<'a> {
    /// The job whose events these are.
    pub job: &'a str,
    /// Events accepted.
    pub events: u64,
    /// Their UTF-8 message bytes.
    pub bytes: u64,
}

/// What a host created at a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// A log group.
    Group,
    /// A log stream.
    Stream,
}

#[derive(Default)]
struct State {
    totals: Counters,
    jobs: HashMap<Arc<str>, Counters>,
    sinks: HashMap<Arc<str>, Counters>,
    targets: HashMap<Target, Counters>,
    droplog: DropLog,
}

impl State {
    fn job(&mut self, job: &str) -> &mut Counters {
        if !self.jobs.contains_key(job) {
            self.jobs.insert(Arc::from(job), Counters::default());
        }
        self.jobs.get_mut(job).expect("inserted above")
    }

    fn target(&mut self, target: &Target) -> &mut Counters {
        if !self.targets.contains_key(target) {
            self.targets.insert(target.clone(), Counters::default());
        }
        self.targets.get_mut(target).expect("inserted above")
    }

    /// Applies `bump` to the totals, the target and the target's sink.
    fn at_target(&mut self, target: &Target, bump: impl Fn(&mut Counters)) {
        bump(&mut self.totals);
        bump(self.target(target));
        bump(self.sinks.entry(target.sink.clone()).or_default());
    }
}

/// The counters behind a ledger; also the collector that writes them to `/metrics`.
struct Book {
    state: Mutex<State>,
    log_interval: Duration,
}

impl Book {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters stay usable even if a panic poisoned the lock elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Book {
    fn snapshot(&self) -> StatsSnapshot {
        let g = self.lock();
        StatsSnapshot {
            totals: g.totals.clone(),
            per_job: Arc::new(g.jobs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            per_sink: Arc::new(
                g.sinks
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            per_target: Arc::new(
                g.targets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            ..StatsSnapshot::default()
        }
    }
}

impl fmt::Debug for Book {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Book").finish_non_exhaustive()
    }
}

/// The shared ledger (cheap to clone; all clones count into the same book).
#[derive(Clone)]
pub struct Ledger {
    book: Arc<Book>,
    metrics: Metrics,
    extensions: Arc<Mutex<Extensions>>,
}

/// Values stages keep once per ledger, by type.
type Extensions = HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>;

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(DEFAULT_DROP_LOG_INTERVAL)
    }
}

impl Ledger {
    /// A fresh ledger with its own metrics registry (its counters already
    /// registered); aggregated drop lines are at least `drop_log_interval` apart.
    pub fn new(drop_log_interval: Duration) -> Ledger {
        let book = Arc::new(Book {
            state: Mutex::default(),
            log_interval: drop_log_interval.max(Duration::from_millis(1)),
        });
        let metrics = Metrics::new();
        metrics.collector(book.clone());
        Ledger {
            book,
            metrics,
            extensions: Arc::default(),
        }
    }

    /// The one value of type `T` kept with this ledger, made by `init` the
    /// first time it is asked for: how several instances of a stage (one
    /// delivery core per sink) share one metrics collector.
    pub fn extension<T: std::any::Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut ext = self
            .extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = ext
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()));
        Arc::clone(entry)
            .downcast::<T>()
            .expect("the entry of a type holds that type")
    }

    /// The metrics registry every stage registers into and `/metrics` renders.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts `count` events of `job` for `target` dropped for `reason`, and logs it.
    pub fn dropped(&self, job: &str, target: &Target, reason: DropReason, count: u64) {
        self.drop_counted(job, Some(target), reason, count);
    }

    /// Counts `count` events of `job` dropped for `reason` before they reached
    /// any sink (the validation stage), and logs it.
    pub fn dropped_before_sinks(&self, job: &str, reason: DropReason, count: u64) {
        self.drop_counted(job, None, reason, count);
    }

    fn drop_counted(&self, job: &str, target: Option<&Target>, reason: DropReason, count: u64) {
        if count == 0 {
            return;
        }
        let mut g = self.book.lock();
        g.job(job).add_drop(reason, count);
        match target {
            Some(t) => g.at_target(t, |c| c.add_drop(reason, count)),
            None => g.totals.add_drop(reason, count),
        }
        let noted = g
            .droplog
            .note(reason, job, target, count, self.book.log_interval);
        match noted {
            Noted::First => {
                drop(g);
                droplog::log_first(reason, job, target, count);
            }
            Noted::FlushNow => {
                let lines = g.droplog.take();
                drop(g);
                droplog::log_lines(lines);
            }
            Noted::FlushAt(at) => {
                drop(g);
                self.flush_at(at);
            }
            Noted::Wait => {}
        }
    }

    /// Counts one answered request to `target` carrying each job's `shares`.
    pub fn delivered(&self, target: &Target, shares: &[Share<'_>]) {
        let mut g = self.book.lock();
        let (mut events, mut bytes) = (0, 0);
        for s in shares {
            g.job(s.job).add_request(s.events, s.bytes);
            events += s.events;
            bytes += s.bytes;
        }
        g.at_target(target, |c| c.add_request(events, bytes));
    }

    /// Counts one failed request to `target` (carrying events of `jobs`) that will be retried.
    pub fn retried<'a>(
        &self,
        target: &Target,
        jobs: impl IntoIterator<Item = &'a str>,
        throttled: bool,
    ) {
        let bump = |c: &mut Counters| {
            c.retries += 1;
            c.throttles += u64::from(throttled);
        };
        let mut g = self.book.lock();
        g.at_target(target, bump);
        for job in jobs {
            bump(g.job(job));
        }
    }

    /// Counts a log group or stream this host created at `target`.
    pub fn created(&self, target: &Target, what: Creation) {
        let bump = |c: &mut Counters| match what {
            Creation::Group => c.groups_created += 1,
            Creation::Stream => c.streams_created += 1,
        };
        self.book.lock().at_target(target, bump);
    }

    /// The counters over all jobs and targets (cheaper than a full snapshot).
    pub fn totals(&self) -> Counters {
        self.book.lock().totals.clone()
    }

    /// A copy of every counter (buffer gauges left at zero; a sink with a buffer fills them).
    pub fn snapshot(&self) -> StatsSnapshot {
        self.book.snapshot()
    }

    /// Logs every aggregated drop line now (at drain, before the summary).
    pub fn flush_drop_log(&self) {
        let lines = self.book.lock().droplog.take();
        droplog::log_lines(lines);
    }

    /// Logs the waiting drop lines at `at`, on the current tokio runtime (if
    /// there is none, the next drop after the interval logs them).
    fn flush_at(&self, at: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.book.lock().droplog.disarm();
            return;
        };
        let book: Weak<Book> = Arc::downgrade(&self.book);
        runtime.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if let Some(book) = book.upgrade() {
                let lines = {
                    let mut g = book.lock();
                    g.droplog.disarm();
                    g.droplog.take()
                };
                droplog::log_lines(lines);
            }
        });
    }
}

/// Label pairs of one sample.
pub type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A counter family of one scope: name suffix, help, value.
type Family = (&'static str, &'static str, fn(&Counters) -> u64);

/// The per-scope request counters.
const REQUEST_FAMILIES: [Family; 5] = [
    ("events_sent", "Events the sink accepted", |c| c.events_sent),
    (
        "bytes_sent",
        "Message bytes of the events the sink accepted",
        |c| c.bytes_sent,
    ),
    ("requests", "Requests answered successfully", |c| c.requests),
    (
        "retries",
        "Failed requests that were retried, throttled ones included",
        |c| c.retries,
    ),
    (
        "throttles",
        "Requests answered with ThrottlingException",
        |c| c.throttles,
    ),
];

/// Writes the request counters and the drop counter of one scope (per target or per job).
fn encode_scope(
    e: &mut DescriptorEncoder<'_>,
    prefix: &str,
    scope: &str,
    rows: &[(Labels<'_>, &Counters)],
) -> fmt::Result {
    for (name, help, get) in REQUEST_FAMILIES {
        encode_counters(
            e,
            &format!("{prefix}_{name}"),
            &format!("{help}, by {scope}."),
            rows.iter().map(|(l, c)| (l.clone(), get(c))),
        )?;
    }
    encode_counters(
        e,
        &format!("{prefix}_events_dropped"),
        &format!("Dropped events, by {scope} and reason."),
        rows.iter().flat_map(|(l, c)| {
            c.drops.iter().map(move |(reason, n)| {
                let mut l = l.clone();
                l.push((Cow::Borrowed("reason"), reason.label()));
                (l, *n)
            })
        }),
    )
}

impl Collector for Book {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let snapshot = self.snapshot();
        let rows: Vec<(Labels<'_>, &Counters)> = snapshot
            .per_target
            .iter()
            .map(|(t, c)| (target_labels(t), c))
            .collect();
        encode_scope(&mut e, "cwpub_target", "target", &rows)?;
        encode_counters(
            &mut e,
            "cwpub_target_groups_created",
            "Log groups this host created, by target.",
            rows.iter().map(|(l, c)| (l.clone(), c.groups_created)),
        )?;
        encode_counters(
            &mut e,
            "cwpub_target_streams_created",
            "Log streams this host created, by target.",
            rows.iter().map(|(l, c)| (l.clone(), c.streams_created)),
        )?;

        let rows: Vec<(Labels<'_>, &Counters)> = snapshot
            .per_sink
            .iter()
            .map(|(s, c)| (vec![(Cow::Borrowed("sink"), Cow::Borrowed(&**s))], c))
            .collect();
        encode_scope(&mut e, "cwpub_sink", "sink", &rows)?;

        let rows: Vec<(Labels<'_>, &Counters)> = snapshot
            .per_job
            .iter()
            .map(|(j, c)| (vec![(Cow::Borrowed("job"), Cow::Borrowed(&**j))], c))
            .collect();
        encode_scope(&mut e, "cwpub_job_delivery", "job", &rows)
    }
}

/// The labels of a target's samples: its sink, then the sink's own labels.
pub fn target_labels(t: &Target) -> Labels<'_> {
    let mut labels = Vec::with_capacity(1 + t.labels.len());
    labels.push((Cow::Borrowed("sink"), Cow::Borrowed(&*t.sink)));
    labels.extend(
        t.labels
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))),
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use cwpub_emf::ViolationKind;

    fn tgt() -> Target {
        Target::new(
            "cw",
            vec![
                ("log_group".into(), "g".into()),
                ("log_stream".into(), "s".into()),
            ],
        )
    }

    #[test]
    fn counts_per_job_target_and_total() {
        let l = Ledger::new(Duration::from_secs(10));
        l.delivered(
            &tgt(),
            &[
                Share {
                    job: "a",
                    events: 1,
                    bytes: 3,
                },
                Share {
                    job: "b",
                    events: 1,
                    bytes: 2,
                },
            ],
        );
        l.dropped("a", &tgt(), DropReason::RejectedTooOld, 1);
        l.dropped("b", &tgt(), DropReason::RejectedTooNew, 1);
        let emf = DropReason::InvalidEmf(ViolationKind::MissingNamespace);
        l.dropped("a", &tgt(), emf, 2);
        l.dropped_before_sinks("b", emf, 1);
        l.retried(&tgt(), ["a"], true);
        l.created(&tgt(), Creation::Stream);
        let s = l.snapshot();
        assert_eq!(s.totals.events_sent, 2);
        assert_eq!(s.totals.bytes_sent, 5);
        assert_eq!(s.totals.requests, 1);
        assert_eq!(s.job("a").requests, 1);
        assert_eq!(s.job("b").requests, 1);
        assert_eq!(s.job("a").dropped(DropReason::RejectedTooOld), 1);
        assert_eq!(s.job("a").dropped(emf), 2);
        assert_eq!(s.job("b").dropped(emf), 1);
        assert_eq!(s.totals.dropped(emf), 3);
        assert_eq!(
            s.sink("cw").dropped(emf),
            2,
            "drops before any sink are no sink's"
        );
        assert_eq!(s.job("a").throttles, 1);
        assert_eq!(s.job("b").retries, 0);
        assert_eq!(s.target(&tgt()).dropped_total(), 4);
        assert_eq!(s.target(&tgt()).streams_created, 1);
        assert_eq!(l.totals(), s.totals);
    }

    #[test]
    fn renders_every_family_with_typed_reasons() {
        let l = Ledger::default();
        l.delivered(
            &tgt(),
            &[Share {
                job: "hb",
                events: 4,
                bytes: 100,
            }],
        );
        l.dropped(
            "hb",
            &tgt(),
            DropReason::InvalidEmf(ViolationKind::MissingNamespace),
            2,
        );
        let out = l.metrics().render();
        for line in [
            "# TYPE cwpub_target_events_sent_total counter",
            "cwpub_target_events_sent_total{sink=\"cw\",log_group=\"g\",log_stream=\"s\"} 4",
            "cwpub_target_bytes_sent_total{sink=\"cw\",log_group=\"g\",log_stream=\"s\"} 100",
            "cwpub_target_requests_total{sink=\"cw\",log_group=\"g\",log_stream=\"s\"} 1",
            "cwpub_target_events_dropped_total{sink=\"cw\",log_group=\"g\",log_stream=\"s\",reason=\"invalid_emf:missing_namespace\"} 2",
            "cwpub_target_streams_created_total{sink=\"cw\",log_group=\"g\",log_stream=\"s\"} 0",
            "cwpub_sink_events_sent_total{sink=\"cw\"} 4",
            "cwpub_sink_events_dropped_total{sink=\"cw\",reason=\"invalid_emf:missing_namespace\"} 2",
            "cwpub_job_delivery_events_sent_total{job=\"hb\"} 4",
            "cwpub_job_delivery_events_dropped_total{job=\"hb\",reason=\"invalid_emf:missing_namespace\"} 2",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing {line:?} in:\n{out}"
            );
        }
    }
}
