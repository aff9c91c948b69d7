//! A guest built against `cwpub:publisher@0.1.9` (a newer minor version than
//! this host's 0.1.0) that uses only what 0.1.0 already has: it loads and
//! runs, as the WIT's versioning rule promises.

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "wit" });
}

use bindings::cwpub::publisher::diagnostics::log;
use bindings::cwpub::publisher::types::{
    GuestError, Level, LogEvent, Output, PayloadKind, RunContext,
};
use bindings::exports::cwpub::publisher::publisher::Guest;

struct NewerMinor;

impl Guest for NewerMinor {
    fn validate_config(_job: String, _config: Vec<(String, String)>) -> Result<(), GuestError> {
        Ok(())
    }

    fn run(ctx: RunContext) -> Result<Output, GuestError> {
        log(Level::Info, "built against 0.1.9");
        Ok(Output {
            kind: PayloadKind::JsonLog,
            events: vec![LogEvent {
                timestamp_ms: ctx.actual_ms,
                message: "{\"built_against\":\"0.1.9\"}".into(),
            }],
        })
    }
}

bindings::export!(NewerMinor with_types_in bindings);
