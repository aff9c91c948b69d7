//! The hard PutLogEvents limits (AWS API reference, 2025–2026) and the checks
//! on log group / stream names, in one place so batching, validation and the
//! tests' strict fake server agree on the same numbers.

use crate::event::Target;

/// Most events in one PutLogEvents request.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Most bytes in one request, counted as Σ(UTF-8 message bytes + [`EVENT_OVERHEAD`]).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes CloudWatch adds to each message when sizing a batch.
pub const EVENT_OVERHEAD: usize = 26;
/// Largest message that fits: 1 MiB minus the per-event overhead.
pub const MAX_EVENT_BYTES: usize = MAX_BATCH_BYTES - EVENT_OVERHEAD;
/// A batch must span strictly less than this (max − min timestamp, ms).
pub const MAX_SPAN_MS: i64 = 24 * 3_600 * 1_000;

/// The size CloudWatch charges for a message in a batch.
#[inline]
pub fn event_size(message: &str) -> usize {
    message.len() + EVENT_OVERHEAD
}

/// Checks a target's names against CloudWatch's rules, so a bad name is
/// reported (and its events dropped as `invalid_target`) instead of wedging
/// the target with endless `InvalidParameterException`s.
pub fn check_target(target: &Target) -> Result<(), String> {
    let g = &target.log_group;
    if g.is_empty() || g.len() > 512 {
        return Err(format!(
            "log group name {g:?} must be 1-512 characters long"
        ));
    }
    if let Some(c) = g
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')))
    {
        return Err(format!(
            "log group name {g:?} contains {c:?}; allowed are A-Z a-z 0-9 . - _ / #"
        ));
    }
    let s = &target.log_stream;
    if s.is_empty() || s.chars().count() > 512 {
        return Err(format!(
            "log stream name {s:?} must be 1-512 characters long"
        ));
    }
    if s.contains(':') || s.contains('*') {
        return Err(format!("log stream name {s:?} must not contain ':' or '*'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(g: &str, s: &str) -> Target {
        Target {
            log_group: g.into(),
            log_stream: s.into(),
        }
    }

    #[test]
    fn names() {
        assert!(check_target(&t("/cwpub/jobs#1", "host-1/guest.a")).is_ok());
        assert!(check_target(&t("", "s")).is_err());
        assert!(check_target(&t("bad group", "s")).is_err());
        assert!(check_target(&t(&"g".repeat(513), "s")).is_err());
        assert!(check_target(&t("g", "a:b")).is_err());
        assert!(check_target(&t("g", "a*b")).is_err());
        assert!(check_target(&t("g", "")).is_err());
        assert_eq!(MAX_EVENT_BYTES, 1_048_550);
    }
}
