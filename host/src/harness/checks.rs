//! What the daemon would not deliver from a successful run, decided by the
//! daemon's own rules: the EMF validator for EMF output, the delivery
//! stage's pre-filter (empty, oversize, outside CloudWatch's time window,
//! with the default margins) and the stdout sink's line framing. `cwpub
//! invoke` and `cwpub test` report these instead of printing events that
//! would silently never arrive.

use std::time::{Duration, UNIX_EPOCH};

use crate::delivery::{TimeWindow, prefilter};
use crate::event::{LogEvent, PayloadKind};
use crate::ledger::DropReason;
use crate::sinks::cloudwatch::CloudWatchConfig;
use crate::sinks::stdout;
use crate::validate::Validator;

/// One event the daemon would drop (or a sink would refuse), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Position of the event in the run's output.
    pub index: usize,
    /// What is wrong, as a sentence starting with "event N".
    pub reason: String,
    /// Every EMF rule the event breaks (empty for other reasons).
    pub violations: Vec<String>,
}

/// Every event of `job`'s run output that would not be delivered as
/// returned, judged as if the run had happened at `at_ms` (the EMF timestamp
/// window and CloudWatch's 14-day / 2-hour window are anchored there).
pub fn would_drop(job: &str, kind: PayloadKind, events: &[LogEvent], at_ms: u64) -> Vec<Dropped> {
    let defaults = CloudWatchConfig::default();
    let window = TimeWindow::around(
        UNIX_EPOCH + Duration::from_millis(at_ms),
        defaults.drop_older_than,
        defaults.drop_newer_than,
    );
    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
    let mut dropped = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let len = event.message.len();
        let reason = match prefilter(
            &event.message,
            event.timestamp_ms,
            defaults.max_event_bytes,
            window,
        ) {
            Err(DropReason::EmptyMessage) => format!("event {index} is empty and would be dropped"),
            Err(DropReason::Oversize) => format!(
                "event {index} is {len} bytes, over CloudWatch's {}-byte limit, and would be dropped",
                defaults.max_event_bytes
            ),
            Err(DropReason::TooOld) => format!(
                "event {index}'s timestamp {} is {} before the run and would be dropped \
                 (CloudWatch refuses events older than 14 days; timestamps are milliseconds since the epoch)",
                event.timestamp_ms,
                humantime::format_duration(gap(at, event.timestamp_ms)),
            ),
            Err(DropReason::TooNew) => format!(
                "event {index}'s timestamp {} is {} after the run and would be dropped \
                 (CloudWatch refuses events more than 2 hours in the future)",
                event.timestamp_ms,
                humantime::format_duration(gap(at, event.timestamp_ms)),
            ),
            Err(other) => format!("event {index} would be dropped ({other:?})"),
            Ok(()) if stdout::drop_reason(&event.message).is_some() => format!(
                "event {index} spans several lines: the stdout sink would drop it (CloudWatch would store it as is)"
            ),
            Ok(()) => continue,
        };
        dropped.push(Dropped {
            index,
            reason,
            violations: Vec::new(),
        });
    }
    if kind == PayloadKind::Emf {
        let mut events = events.to_vec();
        for refused in Validator::default().check(job, kind, &mut events, at) {
            let index = refused.index;
            if dropped.iter().any(|d| d.index == index) {
                continue;
            }
            dropped.push(Dropped {
                index,
                reason: format!("event {index} is not valid EMF and would be dropped"),
                violations: refused.violations.iter().map(ToString::to_string).collect(),
            });
        }
        dropped.sort_by_key(|d| d.index);
    }
    dropped
}

/// The distance between two millisecond timestamps, rounded to seconds.
fn gap(a: i64, b: i64) -> Duration {
    Duration::from_secs(a.abs_diff(b) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn events(list: &[(i64, &str)]) -> Vec<LogEvent> {
        list.iter()
            .map(|(t, m)| LogEvent {
                timestamp_ms: *t,
                message: (*m).to_owned(),
            })
            .collect()
    }

    #[test]
    fn each_rule_names_its_event() {
        let at = AT as i64;
        let big = "x".repeat(1_048_551);
        let out = would_drop(
            "t",
            PayloadKind::JsonLog,
            &events(&[
                (at, "fine"),
                (at, ""),
                (at, &big),
                (at / 1000, "seconds, not ms"),
                (at + 3 * 3_600_000, "future"),
                (at, "two\nlines"),
            ]),
            AT,
        );
        let reasons: Vec<&str> = out.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            out.iter().map(|d| d.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(reasons[0].contains("is empty"), "{reasons:?}");
        assert!(reasons[1].contains("1048551 bytes"), "{reasons:?}");
        assert!(reasons[2].contains("before the run") && reasons[2].contains("milliseconds"));
        assert!(reasons[3].contains("3h after the run"), "{reasons:?}");
        assert!(reasons[4].contains("spans several lines"));
    }

    #[test]
    fn invalid_emf_is_reported_with_every_violation() {
        let valid = r#"{"_aws":{"Timestamp":1767225600000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"M":1}"#;
        let out = would_drop(
            "t",
            PayloadKind::Emf,
            &events(&[(AT as i64, valid), (AT as i64, "{}")]),
            AT,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].index, 1);
        assert!(out[0].reason.contains("not valid EMF"));
        assert!(!out[0].violations.is_empty());
        assert!(
            would_drop("t", PayloadKind::JsonLog, &events(&[(AT as i64, "{}")]), AT).is_empty()
        );
    }
}
