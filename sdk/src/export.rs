//! The glue between the WIT bindings and [`Guest`]: converts the host's
//! records into the SDK's types and back. Used by [`export!`](crate::export);
//! nothing here is part of the public API.

use std::time::Duration;

use crate::Guest;
use crate::config::Config;
use crate::context::{Context, Delivery, Host};
use crate::error::Error;
use crate::output::{Output, PayloadKind};
use crate::time::Timestamp;

/// The bindings generated from `wit/publisher.wit`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "guest",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "::cwpub_guest::__private::bindings",
    });
}

use bindings::cwpub::publisher::types as raw;
pub use bindings::exports::cwpub::publisher::publisher::Guest as RawGuest;

/// Implements the raw export for a [`Guest`]; `export!` names `Adapter<G>`.
pub struct Adapter<G>(std::marker::PhantomData<G>);

impl<G: Guest> RawGuest for Adapter<G> {
    fn validate_config(
        job_name: String,
        config: Vec<(String, String)>,
    ) -> Result<(), raw::GuestError> {
        let config = Config::new(job_name, config);
        config.validate_for::<G>().map_err(into_raw_error)
    }

    fn run(ctx: raw::RunContext) -> Result<raw::Output, raw::GuestError> {
        context(ctx)
            .and_then(|ctx| ctx.run_for::<G>())
            .map(into_raw_output)
            .map_err(into_raw_error)
    }
}

/// The host's run context as a [`Context`].
fn context(ctx: raw::RunContext) -> Result<Context, Error> {
    let time = |what: &str, ms: u64| {
        Timestamp::from_millis(ms).ok_or_else(|| {
            Error::fatal(format!(
                "the host sent {what} {ms} ms, beyond any calendar date"
            ))
        })
    };
    let facts = ctx.facts;
    let d = facts.delivery;
    Ok(Context {
        scheduled: time("scheduled-ms", ctx.scheduled_ms)?,
        actual: time("actual-ms", ctx.actual_ms)?,
        sequence: ctx.sequence,
        invocation_id: ctx.invocation_id,
        config: Config::new(ctx.job_name.clone(), ctx.config),
        job: ctx.job_name,
        host: Host {
            hostname: facts.hostname,
            task_id: facts.task_id,
            region: facts.region,
            version: facts.host_version,
            uptime: Duration::from_millis(facts.uptime_ms),
            delivery: Delivery {
                events_delivered: d.events_delivered,
                bytes_delivered: d.bytes_delivered,
                events_dropped: d.events_dropped,
                events_pending: d.events_pending,
                requests: d.requests,
                retries: d.retries,
                throttled: d.throttled,
                runs_succeeded: d.runs_succeeded,
                runs_failed: d.runs_failed,
            },
        },
    })
}

fn into_raw_output(output: Output) -> raw::Output {
    raw::Output {
        kind: match output.kind {
            PayloadKind::JsonLog => raw::PayloadKind::JsonLog,
            PayloadKind::Emf => raw::PayloadKind::Emf,
        },
        events: output
            .events
            .into_iter()
            .map(|e| raw::LogEvent {
                timestamp_ms: e.timestamp.millis(),
                message: e.message,
            })
            .collect(),
    }
}

fn into_raw_error(error: Error) -> raw::GuestError {
    match error {
        Error::InvalidConfig(m) => raw::GuestError::InvalidConfig(m),
        Error::Transient(m) => raw::GuestError::Transient(m),
        Error::Fatal(m) => raw::GuestError::Fatal(m),
    }
}
