//! CloudWatch Logs' hard limits (AWS API reference, 2025–2026): what one
//! PutLogEvents request may carry, and the rules for log group and stream
//! names — in one place, so the sink's batching, the config loader and the
//! tests' strict fake server agree on the same numbers.

use crate::event::Target;

use super::{LOG_GROUP, LOG_STREAM};

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
/// Longest log group or log stream name CloudWatch accepts, in characters.
pub const MAX_NAME_CHARS: usize = 512;

/// Checks a log group name: 1–512 characters from `[.\-_/#A-Za-z0-9]`, not starting with `aws/`.
pub fn check_log_group(name: &str) -> Result<(), String> {
    check_length(name)?;
    if let Some((pos, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')))
    {
        return Err(format!(
            "invalid log group name: character {bad:?} at position {} is not allowed; use only A-Z a-z 0-9 . - _ / #",
            pos + 1
        ));
    }
    if name.starts_with("aws/") {
        return Err(
            "invalid log group name: names starting with \"aws/\" are reserved for AWS services"
                .to_string(),
        );
    }
    Ok(())
}

/// Checks a log stream name: 1–512 characters, no `:` or `*`, no control characters.
pub fn check_log_stream(name: &str) -> Result<(), String> {
    check_length(name)?;
    if let Some((pos, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| matches!(c, ':' | '*') || c.is_control())
    {
        return Err(format!(
            "invalid log stream name: character {bad:?} at position {} is not allowed; log stream names cannot contain ':', '*' or control characters",
            pos + 1
        ));
    }
    Ok(())
}

fn check_length(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 {
        return Err("name is empty; it must be 1 to 512 characters".to_string());
    }
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "name is {n} characters long; the limit is {MAX_NAME_CHARS}"
        ));
    }
    Ok(())
}

/// Checks a target's names against CloudWatch's rules, so a bad name is
/// reported (and its events dropped as `invalid_target`) instead of wedging
/// the target with endless `InvalidParameterException`s.
pub fn check_target(target: &Target) -> Result<(), String> {
    let group = target
        .get(LOG_GROUP)
        .ok_or("the target names no log group")?;
    let stream = target
        .get(LOG_STREAM)
        .ok_or("the target names no log stream")?;
    check_log_group(group).map_err(|e| format!("log group {group:?}: {e}"))?;
    check_log_stream(stream).map_err(|e| format!("log stream {stream:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(g: &str, s: &str) -> Target {
        super::super::target("cw", g, s)
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
        assert!(check_target(&Target::new("cw", vec![])).is_err());
        assert_eq!(MAX_EVENT_BYTES, 1_048_550);
    }
}
