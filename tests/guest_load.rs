//! Loading guests: built-ins and files load; a core module, a non-wasm file,
//! a missing file, an unknown built-in and a component built for another
//! `cwpub:publisher` version are refused with a message saying what to do.
//! A guest built against a newer minor version loads as long as it uses
//! nothing this host lacks (the WIT's versioning rule).

use crate::support::test_guests;

use std::sync::Arc;

use cwpub::guest::{Builtin, GuestSource, HostFacts, RunLimits, RunRequest, Runtime};

fn load_error(runtime: &Runtime, name: &str, bytes: &[u8]) -> String {
    match runtime.load_bytes(name, bytes) {
        Ok(_) => panic!("{name} loaded but should not"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn builtins_load_and_report_their_wit_version() {
    let runtime = Runtime::new().expect("engine");
    for builtin in Builtin::ALL {
        let guest = runtime
            .load(&GuestSource::Builtin(builtin))
            .await
            .expect("built-in loads");
        assert_eq!(guest.name(), format!("builtin:{}", builtin.name()));
        assert_eq!(guest.wit_version(), "0.1.0");
    }
}

#[test]
fn bad_guests_are_refused_with_the_fix() {
    let runtime = Runtime::new().expect("engine");

    let core = load_error(&runtime, "core.wasm", b"\0asm\x01\0\0\0");
    assert_eq!(
        core,
        "guest core.wasm: this is a core WebAssembly module, not a component; build the guest with \
         `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    );

    let text = load_error(&runtime, "notes.txt", b"hello, world");
    assert_eq!(
        text,
        "guest notes.txt: not a WebAssembly file (no \\0asm header)"
    );

    let wrong = std::fs::read(test_guests::test_guest("wrong-version")).expect("read");
    let wrong = load_error(&runtime, "wrong.wasm", &wrong);
    assert!(
        wrong.contains("built for cwpub:publisher@0.2.0, but this host speaks cwpub:publisher@0.1.0; rebuild the guest"),
        "{wrong}"
    );
}

#[test]
fn unknown_builtins_and_missing_files_are_named() {
    let unknown = GuestSource::parse("builtin:datadog")
        .expect_err("unknown builtin")
        .to_string();
    assert_eq!(
        unknown,
        "guest builtin:datadog: unknown built-in guest; the built-ins are builtin:heartbeat, builtin:emf"
    );

    let missing = GuestSource::parse("/nonexistent/guest.wasm").expect("a path parses");
    let e = missing.bytes().expect_err("missing file").to_string();
    assert_eq!(e, "guest /nonexistent/guest.wasm: file not found");
}

#[tokio::test]
async fn a_newer_minor_guest_loads_unless_it_uses_something_new() {
    let runtime = Runtime::new().expect("engine");

    let newer = runtime
        .load(&GuestSource::Path(test_guests::test_guest("newer-minor")))
        .await
        .unwrap_or_else(|e| panic!("a 0.1.9 guest using only 0.1.0 loads: {e}"));
    assert_eq!(newer.wit_version(), "0.1.9");
    let request = RunRequest::now(
        "newer".into(),
        1,
        Arc::from(Vec::new()),
        HostFacts::from_process(),
    );
    let output = newer
        .run(&request, &RunLimits::default())
        .await
        .unwrap_or_else(|e| panic!("and runs: {e}"));
    assert_eq!(output.events[0].message, r#"{"built_against":"0.1.9"}"#);

    let uses_new = std::fs::read(test_guests::test_guest("newer-minor-import")).expect("read");
    let refused = load_error(&runtime, "uses-new.wasm", &uses_new);
    assert!(
        refused.starts_with(
            "guest uses-new.wasm: the component needs imports this host does not provide (it was \
             built for cwpub:publisher@0.1.9, newer than this host's 0.1.0; upgrade cwpub): "
        ),
        "{refused}"
    );
    assert!(
        refused.contains("log-fields"),
        "names what is missing: {refused}"
    );
}
