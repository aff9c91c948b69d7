//! Every numeric limit of CloudWatch Embedded Metric Format in one place.
//!
//! Where the EMF JSON schema and the CloudWatch `MetricDatum`/`Dimension` API
//! disagree, the stricter value is used (the intersection), because extraction
//! checks documents against both ("EMFValidationErrors: ... do not adhere to the
//! embedded metric format and `MetricDatum` specifications"). Sources are cited
//! next to each constant: "EMF spec" is AWS's *Specification: Embedded metric
//! format* (CloudWatch User Guide), "EMF schema" its JSON schema, `API_*` the
//! CloudWatch API reference pages; hard cases are numbered as in `emf/HARD_CASES.md`.

/// At most 100 `MetricDefinition`s per `MetricDirective` (EMF spec, `MetricDirective`;
/// exceeding it drops every metric of the event, agent #1813).
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;

/// At most 100 values per metric array, also for histogram `Values`/`Counts`
/// (EMF spec, "Metric target values"; collector-contrib PR #36336).
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// At most 30 dimension keys per `DimensionSet` (current EMF spec and schema
/// `maxItems: 30`; was 9, then 10, before 2022-08).
pub const MAX_DIMENSIONS_PER_SET: usize = 30;

/// Dimension names are 1–250 characters (EMF schema `DimensionReference`
/// `maxLength: 250`; the Dimension API allows 255, so 250 is the intersection).
pub const MAX_DIMENSION_NAME_LEN: usize = 250;

/// Dimension values are 1–1024 characters (EMF spec "MUST NOT contain more than
/// 1024 characters"; API_Dimension `Value` 1–1024).
pub const MAX_DIMENSION_VALUE_LEN: usize = 1024;

/// Metric names are 1–255 characters (MetricDatum `MetricName` 1–255; the EMF
/// schema allows 1024).
pub const MAX_METRIC_NAME_LEN: usize = 255;

/// Namespaces are 1–255 characters (cloudwatch_concepts "Namespaces"; the EMF
/// schema allows 1024).
pub const MAX_NAMESPACE_LEN: usize = 255;

/// The largest event message in bytes: 1 MiB (1,048,576) minus the 26 bytes
/// of per-event overhead PutLogEvents counts (API_PutLogEvents; EMF spec
/// "limited to a maximum size of 1 MB").
pub const MAX_EVENT_BYTES: usize = 1_048_550;

/// Metric values must lie within ±2^360 (API_MetricDatum `Value`).
pub const MAX_VALUE_MAGNITUDE: f64 = 2.348_542_582_773_833_2e108; // 2^360

/// Non-zero magnitudes below 8.515920e-109 may also be rejected (older
/// API_MetricDatum text: "8.515920e-109 to 1.174271e+108"); the current text
/// gives no lower bound, so the stricter old one is kept.
pub const MIN_NONZERO_MAGNITUDE: f64 = 8.515_920e-109;

/// Metric timestamps may be at most 14 days in the past (cloudwatch_concepts
/// "Time stamps"; PutLogEvents rejects older events).
pub const MAX_PAST_MS: i64 = 14 * 24 * 60 * 60 * 1000;

/// Metric timestamps may be at most 2 hours in the future (cloudwatch_concepts
/// "Time stamps"; PutLogEvents `tooNewLogEventStartIndex`).
pub const MAX_FUTURE_MS: i64 = 2 * 60 * 60 * 1000;

/// The two storage resolutions EMF accepts, in seconds (EMF spec
/// `StorageResolution` "SHOULD be 1 or 60"; default 60).
pub const STORAGE_RESOLUTIONS: [u32; 2] = [1, 60];

/// JSON nesting depth beyond which the validator gives up (same as serde_json's
/// recursion limit), so hostile input cannot exhaust the stack.
pub const MAX_JSON_DEPTH: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_are_powers_of_two() {
        assert_eq!(MAX_VALUE_MAGNITUDE, 2f64.powi(360));
        assert!(MIN_NONZERO_MAGNITUDE > 2f64.powi(-360) && MIN_NONZERO_MAGNITUDE < 2f64.powi(-358));
    }
}
