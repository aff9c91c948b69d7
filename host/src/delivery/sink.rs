//! The contract between the delivery core and a destination: what a sink
//! adapter (`crate::sinks::<name>`) provides so the core can batch, send,
//! retry and account for its events without knowing the service.
//!
//! A sink states its limits ([`BatchLimits`] per request, [`EventRules`] per
//! event), checks the targets it will be given, and sends one batch as one
//! request, classifying the answer into an [`Answer`]: accepted (with the
//! events the service rejected one by one, if any), or failed with an
//! [`ErrorClass`] the retry policy decides on. Everything else — buffering,
//! the budget and overflow, the spool, ordering, retries and backoff, the
//! circuit breaker, the adaptive rate, the drain — is the core's, and is the
//! same for every sink.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;

use crate::event::{PayloadKind, Target};
use crate::ledger::DropReason;
use crate::untrusted::GuestText;

use super::batch::Item;

/// How many events, and how many bytes, one request of a stream may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events per request.
    pub max_events: usize,
    /// Most bytes per request, counting each event's message bytes plus `per_event_bytes`.
    pub max_bytes: usize,
    /// What each event adds to a request beyond its message (CloudWatch counts 26).
    pub per_event_bytes: usize,
    /// The first and last event of a request must be less than this far
    /// apart (milliseconds), when the service has such a rule.
    pub max_span_ms: Option<i64>,
}

impl BatchLimits {
    /// The bytes one event counts for in a request and in the memory budget.
    #[inline]
    pub fn event_size(&self, message: &str) -> usize {
        message.len() + self.per_event_bytes
    }
}

/// What one event must satisfy to be sent at all; checked when it is
/// submitted and again (its age) before every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRules {
    /// Largest message in UTF-8 bytes; larger ones are dropped as `oversize`, never truncated.
    pub max_message_bytes: usize,
    /// Events older than this (host clock) are dropped as `too_old`.
    pub max_age: Duration,
    /// Events more than this far ahead of the host clock are dropped as `too_new`.
    pub max_ahead: Duration,
}

/// What kind of failure an attempt ended in; the retry policy decides on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The service asks for fewer requests (CloudWatch throttling, HTTP
    /// 429): back off, lower the rate; never a sign of a broken target.
    Throttled,
    /// 5xx, timeouts, connection failures, unreadable answers: back off and retry.
    Transient,
    /// The request is too large (HTTP 413, or an encoded payload over the
    /// service's limit): send each half on its own; one event alone is `oversize`.
    TooLarge,
    /// The request holds an event the service refuses (CloudWatch's
    /// InvalidParameter): split until the bad event stands alone, drop it.
    InvalidRequest,
    /// The service refuses the whole request and says it always will
    /// (DataDog's HTTP 400): drop it as `rejected`.
    Rejected,
    /// The target does not exist: create it if the sink can, else drop.
    NotFound,
    /// The target already exists (a creation raced with another writer).
    AlreadyExists,
    /// Credentials missing, expired, unrecognised or not allowed: keep the
    /// data, back off long, say so loudly.
    Credentials,
    /// Anything else the service refused: a few tries, then drop.
    Permanent,
}

impl ErrorClass {
    /// True for classes a plain backoff-and-retry can fix.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Throttled | ErrorClass::Transient)
    }
}

/// One failed attempt: its class and what the service or the transport
/// said. The code and the message quote the remote service, so they are
/// untrusted text, shown only escaped and capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How the policy treats it.
    pub class: ErrorClass,
    /// A short code: the service's error code, `HTTP 503`, `timeout`, `connection`…
    pub code: GuestText,
    /// What went wrong, for logs and `/readyz`.
    pub message: GuestText,
    /// How long the service asked to wait before the next attempt, if it
    /// said (a retry waits at least this long, within the drain's caps).
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure of `class` with `code` and `message`.
    pub fn new(class: ErrorClass, code: &str, message: &str) -> Failure {
        Failure {
            class,
            code: GuestText::new(code),
            message: GuestText::new(message),
            retry_after: None,
        }
    }
}

/// How the service answered one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted; events the service refused one by one are listed by their
    /// index range in the batch, with the reason to count them under.
    Accepted {
        /// Refused events (index ranges in the batch) and why.
        rejected: Vec<(Range<usize>, DropReason)>,
    },
    /// Nothing of the request was taken (or it is unknown whether it was).
    Failed(Failure),
}

impl Answer {
    /// Everything was taken.
    pub fn accepted() -> Answer {
        Answer::Accepted {
            rejected: Vec::new(),
        }
    }
}

/// A destination service, as the delivery core uses it.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The service's name for log lines ("CloudWatch Logs", "DataDog").
    fn service(&self) -> &'static str;

    /// Request limits for a stream of `kind`.
    fn limits(&self, kind: PayloadKind) -> BatchLimits;

    /// Per-event rules for a stream of `kind`.
    fn rules(&self, kind: PayloadKind) -> EventRules;

    /// Checks a target before its events are buffered; `Err` names the
    /// problem (the events are dropped as `invalid_target`).
    fn check_target(&self, target: &Target) -> Result<(), String> {
        let _ = target;
        Ok(())
    }

    /// Sends `batch` (non-empty, sorted by timestamp, within [`Sink::limits`]) as one request.
    async fn send(&self, target: &Target, kind: PayloadKind, batch: &[Item]) -> Answer;

    /// Whether [`Sink::create`] may fix a [`ErrorClass::NotFound`] answer.
    fn can_create(&self) -> bool {
        false
    }

    /// Creates a missing target (CloudWatch's log stream and group).
    /// [`ErrorClass::NotFound`] means it may not be created.
    async fn create(&self, target: &Target) -> Result<(), Failure> {
        let _ = target;
        Err(Failure::new(
            ErrorClass::NotFound,
            "not found",
            "the target does not exist and this sink cannot create it",
        ))
    }

    /// Called after every accepted request to `target` (a sink may clear
    /// state, such as a known-missing target).
    fn accepted(&self, target: &Target) {
        let _ = target;
    }

    /// What to check when credentials fail, for the log line.
    fn credentials_hint(&self) -> &'static str;
}
