//! Reference guest `builtin:heartbeat`: composes one heartbeat JSON log event
//! per run from the run context the host passes in.
//!
//! Job configuration (all optional):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `service` | the `service` field of the event | the job name |
//! | `status` | the `status` field | `"ok"` |
//! | `field.<name>` | an extra static top-level string field `<name>` | — |
//!
//! An example event (pretty-printed here; it is sent on one line):
//!
//! ```json
//! {"service":"orders-api","event":"heartbeat","status":"ok",
//!  "timestamp":"2026-11-22T07:30:00.000Z","event_id":"heartbeat:6f1c…","sequence":42,
//!  "job":"heartbeat","scheduled_at":"2026-11-22T07:30:00.000Z",
//!  "metadata":{"hostname":"ip-10-0-0-1","task_id":null,"region":"us-east-1",
//!              "host_version":"0.1.0","uptime_seconds":1234.5}}
//! ```

use serde_json::{Map, Value, json};

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../wit" });
}

use bindings::cwpub::publisher::diagnostics::log;
use bindings::cwpub::publisher::types::{
    GuestError, Level, LogEvent, Output, PayloadKind, RunContext,
};
use bindings::exports::cwpub::publisher::publisher::Guest;

/// Keys that a heartbeat event sets itself; `field.<name>` may not override them.
const RESERVED_FIELDS: [&str; 9] = [
    "service",
    "event",
    "status",
    "timestamp",
    "event_id",
    "sequence",
    "job",
    "scheduled_at",
    "metadata",
];

struct Heartbeat;

impl Guest for Heartbeat {
    fn validate_config(_job_name: String, config: Vec<(String, String)>) -> Result<(), GuestError> {
        parse_config(&config).map(|_| ())
    }

    fn run(ctx: RunContext) -> Result<Output, GuestError> {
        let settings = parse_config(&ctx.config)?;
        let message = compose(&ctx, &settings)?;
        log(
            Level::Debug,
            &format!("heartbeat {} composed", ctx.sequence),
        );
        Ok(Output {
            kind: PayloadKind::JsonLog,
            events: vec![LogEvent {
                timestamp_ms: ctx.actual_ms,
                message,
            }],
        })
    }
}

bindings::export!(Heartbeat with_types_in bindings);

/// The job configuration, parsed and checked.
struct Settings<'a> {
    service: Option<&'a str>,
    status: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

fn parse_config(config: &[(String, String)]) -> Result<Settings<'_>, GuestError> {
    let mut settings = Settings {
        service: None,
        status: "ok",
        fields: Vec::new(),
    };
    for (key, value) in config {
        match key.as_str() {
            "service" if value.is_empty() => {
                return Err(invalid("service", "must not be empty"));
            }
            "service" => settings.service = Some(value),
            "status" if value.is_empty() => return Err(invalid("status", "must not be empty")),
            "status" => settings.status = value,
            other => match other.strip_prefix("field.") {
                Some("") => return Err(invalid(other, "needs a field name after `field.`")),
                Some(name) if RESERVED_FIELDS.contains(&name) => {
                    return Err(invalid(
                        other,
                        &format!(
                            "`{name}` is set by the heartbeat itself; choose another field name"
                        ),
                    ));
                }
                Some(name) => settings.fields.push((name, value)),
                None => {
                    return Err(invalid(
                        other,
                        "unknown key; builtin:heartbeat accepts `service`, `status` and `field.<name>`",
                    ));
                }
            },
        }
    }
    Ok(settings)
}

fn invalid(key: &str, why: &str) -> GuestError {
    GuestError::InvalidConfig(format!("config key `{key}`: {why}"))
}

fn compose(ctx: &RunContext, settings: &Settings<'_>) -> Result<String, GuestError> {
    let facts = &ctx.facts;
    let mut event = Map::new();
    event.insert(
        "service".into(),
        settings.service.unwrap_or(&ctx.job_name).into(),
    );
    event.insert("event".into(), "heartbeat".into());
    event.insert("status".into(), settings.status.into());
    event.insert("timestamp".into(), iso8601(ctx.actual_ms)?.into());
    event.insert(
        "event_id".into(),
        format!("{}:{}", ctx.job_name, ctx.invocation_id).into(),
    );
    event.insert("sequence".into(), ctx.sequence.into());
    event.insert("job".into(), ctx.job_name.clone().into());
    event.insert("scheduled_at".into(), iso8601(ctx.scheduled_ms)?.into());
    for (name, value) in &settings.fields {
        event.insert((*name).into(), (*value).into());
    }
    event.insert(
        "metadata".into(),
        json!({
            "hostname": facts.hostname,
            "task_id": facts.task_id,
            "region": facts.region,
            "host_version": facts.host_version,
            "uptime_seconds": facts.uptime_ms as f64 / 1000.0,
        }),
    );
    Ok(Value::Object(event).to_string())
}

/// Formats milliseconds since the Unix epoch as ISO-8601 UTC with milliseconds.
fn iso8601(ms: u64) -> Result<String, GuestError> {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .ok_or_else(|| {
            GuestError::Fatal(format!(
                "timestamp {ms} ms is outside the representable range"
            ))
        })
}
