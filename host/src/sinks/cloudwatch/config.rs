//! A CloudWatch Logs sink's own settings ([`CloudWatchConfig`]): where it
//! talks to (region, endpoint override), what it may create (log groups and
//! streams, with retention, tags and a KMS key), and the per-event rules
//! PutLogEvents imposes (size, age). They are read from the sink's table, and
//! for the sink of the `[sink]` table also from `[delivery]`, where they
//! have always been accepted; validation lists every problem at once.

use std::collections::BTreeMap;
use std::time::Duration;

use super::limits::MAX_EVENT_BYTES;

/// Retention periods (days) that CloudWatch Logs accepts in `PutRetentionPolicy`.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Where the AWS client talks to: region (else the default chain: `AWS_REGION`,
/// profile, IMDS) and an optional endpoint override for LocalStack or moto.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// AWS region, e.g. `eu-west-1`; `None` uses the default provider chain.
    pub region: Option<String>,
    /// Endpoint URL override, e.g. `http://localhost:4566` for LocalStack.
    pub endpoint_url: Option<String>,
}

/// Settings of one CloudWatch Logs sink. Durations are written as
/// human-readable strings in config (`"5s"`, `"13days 23h 55m"`) or integer
/// milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchConfig {
    /// Region and endpoint.
    pub aws: AwsSettings,
    /// Largest accepted message in UTF-8 bytes; larger events are dropped
    /// (never truncated) and counted as `oversize`. Default 1,048,550
    /// (1 MiB − 26); set 262,118 for the pre-2025 256 KB limit.
    pub max_event_bytes: usize,
    /// Rate of control-plane calls (CreateLogGroup/CreateLogStream/
    /// PutRetentionPolicy) in requests/s. Default 5.
    pub create_rate_per_sec: u32,
    /// Create a missing log group (when creating its stream reports it missing). Default true.
    pub create_log_groups: bool,
    /// Create a missing log stream when PutLogEvents reports it missing. Default true.
    pub create_log_streams: bool,
    /// Retention set on log groups this host creates (existing groups are
    /// left alone). Must be one of [`RETENTION_DAYS`]. Default none (never expire).
    pub retention_days: Option<u32>,
    /// Tags put on log groups this host creates (≤ 50). Default none.
    pub tags: BTreeMap<String, String>,
    /// KMS key ARN used to encrypt log groups this host creates. Default none.
    pub kms_key_id: Option<String>,
    /// Send `x-amzn-logs-format: json/emf` on EMF batches (optional for AWS,
    /// harmless). Default true.
    pub emf_header: bool,
    /// Events older than this (host clock) are dropped as `too_old` before
    /// sending, also before each retry. Default 14 days − 5 min (CloudWatch
    /// rejects events older than 14 days).
    pub drop_older_than: Duration,
    /// Events more than this far in the future are dropped as `too_new`
    /// before sending. Default 2 h − 5 min (CloudWatch rejects > 2 h).
    pub drop_newer_than: Duration,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        CloudWatchConfig {
            aws: AwsSettings::default(),
            max_event_bytes: MAX_EVENT_BYTES,
            create_rate_per_sec: 5,
            create_log_groups: true,
            create_log_streams: true,
            retention_days: None,
            tags: BTreeMap::new(),
            kms_key_id: None,
            emf_header: true,
            drop_older_than: Duration::from_secs(14 * 86_400 - 300),
            drop_newer_than: Duration::from_secs(2 * 3_600 - 300),
        }
    }
}

impl CloudWatchConfig {
    /// Checks every field and returns all problems found, each naming the
    /// field, the bad value and what is allowed.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.max_event_bytes == 0 || self.max_event_bytes > MAX_EVENT_BYTES {
            errs.push(format!(
                "max_event_bytes = {}: must be between 1 and {MAX_EVENT_BYTES} (1 MiB minus the 26-byte event overhead)",
                self.max_event_bytes
            ));
        }
        if self.create_rate_per_sec == 0 || self.create_rate_per_sec > 1_000 {
            errs.push(format!(
                "create_rate_per_sec = {}: must be between 1 and 1000",
                self.create_rate_per_sec
            ));
        }
        if self.create_log_groups && !self.create_log_streams {
            errs.push(
                "create_log_groups = true needs create_log_streams = true (groups are only created while creating a missing stream)"
                    .to_string(),
            );
        }
        if let Some(days) = self.retention_days
            && !RETENTION_DAYS.contains(&days)
        {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(|d| d.to_string()).collect();
            errs.push(format!(
                "retention_days = {days}: must be one of {}",
                allowed.join(", ")
            ));
        }
        if !self.create_log_groups
            && (self.retention_days.is_some() || !self.tags.is_empty() || self.kms_key_id.is_some())
        {
            errs.push(
                "retention_days, tags and kms_key_id only apply to log groups this host creates: set create_log_groups = true or remove them"
                    .to_string(),
            );
        }
        if self.tags.len() > 50 {
            errs.push(format!(
                "tags: {} tags given, CloudWatch allows at most 50 per log group",
                self.tags.len()
            ));
        }
        for (k, v) in &self.tags {
            if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") {
                errs.push(format!(
                    "tags key {k:?}: must be 1-128 characters and must not start with \"aws:\""
                ));
            }
            if v.chars().count() > 256 {
                errs.push(format!("tags.{k}: value must be at most 256 characters"));
            }
        }
        if let Some(kms) = &self.kms_key_id
            && (kms.is_empty() || kms.len() > 256)
        {
            errs.push(format!(
                "kms_key_id = {kms:?}: must be a KMS key ARN of 1-256 characters"
            ));
        }
        let fourteen_days = Duration::from_secs(14 * 86_400);
        if self.drop_older_than.is_zero() {
            errs.push("drop_older_than must be greater than 0".to_string());
        } else if self.drop_older_than > fourteen_days * 4 {
            errs.push(format!(
                "drop_older_than = {:?}: must be at most 56 days (CloudWatch rejects events older than 14 days anyway)",
                self.drop_older_than
            ));
        }
        if self.drop_newer_than.is_zero() || self.drop_newer_than > Duration::from_secs(86_400) {
            errs.push(format!(
                "drop_newer_than = {:?}: must be between 1ms and 24h (CloudWatch rejects events more than 2h ahead)",
                self.drop_newer_than
            ));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(CloudWatchConfig::default().validate(), Ok(()));
    }

    #[test]
    fn lists_every_problem() {
        let cfg = CloudWatchConfig {
            retention_days: Some(2),
            max_event_bytes: 2_000_000,
            create_log_groups: true,
            create_log_streams: false,
            ..CloudWatchConfig::default()
        };
        let errs = cfg.validate().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("retention_days = 2: must be one of 1, 3, 5, 7, 14"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("max_event_bytes = 2000000"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("create_log_groups = true needs"))
        );
    }
}
