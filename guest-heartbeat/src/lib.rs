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

use cwpub_guest::serde_json::{Map, Value, json};
use cwpub_guest::{Config, Context, Error, Guest, Output, Result};

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
    const NAME: &'static str = "builtin:heartbeat";
    const CONFIG_KEYS: &'static [&'static str] = &["service", "status", "field.<name>"];

    fn validate_config(config: &Config) -> Result<()> {
        Settings::read(config).map(drop)
    }

    fn run(ctx: &Context) -> Result<Output> {
        let settings = Settings::read(&ctx.config)?;
        let event = compose(ctx, &settings);
        cwpub_guest::debug!("heartbeat {} composed", ctx.sequence);
        Output::json_lines(ctx.actual, [event])
    }
}

cwpub_guest::export!(Heartbeat);

/// The job configuration, read and checked.
struct Settings<'a> {
    service: Option<&'a str>,
    status: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Settings<'a> {
    fn read(config: &'a Config) -> Result<Self> {
        let fields: Vec<_> = config.prefixed("field.").collect();
        if let Some((name, _)) = fields.iter().find(|(n, _)| RESERVED_FIELDS.contains(n)) {
            return Err(Error::config(
                &format!("field.{name}"),
                format!("`{name}` is set by the heartbeat itself; choose another field name"),
            ));
        }
        Ok(Settings {
            service: config.optional("service")?,
            status: config.optional("status")?.unwrap_or("ok"),
            fields,
        })
    }
}

fn compose(ctx: &Context, settings: &Settings<'_>) -> Value {
    let host = &ctx.host;
    let mut event = Map::new();
    event.insert(
        "service".into(),
        settings.service.unwrap_or(&ctx.job).into(),
    );
    event.insert("event".into(), "heartbeat".into());
    event.insert("status".into(), settings.status.into());
    event.insert("timestamp".into(), ctx.actual.to_string().into());
    event.insert(
        "event_id".into(),
        format!("{}:{}", ctx.job, ctx.invocation_id).into(),
    );
    event.insert("sequence".into(), ctx.sequence.into());
    event.insert("job".into(), ctx.job.clone().into());
    event.insert("scheduled_at".into(), ctx.scheduled.to_string().into());
    for (name, value) in &settings.fields {
        event.insert((*name).into(), (*value).into());
    }
    event.insert(
        "metadata".into(),
        json!({
            "hostname": host.hostname,
            "task_id": host.task_id,
            "region": host.region,
            "host_version": host.version,
            "uptime_seconds": host.uptime.as_secs_f64(),
        }),
    );
    Value::Object(event)
}
