//! Accounting: the single observer of everything delivery does — events and
//! bytes sent, requests, retries, throttles, creations and every dropped event
//! with its reason — per job, per target and in total, exposed as a cheap
//! [`StatsSnapshot`]. Drops are also logged, aggregated per interval so a
//! flood of drops produces a few lines, not one per event.
//!
//! The upstream validation stage records its own drops here too through
//! [`Accounting::record_drop`] with a free-form reason label (for example
//! `invalid_emf:missing_namespace`), so all losses are seen in one place.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::event::Target;

use super::batch::Item;

/// Why events were dropped by the delivery stage. Labels are stable snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Message was empty (CloudWatch requires at least 1 byte).
    EmptyMessage,
    /// Message larger than `max_event_bytes` (dropped, never truncated).
    Oversize,
    /// Older than `drop_older_than` on the host clock (before sending or before a retry).
    TooOld,
    /// More than `drop_newer_than` in the future on the host clock.
    TooNew,
    /// Log group or stream name breaks CloudWatch's naming rules.
    InvalidTarget,
    /// Evicted or refused because the buffer budget was full.
    Overflow,
    /// CloudWatch rejected it as too old (`tooOldLogEventEndIndex`).
    RejectedTooOld,
    /// CloudWatch rejected it as too new (`tooNewLogEventStartIndex`).
    RejectedTooNew,
    /// CloudWatch rejected it as older than the group's retention (`expiredLogEventEndIndex`).
    RejectedExpired,
    /// CloudWatch answered InvalidParameterException for this event alone.
    InvalidParameter,
    /// The group or stream does not exist and creating it is disabled.
    TargetMissing,
    /// Creating the group or stream failed permanently (bad name, KMS key, quota…).
    TargetCreationFailed,
    /// A non-retryable error that is none of the above, after a few tries.
    PermanentError,
    /// Still buffered or in flight when the drain deadline passed, or submitted after drain.
    Shutdown,
}

impl DropReason {
    /// Every reason, in label order of declaration.
    pub const ALL: [DropReason; 14] = [
        DropReason::EmptyMessage,
        DropReason::Oversize,
        DropReason::TooOld,
        DropReason::TooNew,
        DropReason::InvalidTarget,
        DropReason::Overflow,
        DropReason::RejectedTooOld,
        DropReason::RejectedTooNew,
        DropReason::RejectedExpired,
        DropReason::InvalidParameter,
        DropReason::TargetMissing,
        DropReason::TargetCreationFailed,
        DropReason::PermanentError,
        DropReason::Shutdown,
    ];

    /// The stable snake_case label used in stats, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::EmptyMessage => "empty_message",
            DropReason::Oversize => "oversize",
            DropReason::TooOld => "too_old",
            DropReason::TooNew => "too_new",
            DropReason::InvalidTarget => "invalid_target",
            DropReason::Overflow => "overflow",
            DropReason::RejectedTooOld => "rejected_too_old",
            DropReason::RejectedTooNew => "rejected_too_new",
            DropReason::RejectedExpired => "rejected_expired",
            DropReason::InvalidParameter => "invalid_parameter",
            DropReason::TargetMissing => "target_missing",
            DropReason::TargetCreationFailed => "target_creation_failed",
            DropReason::PermanentError => "permanent_error",
            DropReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters for one job, one target, or the total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events CloudWatch accepted (rejected ones excluded).
    pub events_sent: u64,
    /// UTF-8 message bytes of accepted events (without the 26-byte overhead).
    pub bytes_sent: u64,
    /// PutLogEvents requests that got a successful answer.
    pub requests: u64,
    /// Requests that failed and were (or will be) retried, throttles included.
    pub retries: u64,
    /// Requests answered with ThrottlingException.
    pub throttles: u64,
    /// Log groups this host created.
    pub groups_created: u64,
    /// Log streams this host created.
    pub streams_created: u64,
    /// Dropped events by reason label.
    pub drops: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts one answered request that delivered `events` events of `bytes` message bytes.
    fn add_request(&mut self, events: u64, bytes: u64) {
        self.events_sent += events;
        self.bytes_sent += bytes;
        self.requests += 1;
    }

    /// All dropped events, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.values().sum()
    }

    /// Dropped events with one reason label (0 when none).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

/// A point-in-time copy of all delivery counters. Cloning is cheap (the
/// per-job and per-target maps are shared).
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    /// Counters over all jobs and targets.
    pub totals: Counters,
    /// Counters per job (jobs that never had events are absent).
    pub per_job: Arc<BTreeMap<Arc<str>, Counters>>,
    /// Counters per target.
    pub per_target: Arc<BTreeMap<Target, Counters>>,
    /// Events currently buffered or held by requests in progress.
    pub buffered_events: u64,
    /// Bytes (message + 26) currently buffered or held by requests in progress.
    pub buffered_bytes: u64,
    /// Requests on the wire right now.
    pub in_flight_requests: u64,
    /// The PutLogEvents rate allowed now (requests/s), lowered by throttling.
    pub put_rate: f64,
    /// The configured ceiling of that rate (`put_rate_per_sec`).
    pub put_rate_ceiling: f64,
    /// Targets whose circuit is not closed, with its state.
    pub circuits: Vec<(Target, super::health::CircuitState)>,
    /// The spool's gauges and counters, when `spool_dir` is set.
    pub spool: Option<super::spool::SpoolStats>,
}

impl StatsSnapshot {
    /// Counters of one job (default zeros when unknown).
    pub fn job(&self, job: &str) -> Counters {
        self.per_job.get(job).cloned().unwrap_or_default()
    }

    /// Counters of one target (default zeros when unknown).
    pub fn target(&self, target: &Target) -> Counters {
        self.per_target.get(target).cloned().unwrap_or_default()
    }
}

/// What happened to one request, for the request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// Failed, will be retried.
    Retry,
    /// Throttled, will be retried.
    Throttled,
}

/// The index ranges CloudWatch rejected in a successful PutLogEvents answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// `tooOldLogEventEndIndex` (exclusive end).
    pub too_old_end: Option<i32>,
    /// `tooNewLogEventStartIndex` (inclusive start).
    pub too_new_start: Option<i32>,
    /// `expiredLogEventEndIndex` (exclusive end).
    pub expired_end: Option<i32>,
}

impl Rejected {
    /// The reason event `i` of `n` was rejected, if it was.
    pub fn reason(&self, i: usize, n: usize) -> Option<DropReason> {
        let clamp = |v: i32| (v.max(0) as usize).min(n);
        if self.too_old_end.is_some_and(|e| i < clamp(e)) {
            Some(DropReason::RejectedTooOld)
        } else if self.expired_end.is_some_and(|e| i < clamp(e)) {
            Some(DropReason::RejectedExpired)
        } else if self.too_new_start.is_some_and(|s| i >= clamp(s)) {
            Some(DropReason::RejectedTooNew)
        } else {
            None
        }
    }
}

#[derive(Default)]
struct DropLog {
    pending: BTreeMap<(String, Arc<str>, String), u64>,
    seen: HashSet<String>,
    last_flush: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    totals: Counters,
    jobs: HashMap<Arc<str>, Counters>,
    targets: HashMap<Target, Counters>,
    droplog: DropLog,
}

impl Inner {
    fn job(&mut self, job: &str) -> &mut Counters {
        if !self.jobs.contains_key(job) {
            self.jobs.insert(Arc::from(job), Counters::default());
        }
        self.jobs.get_mut(job).expect("inserted above")
    }

    fn job_arc(&mut self, job: &Arc<str>) -> &mut Counters {
        self.jobs.entry(job.clone()).or_default()
    }

    fn target(&mut self, target: &Target) -> &mut Counters {
        if !self.targets.contains_key(target) {
            self.targets.insert(target.clone(), Counters::default());
        }
        self.targets.get_mut(target).expect("inserted above")
    }
}

/// The shared delivery observer (cheap to clone). See the module doc.
#[derive(Clone)]
pub struct Accounting {
    inner: Arc<Mutex<Inner>>,
    log_interval: Duration,
}

impl fmt::Debug for Accounting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounting").finish_non_exhaustive()
    }
}

impl Accounting {
    /// A fresh observer whose aggregated drop log lines are at least `log_interval` apart.
    pub fn new(log_interval: Duration) -> Accounting {
        Accounting {
            inner: Arc::new(Mutex::new(Inner::default())),
            log_interval,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters stay usable even if a panic poisoned the lock elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `count` events of `job` for `target` dropped for `reason`
    /// (a [`DropReason`] label or a free-form label such as
    /// `invalid_emf:missing_namespace` from the validation stage).
    pub fn record_drop(&self, job: &str, target: &Target, reason: &str, count: u64) {
        if count == 0 {
            return;
        }
        let mut g = self.lock();
        *g.totals.drops.entry(reason.to_string()).or_default() += count;
        *g.job(job).drops.entry(reason.to_string()).or_default() += count;
        *g.target(target)
            .drops
            .entry(reason.to_string())
            .or_default() += count;
        let first = g.droplog.seen.insert(reason.to_string());
        if first {
            drop(g);
            tracing::warn!(
                reason,
                job,
                target = %target,
                count,
                "dropped log events (first drop with this reason; later ones are aggregated)"
            );
            return;
        }
        *g.droplog
            .pending
            .entry((reason.to_string(), Arc::from(job), target.to_string()))
            .or_default() += count;
        let due = g
            .droplog
            .last_flush
            .is_none_or(|t| t.elapsed() >= self.log_interval);
        if due {
            let lines = take_droplog(&mut g);
            drop(g);
            emit(lines);
        }
    }

    /// Records `events` events (`bytes` message bytes) of `job` delivered to
    /// `target` by a sink other than CloudWatch (e.g. stdout), as one request.
    pub fn record_delivered(&self, job: &str, target: &Target, events: u64, bytes: u64) {
        let mut g = self.lock();
        g.totals.add_request(events, bytes);
        g.target(target).add_request(events, bytes);
        g.job(job).add_request(events, bytes);
    }

    /// Records a drop with one of the delivery stage's own reasons.
    pub(crate) fn drop_reason(&self, job: &str, target: &Target, reason: DropReason, count: u64) {
        self.record_drop(job, target, reason.as_str(), count);
    }

    /// Records drops for a run of items (grouped by job).
    pub(crate) fn drop_items<'a>(
        &self,
        target: &Target,
        reason: DropReason,
        items: impl IntoIterator<Item = &'a Item>,
    ) {
        for (job, n) in group_by_job(items) {
            self.drop_reason(&job, target, reason, n);
        }
    }

    /// Records a successful PutLogEvents answer for `batch`: accepted events
    /// and bytes, and each rejected event under its reason.
    pub(crate) fn record_success(&self, target: &Target, batch: &[Item], rejected: Rejected) {
        let n = batch.len();
        // (job, sent events, sent bytes, rejected counts by reason)
        let mut per_job: Vec<(Arc<str>, u64, u64, [u64; 3])> = Vec::new();
        for (i, it) in batch.iter().enumerate() {
            let slot = match per_job
                .iter()
                .position(|(j, ..)| Arc::ptr_eq(j, &it.job) || **j == *it.job)
            {
                Some(p) => p,
                None => {
                    per_job.push((it.job.clone(), 0, 0, [0; 3]));
                    per_job.len() - 1
                }
            };
            let e = &mut per_job[slot];
            match rejected.reason(i, n) {
                None => {
                    e.1 += 1;
                    e.2 += it.message.len() as u64;
                }
                Some(DropReason::RejectedTooOld) => e.3[0] += 1,
                Some(DropReason::RejectedExpired) => e.3[1] += 1,
                Some(_) => e.3[2] += 1,
            }
        }
        {
            let mut g = self.lock();
            let (mut ev, mut by) = (0, 0);
            for (job, sent, bytes, _) in &per_job {
                g.job_arc(job).add_request(*sent, *bytes);
                ev += sent;
                by += bytes;
            }
            g.totals.add_request(ev, by);
            g.target(target).add_request(ev, by);
        }
        for (job, _, _, rej) in &per_job {
            let reasons = [
                DropReason::RejectedTooOld,
                DropReason::RejectedExpired,
                DropReason::RejectedTooNew,
            ];
            for (r, k) in reasons.into_iter().zip(rej) {
                self.drop_reason(job, target, r, *k);
            }
        }
    }

    /// Records a failed request that will be retried.
    pub(crate) fn record_failure(&self, target: &Target, batch: &[Item], outcome: RequestOutcome) {
        let jobs = group_by_job(batch);
        let mut g = self.lock();
        let bump = |c: &mut Counters| {
            c.retries += 1;
            if outcome == RequestOutcome::Throttled {
                c.throttles += 1;
            }
        };
        bump(&mut g.totals);
        bump(g.target(target));
        for (job, _) in &jobs {
            bump(g.job_arc(job));
        }
    }

    /// Records a created log group (`group = true`) or log stream.
    pub(crate) fn record_creation(&self, target: &Target, group: bool) {
        let mut g = self.lock();
        let bump = |c: &mut Counters| {
            if group {
                c.groups_created += 1
            } else {
                c.streams_created += 1
            }
        };
        bump(&mut g.totals);
        bump(g.target(target));
    }

    /// Logs every aggregated drop line now (used by the periodic ticker and by drain).
    pub fn flush_drop_log(&self) {
        let lines = {
            let mut g = self.lock();
            take_droplog(&mut g)
        };
        emit(lines);
    }

    /// A copy of all counters (buffer gauges left at zero; [`super::Delivery::stats`] fills them).
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = self.lock();
        StatsSnapshot {
            totals: g.totals.clone(),
            per_job: Arc::new(g.jobs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
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

type DropLine = ((String, Arc<str>, String), u64);

fn take_droplog(g: &mut Inner) -> Vec<DropLine> {
    g.droplog.last_flush = Some(Instant::now());
    std::mem::take(&mut g.droplog.pending).into_iter().collect()
}

fn emit(lines: Vec<DropLine>) {
    for ((reason, job, target), count) in lines {
        tracing::warn!(reason, job = %job, target, count, "dropped log events since the last report");
    }
}

/// Counts items per job, keeping first-seen order (batches usually hold one job).
pub(crate) fn group_by_job<'a>(items: impl IntoIterator<Item = &'a Item>) -> Vec<(Arc<str>, u64)> {
    let mut out: Vec<(Arc<str>, u64)> = Vec::new();
    for it in items {
        match out
            .iter_mut()
            .find(|(j, _)| Arc::ptr_eq(j, &it.job) || **j == *it.job)
        {
            Some(e) => e.1 += 1,
            None => out.push((it.job.clone(), 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgt() -> Target {
        Target {
            log_group: "g".into(),
            log_stream: "s".into(),
        }
    }

    fn it(job: &str, msg: &str) -> Item {
        Item {
            job: Arc::from(job),
            timestamp_ms: 0,
            message: msg.into(),
            seq: 0,
        }
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let labels: HashSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        for l in labels {
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
        }
    }

    #[test]
    fn rejected_indices_follow_aws_semantics() {
        let r = Rejected {
            too_old_end: Some(2),
            too_new_start: Some(4),
            expired_end: None,
        };
        let got: Vec<Option<DropReason>> = (0..5).map(|i| r.reason(i, 5)).collect();
        assert_eq!(
            got,
            [
                Some(DropReason::RejectedTooOld),
                Some(DropReason::RejectedTooOld),
                None,
                None,
                Some(DropReason::RejectedTooNew)
            ]
        );
        // Out-of-range values from a misbehaving server are clamped, never panic.
        let r = Rejected {
            too_old_end: Some(99),
            too_new_start: Some(-3),
            expired_end: Some(i32::MIN),
        };
        assert_eq!(r.reason(0, 2), Some(DropReason::RejectedTooOld));
    }

    #[test]
    fn success_splits_sent_and_rejected_per_job() {
        let a = Accounting::new(Duration::from_secs(10));
        let batch = [
            it("a", "old"),
            it("b", "xx"),
            it("a", "yyy"),
            it("b", "new"),
        ];
        a.record_success(
            &tgt(),
            &batch,
            Rejected {
                too_old_end: Some(1),
                too_new_start: Some(3),
                expired_end: None,
            },
        );
        a.record_drop("a", &tgt(), "invalid_emf:missing_namespace", 2);
        let s = a.snapshot();
        assert_eq!(s.totals.events_sent, 2);
        assert_eq!(s.totals.bytes_sent, 5);
        assert_eq!(s.totals.requests, 1);
        assert_eq!(s.job("a").events_sent, 1);
        assert_eq!(s.job("a").dropped("rejected_too_old"), 1);
        assert_eq!(s.job("a").dropped("invalid_emf:missing_namespace"), 2);
        assert_eq!(s.job("b").dropped("rejected_too_new"), 1);
        assert_eq!(s.job("b").requests, 1);
        assert_eq!(s.target(&tgt()).dropped_total(), 4);
        assert_eq!(s.totals.dropped_total(), 4);
    }
}
