//! Whatever a guest says reaches the operator escaped, capped and bounded:
//! the hostile guest's injection and size modes go through every path (the
//! daemon's human and JSON logs, `check`, `run` and `invoke` on stderr), and
//! every output has exactly one line per record, no raw control character
//! from a guest and no guest text longer than the cap. A job cannot flood the
//! log either: alternating failure kinds are still suppressed, and a job over
//! its per-minute log budget is cut off and counted.

use crate::support::daemon::{self, PATIENCE, http_get, logged_address, signal, write_config};
use crate::support::test_guests;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cwpub::untrusted::{BYTES_PER_MINUTE, MAX_RENDERED_BYTES};

/// The longest line any record may be: two guest texts (a message and the
/// stderr attached to it), each capped with its cut marker, plus the host's
/// own words and fields.
const MAX_LINE: usize = 2 * (MAX_RENDERED_BYTES + 32) + 1024;

/// A job of the test configs: name, schedule, and its `[jobs.config]`.
type Job = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn cwpub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("CWPUB_LOG_LEVEL")
        .env_remove("CWPUB_LOG_FORMAT")
        .env_remove("CWPUB_SINK_KIND")
        .env_remove("CWPUB_OBSERVE_ENABLED")
        .env_remove("CWPUB_OBSERVE_LISTEN");
    cmd
}

/// A config with `[log]` in `format`, the stdout sink, and one adversary job
/// per `(name, schedule, config)`.
fn config(format: &str, level: &str, observe: bool, jobs: &[Job]) -> String {
    let adversary = test_guests::test_guest("adversary");
    let mut text = format!(
        "[sink]\nkind = \"stdout\"\n\n[observe]\nenabled = {observe}\nlisten = \"127.0.0.1:0\"\n\n\
         [log]\nformat = \"{format}\"\nlevel = \"{level}\"\n\n[shutdown]\ndrain_deadline = \"1s\"\n"
    );
    for (name, schedule, settings) in jobs {
        text.push_str(&format!(
            "\n[[jobs]]\nname = \"{name}\"\nguest = \"{}\"\nschedule = \"{schedule}\"\nrun_at_start = true\n\
             log_group = \"/cwpub/test\"\nlog_stream = \"{{job}}\"\ntimeout = \"10s\"\n[jobs.config]\n",
            adversary.display()
        ));
        for (key, value) in *settings {
            text.push_str(&format!("{key} = \"{value}\"\n"));
        }
    }
    text
}

/// Runs `cwpub run <config>` until `done` holds for its stderr (or
/// [`PATIENCE`] passed), calls `meanwhile` with that stderr, stops it with SIGTERM and
/// returns the exit status and the whole stderr, checked to be UTF-8.
fn run_daemon(
    config: &Path,
    done: impl Fn(&str) -> bool,
    meanwhile: impl FnOnce(&str),
) -> (ExitStatus, String) {
    let dir = config.parent().expect("config dir");
    let log_path = dir.join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("stderr file");
    let mut child = cwpub()
        .args(["run", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start cwpub run");
    let read =
        || String::from_utf8_lossy(&std::fs::read(&log_path).expect("read stderr")).into_owned();
    let started = Instant::now();
    while !done(&read()) {
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the daemon never got there; stderr:\n{}", read());
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the daemon exited early ({status}); stderr:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    meanwhile(&read());
    signal(&child, "-TERM");
    let status = child.wait().expect("wait");
    let bytes = std::fs::read(&log_path).expect("read stderr");
    let stderr = String::from_utf8(bytes).expect("the log is valid UTF-8");
    (status, stderr)
}

/// Characters no output may carry raw: line breaks of any kind, terminal
/// controls, bidirectional overrides.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Every line of `output` is clean: no forbidden character, not over [`MAX_LINE`].
fn assert_clean(output: &str, what: &str) {
    for (i, line) in output.lines().enumerate() {
        if let Some(c) = line.chars().find(|&c| is_forbidden(c)) {
            panic!("{what}: line {i} carries raw {c:?}: {line}");
        }
        assert!(
            line.len() <= MAX_LINE,
            "{what}: line {i} is {} bytes long: {}…",
            line.len(),
            &line[..line.floor_char_boundary(300)]
        );
    }
    assert!(!output.contains('\r'), "{what}: a carriage return");
}

/// Every line is one record of the human format: timestamp, level, text.
fn assert_human_records(stderr: &str) {
    for line in stderr.lines() {
        let mut words = line.split_whitespace();
        let timestamp = words.next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "a line that is not a record: {line}"
        );
        let level = words.next().unwrap_or_default();
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "a line that is not a record: {line}"
        );
        assert!(
            !line.contains("\u{1b}"),
            "no colour when stderr is not a terminal"
        );
    }
}

/// Every line is one JSON record, whose decoded message is clean too.
fn assert_json_records(stderr: &str) {
    for line in stderr.lines() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON record ({e}): {line}"));
        assert!(
            record["timestamp"].is_string() && record["level"].is_string(),
            "{line}"
        );
        let message = record["message"].as_str().unwrap_or_default();
        assert!(
            !message.chars().any(is_forbidden),
            "the decoded message carries a raw control character: {message:?}"
        );
        for (key, value) in record.as_object().expect("object") {
            if let Some(text) = value.as_str() {
                assert!(!text.chars().any(is_forbidden), "field {key}: {text:?}");
            }
        }
    }
}

/// Lines naming `job` that contain `needle`.
fn count(stderr: &str, job: &str, needle: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains(&format!("\"{job}\"")) && l.contains(needle))
        .count()
}

const INJECTION_JOBS: &[Job] = &[
    ("diag-inject", "@every 1h", &[("mode", "diag-inject")]),
    ("diag-huge", "@every 1h", &[("mode", "diag-huge")]),
    (
        "error-fatal",
        "@every 1h",
        &[("mode", "error-inject"), ("case", "fatal")],
    ),
    (
        "error-transient",
        "@every 1h",
        &[("mode", "error-inject"), ("case", "transient")],
    ),
    (
        "error-invalid",
        "@every 1h",
        &[("mode", "error-inject"), ("case", "invalid-config")],
    ),
    ("error-huge", "@every 1h", &[("mode", "error-huge")]),
    ("panic-inject", "@every 1h", &[("mode", "panic-inject")]),
    ("stdio-inject", "@every 1h", &[("mode", "stdio-inject")]),
    ("stdio-fail", "@every 1h", &[("mode", "stdio-inject-fail")]),
    ("trap-name", "@every 1h", &[("mode", "trap-name")]),
];

/// How many records of each job carry the injection (`FORGED frame` for the
/// function name in the trap's backtrace).
const EXPECTED: &[(&str, &str, usize)] = &[
    ("diag-inject", "INJECTED", 5),
    ("diag-huge", "INJECTED", 1),
    ("error-fatal", "INJECTED", 1),
    ("error-transient", "INJECTED", 1),
    ("error-invalid", "INJECTED", 1),
    ("error-huge", "INJECTED", 1),
    ("panic-inject", "INJECTED", 1),
    ("stdio-inject", "INJECTED", 1),
    ("stdio-fail", "INJECTED", 1),
    ("trap-name", "FORGED frame", 1),
];

fn all_expected_logged(stderr: &str) -> bool {
    EXPECTED
        .iter()
        .all(|(job, needle, n)| count(stderr, job, needle) >= *n)
}

fn check_injection_log(format: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(
        dir.path(),
        &config(format, "info,cwpub=trace", false, INJECTION_JOBS),
    );
    let (_, stderr) = run_daemon(&path, all_expected_logged, |_| {});
    assert_clean(&stderr, format);
    match format {
        "json" => assert_json_records(&stderr),
        _ => assert_human_records(&stderr),
    }
    for (job, needle, n) in EXPECTED {
        assert_eq!(
            count(&stderr, job, needle),
            *n,
            "{format}: records of {job} with {needle}:\n{stderr}"
        );
    }
    for job in ["diag-huge", "error-huge"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("\"{job}\"")) && l.contains("INJECTED"))
            .expect("logged");
        assert!(
            line.contains(" bytes cut]"),
            "{job} is cut with a marker: {line}"
        );
    }
    assert!(
        !stderr.contains("output too large"),
        "a 10 MiB diagnostic does not fail the run:\n{stderr}"
    );
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "no advice a guest cannot follow:\n{stderr}"
    );
}

#[test]
fn the_human_log_has_one_clean_line_per_record() {
    check_injection_log("human");
}

#[test]
fn the_json_log_has_one_clean_line_per_record() {
    check_injection_log("json");
}

/// Reads `/metrics` from the address the daemon logged.
fn scrape_metrics(stderr: &str) -> String {
    let addr = logged_address(stderr).expect("the endpoint address is logged");
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `series` (name and labels, as exposed).
fn metric(metrics: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
        .parse()
        .expect("a number")
}

#[test]
fn a_job_cannot_flood_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs: &[Job] = &[
        ("alternate", "@every 1s", &[("mode", "alternate")]),
        ("flood", "@every 1s", &[("mode", "diag-flood")]),
    ];
    let path = write_config(dir.path(), &config("human", "info", true, jobs));
    let mut metrics = String::new();
    let failures = "cwpub_job_runs_total{job=\"alternate\",outcome=\"failure\"}";
    let (_, stderr) = run_daemon(
        &path,
        |stderr| {
            count(stderr, "flood", "exceeded its log budget") >= 1
                && logged_address(stderr).is_some()
                && daemon::metric(&scrape_metrics(stderr), failures) >= 3.0
        },
        |stderr| metrics = scrape_metrics(stderr),
    );
    assert_clean(&stderr, "flood");
    assert_human_records(&stderr);

    // Alternating fatal and transient errors (64 KiB each): each kind is
    // logged in full once, however many runs fail.
    let failed = metric(&metrics, failures);
    assert!(failed >= 3.0, "{failed} failed runs");
    let full = count(&stderr, "alternate", "INJECTED");
    assert!(
        (1..=2).contains(&full),
        "{full} full records of alternating failures:\n{stderr}"
    );

    // 1,000 diagnostics of 8 KiB per run: at most 100 per run, each cut to
    // 4 KiB, and no more than the budget's bytes per minute in all.
    let flood: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("\"flood\"") && l.contains("INJECTED"))
        .collect();
    let bytes: usize = flood.iter().map(|l| l.len()).sum();
    assert!(
        bytes as u64 <= BYTES_PER_MINUTE + 16 * 1024,
        "{bytes} bytes of flood records in {} lines",
        flood.len()
    );
    assert!(flood.len() >= 100, "the first run's first 100 are logged");
    assert_eq!(
        count(&stderr, "flood", "exceeded its log budget"),
        1,
        "suppression is announced once per window"
    );
    assert!(
        metric(
            &metrics,
            "cwpub_job_log_records_suppressed_total{job=\"flood\"}"
        ) >= 1.0,
        "suppressed records are counted"
    );
}

fn adversary_path() -> String {
    test_guests::test_guest("adversary")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// The lines of a one-shot command's stderr, each checked to be a record:
/// an error, a guest output line, or a diagnostic (a timestamped record).
fn assert_command_records(stderr: &str, what: &str) {
    assert_clean(stderr, what);
    for line in stderr.lines() {
        let record = line.starts_with("error: ")
            || line.starts_with("  ")
            || line.starts_with("guest stdout | ")
            || line.starts_with("guest stderr | ")
            || line
                .split_whitespace()
                .next()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
        assert!(record, "{what}: a line that is not a record: {line}");
    }
}

#[test]
fn invoke_shows_guest_words_escaped_one_record_per_line() {
    let adversary = adversary_path();
    // (config, records with INJECTED (or FORGED frame), exits 0)
    let cases: &[(&[&str], usize, bool)] = &[
        (&["mode=error-inject", "case=fatal"], 1, false),
        (&["mode=error-inject", "case=transient"], 1, false),
        (&["mode=error-inject", "case=invalid-config"], 1, false),
        (&["mode=error-huge"], 1, false),
        (&["mode=panic-inject"], 1, false),
        // One record per line the guest printed, on each stream.
        (&["mode=stdio-inject"], 2, true),
        (&["mode=stdio-inject-fail"], 1, false),
        (&["mode=diag-inject"], 5, true),
        (&["mode=diag-huge"], 1, true),
        (&["mode=trap-name"], 1, false),
        (&["mode=ok", "validate=inject"], 1, false),
        (&["mode=ok", "validate=huge"], 1, false),
        (&["mode=ok", "validate=panic"], 1, false),
    ];
    for (settings, records, succeeds) in cases {
        let mut cmd = cwpub();
        cmd.args(["invoke", &adversary]);
        for setting in *settings {
            cmd.args(["--config", setting]);
        }
        let output = cmd.output().expect("run cwpub invoke");
        let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
        let what = format!("invoke {settings:?}");
        assert_eq!(output.status.success(), *succeeds, "{what}: {stderr}");
        assert_command_records(&stderr, &what);
        let needle = if settings.contains(&"mode=trap-name") {
            "FORGED frame"
        } else {
            "INJECTED"
        };
        assert_eq!(
            stderr.lines().filter(|l| l.contains(needle)).count(),
            *records,
            "{what}:\n{stderr}"
        );
        assert!(!stderr.contains("RUST_BACKTRACE"), "{what}: {stderr}");
    }
}

#[test]
fn check_and_run_report_invalid_config_text_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs: &[Job] = &[
        (
            "inject",
            "@every 1h",
            &[("mode", "ok"), ("validate", "inject")],
        ),
        ("huge", "@every 1h", &[("mode", "ok"), ("validate", "huge")]),
        (
            "panics",
            "@every 1h",
            &[("mode", "ok"), ("validate", "panic")],
        ),
    ];
    let path = write_config(dir.path(), &config("human", "info", false, jobs));
    for command in ["check", "run"] {
        let output = cwpub()
            .args([command, path.to_str().expect("utf-8")])
            .output()
            .expect("run cwpub");
        let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
        assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
        let problems: Vec<&str> = stderr
            .lines()
            .skip_while(|l| !l.starts_with("error: the config has 3 problems"))
            .collect();
        assert_eq!(
            problems.len(),
            4,
            "{command}: a heading and one line per problem:\n{stderr}"
        );
        assert_command_records(&problems.join("\n"), command);
        for job in ["inject", "huge", "panics"] {
            let line = problems
                .iter()
                .find(|l| l.contains(&format!("\"{job}\"")))
                .unwrap_or_else(|| panic!("{command}: no problem for {job}:\n{stderr}"));
            assert!(line.contains("INJECTED"), "{command}: {line}");
        }
        assert!(
            problems.iter().any(|l| l.contains(" bytes cut]")),
            "{command}: the 8 MiB message is cut:\n{stderr}"
        );
    }
}
