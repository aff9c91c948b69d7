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
//! run's actual time.

mod compose;
mod config;

use cwpub_guest::{Config, Context, Guest, Output, Result};

use compose::compose;
use config::Settings;

/// The exported component.
struct Emf;

impl Guest for Emf {
    const NAME: &'static str = "builtin:emf";
    const CONFIG_KEYS: &'static [&'static str] = &[
        "namespace",
        "dimensions",
        "service",
        "dimension.<Name>",
        "metric.<Name>",
    ];

    fn validate_config(config: &Config) -> Result<()> {
        Settings::read(config).map(drop)
    }

    fn run(ctx: &Context) -> Result<Output> {
        let settings = Settings::read(&ctx.config)?;
        let output = Output::from_metrics(&mut compose(ctx, &settings)?)?;
        cwpub_guest::debug!(
            "composed {} EMF document(s) for {}",
            output.events.len(),
            ctx.actual
        );
        Ok(output)
    }
}

cwpub_guest::export!(Emf);
