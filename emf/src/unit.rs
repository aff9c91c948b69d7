//! CloudWatch metric units and storage resolutions.
//!
//! [`Unit`] holds the 27 official, case-sensitive unit names (EMF schema unit
//! pattern and API_MetricDatum `Unit`). There is no `Nanoseconds`
//! and no binary unit such as `Kibibytes`. [`Unit::suggest`] finds nearby valid
//! names for error messages.

use std::fmt;
use std::str::FromStr;

/// A CloudWatch metric unit; an omitted unit means [`Unit::None`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unit {
    /// `Seconds`
    Seconds,
    /// `Microseconds`
    Microseconds,
    /// `Milliseconds`
    Milliseconds,
    /// `Bytes`
    Bytes,
    /// `Kilobytes`
    Kilobytes,
    /// `Megabytes`
    Megabytes,
    /// `Gigabytes`
    Gigabytes,
    /// `Terabytes`
    Terabytes,
    /// `Bits`
    Bits,
    /// `Kilobits`
    Kilobits,
    /// `Megabits`
    Megabits,
    /// `Gigabits`
    Gigabits,
    /// `Terabits`
    Terabits,
    /// `Percent`
    Percent,
    /// `Count`
    Count,
    /// `Bytes/Second`
    BytesPerSecond,
    /// `Kilobytes/Second`
    KilobytesPerSecond,
    /// `Megabytes/Second`
    MegabytesPerSecond,
    /// `Gigabytes/Second`
    GigabytesPerSecond,
    /// `Terabytes/Second`
    TerabytesPerSecond,
    /// `Bits/Second`
    BitsPerSecond,
    /// `Kilobits/Second`
    KilobitsPerSecond,
    /// `Megabits/Second`
    MegabitsPerSecond,
    /// `Gigabits/Second`
    GigabitsPerSecond,
    /// `Terabits/Second`
    TerabitsPerSecond,
    /// `Count/Second`
    CountPerSecond,
    /// `None` (the default when a metric has no unit)
    #[default]
    None,
}

impl Unit {
    /// Every unit, in the order the CloudWatch documentation lists them.
    pub const ALL: [Unit; 27] = [
        Unit::Seconds,
        Unit::Microseconds,
        Unit::Milliseconds,
        Unit::Bytes,
        Unit::Kilobytes,
        Unit::Megabytes,
        Unit::Gigabytes,
        Unit::Terabytes,
        Unit::Bits,
        Unit::Kilobits,
        Unit::Megabits,
        Unit::Gigabits,
        Unit::Terabits,
        Unit::Percent,
        Unit::Count,
        Unit::BytesPerSecond,
        Unit::KilobytesPerSecond,
        Unit::MegabytesPerSecond,
        Unit::GigabytesPerSecond,
        Unit::TerabytesPerSecond,
        Unit::BitsPerSecond,
        Unit::KilobitsPerSecond,
        Unit::MegabitsPerSecond,
        Unit::GigabitsPerSecond,
        Unit::TerabitsPerSecond,
        Unit::CountPerSecond,
        Unit::None,
    ];

    /// The official spelling, e.g. `"Bytes/Second"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Microseconds => "Microseconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::Kilobytes => "Kilobytes",
            Unit::Megabytes => "Megabytes",
            Unit::Gigabytes => "Gigabytes",
            Unit::Terabytes => "Terabytes",
            Unit::Bits => "Bits",
            Unit::Kilobits => "Kilobits",
            Unit::Megabits => "Megabits",
            Unit::Gigabits => "Gigabits",
            Unit::Terabits => "Terabits",
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::KilobytesPerSecond => "Kilobytes/Second",
            Unit::MegabytesPerSecond => "Megabytes/Second",
            Unit::GigabytesPerSecond => "Gigabytes/Second",
            Unit::TerabytesPerSecond => "Terabytes/Second",
            Unit::BitsPerSecond => "Bits/Second",
            Unit::KilobitsPerSecond => "Kilobits/Second",
            Unit::MegabitsPerSecond => "Megabits/Second",
            Unit::GigabitsPerSecond => "Gigabits/Second",
            Unit::TerabitsPerSecond => "Terabits/Second",
            Unit::CountPerSecond => "Count/Second",
            Unit::None => "None",
        }
    }

    /// Up to three valid units close to `input` (case, abbreviations, typos),
    /// best first; empty when nothing is close.
    pub fn suggest(input: &str) -> Vec<Unit> {
        let lower = input.trim().to_ascii_lowercase();
        if let Some(unit) = alias(&lower) {
            return vec![unit];
        }
        let mut scored: Vec<(usize, Unit)> = Unit::ALL
            .iter()
            .filter_map(|&unit| {
                let name = unit.as_str().to_ascii_lowercase();
                let score = if name == lower {
                    0
                } else if !lower.is_empty()
                    && (name.starts_with(&lower) || lower.starts_with(&name))
                {
                    1 + name.len().abs_diff(lower.len()).min(8)
                } else {
                    let distance = edit_distance(&lower, &name);
                    if distance > 3 {
                        return None;
                    }
                    2 + distance * 3
                };
                Some((score, unit))
            })
            .collect();
        scored.sort_by_key(|&(score, unit)| (score, unit.as_str().len()));
        scored.into_iter().take(3).map(|(_, unit)| unit).collect()
    }

    /// A comma-separated list of every valid unit name, for error messages.
    pub fn all_names() -> String {
        Unit::ALL
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Common abbreviations people write instead of the official names.
fn alias(lower: &str) -> Option<Unit> {
    Some(match lower {
        "s" | "sec" | "secs" | "second" => Unit::Seconds,
        "ms" | "msec" | "millis" | "millisecond" => Unit::Milliseconds,
        "us" | "µs" | "usec" | "micros" | "microsecond" => Unit::Microseconds,
        // There is no nanosecond unit; convert to microseconds.
        "ns" | "nanos" | "nanosecond" | "nanoseconds" => Unit::Microseconds,
        "b" | "byte" => Unit::Bytes,
        "kb" | "kib" | "kibibytes" => Unit::Kilobytes,
        "mb" | "mib" | "mebibytes" => Unit::Megabytes,
        "gb" | "gib" | "gibibytes" => Unit::Gigabytes,
        "tb" | "tib" | "tebibytes" => Unit::Terabytes,
        "%" | "pct" | "percentage" => Unit::Percent,
        "n" | "num" | "number" | "counter" | "" => Unit::Count,
        "bps" | "b/s" => Unit::BytesPerSecond,
        "rps" | "qps" | "/s" | "per second" | "persecond" => Unit::CountPerSecond,
        _ => return Option::None,
    })
}

/// Levenshtein distance over bytes (inputs are short unit names).
fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a string that is not one of the 27 official unit names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseUnitError {
    /// The rejected input.
    pub input: String,
    /// Nearby valid units (see [`Unit::suggest`]).
    pub suggestions: Vec<Unit>,
}

impl fmt::Display for ParseUnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown CloudWatch unit {:?} (unit names are case-sensitive)",
            self.input
        )?;
        if self.suggestions.is_empty() {
            write!(f, "; valid units: {}", Unit::all_names())
        } else {
            let names: Vec<&str> = self.suggestions.iter().map(|u| u.as_str()).collect();
            write!(f, "; did you mean {}?", names.join(" or "))
        }
    }
}

impl std::error::Error for ParseUnitError {}

impl FromStr for Unit {
    type Err = ParseUnitError;

    /// Accepts exactly the official spellings, e.g. `"Milliseconds"`, `"Count/Second"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Unit::ALL
            .iter()
            .copied()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| ParseUnitError {
                input: s.to_owned(),
                suggestions: Unit::suggest(s),
            })
    }
}

/// How finely CloudWatch stores a metric: 1 s (high resolution) or 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StorageResolution {
    /// `StorageResolution: 1`, a high-resolution metric.
    High,
    /// `StorageResolution: 60`, the default (omitted from documents).
    #[default]
    Standard,
}

impl StorageResolution {
    /// The resolution in seconds: 1 or 60.
    pub const fn seconds(self) -> u32 {
        match self {
            StorageResolution::High => 1,
            StorageResolution::Standard => 60,
        }
    }
}

impl TryFrom<u32> for StorageResolution {
    type Error = u32;

    /// Accepts 1 or 60 and returns any other number as the error.
    fn try_from(seconds: u32) -> Result<Self, u32> {
        match seconds {
            1 => Ok(StorageResolution::High),
            60 => Ok(StorageResolution::Standard),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_round_trips_through_its_name() {
        for unit in Unit::ALL {
            assert_eq!(unit.as_str().parse::<Unit>(), Ok(unit));
        }
        let mut names: Vec<&str> = Unit::ALL.iter().map(|u| u.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 27);
    }

    #[test]
    fn wrong_spellings_are_rejected_with_suggestions() {
        for bad in [
            "ms",
            "milliseconds",
            "Nanoseconds",
            "Kibibytes",
            "count",
            "Bytes/second",
            "",
        ] {
            let err = bad.parse::<Unit>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(!err.suggestions.is_empty(), "{bad:?} had no suggestion");
        }
        assert_eq!(Unit::suggest("ms"), vec![Unit::Milliseconds]);
        assert_eq!(Unit::suggest("milliseconds")[0], Unit::Milliseconds);
        assert_eq!(Unit::suggest("Bytes/second")[0], Unit::BytesPerSecond);
        assert_eq!(Unit::suggest("Secnds")[0], Unit::Seconds);
        assert!(Unit::suggest("Nanoseconds").contains(&Unit::Microseconds));
        assert!(Unit::suggest("zzzzzzzzzzzz").is_empty());
        let message = "zzzz".parse::<Unit>().unwrap_err().to_string();
        assert!(message.contains("Count/Second"), "{message}");
    }

    #[test]
    fn storage_resolution_accepts_only_1_and_60() {
        assert_eq!(StorageResolution::try_from(1), Ok(StorageResolution::High));
        assert_eq!(
            StorageResolution::try_from(60),
            Ok(StorageResolution::Standard)
        );
        assert_eq!(StorageResolution::try_from(5), Err(5));
        assert_eq!(StorageResolution::default().seconds(), 60);
    }
}
