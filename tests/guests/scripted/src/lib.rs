//! A guest whose job config scripts its answer, for the `cwpub test` and
//! `cwpub invoke` tests:
//!
//! * no config: one JSON event echoing the whole run context;
//! * `messages = '["a", "b"]'`: those events (at the run's time), with
//!   `kind = "emf"` to return them as EMF;
//! * `fail = "fatal: why"` (or `invalid-config:` / `transient:`): that error;
//! * `trap = "unreachable"`: a wasm trap that is not a Rust panic;
//! * `reject = "why"`: `validate-config` refuses the config with that text;
//! * `count = "1000"`: that many small events `{"job", "sequence", "n"}`
//!   (`n` from 0), to tell every event of every run apart.

use serde_json::{Value, json};

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../../../wit" });
}

use bindings::cwpub::publisher::types::{GuestError, LogEvent, Output, PayloadKind, RunContext};
use bindings::exports::cwpub::publisher::publisher::Guest;

struct Scripted;

impl Guest for Scripted {
    fn validate_config(_job: String, config: Vec<(String, String)>) -> Result<(), GuestError> {
        match setting(&config, "reject") {
            Some(why) => Err(GuestError::InvalidConfig(why)),
            None => Ok(()),
        }
    }

    fn run(ctx: RunContext) -> Result<Output, GuestError> {
        if let Some(how) = setting(&ctx.config, "trap") {
            if how == "unreachable" {
                // Aborts with the wasm `unreachable` instruction, without a panic message.
                std::process::abort();
            }
            return Err(GuestError::InvalidConfig(format!("unknown trap `{how}`")));
        }
        if let Some(fail) = setting(&ctx.config, "fail") {
            let (case, message) = fail.split_once(':').unwrap_or(("fatal", &fail));
            let message = message.trim().to_owned();
            return Err(match case {
                "invalid-config" => GuestError::InvalidConfig(message),
                "transient" => GuestError::Transient(message),
                _ => GuestError::Fatal(message),
            });
        }
        let kind = match setting(&ctx.config, "kind").as_deref() {
            Some("emf") => PayloadKind::Emf,
            _ => PayloadKind::JsonLog,
        };
        if let Some(count) = setting(&ctx.config, "count") {
            let count: u32 = count.parse().map_err(|_| {
                GuestError::InvalidConfig(format!("`count` must be a number, not {count:?}"))
            })?;
            let events = (0..count)
                .map(|n| LogEvent {
                    timestamp_ms: ctx.actual_ms,
                    message: json!({"job": ctx.job_name, "sequence": ctx.sequence, "n": n})
                        .to_string(),
                })
                .collect();
            return Ok(Output { kind, events });
        }
        let messages: Vec<String> = match setting(&ctx.config, "messages") {
            Some(list) => serde_json::from_str(&list).map_err(|e| {
                GuestError::InvalidConfig(format!(
                    "`messages` must be a JSON array of strings: {e}"
                ))
            })?,
            None => vec![echo(&ctx).to_string()],
        };
        let events = messages
            .into_iter()
            .map(|message| LogEvent {
                timestamp_ms: ctx.actual_ms,
                message,
            })
            .collect();
        Ok(Output { kind, events })
    }
}

bindings::export!(Scripted with_types_in bindings);

/// The run context as JSON, every field.
fn echo(ctx: &RunContext) -> Value {
    let d = &ctx.facts.delivery;
    json!({
        "job": ctx.job_name,
        "scheduled_ms": ctx.scheduled_ms,
        "actual_ms": ctx.actual_ms,
        "sequence": ctx.sequence,
        "invocation_id": ctx.invocation_id,
        "config": ctx.config,
        "hostname": ctx.facts.hostname,
        "task_id": ctx.facts.task_id,
        "region": ctx.facts.region,
        "host_version": ctx.facts.host_version,
        "uptime_ms": ctx.facts.uptime_ms,
        "delivery": {
            "events_delivered": d.events_delivered,
            "bytes_delivered": d.bytes_delivered,
            "events_dropped": d.events_dropped,
            "events_pending": d.events_pending,
            "requests": d.requests,
            "retries": d.retries,
            "throttled": d.throttled,
            "runs_succeeded": d.runs_succeeded,
            "runs_failed": d.runs_failed,
        },
    })
}

fn setting(config: &[(String, String)], key: &str) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}
