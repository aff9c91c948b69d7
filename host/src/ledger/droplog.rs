//! The drop log: every drop is visible in the host log, but a flood of drops
//! makes a few lines, not one per event. The first drop with each reason is
//! logged at once; later ones are summed per (reason, job, target) and logged
//! at most once per interval — by the next drop that finds the interval over,
//! or by one timer the ledger arms only while something is waiting (no
//! periodic wake-ups while nothing is dropped).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::Target;

use super::reason::DropReason;

/// Aggregated drops waiting to be logged, keyed by (reason, job, target).
pub(super) type DropLines = Vec<((DropReason, Arc<str>, String), u64)>;

/// What the ledger should do after noting a drop.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Noted {
    /// First drop with this reason: log it now, on its own line.
    First,
    /// Summed; the interval is over, log every waiting line now.
    FlushNow,
    /// Summed; arm a timer to log at the returned instant (none is armed yet).
    FlushAt(Instant),
    /// Summed; a flush is already due or armed.
    Wait,
}

/// The drop log's state (kept under the ledger's lock).
#[derive(Debug, Default)]
pub(super) struct DropLog {
    pending: BTreeMap<(DropReason, Arc<str>, String), u64>,
    seen: HashSet<DropReason>,
    last_flush: Option<Instant>,
    timer_armed: bool,
}

impl DropLog {
    /// Notes `count` drops; `interval` is the least time between aggregated lines.
    pub(super) fn note(
        &mut self,
        reason: DropReason,
        job: &str,
        target: Option<&Target>,
        count: u64,
        interval: Duration,
    ) -> Noted {
        if self.seen.insert(reason) {
            return Noted::First;
        }
        *self
            .pending
            .entry((reason, Arc::from(job), place(target)))
            .or_default() += count;
        match self.last_flush {
            None => Noted::FlushNow,
            Some(t) if t.elapsed() >= interval => Noted::FlushNow,
            Some(_) if self.timer_armed => Noted::Wait,
            Some(t) => {
                self.timer_armed = true;
                Noted::FlushAt(t + interval)
            }
        }
    }

    /// Takes every waiting line and starts a new interval.
    pub(super) fn take(&mut self) -> DropLines {
        self.last_flush = Some(Instant::now());
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// The armed timer fired (or could not be armed).
    pub(super) fn disarm(&mut self) {
        self.timer_armed = false;
    }
}

/// Where a drop happened, for the log: `sink target`, or `-` before any sink.
fn place(target: Option<&Target>) -> String {
    match target {
        Some(t) if t.labels.is_empty() => t.sink.to_string(),
        Some(t) => format!("{} {t}", t.sink),
        None => "-".to_string(),
    }
}

/// Logs the first drop with a reason.
pub(super) fn log_first(reason: DropReason, job: &str, target: Option<&Target>, count: u64) {
    tracing::warn!(
        reason = %reason,
        job,
        target = %place(target),
        count,
        "dropped events (first drop with this reason; later ones are aggregated)"
    );
}

/// Logs aggregated lines.
pub(super) fn log_lines(lines: DropLines) {
    for ((reason, job, target), count) in lines {
        tracing::warn!(reason = %reason, job = %job, target, count, "dropped events since the last report");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_summed_then_timed() {
        let t = Target::new("cw", vec![("log_group".into(), "g".into())]);
        let t = Some(&t);
        let mut log = DropLog::default();
        let hour = Duration::from_secs(3600);
        assert_eq!(log.note(DropReason::TooOld, "a", t, 1, hour), Noted::First);
        assert_eq!(
            log.note(DropReason::TooOld, "a", t, 2, hour),
            Noted::FlushNow
        );
        assert_eq!(log.take().len(), 1);
        assert!(matches!(
            log.note(DropReason::TooOld, "a", t, 3, hour),
            Noted::FlushAt(_)
        ));
        assert_eq!(log.note(DropReason::TooOld, "b", t, 4, hour), Noted::Wait);
        log.disarm();
        let lines = log.take();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.iter().map(|(_, n)| n).sum::<u64>(), 7);
    }
}
