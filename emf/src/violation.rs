//! [`Violation`] and [`ViolationKind`]: what the validator reports.
//!
//! Each kind has a stable snake_case label ([`ViolationKind::as_str`]) that the
//! host uses as a drop-reason label in its counters and logs; labels are never
//! renamed once released, only added.

use std::fmt;

/// Defines [`ViolationKind`] with its labels and one-line descriptions.
macro_rules! kinds {
    ($($variant:ident => $label:literal, $doc:literal;)*) => {
        /// The class of an EMF rule a document breaks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ViolationKind {
            $(#[doc = $doc] $variant,)*
        }

        impl ViolationKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ViolationKind] = &[$(ViolationKind::$variant,)*];

            /// The stable snake_case label, e.g. `"missing_namespace"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ViolationKind::$variant => $label,)*
                }
            }

            /// A one-line description of the rule.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ViolationKind::$variant => $doc,)*
                }
            }
        }
    };
}

kinds! {
    EmptyMessage => "empty_message", "The message is empty.";
    EventTooLarge => "event_too_large", "The message is larger than the event size limit (1,048,550 bytes by default).";
    SurroundingWhitespace => "surrounding_whitespace", "The message starts or ends with whitespace (e.g. a trailing newline).";
    MultilineDocument => "multiline_document", "The message spans several lines (pretty-printed JSON).";
    InvalidJson => "invalid_json", "The message is not exactly one valid JSON value (prefix, suffix, syntax error).";
    NonFiniteValue => "non_finite_value", "The message contains NaN or Infinity, which JSON cannot represent.";
    NotAnObject => "not_an_object", "The root JSON value is not an object.";
    DuplicateKey => "duplicate_key", "An object has the same member name twice.";
    MissingAws => "missing_aws", "The root has no `_aws` metadata member.";
    InvalidAws => "invalid_aws", "`_aws` is not an object.";
    AgentRoutingMember => "agent_routing_member", "`_aws` has agent-only routing members (LogGroupName, LogStreamName).";
    MissingTimestamp => "missing_timestamp", "`_aws` has no `Timestamp`.";
    InvalidTimestamp => "invalid_timestamp", "`_aws.Timestamp` is not an integer number of milliseconds.";
    TimestampTooOld => "timestamp_too_old", "`_aws.Timestamp` is more than 14 days before now.";
    TimestampInFuture => "timestamp_in_future", "`_aws.Timestamp` is more than 2 hours after now.";
    MissingCloudWatchMetrics => "missing_cloudwatch_metrics", "`_aws` has no `CloudWatchMetrics`.";
    InvalidCloudWatchMetrics => "invalid_cloudwatch_metrics", "`_aws.CloudWatchMetrics` is not an array.";
    InvalidDirective => "invalid_directive", "A MetricDirective is not an object.";
    NoMetrics => "no_metrics", "The document or a directive defines no metric.";
    MissingNamespace => "missing_namespace", "A directive has no `Namespace`.";
    InvalidNamespace => "invalid_namespace", "A namespace is not a non-blank string of 0-9A-Za-z._-/#: and space, or starts with ':'.";
    NamespaceTooLong => "namespace_too_long", "A namespace is longer than 255 characters.";
    ReservedNamespace => "reserved_namespace", "A namespace starts with the reserved `AWS/` prefix.";
    MissingDimensions => "missing_dimensions", "A directive has no `Dimensions`.";
    InvalidDimensions => "invalid_dimensions", "`Dimensions` is not an array of arrays of strings.";
    EmptyDimensions => "empty_dimensions", "`Dimensions` is `[]`; a metric without dimensions needs `[[]]`.";
    TooManyDimensions => "too_many_dimensions", "A dimension set has more than 30 keys.";
    DuplicateDimensionKey => "duplicate_dimension_key", "A dimension set names the same key twice.";
    DuplicateDimensionSet => "duplicate_dimension_set", "A directive repeats a dimension set (same keys in any order).";
    InvalidDimensionName => "invalid_dimension_name", "A dimension name is empty, blank, non-ASCII, has control characters or starts with ':'.";
    DimensionNameTooLong => "dimension_name_too_long", "A dimension name is longer than 250 characters.";
    MissingDimensionValue => "missing_dimension_value", "A dimension key has no member at the root.";
    DimensionValueNotString => "dimension_value_not_string", "A dimension's root member is not a string.";
    InvalidDimensionValue => "invalid_dimension_value", "A dimension value is empty, blank, non-ASCII or has control characters.";
    DimensionValueTooLong => "dimension_value_too_long", "A dimension value is longer than 1024 characters.";
    MissingMetrics => "missing_metrics", "A directive has no `Metrics`.";
    InvalidMetrics => "invalid_metrics", "`Metrics` is not an array.";
    TooManyMetrics => "too_many_metrics", "A directive has more than 100 metric definitions.";
    InvalidMetricDefinition => "invalid_metric_definition", "A metric definition is not an object with a string `Name`.";
    InvalidMetricName => "invalid_metric_name", "A metric name is empty, blank, non-ASCII or has control characters.";
    MetricNameTooLong => "metric_name_too_long", "A metric name is longer than 255 characters.";
    DuplicateMetricDefinition => "duplicate_metric_definition", "A directive defines the same metric name twice.";
    DoubleCountedMetric => "double_counted_metric", "Two directives publish one metric to the same namespace and dimension set.";
    MissingMetricValue => "missing_metric_value", "A metric has no member at the root.";
    InvalidMetricValue => "invalid_metric_value", "A metric's root member is not a number, an array of numbers or a histogram object.";
    ValueOutOfRange => "value_out_of_range", "A metric value is outside ±2^360 (or non-zero below 2^-360).";
    TooManyValues => "too_many_values", "A metric has more than 100 values.";
    EmptyValueArray => "empty_value_array", "A metric's value array is empty.";
    InvalidHistogram => "invalid_histogram", "A `{Values,Counts}` or `{Min,Max,Sum,Count}` object is malformed.";
    InvalidUnit => "invalid_unit", "A `Unit` is not one of the 27 official CloudWatch unit names.";
    ConflictingUnit => "conflicting_unit", "One metric name has different units in one document.";
    InvalidStorageResolution => "invalid_storage_resolution", "A `StorageResolution` is not the integer 1 or 60.";
    ConflictingStorageResolution => "conflicting_storage_resolution", "One metric name has different storage resolutions in one document.";
    ReservedKey => "reserved_key", "A metric or dimension uses the reserved `_aws` key.";
    KeyCollision => "key_collision", "One root key is used both as a metric and as a dimension.";
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's class (stable label via [`ViolationKind::as_str`]).
    pub kind: ViolationKind,
    /// JSON Pointer (RFC 6901) to the offending member; `""` for the whole message.
    pub path: String,
    /// A human explanation naming the offending key or value.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.kind, self.message)
        } else {
            write!(f, "{} at {}: {}", self.kind, self.path, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut labels: Vec<&str> = ViolationKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ViolationKind::ALL.len());
        assert_eq!(
            ViolationKind::MissingNamespace.as_str(),
            "missing_namespace"
        );
    }
}
