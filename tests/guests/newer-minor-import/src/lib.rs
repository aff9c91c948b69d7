//! A guest built against `cwpub:publisher@0.1.9` that calls
//! `diagnostics.log-fields`, which this host's 0.1.0 does not provide: it is
//! refused at load time with a message to upgrade cwpub.

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../newer-minor/wit" });
}

use bindings::cwpub::publisher::diagnostics::log_fields;
use bindings::cwpub::publisher::types::{GuestError, Level, Output, PayloadKind, RunContext};
use bindings::exports::cwpub::publisher::publisher::Guest;

struct NewerMinorImport;

impl Guest for NewerMinorImport {
    fn validate_config(_job: String, _config: Vec<(String, String)>) -> Result<(), GuestError> {
        Ok(())
    }

    fn run(_ctx: RunContext) -> Result<Output, GuestError> {
        log_fields(
            Level::Info,
            "uses a 0.1.9 function",
            &[("field".to_owned(), "value".to_owned())],
        );
        Ok(Output {
            kind: PayloadKind::JsonLog,
            events: Vec::new(),
        })
    }
}

bindings::export!(NewerMinorImport with_types_in bindings);
