//! Configuration of a sink's delivery core: [`DeliveryConfig`] (batching,
//! memory budget, concurrency, rate, retry, circuit breaker, spool), with
//! validation that lists every problem at once so an operator can fix a
//! config file in one pass. What only one service has (CloudWatch's log
//! group creation, DataDog's site) is that sink's own configuration.

use std::path::PathBuf;
use std::time::Duration;

use super::spool::SyncPolicy;

/// Smallest memory budget and spool size: two requests of a megabyte.
pub const MIN_BUDGET_BYTES: usize = 2 * 1024 * 1024;

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

/// Settings of one sink's delivery core: the `[delivery]` section, one key
/// per field, which a `[sinks.<name>]` table may override key by key (read
/// by `config::delivery`, which says how to add one). Durations are written
/// as human-readable strings in config (`"5s"`, `"250ms"`, `"13days 23h 55m"`)
/// or integer milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Longest time an event waits in the buffer before its batch is sent,
    /// when the batch does not fill up first. Default 5 s.
    pub max_batch_delay: Duration,
    /// Budget for buffered events (Σ message bytes + 26, including events
    /// held by requests being sent or retried). Default 64 MiB.
    pub buffer_budget_bytes: usize,
    /// What happens when the budget is exceeded. Default `drop_oldest`.
    pub overflow: OverflowPolicy,
    /// Most requests on the wire at once (all targets of the sink). Default 8.
    pub max_in_flight: usize,
    /// Ceiling of the request rate this host allows itself (requests/s;
    /// CloudWatch's quota of 5,000 PutLogEvents/s is shared by every writer
    /// in the account and region). The rate in use halves on throttling and
    /// climbs back to this ceiling as requests succeed. Default 500.
    pub put_rate_per_sec: u32,
    /// Timeout of one HTTP attempt (connect timeout is the smaller of this
    /// and 5 s). Default 30 s.
    pub request_timeout: Duration,
    /// First backoff step for throttling, 5xx, timeouts and connection
    /// failures (exponential, full jitter). Default 200 ms.
    pub backoff_base: Duration,
    /// Longest backoff for those errors. Default 30 s.
    pub backoff_cap: Duration,
    /// First backoff step after a credential or permission error. Data
    /// stays buffered meanwhile. Default 5 s.
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
    /// may be sent and deleted once the service accepted it, so buffered
    /// events survive a crash or restart and are sent after the next start.
    /// Used by one process at a time; each sink keeps its own subdirectory
    /// (`<spool_dir>/<sink name>`). Default none (memory only).
    pub spool_dir: Option<PathBuf>,
    /// Most bytes one sink's spool files may take; when full the `overflow`
    /// policy applies as for the memory budget. Default 256 MiB.
    pub spool_max_bytes: u64,
    /// When the spool calls fdatasync: `batch` (once per write batch, before
    /// its events are sent), `always` (also acknowledgements and send
    /// markers, before the request goes out), or `never` (survives a cwpub
    /// crash, not a machine crash). Default `batch`.
    pub spool_sync: SyncPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_batch_delay: Duration::from_secs(5),
            buffer_budget_bytes: 64 * 1024 * 1024,
            overflow: OverflowPolicy::DropOldest,
            max_in_flight: 8,
            put_rate_per_sec: 500,
            request_timeout: Duration::from_secs(30),
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
        if self.buffer_budget_bytes < MIN_BUDGET_BYTES {
            errs.push(format!(
                "buffer_budget_bytes = {}: must be at least {MIN_BUDGET_BYTES} (two requests of a megabyte)",
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
                "put_rate_per_sec = {}: must be between 1 and 100000 (CloudWatch's default quota is 5000 per account and region)",
                self.put_rate_per_sec
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
        let min_spool = MIN_BUDGET_BYTES as u64;
        if self.spool_max_bytes < min_spool {
            errs.push(format!(
                "spool_max_bytes = {}: must be at least {min_spool} (two requests of a megabyte)",
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
            max_in_flight: 0,
            buffer_budget_bytes: 10,
            backoff_base: Duration::from_secs(60),
            ..DeliveryConfig::default()
        };
        let errs = cfg.validate().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("max_in_flight = 0")));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("buffer_budget_bytes = 10"))
        );
        assert!(errs.iter().any(|e| e.starts_with("backoff_base = 60s")));
    }
}
