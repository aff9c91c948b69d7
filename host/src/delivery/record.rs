//! What delivery tells the [`Ledger`]: runs of buffered [`Item`]s become plain
//! (job, target, events, bytes) facts, and the events a sink says the
//! service rejected one by one become typed drops.

use std::ops::Range;
use std::sync::Arc;

use crate::event::Target;
use crate::ledger::{DropReason, Ledger, Share};

use super::batch::Item;

/// What happened to one request, for the request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// Failed, will be retried.
    Retry,
    /// Throttled, will be retried.
    Throttled,
}

/// Recording runs of delivery's items in the ledger.
pub(crate) trait RecordItems {
    /// Counts `items` as dropped for `reason`, per job.
    fn drop_items<'a>(
        &self,
        target: &Target,
        reason: DropReason,
        items: impl IntoIterator<Item = &'a Item>,
    );

    /// Counts an accepted request for `batch`: accepted events and bytes per
    /// job, and each rejected event (by index range) under its reason.
    fn record_success(
        &self,
        target: &Target,
        batch: &[Item],
        rejected: &[(Range<usize>, DropReason)],
    );

    /// Counts a failed request for `batch` that will be retried.
    fn record_failure(&self, target: &Target, batch: &[Item], outcome: RequestOutcome);
}

impl RecordItems for Ledger {
    fn drop_items<'a>(
        &self,
        target: &Target,
        reason: DropReason,
        items: impl IntoIterator<Item = &'a Item>,
    ) {
        for (job, n) in group_by_job(items) {
            self.dropped(&job, target, reason, n);
        }
    }

    fn record_success(
        &self,
        target: &Target,
        batch: &[Item],
        rejected: &[(Range<usize>, DropReason)],
    ) {
        let mut per_job: Vec<JobTally> = Vec::new();
        for (i, it) in batch.iter().enumerate() {
            let slot = match per_job.iter().position(|(j, ..)| same_job(j, &it.job)) {
                Some(p) => p,
                None => {
                    per_job.push((it.job.clone(), 0, 0, Vec::new()));
                    per_job.len() - 1
                }
            };
            let e = &mut per_job[slot];
            let why = rejected
                .iter()
                .find(|(r, _)| r.contains(&i))
                .map(|(_, reason)| *reason);
            match why {
                None => {
                    e.1 += 1;
                    e.2 += it.message.len() as u64;
                }
                Some(r) => match e.3.iter_mut().find(|(reason, _)| *reason == r) {
                    Some((_, k)) => *k += 1,
                    None => e.3.push((r, 1)),
                },
            }
        }
        let shares: Vec<Share<'_>> = per_job
            .iter()
            .map(|(job, events, bytes, _)| Share {
                job,
                events: *events,
                bytes: *bytes,
            })
            .collect();
        self.delivered(target, &shares);
        for (job, _, _, rejected) in &per_job {
            for (reason, k) in rejected {
                self.dropped(job, target, *reason, *k);
            }
        }
    }

    fn record_failure(&self, target: &Target, batch: &[Item], outcome: RequestOutcome) {
        let jobs = group_by_job(batch);
        self.retried(
            target,
            jobs.iter().map(|(job, _)| &**job),
            outcome == RequestOutcome::Throttled,
        );
    }
}

/// One job's part of an answer: (job, sent events, sent bytes, rejected events by reason).
type JobTally = (Arc<str>, u64, u64, Vec<(DropReason, u64)>);

fn same_job(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// Counts items per job, keeping first-seen order (batches usually hold one job).
fn group_by_job<'a>(items: impl IntoIterator<Item = &'a Item>) -> Vec<(Arc<str>, u64)> {
    let mut out: Vec<(Arc<str>, u64)> = Vec::new();
    for it in items {
        match out.iter_mut().find(|(j, _)| same_job(j, &it.job)) {
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
        Target::new("cw", vec![("log_group".into(), "g".into())])
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
    fn success_splits_sent_and_rejected_per_job() {
        let l = Ledger::default();
        let batch = [
            it("a", "old"),
            it("b", "xx"),
            it("a", "yyy"),
            it("b", "new"),
        ];
        l.record_success(
            &tgt(),
            &batch,
            &[
                (0..1, DropReason::RejectedTooOld),
                (3..4, DropReason::RejectedTooNew),
            ],
        );
        let s = l.snapshot();
        assert_eq!(s.totals.events_sent, 2);
        assert_eq!(s.totals.bytes_sent, 5);
        assert_eq!(s.totals.requests, 1);
        assert_eq!(s.job("a").events_sent, 1);
        assert_eq!(s.job("a").dropped(DropReason::RejectedTooOld), 1);
        assert_eq!(s.job("b").dropped(DropReason::RejectedTooNew), 1);
        assert_eq!(s.job("b").requests, 1);
        assert_eq!(s.target(&tgt()).dropped_total(), 2);
        l.record_failure(&tgt(), &batch, RequestOutcome::Throttled);
        let s = l.snapshot();
        assert_eq!((s.totals.retries, s.totals.throttles), (1, 1));
        assert_eq!((s.job("a").retries, s.job("b").retries), (1, 1));
    }
}
