//! [`Timestamp`]: a UTC instant with millisecond precision, as the host sends
//! times and as CloudWatch stores them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};

/// A UTC instant with millisecond precision.
///
/// Its [`Display`](fmt::Display) form is RFC 3339 with milliseconds and `Z`,
/// e.g. `2026-01-01T00:00:00.000Z`, the form JSON log consumers expect, and it
/// parses from any RFC 3339 time (handy in tests). Every value lies between
/// the Unix epoch and the year 262,143, so formatting never fails.
///
/// ```
/// use cwpub_guest::Timestamp;
///
/// let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
/// assert_eq!(t.millis(), 1_767_225_600_000);
/// assert_eq!(t.to_string(), "2026-01-01T00:00:00.000Z");
/// assert_eq!(Timestamp::from_millis(t.millis()), Some(t));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00.000Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    /// The instant `millis` milliseconds after the Unix epoch, or `None` when it
    /// lies beyond what a calendar date can express (after the year 262,143).
    pub fn from_millis(millis: u64) -> Option<Self> {
        let millis = i64::try_from(millis).ok()?;
        DateTime::from_timestamp_millis(millis).map(Timestamp)
    }

    /// Milliseconds since the Unix epoch: the unit of CloudWatch event times
    /// and of EMF's `_aws.Timestamp`.
    pub fn millis(self) -> u64 {
        // Construction guarantees a time at or after the epoch.
        u64::try_from(self.0.timestamp_millis()).unwrap_or(0)
    }

    /// The same instant as a `chrono` date-time, for other formats and
    /// calendar arithmetic (`chrono` is re-exported as `cwpub_guest::chrono`).
    pub fn datetime(self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl serde::Serialize for Timestamp {
    /// As its [`Display`](fmt::Display) form, so typed events serialize with
    /// [`Output::json_lines`](crate::Output::json_lines) as `"2026-01-01T00:00:00.000Z"`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why a string is not a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTimestampError(String);

impl fmt::Display for ParseTimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseTimestampError {}

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// Parses an RFC 3339 time such as `2026-01-01T00:00:00Z` or
    /// `2026-01-01T01:00:00.250+01:00`; precision beyond milliseconds is cut.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = DateTime::parse_from_rfc3339(s).map_err(|e| {
            ParseTimestampError(format!(
                "{s:?} is not an RFC 3339 time like \"2026-01-01T00:00:00Z\": {e}"
            ))
        })?;
        let millis = u64::try_from(parsed.timestamp_millis())
            .map_err(|_| ParseTimestampError(format!("{s:?} is before the Unix epoch")))?;
        Timestamp::from_millis(millis)
            .ok_or_else(|| ParseTimestampError(format!("{s:?} is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let t = Timestamp::from_millis(1_763_796_600_123).unwrap();
        assert_eq!(t.to_string(), "2025-11-22T07:30:00.123Z");
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn serializes_as_its_display_form() {
        let t = Timestamp::from_millis(1_767_225_600_000).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2026-01-01T00:00:00.000Z""#
        );
    }

    #[test]
    fn range_is_checked() {
        assert!(Timestamp::from_millis(u64::MAX).is_none());
        assert!(Timestamp::from_millis(8_000_000_000_000_000).is_some());
        assert!(Timestamp::from_millis(9_000_000_000_000_000).is_none());
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let t: Timestamp = "2026-01-01T01:00:00.250+01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-01-01T00:00:00.250Z");
        let e = "yesterday".parse::<Timestamp>().unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
        assert!("1969-12-31T23:59:59Z".parse::<Timestamp>().is_err());
    }
}
