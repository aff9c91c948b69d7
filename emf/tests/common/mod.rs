//! Helpers shared by the integration tests: a fixed clock, a valid base
//! document, and assertions on violation kinds.
#![allow(dead_code)]

use cwpub_emf::{ViolationKind, validate};
use serde_json::{Value, json};

/// The fixed "now" of every test, in ms (2023-11-14T22:13:20Z).
pub const NOW: i64 = 1_700_000_000_000;

/// A valid document: one directive, one dimension set, one metric.
pub fn base() -> Value {
    json!({
        "_aws": {
            "Timestamp": NOW,
            "CloudWatchMetrics": [{
                "Namespace": "cwpub",
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}]
            }]
        },
        "Service": "orders",
        "Latency": 12
    })
}

/// `base()` with `f` applied.
pub fn with(f: impl FnOnce(&mut Value)) -> String {
    let mut doc = base();
    f(&mut doc);
    doc.to_string()
}

/// The directive of a document built by `base()`.
pub fn directive(doc: &mut Value) -> &mut Value {
    &mut doc["_aws"]["CloudWatchMetrics"][0]
}

/// The distinct violation kinds of `message`, sorted.
pub fn kinds(message: &str) -> Vec<ViolationKind> {
    let mut kinds: Vec<ViolationKind> =
        validate(message, NOW).into_iter().map(|v| v.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Asserts that `message` has exactly the violation kinds `expected`.
#[track_caller]
pub fn assert_kinds(message: &str, expected: &[ViolationKind]) {
    let mut expected = expected.to_vec();
    expected.sort();
    expected.dedup();
    let violations = validate(message, NOW);
    let got = kinds(message);
    assert_eq!(
        got, expected,
        "document: {message}\nviolations: {violations:#?}"
    );
}

/// Asserts a table of (document, expected kinds) rows.
#[track_caller]
pub fn assert_table(rows: &[(String, &[ViolationKind])]) {
    for (message, expected) in rows {
        assert_kinds(message, expected);
    }
}
