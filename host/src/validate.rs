//! The validation stage between a guest run and the sink: every event of an
//! EMF job is checked against the EMF specification (`cwpub-emf`) before it
//! is batched. CloudWatch stores invalid EMF without making any metric, so an
//! invalid document is dropped here instead, counted per job under
//! [`DropReason::InvalidEmf`] (label `invalid_emf:<violation kind>`), and the
//! first violation of each kind per job is logged with the job name and the
//! offending key.

use std::collections::HashSet;
use std::sync::Mutex;

use cwpub_emf::{ValidateOptions, Violation};

use crate::event::{LogEvent, PayloadKind};
use crate::ledger::DropReason;
use crate::untrusted::GuestText;

/// An event the stage refused, with why.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Position of the event in the run's output.
    pub index: usize,
    /// The drop reason: the kind of the first violation.
    pub reason: DropReason,
    /// Every violation found in the document.
    pub violations: Vec<Violation>,
}

/// Checks submissions; remembers which (job, violation kind) pairs it has logged.
#[derive(Debug, Default)]
pub struct Validator {
    options: ValidateOptions,
    logged: Mutex<HashSet<(String, &'static str)>>,
}

impl Validator {
    /// A validator that refuses messages above `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Validator {
            options: ValidateOptions { max_event_bytes },
            logged: Mutex::default(),
        }
    }

    /// Removes invalid EMF documents from `job`'s `events` of `kind` and
    /// returns them. JSON-log events pass through untouched (each sink checks
    /// their size and age); `now_ms` anchors the EMF timestamp window.
    pub fn check(
        &self,
        job: &str,
        kind: PayloadKind,
        events: &mut Vec<LogEvent>,
        now_ms: i64,
    ) -> Vec<Refused> {
        if kind != PayloadKind::Emf {
            return Vec::new();
        }
        let mut refused = Vec::new();
        let mut index = 0;
        events.retain(|event| {
            let violations = cwpub_emf::validate_with(&event.message, now_ms, &self.options);
            let keep = violations.is_empty();
            if !keep {
                let kind = violations[0].kind;
                self.log_first(job, kind.as_str(), index, &violations);
                refused.push(Refused {
                    index,
                    reason: DropReason::InvalidEmf(kind),
                    violations,
                });
            }
            index += 1;
            keep
        });
        refused
    }

    fn log_first(&self, job: &str, kind: &'static str, index: usize, violations: &[Violation]) {
        let first = self
            .logged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((job.to_owned(), kind));
        if first {
            // Violations quote the guest's keys and values: untrusted text.
            let all: Vec<String> = violations.iter().map(ToString::to_string).collect();
            let all = GuestText::new(&all.join("; "));
            tracing::warn!(
                job,
                violation = kind,
                event = index,
                "job \"{job}\": dropped an invalid EMF document ({all}); later documents with this violation are only counted",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(messages: &[&str]) -> Vec<LogEvent> {
        messages
            .iter()
            .map(|m| LogEvent {
                timestamp_ms: 1_700_000_000_000,
                message: (*m).to_owned(),
            })
            .collect()
    }

    const VALID: &str = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"cwpub","Dimensions":[["Service"]],"Metrics":[{"Name":"Heartbeat","Unit":"Count"}]}]},"Service":"a","Heartbeat":1}"#;
    const NO_NAMESPACE: &str = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Dimensions":[["Service"]],"Metrics":[{"Name":"Heartbeat","Unit":"Count"}]}]},"Service":"a","Heartbeat":1}"#;

    #[test]
    fn invalid_emf_is_removed_and_reported_with_its_reason() {
        let validator = Validator::default();
        let mut s = events(&[VALID, NO_NAMESPACE, VALID, "not json"]);
        let refused = validator.check("metrics", PayloadKind::Emf, &mut s, 1_700_000_000_000);
        assert_eq!(s.len(), 2, "the valid documents stay");
        assert!(s.iter().all(|e| e.message == VALID));
        assert_eq!(
            refused.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(refused.iter().all(|r| {
            matches!(r.reason, DropReason::InvalidEmf(kind) if kind == r.violations[0].kind)
        }));
        assert_ne!(
            refused[0].reason, refused[1].reason,
            "different violations, different reasons"
        );
    }

    #[test]
    fn json_logs_pass_through_untouched() {
        let validator = Validator::default();
        let mut s = events(&["not EMF at all"]);
        assert!(
            validator
                .check("metrics", PayloadKind::JsonLog, &mut s, 1_700_000_000_000)
                .is_empty()
        );
        assert_eq!(s.len(), 1);
    }
}
