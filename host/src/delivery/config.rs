//! Configuration of the delivery stage: [`DeliveryConfig`] (batching, memory
//! budget, concurrency, rate, retry, circuit breaker, target creation) and
//! [`AwsSettings`] (region and endpoint override), with validation that lists
//! every problem at once so an operator can fix a config file in one pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::{MAX_BATCH_BYTES, MAX_EVENT_BYTES};
use super::spool::SyncPolicy;

/// Retention periods (days) that CloudWatch Logs accepts in `PutRetentionPolicy`.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What to do when buffered events would exceed [`DeliveryConfig::buffer_budget_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Evict the oldest buffered (not yet in a request) events to make room; counted as `overflow`.
    #[default]
    DropOldest,
    /// Refuse the incoming events; counted as `overflow`.
    DropNewest,
}

impl OverflowPolicy {
    /// Stable snake_case name, as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowPolicy::DropOldest => "drop_oldest",
            OverflowPolicy::DropNewest => "drop_newest",
        }
    }
}

/// Settings of the CloudWatch Logs delivery stage: the `[delivery]` section,
/// one key per field (read by `config::delivery`, which says how to add one).
/// Durations are written as human-readable strings in config (`"5s"`,
/// `"250ms"`, `"13days 23h 55m"`) or integer milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Longest time an event waits in the buffer before its batch is sent,
    /// when the batch does not fill up first. Default 5 s.
    pub max_batch_delay: Duration,
    /// Largest accepted message in UTF-8 bytes; larger events are dropped
    /// (never truncated) and counted as `oversize`. Default 1,048,550
    /// (1 MiB − 26); set 262,118 for the pre-2025 256 KB limit.
    pub max_event_bytes: usize,
    /// Global budget for buffered events (Σ message bytes + 26, including
    /// events held by requests being sent or retried). Default 64 MiB.
    pub buffer_budget_bytes: usize,
    /// What happens when the budget is exceeded. Default `drop_oldest`.
    pub overflow: OverflowPolicy,
    /// Most PutLogEvents requests on the wire at once (all targets). Default 8.
    pub max_in_flight: usize,
    /// Ceiling of the PutLogEvents rate this host allows itself (requests/s;
    /// the AWS quota of 5,000 TPS is shared by every writer in the account
    /// and region). The rate in use halves on throttling and climbs back to
    /// this ceiling as requests succeed. Default 500.
    pub put_rate_per_sec: u32,
    /// Rate of control-plane calls (CreateLogGroup/CreateLogStream/
    /// PutRetentionPolicy) in requests/s. Default 5.
    pub create_rate_per_sec: u32,
    /// Timeout of one HTTP attempt (the client's operation-attempt timeout;
    /// connect timeout is the smaller of this and 5 s). Default 30 s.
    pub request_timeout: Duration,
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
    /// First backoff step for throttling, 5xx, timeouts and connection
    /// failures (exponential, full jitter). Default 200 ms.
    pub backoff_base: Duration,
    /// Longest backoff for those errors. Default 30 s.
    pub backoff_cap: Duration,
    /// First backoff step after a credential or permission error
    /// (AccessDenied, UnrecognizedClient, ExpiredToken, no credentials).
    /// Data stays buffered meanwhile. Default 5 s.
    pub credential_backoff_base: Duration,
    /// Longest backoff after credential or permission errors. Default 5 min.
    pub credential_backoff_cap: Duration,
    /// Failed requests in a row (5xx, timeouts, connection errors; never
    /// throttling) that open a target's circuit breaker. Default 5.
    pub circuit_failure_threshold: u32,
    /// Longest time an open circuit blocks requests before one probe is let
    /// through: the first opening lasts 1 s (or this, if shorter), and each
    /// failed probe doubles it up to this cap. Default 30 s.
    pub circuit_open_max: Duration,
    /// Minimum interval between aggregated log lines about dropped events. Default 10 s.
    pub drop_log_interval: Duration,
    /// Directory of the durable spool: every event is written here before it
    /// counts as buffered and is deleted once CloudWatch accepted it, so
    /// buffered events survive a crash or restart and are sent after the
    /// next start. Used by one process at a time. Default none (memory only).
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool's files may take; when full the `overflow`
    /// policy applies as for the memory budget. Default 256 MiB.
    pub spool_max_bytes: u64,
    /// When the spool calls fdatasync: `batch` (once per write batch, before
    /// its events are sent), `always` (also after acknowledgements), or
    /// `never` (survives a cwpub crash, not a machine crash). Default `batch`.
    pub spool_sync: SyncPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_batch_delay: Duration::from_secs(5),
            max_event_bytes: MAX_EVENT_BYTES,
            buffer_budget_bytes: 64 * 1024 * 1024,
            overflow: OverflowPolicy::DropOldest,
            max_in_flight: 8,
            put_rate_per_sec: 500,
            create_rate_per_sec: 5,
            request_timeout: Duration::from_secs(30),
            create_log_groups: true,
            create_log_streams: true,
            retention_days: None,
            tags: BTreeMap::new(),
            kms_key_id: None,
            emf_header: true,
            drop_older_than: Duration::from_secs(14 * 86_400 - 300),
            drop_newer_than: Duration::from_secs(2 * 3_600 - 300),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            credential_backoff_base: Duration::from_secs(5),
            credential_backoff_cap: Duration::from_secs(300),
            circuit_failure_threshold: 5,
            circuit_open_max: Duration::from_secs(30),
            drop_log_interval: Duration::from_secs(10),
            spool_dir: None,
            spool_max_bytes: 256 * 1024 * 1024,
            spool_sync: SyncPolicy::Batch,
        }
    }
}

impl DeliveryConfig {
    /// Checks every field and returns all problems found, each naming the
    /// field, the bad value and what is allowed.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.max_batch_delay.is_zero() || self.max_batch_delay > Duration::from_secs(3_600) {
            errs.push(format!(
                "max_batch_delay = {:?}: must be between 1ms and 1h",
                self.max_batch_delay
            ));
        }
        if self.max_event_bytes == 0 || self.max_event_bytes > MAX_EVENT_BYTES {
            errs.push(format!(
                "max_event_bytes = {}: must be between 1 and {MAX_EVENT_BYTES} (1 MiB minus the 26-byte event overhead)",
                self.max_event_bytes
            ));
        }
        let min_budget = 2 * MAX_BATCH_BYTES;
        if self.buffer_budget_bytes < min_budget {
            errs.push(format!(
                "buffer_budget_bytes = {}: must be at least {min_budget} (two full batches)",
                self.buffer_budget_bytes
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1_000 {
            errs.push(format!(
                "max_in_flight = {}: must be between 1 and 1000",
                self.max_in_flight
            ));
        }
        if self.put_rate_per_sec == 0 || self.put_rate_per_sec > 100_000 {
            errs.push(format!(
                "put_rate_per_sec = {}: must be between 1 and 100000 (the default AWS quota is 5000 per account and region)",
                self.put_rate_per_sec
            ));
        }
        if self.create_rate_per_sec == 0 || self.create_rate_per_sec > 1_000 {
            errs.push(format!(
                "create_rate_per_sec = {}: must be between 1 and 1000",
                self.create_rate_per_sec
            ));
        }
        if self.request_timeout < Duration::from_millis(10)
            || self.request_timeout > Duration::from_secs(600)
        {
            errs.push(format!(
                "request_timeout = {:?}: must be between 10ms and 10min",
                self.request_timeout
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
        if self.backoff_base.is_zero() || self.backoff_base > self.backoff_cap {
            errs.push(format!(
                "backoff_base = {:?}: must be greater than 0 and at most backoff_cap = {:?}",
                self.backoff_base, self.backoff_cap
            ));
        }
        if self.credential_backoff_base.is_zero()
            || self.credential_backoff_base > self.credential_backoff_cap
        {
            errs.push(format!(
                "credential_backoff_base = {:?}: must be greater than 0 and at most credential_backoff_cap = {:?}",
                self.credential_backoff_base, self.credential_backoff_cap
            ));
        }
        if self.circuit_failure_threshold == 0 {
            errs.push("circuit_failure_threshold must be at least 1".to_string());
        }
        if self.circuit_open_max.is_zero() {
            errs.push("circuit_open_max must be greater than 0".to_string());
        }
        let min_spool = (2 * MAX_BATCH_BYTES) as u64;
        if self.spool_max_bytes < min_spool {
            errs.push(format!(
                "spool_max_bytes = {}: must be at least {min_spool} (two full batches)",
                self.spool_max_bytes
            ));
        }
        if let Some(dir) = &self.spool_dir
            && dir.as_os_str().is_empty()
        {
            errs.push(
                "spool_dir = \"\": give a directory, or remove the key to keep events in memory only"
                    .to_string(),
            );
        }
        if self.drop_log_interval.is_zero() {
            errs.push("drop_log_interval must be greater than 0".to_string());
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

/// Where the AWS client talks to: region (else the default chain: `AWS_REGION`,
/// profile, IMDS) and an optional endpoint override for LocalStack or moto.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// AWS region, e.g. `eu-west-1`; `None` uses the default provider chain.
    pub region: Option<String>,
    /// Endpoint URL override, e.g. `http://localhost:4566` for LocalStack.
    pub endpoint_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(DeliveryConfig::default().validate(), Ok(()));
    }

    #[test]
    fn lists_every_problem() {
        let cfg = DeliveryConfig {
            retention_days: Some(2),
            max_event_bytes: 2_000_000,
            max_in_flight: 0,
            create_log_groups: true,
            create_log_streams: false,
            ..DeliveryConfig::default()
        };
        let errs = cfg.validate().unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("retention_days = 2: must be one of 1, 3, 5, 7, 14"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("max_event_bytes = 2000000"))
        );
        assert!(errs.iter().any(|e| e.starts_with("max_in_flight = 0")));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("create_log_groups = true needs"))
        );
    }
}
