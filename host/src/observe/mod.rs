//! Self-observability: the host's structured logs, its metrics and the HTTP
//! endpoint that exposes them.
//!
//! * [`JobMetrics`] — per-job runs, failures by kind, skipped and missed ticks
//!   and a run-duration histogram, written to `/metrics` as a collector of the
//!   ledger's registry (`metrics`).
//! * [`serve`] — `/healthz`, `/readyz` (from an injected [`Readiness`] check) and
//!   `/metrics`, the registry in the Prometheus text format (`http`).
//! * [`init_logging`] — human or JSON logs on stderr (`logging`).

mod http;
mod logging;
mod metrics;

pub use http::{
    HEADER_READ_TIMEOUT, MAX_CONNECTIONS, METRICS_CONTENT_TYPE, ObserveError, ObserveServer,
    ObserveState, Readiness, serve,
};
pub use logging::{colour, init_logging, log_filter};
pub use metrics::{
    DURATION_BUCKETS, JobMetrics, JobStats, JobStatsSnapshot, MAX_FAILURE_KINDS, RunTotals,
};
