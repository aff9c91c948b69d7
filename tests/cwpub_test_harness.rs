//! `cwpub test`, the guest author's harness, through the real binary:
//! passing cases, every kind of mismatch with its diff, error cases, EMF the
//! daemon's validator refuses, a guest that traps, bad case files, the
//! working-directory convention and the `build` step; and `cwpub invoke`'s
//! fixed-context flags.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{self, Ran, write};
use crate::support::test_guests;

/// The scripted test guest's path as a TOML string.
fn scripted() -> String {
    toml::Value::String(test_guests::test_guest("scripted").display().to_string()).to_string()
}

fn cases(dir: &Path, text: &str) -> Ran {
    write(dir, "cases.toml", text);
    cli::run_in(dir, &["test", "--cases", "cases.toml"])
}

/// The line `case "<name>" ... <status> (…)` of `name`.
fn status(ran: &Ran, name: &str) -> String {
    let prefix = format!("case {name:?} ... ");
    ran.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no status line for {name}:\n{}", ran.both()))
        .to_owned()
}

/// The failure report of case `name` (from its `----` header to the next).
fn failure(ran: &Ran, name: &str) -> String {
    let header = format!("---- case {name:?} ----");
    let start = ran
        .stdout
        .find(&header)
        .unwrap_or_else(|| panic!("no failure report for {name}:\n{}", ran.both()));
    let rest = &ran.stdout[start + header.len()..];
    let end = rest
        .find("\n---- case ")
        .or_else(|| rest.find("\nresult: "))
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

#[test]
fn passing_cases_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        r#"
guest = "builtin:heartbeat"

[defaults]
config = { service = "orders-api" }

[[case]]
name = "exact event"
at = 2026-01-01T00:00:00Z
invocation_id = "id-1"
expect.kind = "json-log"
expect.events = [{ message = '{"service":"orders-api","event":"heartbeat","status":"ok","timestamp":"2026-01-01T00:00:00.000Z","event_id":"test:id-1","sequence":1,"job":"test","scheduled_at":"2026-01-01T00:00:00.000Z","metadata":{"hostname":"cwpub-test","task_id":null,"region":null,"host_version":"0.1.0","uptime_seconds":0.0}}', timestamp = 2026-01-01T00:00:00Z }]

[[case]]
name = "subset with pinned facts"
job = "hb"
at = "2026-06-30T12:00:00.250Z"
sequence = 42
hostname = "ip-10-0-0-7"
task_id = "c0ffee"
region = "eu-west-1"
uptime_ms = 90500
expect.count = 1
expect.json = [{ job = "hb", sequence = 42, timestamp = "2026-06-30T12:00:00.250Z", metadata = { hostname = "ip-10-0-0-7", task_id = "c0ffee", region = "eu-west-1", uptime_seconds = 90.5 } }]

[[case]]
name = "JSON text for nulls"
expect.json = ['{"metadata": {"task_id": null, "region": null}}']

[[case]]
name = "no expectation: success is enough"

[[case]]
name = "unknown config key"
config = { colour = "red" }
expect.error = "invalid-config"
expect.message = "`colour`"
"#,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    for name in [
        "exact event",
        "subset with pinned facts",
        "JSON text for nulls",
        "no expectation: success is enough",
        "unknown config key",
    ] {
        assert_eq!(status(&ran, name), "ok", "{}", ran.both());
    }
    assert!(
        ran.stdout
            .contains("running 5 cases from cases.toml against builtin:heartbeat"),
        "{}",
        ran.both()
    );
    assert!(
        ran.stdout.ends_with("result: 5 passed, 0 failed\n"),
        "{}",
        ran.both()
    );
}

#[test]
fn every_kind_of_mismatch_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        &format!(
            r#"
guest = {guest}

[[case]]
name = "exact"
config = {{ messages = '["{{\"a\":1,\"b\":\"new\"}}"]' }}
expect.events = ['{{"a":1,"b":"old"}}']

[[case]]
name = "exact text"
config = {{ messages = '["hello there"]' }}
expect.events = ["hello world"]

[[case]]
name = "subset"
config = {{ messages = '["{{\"service\":\"orders\",\"n\":2}}"]' }}
expect.json = [{{ service = "billing", n = 2 }}]

[[case]]
name = "not json"
config = {{ messages = '["plain text"]' }}
expect.json = [{{ a = 1 }}]

[[case]]
name = "kind"
config = {{ messages = '["x"]' }}
expect.kind = "emf"

[[case]]
name = "count"
config = {{ messages = '["one", "two"]' }}
expect.count = 3

[[case]]
name = "error kind"
config = {{ fail = "transient: try later" }}
expect.error = "fatal"

[[case]]
name = "error message"
config = {{ fail = "fatal: disk on fire" }}
expect.error = "fatal"
expect.message = "water"

[[case]]
name = "expected failure"
config = {{ messages = '["fine"]' }}
expect.error = "invalid-config"

[[case]]
name = "unexpected failure"
config = {{ reject = "service is required" }}
expect.count = 1
"#,
            guest = scripted()
        ),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    for name in [
        "exact",
        "exact text",
        "subset",
        "not json",
        "kind",
        "count",
        "error kind",
        "error message",
        "expected failure",
        "unexpected failure",
    ] {
        assert_eq!(status(&ran, name), "FAILED", "{name}: {}", ran.both());
    }
    let exact = failure(&ran, "exact");
    assert!(exact.contains("event 0 differs:"), "{exact}");
    assert!(exact.contains("-   \"b\": \"old\""), "{exact}");
    assert!(exact.contains("+   \"b\": \"new\""), "{exact}");
    assert!(
        exact.contains(r#"expect.events = ['{"a":1,"b":"new"}']"#),
        "the actual output, ready to paste: {exact}"
    );
    let text = failure(&ran, "exact text");
    assert!(
        text.contains("expected: hello world\n    actual:   hello there"),
        "{text}"
    );
    assert!(text.contains("^ first difference at character 6"), "{text}");
    let subset = failure(&ran, "subset");
    assert!(
        subset.contains("event 0 does not contain the expected JSON"),
        "{subset}"
    );
    assert!(
        subset.contains("json atoms at path \".service\" are not equal"),
        "{subset}"
    );
    assert!(
        subset.contains("\"billing\"") && subset.contains("\"orders\""),
        "{subset}"
    );
    assert!(failure(&ran, "not json").contains("event 0 is not JSON"));
    assert!(failure(&ran, "kind").contains("expected payload kind `emf`, got `json-log`"));
    let count = failure(&ran, "count");
    assert!(count.contains("expected 3 events, got 2:"), "{count}");
    assert!(
        count.contains("[0] one") && count.contains("[1] two"),
        "{count}"
    );
    let kind = failure(&ran, "error kind");
    assert!(
        kind.contains("expected the guest to fail with `fatal`, but run failed with `transient`"),
        "{kind}"
    );
    assert!(kind.contains("transient guest error: try later"), "{kind}");
    let message = failure(&ran, "error message");
    assert!(
        message.contains("the `fatal` error does not contain \"water\""),
        "{message}"
    );
    assert!(message.contains("guest failed: disk on fire"), "{message}");
    assert!(failure(&ran, "expected failure").contains(
        "expected the guest to fail with `invalid-config`, but the run succeeded with 1 event"
    ));
    let unexpected = failure(&ran, "unexpected failure");
    assert!(
        unexpected.contains("validate-config failed:"),
        "{unexpected}"
    );
    assert!(
        unexpected.contains("invalid job config: service is required"),
        "{unexpected}"
    );
    assert!(
        ran.stdout.ends_with("result: 0 passed, 10 failed\n"),
        "{}",
        ran.both()
    );
}

#[test]
fn emf_the_validator_refuses_fails_the_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let valid = r#"{\"_aws\":{\"Timestamp\":1767225600000,\"CloudWatchMetrics\":[{\"Namespace\":\"n\",\"Dimensions\":[[]],\"Metrics\":[{\"Name\":\"M\",\"Unit\":\"Count\"}]}]},\"M\":1}"#;
    let no_namespace = r#"{\"_aws\":{\"Timestamp\":1767225600000,\"CloudWatchMetrics\":[{\"Dimensions\":[[]],\"Metrics\":[{\"Name\":\"M\",\"Unit\":\"Parsecs\"}]}]},\"M\":1}"#;
    let ran = cases(
        dir.path(),
        &format!(
            r#"
guest = {guest}

[[case]]
name = "valid EMF"
config = {{ kind = "emf", messages = '["{valid}"]' }}
expect = {{ kind = "emf", count = 1 }}

[[case]]
name = "invalid EMF"
config = {{ kind = "emf", messages = '["{valid}", "{no_namespace}"]' }}
expect = {{ kind = "emf", count = 2 }}

[[case]]
name = "EMF 19 days old"
at = 2026-01-20T00:00:00Z
config = {{ kind = "emf", messages = '["{valid}"]' }}
"#,
            guest = scripted()
        ),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    assert_eq!(status(&ran, "valid EMF"), "ok", "{}", ran.both());
    let invalid = failure(&ran, "invalid EMF");
    assert!(
        invalid.contains("event 1 is not valid EMF and would be dropped:"),
        "{invalid}"
    );
    assert!(
        invalid.contains("Namespace"),
        "every violation is listed: {invalid}"
    );
    assert!(
        invalid.contains("Parsecs"),
        "every violation is listed: {invalid}"
    );
    assert!(!invalid.contains("event 0"), "{invalid}");
    // The EMF timestamp window is anchored at the case's time, as the daemon's is at now.
    let old = failure(&ran, "EMF 19 days old");
    assert!(old.contains("event 0 is not valid EMF"), "{old}");
}

#[test]
fn a_trapping_guest_fails_its_case_unless_the_trap_is_expected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        &format!(
            r#"
guest = {guest}

[defaults]
config = {{ trap = "unreachable" }}

[[case]]
name = "trap expected"
expect.error = "trap"
expect.message = "unreachable"

[[case]]
name = "trap unexpected"
"#,
            guest = scripted()
        ),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    assert_eq!(status(&ran, "trap expected"), "ok", "{}", ran.both());
    let report = failure(&ran, "trap unexpected");
    assert!(report.contains("run failed:"), "{report}");
    assert!(
        report.contains("guest trapped: wasm trap: wasm `unreachable` instruction executed"),
        "{report}"
    );
    // Which frames the compiler kept apart (inlined or not) is its choice;
    // the line names the guest's functions, demangled, innermost first.
    let frames = report
        .lines()
        .find(|l| l.contains("guest trapped:"))
        .and_then(|l| l.split_once(" executed in "))
        .map(|(_, frames)| frames.trim())
        .unwrap_or_else(|| panic!("no frames: {report}"));
    assert!(
        frames.contains("std::process::abort ← ")
            && frames.ends_with(" ← cwpub:publisher/publisher@0.1.0#run")
            && !frames.contains("_ZN"),
        "the innermost frames name the guest's functions, demangled: {report}"
    );
}

#[test]
fn guest_text_is_escaped_before_it_reaches_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        &format!(
            r#"
guest = {guest}

[[case]]
name = "escapes"
config = {{ messages = '["\u001b[2J\u001b[31mred\u202e"]' }}
expect.events = ["plain"]
"#,
            guest = scripted()
        ),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    assert!(
        !ran.stdout.contains('\u{1b}'),
        "raw escape reached the terminal"
    );
    assert!(
        !ran.stdout.contains('\u{202e}'),
        "raw bidi override reached the terminal"
    );
    assert!(
        ran.stdout.contains(r"\u{1b}[31mred\u{202e}"),
        "{}",
        ran.both()
    );
}

#[test]
fn a_bad_case_file_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        r#"
guest = "builtin:heartbeat"

[[case]]
name = "typos"
confg = { service = "x" }
expect.evnts = ["x"]
at = 2026-01-01T00:00:00

[[case]]
expect.error = "explode"
"#,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.both());
    for line in [
        "cases.toml: case \"typos\": confg: unknown key (did you mean \"config\"?)",
        "cases.toml: case \"typos\": expect.evnts: unknown key (did you mean \"events\"?)",
        "cases.toml: case \"typos\": at: 2026-01-01T00:00:00 has no time zone",
        "cases.toml: case #2: name: missing required key",
        "cases.toml: case #2: expect.error \"explode\": unknown failure kind",
    ] {
        assert!(
            ran.stderr.contains(line),
            "missing {line:?}:\n{}",
            ran.both()
        );
    }
    assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.both());
}

#[test]
fn the_working_directory_convention_and_the_build_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No case file: say where it was looked for and how to fix it.
    let ran = cli::run_in(dir.path(), &["test"]);
    assert_eq!(ran.code, Some(2), "{}", ran.both());
    assert!(
        ran.stderr.contains("cwpub-test.toml: case file not found"),
        "{}",
        ran.both()
    );

    // `build` runs in the file's directory before the guest is loaded.
    let built = test_guests::test_guest("scripted");
    write(
        dir.path(),
        "cwpub-test.toml",
        &format!(
            r#"
guest = "out/guest.wasm"
build = ["sh", "-c", "mkdir -p out && cp \"$0\" out/guest.wasm && echo built", {src}]

[[case]]
name = "echo"
config = {{ messages = '["hi"]' }}
expect.events = ["hi"]

[[case]]
name = "other"
"#,
            src = toml::Value::String(built.display().to_string())
        ),
    );
    let ran = cli::run_in(dir.path(), &["test"]);
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    assert!(ran.stderr.contains("building: sh -c"), "{}", ran.both());
    assert!(
        ran.stderr.contains("built"),
        "build output goes to stderr: {}",
        ran.both()
    );
    assert!(!ran.stdout.contains("built"), "{}", ran.both());
    assert!(
        ran.stdout.contains("result: 2 passed, 0 failed"),
        "{}",
        ran.both()
    );

    // --case filters; --no-build skips the build; a guest argument overrides `guest`.
    let ran = cli::run_in(dir.path(), &["test", "--no-build", "--case", "ech"]);
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    assert!(!ran.stderr.contains("building"), "{}", ran.both());
    assert!(
        ran.stdout.contains("result: 1 passed, 0 failed"),
        "{}",
        ran.both()
    );
    let ran = cli::run_in(dir.path(), &["test", "--no-build", "builtin:heartbeat"]);
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    assert!(
        ran.stdout.contains("against builtin:heartbeat"),
        "{}",
        ran.both()
    );

    // A guest that is not there says how to get it.
    write(
        dir.path(),
        "cwpub-test.toml",
        "guest = \"missing.wasm\"\n[[case]]\nname = \"x\"\n",
    );
    let ran = cli::run_in(dir.path(), &["test"]);
    assert_eq!(ran.code, Some(2), "{}", ran.both());
    assert!(
        ran.stderr
            .contains("missing.wasm not found; build it first, or add a `build` command"),
        "{}",
        ran.both()
    );

    // A failing build stops before anything runs.
    write(
        dir.path(),
        "cwpub-test.toml",
        "guest = \"out/guest.wasm\"\nbuild = [\"false\"]\n[[case]]\nname = \"x\"\n",
    );
    let ran = cli::run_in(dir.path(), &["test"]);
    assert_eq!(ran.code, Some(2), "{}", ran.both());
    assert!(
        ran.stderr.contains("the build command `false` failed"),
        "{}",
        ran.both()
    );
}

#[test]
fn invoke_flags_pin_the_run_context() {
    let guest = test_guests::test_guest("scripted");
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cli::run_in(
        dir.path(),
        &[
            "invoke",
            guest.to_str().expect("utf-8"),
            "--job",
            "pinned",
            "--at",
            "2026-01-01T00:00:00.500Z",
            "--scheduled-at",
            "2025-12-31T23:59:59Z",
            "--sequence",
            "7",
            "--invocation-id",
            "inv-7",
            "--hostname",
            "web-1",
            "--task-id",
            "t-1",
            "--region",
            "eu-west-1",
            "--host-version",
            "9.9.9",
            "--uptime-ms",
            "1500",
            "--delivery",
            "events_dropped=2",
            "--delivery",
            "runs_failed=1",
            "--config",
            "z=1",
            "--config",
            "a=2",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let echo: Value = serde_json::from_str(ran.stdout.trim()).expect("one JSON event");
    assert_eq!(
        echo,
        serde_json::json!({
            "job": "pinned",
            "scheduled_ms": 1_767_225_599_000u64,
            "actual_ms": 1_767_225_600_500u64,
            "sequence": 7,
            "invocation_id": "inv-7",
            "config": [["z", "1"], ["a", "2"]],
            "hostname": "web-1",
            "task_id": "t-1",
            "region": "eu-west-1",
            "host_version": "9.9.9",
            "uptime_ms": 1500,
            "delivery": {
                "events_delivered": 0, "bytes_delivered": 0, "events_dropped": 2,
                "events_pending": 0, "requests": 0, "retries": 0, "throttled": 0,
                "runs_succeeded": 0, "runs_failed": 1,
            },
        })
    );

    // Bad flag values are usage errors before anything loads.
    for (flag, value, message) in [
        ("--at", "yesterday", "is not a time"),
        (
            "--delivery",
            "dropped=1",
            "unknown delivery counter `dropped`",
        ),
    ] {
        let ran = cli::run_in(dir.path(), &["invoke", "builtin:heartbeat", flag, value]);
        assert_eq!(ran.code, Some(2), "{}", ran.both());
        assert!(ran.stderr.contains(message), "{}", ran.both());
    }
}

#[test]
fn a_case_pins_the_whole_run_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = cases(
        dir.path(),
        &format!(
            r#"
guest = {guest}

[[case]]
name = "defaults"
expect.json = [{{ job = "test", actual_ms = 1767225600000, scheduled_ms = 1767225600000, sequence = 1, invocation_id = "00000000-0000-4000-8000-000000000001", hostname = "cwpub-test", uptime_ms = 0, config = [], delivery = {{ events_dropped = 0 }} }}]

[[case]]
name = "pinned"
job = "hb"
at = 2026-03-01T00:00:00Z
scheduled_at = 2026-02-28T23:59:00Z
sequence = 3
invocation_id = "x"
hostname = "h"
task_id = "t"
region = "us-east-1"
host_version = "1.2.3"
uptime_ms = 5
delivery = {{ requests = 4, throttled = 1 }}
config = {{ zeta = "1", alpha = "2" }}
expect.json = [{{ job = "hb", actual_ms = 1772323200000, scheduled_ms = 1772323140000, sequence = 3, invocation_id = "x", hostname = "h", task_id = "t", region = "us-east-1", host_version = "1.2.3", uptime_ms = 5, config = [["zeta", "1"], ["alpha", "2"]], delivery = {{ requests = 4, throttled = 1, retries = 0 }} }}]
"#,
            guest = scripted()
        ),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    // Nothing of the machine leaks into a case: no task id or region unless the case sets one.
    let dir2 = tempfile::tempdir().expect("tempdir");
    write(
        dir2.path(),
        "cases.toml",
        &format!(
            "guest = {}\n[[case]]\nname = \"no leak\"\nexpect.json = ['{{\"task_id\": null, \"region\": null}}']\n",
            scripted()
        ),
    );
    let ran = cli::cwpub()
        .args(["test", "--cases", "cases.toml"])
        .current_dir(dir2.path())
        .env("CWPUB_TASK_ID", "machine-task")
        .env("AWS_REGION", "ap-south-1")
        .output()
        .expect("run cwpub");
    let ran = Ran::from(ran);
    assert_eq!(ran.code, Some(0), "{}", ran.both());
}
