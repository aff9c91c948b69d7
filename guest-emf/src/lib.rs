//! Reference guest `builtin:emf`: publishes the host's health as CloudWatch
//! Embedded Metric Format documents, once per run.
//!
//! Every EMF rule (names, units, limits, splitting above 100 metrics) lives in
//! the `cwpub-emf` crate; this guest only maps configuration and host facts
//! onto its builder.
//!
//! Job configuration (all optional):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `namespace` | the CloudWatch namespace | `cwpub` |
//! | `dimensions` | comma-separated dimension names (at most 30; empty for none) | `Service,Host` |
//! | `service` | the `Service` dimension's value | the job name |
//! | `dimension.<Name>` | the value of dimension `<Name>` (any listed name except `Service` and `Host`) | — |
//! | `metric.<Name>` | a static metric, `"<value> [<Unit>]"`, e.g. `"42 Count"`; unit default `None` | — |
//!
//! `Host` is always the host's hostname. Metrics of every document:
//! `Heartbeat` (1, Count), `UptimeSeconds` (Seconds), and the host's delivery
//! counters `EventsDelivered`, `BytesDelivered` (Bytes), `EventsDropped`,
//! `EventsPending`, `Requests`, `Retries`, `Throttled`, `RunsSucceeded`,
//! `RunsFailed` (Count). Properties: `event_id` (`<job>:<invocation-id>`),
//! `sequence`, `host_version`, and `region` when known. The timestamp is the
//! run's `actual-ms`.

mod compose;
mod config;

pub use compose::{compose, to_events};
pub use config::{Config, parse};

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../wit" });
}

use bindings::cwpub::publisher::diagnostics::log;
use bindings::cwpub::publisher::types::{GuestError, Level, Output, PayloadKind, RunContext};
use bindings::exports::cwpub::publisher::publisher::Guest;

/// The exported component.
struct Emf;

impl Guest for Emf {
    fn validate_config(job_name: String, config: Vec<(String, String)>) -> Result<(), GuestError> {
        parse(&job_name, &config)
            .map(|_| ())
            .map_err(GuestError::InvalidConfig)
    }

    fn run(ctx: RunContext) -> Result<Output, GuestError> {
        let config = parse(&ctx.job_name, &ctx.config).map_err(GuestError::InvalidConfig)?;
        let documents = compose(&ctx, &config).map_err(GuestError::Fatal)?;
        let at = i64::try_from(ctx.actual_ms)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|| ctx.actual_ms.to_string());
        log(
            Level::Debug,
            &format!("composed {} EMF document(s) for {at}", documents.len()),
        );
        let events = to_events(&ctx, documents);
        Ok(Output {
            kind: PayloadKind::Emf,
            events,
        })
    }
}

bindings::export!(Emf with_types_in bindings);
