//! Rules for namespaces, metric names, dimension names and values, and metric
//! values, shared by the builder (which refuses bad input) and the validator
//! (which reports it).
//!
//! Each `*_problems` function returns every rule the input breaks, in a fixed
//! order, or an empty list when the input is valid. The rules are the
//! intersection of the EMF schema and the CloudWatch API (EMF schema and
//! API_Dimension / API_MetricDatum; hard cases 17–19 and 23–27 of `emf/HARD_CASES.md`): ASCII only, no control characters, at least one
//! non-whitespace character, length limits from [`crate::limits`].

use std::fmt;

use crate::limits::{
    MAX_DIMENSION_NAME_LEN, MAX_DIMENSION_VALUE_LEN, MAX_METRIC_NAME_LEN, MAX_NAMESPACE_LEN,
    MAX_VALUE_MAGNITUDE, MIN_NONZERO_MAGNITUDE,
};

/// The root member that holds EMF metadata; no metric, dimension or property may use it.
pub const RESERVED_KEY: &str = "_aws";

/// The namespace prefix CloudWatch reserves for AWS services.
pub const RESERVED_NAMESPACE_PREFIX: &str = "AWS/";

/// One broken rule of a name or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// The string is empty.
    Empty,
    /// The string has only whitespace.
    Blank,
    /// The string is longer than the limit (lengths in characters).
    TooLong {
        /// Actual length in characters.
        len: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// The string has a non-ASCII character.
    NonAscii(char),
    /// The string has an ASCII control character.
    Control(char),
    /// The string starts with `:` (not allowed for dimension names and namespaces).
    LeadingColon,
    /// A namespace character outside `0-9A-Za-z . - _ / # :` and space.
    BadNamespaceChar(char),
    /// The namespace starts with the reserved `AWS/` prefix.
    ReservedNamespace,
    /// The name is the reserved `_aws` key.
    ReservedKey,
}

impl NameProblem {
    /// True for [`NameProblem::TooLong`].
    pub fn is_too_long(&self) -> bool {
        matches!(self, NameProblem::TooLong { .. })
    }
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("is empty"),
            NameProblem::Blank => f.write_str("has no non-whitespace character"),
            NameProblem::TooLong { len, max } => {
                write!(f, "is {len} characters long; at most {max} are allowed")
            }
            NameProblem::NonAscii(c) => write!(
                f,
                "contains the non-ASCII character {c:?}; only ASCII is allowed"
            ),
            NameProblem::Control(c) => write!(f, "contains the control character {c:?}"),
            NameProblem::LeadingColon => f.write_str("starts with ':'"),
            NameProblem::BadNamespaceChar(c) => write!(
                f,
                "contains {c:?}; namespaces allow only 0-9 A-Z a-z . - _ / # : and space"
            ),
            NameProblem::ReservedNamespace => write!(
                f,
                "starts with {RESERVED_NAMESPACE_PREFIX:?}, which is reserved for AWS services"
            ),
            NameProblem::ReservedKey => write!(f, "is the reserved key {RESERVED_KEY:?}"),
        }
    }
}

/// Problems shared by every identifier: emptiness, blankness, length, ASCII, control characters.
fn basic_problems(s: &str, max: usize, out: &mut Vec<NameProblem>) {
    if s.is_empty() {
        out.push(NameProblem::Empty);
        return;
    }
    if s.chars().all(char::is_whitespace) {
        out.push(NameProblem::Blank);
    }
    let len = s.chars().count();
    if len > max {
        out.push(NameProblem::TooLong { len, max });
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
        out.push(NameProblem::NonAscii(c));
    }
    if let Some(c) = s.chars().find(char::is_ascii_control) {
        out.push(NameProblem::Control(c));
    }
}

/// Every rule a namespace breaks: 1–255 characters of `[0-9A-Za-z._\-/#: ]`,
/// not blank, not starting with `:` or `AWS/` (hard cases 24, 25).
pub fn namespace_problems(namespace: &str) -> Vec<NameProblem> {
    let mut out = Vec::new();
    basic_problems(namespace, MAX_NAMESPACE_LEN, &mut out);
    if let Some(c) = namespace.chars().find(|&c| {
        c.is_ascii()
            && !c.is_ascii_control()
            && !(c.is_ascii_alphanumeric() || "._-/#: ".contains(c))
    }) {
        out.push(NameProblem::BadNamespaceChar(c));
    }
    if namespace.starts_with(':') {
        out.push(NameProblem::LeadingColon);
    }
    if namespace.starts_with(RESERVED_NAMESPACE_PREFIX) {
        out.push(NameProblem::ReservedNamespace);
    }
    out
}

/// Every rule a metric name breaks: 1–255 ASCII characters without control
/// characters, not blank, not `_aws` (hard cases 2, 19, 23).
pub fn metric_name_problems(name: &str) -> Vec<NameProblem> {
    let mut out = Vec::new();
    basic_problems(name, MAX_METRIC_NAME_LEN, &mut out);
    if name == RESERVED_KEY {
        out.push(NameProblem::ReservedKey);
    }
    out
}

/// Every rule a dimension name breaks: 1–250 ASCII characters without control
/// characters, not blank, not starting with `:`, not `_aws` (hard cases 2, 18).
pub fn dimension_name_problems(name: &str) -> Vec<NameProblem> {
    let mut out = Vec::new();
    basic_problems(name, MAX_DIMENSION_NAME_LEN, &mut out);
    if name.starts_with(':') {
        out.push(NameProblem::LeadingColon);
    }
    if name == RESERVED_KEY {
        out.push(NameProblem::ReservedKey);
    }
    out
}

/// Every rule a dimension value breaks: 1–1024 ASCII characters without
/// control characters, not blank (hard cases 17–19).
pub fn dimension_value_problems(value: &str) -> Vec<NameProblem> {
    let mut out = Vec::new();
    basic_problems(value, MAX_DIMENSION_VALUE_LEN, &mut out);
    out
}

/// Why a metric value cannot be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueProblem {
    /// NaN, +Inf or −Inf (hard case 26).
    NonFinite,
    /// Magnitude above 2^360, or non-zero below 2^-360 (hard case 27).
    OutOfRange,
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueProblem::NonFinite => {
                f.write_str("is not finite (NaN and ±Infinity cannot be published)")
            }
            ValueProblem::OutOfRange => f.write_str(
                "is out of range (magnitude must be 0 or between 8.515920e-109 and 2^360)",
            ),
        }
    }
}

/// Checks one metric value: finite, and zero or with magnitude in [2^-360, 2^360].
pub fn value_problem(value: f64) -> Option<ValueProblem> {
    if !value.is_finite() {
        return Some(ValueProblem::NonFinite);
    }
    let magnitude = value.abs();
    if magnitude > MAX_VALUE_MAGNITUDE || (magnitude != 0.0 && magnitude < MIN_NONZERO_MAGNITUDE) {
        return Some(ValueProblem::OutOfRange);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert!(namespace_problems("cwpub").is_empty());
        assert!(namespace_problems("My App/prod#1:x_y-z.w").is_empty());
        assert_eq!(namespace_problems(""), vec![NameProblem::Empty]);
        assert_eq!(namespace_problems("   "), vec![NameProblem::Blank]);
        assert_eq!(
            namespace_problems("AWS/EC2"),
            vec![NameProblem::ReservedNamespace]
        );
        assert_eq!(namespace_problems(":x"), vec![NameProblem::LeadingColon]);
        assert_eq!(
            namespace_problems("a*b"),
            vec![NameProblem::BadNamespaceChar('*')]
        );
        assert_eq!(namespace_problems("é"), vec![NameProblem::NonAscii('é')]);
        assert_eq!(
            namespace_problems(&"a".repeat(256)),
            vec![NameProblem::TooLong { len: 256, max: 255 }]
        );
        assert!(namespace_problems(&"a".repeat(255)).is_empty());
    }

    #[test]
    fn identifiers() {
        assert!(metric_name_problems("Latency p99 (ms)").is_empty());
        assert_eq!(metric_name_problems("_aws"), vec![NameProblem::ReservedKey]);
        assert_eq!(
            metric_name_problems("a\u{7}"),
            vec![NameProblem::Control('\u{7}')]
        );
        assert!(metric_name_problems(&"m".repeat(255)).is_empty());
        assert!(metric_name_problems(&"m".repeat(256))[0].is_too_long());
        assert!(dimension_name_problems(&"d".repeat(250)).is_empty());
        assert!(dimension_name_problems(&"d".repeat(251))[0].is_too_long());
        assert_eq!(
            dimension_name_problems(":d"),
            vec![NameProblem::LeadingColon]
        );
        assert!(dimension_value_problems(":v").is_empty());
        assert!(dimension_value_problems(&"v".repeat(1024)).is_empty());
        assert!(dimension_value_problems(&"v".repeat(1025))[0].is_too_long());
        assert_eq!(
            dimension_value_problems(" \t"),
            vec![NameProblem::Blank, NameProblem::Control('\t')]
        );
        assert_eq!(
            dimension_value_problems("a\u{0}"),
            vec![NameProblem::Control('\u{0}')]
        );
    }

    #[test]
    fn values() {
        assert_eq!(value_problem(0.0), None);
        assert_eq!(value_problem(-0.0), None);
        assert_eq!(value_problem(2f64.powi(360)), None);
        assert_eq!(value_problem(-8.6e-109), None);
        assert_eq!(
            value_problem(2f64.powi(-360)),
            Some(ValueProblem::OutOfRange)
        );
        assert_eq!(
            value_problem(2f64.powi(361)),
            Some(ValueProblem::OutOfRange)
        );
        assert_eq!(value_problem(1e-200), Some(ValueProblem::OutOfRange));
        assert_eq!(value_problem(f64::NAN), Some(ValueProblem::NonFinite));
        assert_eq!(
            value_problem(f64::NEG_INFINITY),
            Some(ValueProblem::NonFinite)
        );
    }
}
