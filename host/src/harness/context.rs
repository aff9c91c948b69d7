//! The fixed run context of `cwpub test` cases and `cwpub invoke` flags, as
//! written by people: RFC 3339 times (`2026-01-01T00:00:00Z`), delivery
//! counters as `name=value`. The context itself is built by
//! [`RunRequest::fixed`](crate::guest::RunRequest::fixed).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::guest::DeliveryStats;

/// A time given as RFC 3339 with an offset (`2026-01-01T00:00:00Z`,
/// `2026-01-01T01:00:00+01:00`), as milliseconds since the Unix epoch.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
        format!(
            "{text:?} is not a time ({e}); write RFC 3339 with a zone, e.g. \"2026-01-01T00:00:00Z\""
        )
    })?;
    u64::try_from(t.timestamp_millis()).map_err(|_| {
        format!("{text:?} is before 1970; guests are given times since the Unix epoch")
    })
}

/// A time in a TOML file: a date-time (`at = 2026-01-01T00:00:00Z`), the
/// same as a string, or integer milliseconds since the epoch.
pub(crate) fn time_value(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Datetime(d) if d.offset.is_none() => {
            Err(format!("{d} has no time zone; add one, e.g. \"Z\" for UTC"))
        }
        toml::Value::Datetime(d) => parse_time(&d.to_string()),
        toml::Value::String(s) => parse_time(s),
        toml::Value::Integer(ms) => u64::try_from(*ms)
            .map_err(|_| format!("{ms} is negative; give milliseconds since the Unix epoch")),
        other => Err(format!(
            "expected a time like 2026-01-01T00:00:00Z, found {}",
            crate::config::reader::describe(other)
        )),
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time with milliseconds.
pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// One delivery counter as `name=value` (`events_dropped=2`), checked.
pub fn parse_counter(text: &str) -> Result<(&'static str, u64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE, e.g. events_dropped=2"))?;
    let name = DeliveryStats::KEYS
        .into_iter()
        .find(|k| *k == name.trim())
        .ok_or_else(|| {
            format!(
                "unknown delivery counter `{name}`; the counters are {}",
                DeliveryStats::KEYS.join(", ")
            )
        })?;
    let value: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number (in `{text}`)"))?;
    Ok((name, value))
}

/// Delivery counters from `name=value` pairs; the ones not named are 0.
pub fn counters(pairs: &[(&'static str, u64)]) -> DeliveryStats {
    let mut stats = DeliveryStats::default();
    for (name, value) in pairs {
        // `parse_counter` only returns known names.
        let _ = stats.set(name, *value);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_need_a_zone_and_come_out_in_milliseconds() {
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Ok(1_767_225_600_000));
        assert_eq!(
            parse_time("2026-01-01T01:00:00.5+01:00"),
            Ok(1_767_225_600_500)
        );
        assert!(
            parse_time("2026-01-01 00:00")
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(
            parse_time("1969-12-31T00:00:00Z")
                .unwrap_err()
                .contains("before 1970")
        );
        let local: toml::Table = toml::from_str("at = 2026-01-01T00:00:00").unwrap();
        assert!(
            time_value(&local["at"])
                .unwrap_err()
                .contains("no time zone")
        );
        let utc: toml::Table = toml::from_str("at = 2026-01-01T00:00:00Z").unwrap();
        assert_eq!(time_value(&utc["at"]), Ok(1_767_225_600_000));
        assert_eq!(format_time(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }

    #[test]
    fn counters_are_set_by_name() {
        let pair = parse_counter("events_dropped=2").unwrap();
        assert_eq!(pair, ("events_dropped", 2));
        let d = counters(&[pair, parse_counter("requests = 5").unwrap()]);
        assert_eq!((d.events_dropped, d.requests, d.retries), (2, 5, 0));
        assert!(
            parse_counter("dropped=2")
                .unwrap_err()
                .contains("events_dropped")
        );
        assert!(
            parse_counter("events_dropped=-1")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            parse_counter("events_dropped")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
    }
}
