//! [`DropReason`]: why events were dropped, as a closed set of typed reasons
//! with stable snake_case labels. Every stage that can drop an event names
//! its reason here; nothing records a drop under a free-form string.

use std::borrow::Cow;
use std::fmt;

use cwpub_emf::ViolationKind;

/// Why events were dropped. Labels ([`DropReason::label`]) are stable and
/// appear in `/metrics`, the drop log and the shutdown summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Message was empty (CloudWatch requires at least 1 byte; stdout framing needs one too).
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
    /// The EMF document cannot be expressed in the sink's metric model
    /// (DataDog: a metric name DataDog cannot take, a distribution, no metric).
    Unmappable,
    /// The service refused the request as malformed and says it will never
    /// take it (DataDog's HTTP 400); the reason it gave is logged.
    Rejected,
    /// A non-retryable error that is none of the above, after a few tries.
    PermanentError,
    /// Still buffered or in flight when the drain deadline passed, or submitted after drain.
    Shutdown,
    /// The stdout sink cannot carry a message containing `\n` or `\r` on one line.
    MultilineMessage,
    /// Writing to stdout failed (closed pipe, full disk…).
    StdoutWriteFailed,
    /// The validation stage refused an EMF document; the first rule it breaks.
    InvalidEmf(ViolationKind),
}

/// Prefix of the labels of [`DropReason::InvalidEmf`] (`invalid_emf:<violation kind>`).
pub const INVALID_EMF_PREFIX: &str = "invalid_emf";

impl DropReason {
    /// The reasons that carry no detail, in declaration order.
    pub const SIMPLE: [DropReason; 18] = [
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
        DropReason::Unmappable,
        DropReason::Rejected,
        DropReason::PermanentError,
        DropReason::Shutdown,
        DropReason::MultilineMessage,
        DropReason::StdoutWriteFailed,
    ];

    /// Every reason: the simple ones, then `invalid_emf:<kind>` for every EMF violation kind.
    pub fn all() -> impl Iterator<Item = DropReason> {
        Self::SIMPLE.into_iter().chain(
            ViolationKind::ALL
                .iter()
                .map(|kind| DropReason::InvalidEmf(*kind)),
        )
    }

    /// The stable snake_case label, e.g. `too_old` or `invalid_emf:missing_namespace`.
    pub fn label(self) -> Cow<'static, str> {
        match self {
            DropReason::InvalidEmf(kind) => {
                Cow::Owned(format!("{INVALID_EMF_PREFIX}:{}", kind.as_str()))
            }
            simple => Cow::Borrowed(simple.simple_label()),
        }
    }

    fn simple_label(self) -> &'static str {
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
            DropReason::Unmappable => "unmappable",
            DropReason::Rejected => "rejected",
            DropReason::PermanentError => "permanent_error",
            DropReason::Shutdown => "shutdown",
            DropReason::MultilineMessage => "multiline_message",
            DropReason::StdoutWriteFailed => "stdout_write_failed",
            DropReason::InvalidEmf(_) => INVALID_EMF_PREFIX,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::InvalidEmf(kind) => write!(f, "{INVALID_EMF_PREFIX}:{kind}"),
            simple => f.write_str(simple.simple_label()),
        }
    }
}

impl From<ViolationKind> for DropReason {
    fn from(kind: ViolationKind) -> Self {
        DropReason::InvalidEmf(kind)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let labels: HashSet<String> = DropReason::all().map(|r| r.label().into_owned()).collect();
        assert_eq!(labels.len(), DropReason::all().count());
        for l in &labels {
            assert!(
                l.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':'),
                "{l}"
            );
        }
        assert!(labels.contains("invalid_emf:missing_namespace"));
        assert_eq!(
            DropReason::InvalidEmf(ViolationKind::MissingNamespace).to_string(),
            "invalid_emf:missing_namespace"
        );
        assert_eq!(
            DropReason::StdoutWriteFailed.to_string(),
            "stdout_write_failed"
        );
    }
}
