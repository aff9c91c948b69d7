//! One PutLogEvents request: the batch becomes the request (with the
//! `x-amzn-logs-format: json/emf` header on EMF batches), and the answer
//! becomes the delivery core's [`Answer`] — accepted, with the events
//! CloudWatch rejected one by one (`rejectedLogEventsInfo`) as typed drops,
//! or failed with its class.

use crate::delivery::{Answer, Item};
use crate::event::PayloadKind;
use crate::ledger::DropReason;

use super::put_log_events::{Client, InputEvent, Rejected, classify};

/// Sends `batch` to `group`/`stream` as one PutLogEvents request.
pub(crate) async fn put_log_events(
    client: &Client,
    group: &str,
    stream: &str,
    kind: PayloadKind,
    emf_header: bool,
    batch: &[Item],
) -> Answer {
    let events: Vec<InputEvent<'_>> = batch
        .iter()
        .map(|i| InputEvent {
            timestamp_ms: i.timestamp_ms,
            message: &i.message,
        })
        .collect();
    let emf = kind == PayloadKind::Emf && emf_header;
    match client.put_log_events(group, stream, &events, emf).await {
        Ok(out) => Answer::Accepted {
            rejected: out
                .rejected
                .map(|r| rejected(&r, batch.len()))
                .unwrap_or_default(),
        },
        Err(e) => Answer::Failed(classify(&e)),
    }
}

/// The events CloudWatch rejected in an accepted request, as index ranges
/// of the batch: `tooOldLogEventEndIndex` and `expiredLogEventEndIndex` are
/// exclusive ends, `tooNewLogEventStartIndex` an inclusive start. Values out
/// of range (a misbehaving server) are clamped, never trusted.
fn rejected(r: &Rejected, n: usize) -> Vec<(std::ops::Range<usize>, DropReason)> {
    rejected_ranges(
        r.too_old_log_event_end_index,
        r.expired_log_event_end_index,
        r.too_new_log_event_start_index,
        n,
    )
}

fn rejected_ranges(
    too_old_end: Option<i32>,
    expired_end: Option<i32>,
    too_new_start: Option<i32>,
    n: usize,
) -> Vec<(std::ops::Range<usize>, DropReason)> {
    let clamp = |v: i32| (v.max(0) as usize).min(n);
    let old = too_old_end.map_or(0, clamp);
    // Expired events are the old ones beyond the too-old run.
    let expired = expired_end.map_or(old, clamp).max(old);
    let new = too_new_start.map_or(n, clamp).max(expired);
    [
        (0..old, DropReason::RejectedTooOld),
        (old..expired, DropReason::RejectedExpired),
        (new..n, DropReason::RejectedTooNew),
    ]
    .into_iter()
    .filter(|(r, _)| !r.is_empty())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_indices_follow_aws_semantics() {
        assert_eq!(
            rejected_ranges(Some(2), None, Some(4), 5),
            [
                (0..2, DropReason::RejectedTooOld),
                (4..5, DropReason::RejectedTooNew)
            ]
        );
        assert_eq!(
            rejected_ranges(Some(1), Some(3), None, 5),
            [
                (0..1, DropReason::RejectedTooOld),
                (1..3, DropReason::RejectedExpired)
            ]
        );
        // Out-of-range values from a misbehaving server are clamped, never panic.
        assert_eq!(
            rejected_ranges(Some(99), Some(i32::MIN), Some(-3), 2),
            [(0..2, DropReason::RejectedTooOld)]
        );
        assert!(rejected_ranges(None, None, None, 3).is_empty());
    }
}
