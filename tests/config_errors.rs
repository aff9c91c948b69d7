//! Bad configuration files: each case asserts the exact message cwpub prints
//! (file, job, key, value, what is wrong and the fix), and that every problem
//! in a file is reported at once.

use std::path::{Path, PathBuf};

use cwpub::config::{self, ConfigError, Env};

/// A valid job to pad configs with.
const HB: &str = r#"
[[jobs]]
name = "hb"
guest = "builtin:heartbeat"
schedule = "@every 1m"
log_group = "/cwpub/hb"
"#;

fn env(pairs: &[(&str, &str)]) -> Env {
    let mut e: Env = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    e.entry("CWPUB_HOSTNAME".into())
        .or_insert_with(|| "web-1".into());
    e
}

/// Writes `text` to a fresh directory as cwpub.toml and loads it.
fn load_with(
    text: &str,
    vars: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    PathBuf,
    Result<config::Config, ConfigError>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, text).expect("write config");
    let result = config::load(&path, &env(vars));
    (dir, path, result)
}

/// The problems of a config that must fail, without the `<file>: ` prefix
/// (which is checked to be there on every line).
fn problems_in(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let (_dir, path, result) = load_with(text, vars);
    let err = result.expect_err("config should be refused");
    strip(&err, &path)
}

fn strip(err: &ConfigError, path: &Path) -> Vec<String> {
    let prefix = format!("{}: ", path.display());
    err.lines()
        .into_iter()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{l:?} should start with {prefix:?}"))
                .to_string()
        })
        .collect()
}

fn one_problem(text: &str, vars: &[(&str, &str)]) -> String {
    let p = problems_in(text, vars);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p.into_iter().next().unwrap_or_default()
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = config::load(&path, &env(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: config file not found; check the path (see examples/quickstart.toml)",
            path.display()
        )
    );
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let p = one_problem("[sink]\nkind = \"stdout\"\n\n[[jobs]\nname = \"x\"\n", &[]);
    assert!(p.starts_with("TOML syntax error at line 4, column "), "{p}");
}

#[test]
fn toml_syntax_error_in_a_value() {
    let p = one_problem("[sink]\nkind = stdout\n", &[]);
    assert!(
        p.starts_with("TOML syntax error at line 2, column 8: "),
        "{p}"
    );
}

#[test]
fn unknown_keys_with_suggestions_and_all_at_once() {
    let text = r#"
[sink]
kind = "stdout"
regoin = "us-east-1"

[[jobs]]
name = "hb"
guest = "builtin:heartbeat"
shedule = "@every 1m"
log_group = "/cwpub/hb"

[metrics]
"#;
    let p = problems_in(text, &[]);
    assert_eq!(
        p,
        vec![
            "metrics: unknown key; allowed keys: sink, sinks, jobs, delivery, observe, log, shutdown",
            "sink.regoin: unknown key (did you mean \"region\"?); allowed keys: kind, region, endpoint_url",
            "job \"hb\": schedule: missing required key; add e.g. schedule = \"@every 1m\"",
            "job \"hb\": shedule: unknown key (did you mean \"schedule\"?); allowed keys: name, guest, schedule, sink, sinks, log_group, log_stream, config, timeout, memory_mb, max_events, max_output_bytes, max_stdio_bytes, run_at_start, jitter",
        ]
    );
}

#[test]
fn bad_cron() {
    let text = HB.replace("@every 1m", "*/5 * *");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": schedule \"*/5 * *\": invalid cron expression: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3"
    );
    let text = HB.replace("@every 1m", "0 25 * * *");
    let p = one_problem(&text, &[]);
    assert!(
        p.starts_with(
            "job \"hb\": schedule \"0 25 * * *\": invalid cron expression: hour field \"25\": "
        ),
        "{p}"
    );
    assert!(
        p.ends_with("(hour takes 0-23, lists a,b, ranges a-b and steps */n)"),
        "{p}"
    );
    let text = HB.replace("@every 1m", "0 0 31 2 *");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": schedule \"0 0 31 2 *\": cron expression never fires (it matches no real date); check the day-of-month and month fields"
    );
    let text = HB.replace("@every 1m", "@every 1 fortnight");
    let p = one_problem(&text, &[]);
    assert!(
        p.starts_with(
            "job \"hb\": schedule \"@every 1 fortnight\": invalid @every interval \"1 fortnight\": "
        ),
        "{p}"
    );
}

#[test]
fn unknown_builtin() {
    let text = HB.replace("builtin:heartbeat", "builtin:nope");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": guest \"builtin:nope\": unknown built-in guest; the built-ins are builtin:heartbeat, builtin:emf"
    );
}

#[test]
fn missing_wasm_file() {
    let text = HB.replace("builtin:heartbeat", "guests/missing.wasm");
    let (dir, path, result) = load_with(&text, &[]);
    let p = strip(&result.unwrap_err(), &path);
    assert_eq!(
        p,
        vec![format!(
            "job \"hb\": guest \"guests/missing.wasm\": component file not found at {} (relative paths are resolved against the config file's directory); build it or fix the path",
            dir.path().join("guests/missing.wasm").display()
        )]
    );
}

#[test]
fn invalid_log_group_name() {
    let text = HB.replace("/cwpub/hb", "/cwpub/heart beat");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": log_group \"/cwpub/heart beat\": invalid log group name: character ' ' at position 13 is not allowed; use only A-Z a-z 0-9 . - _ / #"
    );
    let text = HB.replace("/cwpub/hb", "aws/lambda/{job}");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": log_group \"aws/lambda/{job}\": invalid log group name: names starting with \"aws/\" are reserved for AWS services (expanded to \"aws/lambda/hb\")"
    );
    let long = format!("/{}", "g".repeat(512));
    let text = HB.replace("/cwpub/hb", &long);
    let p = one_problem(&text, &[]);
    assert!(
        p.ends_with(": name is 513 characters long; the limit is 512"),
        "{p}"
    );
}

#[test]
fn invalid_log_stream_name() {
    let text = format!("{HB}log_stream = \"{{hostname}}:{{job}}\"\n");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": log_stream \"{hostname}:{job}\": invalid log stream name: character ':' at position 6 is not allowed; log stream names cannot contain ':', '*' or control characters (expanded to \"web-1:hb\")"
    );
}

#[test]
fn unknown_or_unavailable_placeholder() {
    let text = format!("{HB}log_stream = \"{{host}}-x\"\n");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": log_stream \"{host}-x\": unknown placeholder {host}; known placeholders are {hostname}, {job}, {task_id}, {instance_id} (write '{{' for a literal brace)"
    );
    let text = format!("{HB}log_stream = \"{{instance_id}}\"\n");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": log_stream \"{instance_id}\": placeholder {instance_id} has no value on this host; set CWPUB_INSTANCE_ID or remove it"
    );
}

#[test]
fn invalid_retention() {
    let text = format!("[delivery]\nretention_days = 42\n{HB}");
    assert_eq!(
        one_problem(&text, &[]),
        "[delivery] retention_days = 42: must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"
    );
}

#[test]
fn unknown_delivery_key() {
    let text = format!("[delivery]\nretention = 30\n{HB}");
    let p = one_problem(&text, &[]);
    assert!(
        p.starts_with("[delivery] unknown field `retention`, expected one of "),
        "{p}"
    );
}

#[test]
fn cloudwatch_sink_without_region() {
    let text = format!("[sink]\nkind = \"cloudwatch\"\n{HB}");
    assert_eq!(
        one_problem(&text, &[]),
        "sink.region: the cloudwatch sink needs an AWS region; set [sink] region = \"us-east-1\", or CWPUB_REGION or AWS_REGION in the environment"
    );
    // The same file is fine once the environment names a region.
    let (_d, _p, ok) = load_with(&text, &[("AWS_DEFAULT_REGION", "eu-west-1")]);
    assert_eq!(
        ok.expect("region from env").sinks.list[0].region(),
        Some("eu-west-1")
    );
}

#[test]
fn invalid_region_and_endpoint() {
    let text = format!(
        "[sink]\nkind = \"cloudwatch\"\nregion = \"US East\"\nendpoint_url = \"localhost:4566\"\n{HB}"
    );
    assert_eq!(
        problems_in(&text, &[]),
        vec![
            "sink.region \"US East\": invalid AWS region; expected a region code like \"us-east-1\"",
            "sink.endpoint_url \"localhost:4566\": invalid endpoint URL; expected http:// or https:// followed by a host, e.g. \"http://127.0.0.1:4566\"",
        ]
    );
}

#[test]
fn duplicate_job_names() {
    let text = format!("{HB}{HB}");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": name: duplicate job name (job #1 has the same name); job names must be unique"
    );
}

#[test]
fn bad_durations() {
    let text = format!("{HB}timeout = \"2 parsecs\"\njitter = -5\n");
    let p = problems_in(&text, &[]);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("job \"hb\": timeout \"2 parsecs\": invalid duration: "),
        "{}",
        p[0]
    );
    assert!(
        p[0].ends_with(
            "write e.g. \"500ms\", \"2s\", \"1m 30s\" (or an integer number of milliseconds)"
        ),
        "{}",
        p[0]
    );
    assert_eq!(
        p[1],
        "job \"hb\": jitter: -5 is negative; a duration must be zero or more"
    );

    let text = format!("[shutdown]\ndrain_deadline = \"2h\"\n{HB}");
    assert_eq!(
        one_problem(&text, &[]),
        "shutdown.drain_deadline \"2h\": duration out of range; it must be between 0s and 15m"
    );
    let text = format!("{HB}jitter = \"1m\"\n");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"hb\": jitter \"1m\": jitter must be shorter than the schedule's interval (1m)"
    );
}

#[test]
fn limits_out_of_range_and_wrong_types() {
    let text = format!("{HB}memory_mb = 4096\nmax_events = 0\nrun_at_start = \"yes\"\n");
    assert_eq!(
        problems_in(&text, &[]),
        vec![
            "job \"hb\": memory_mb: 4096 is out of range; it must be between 1 and 1024",
            "job \"hb\": max_events: 0 is out of range; it must be between 1 and 1000000",
            "job \"hb\": run_at_start: expected true or false, found a string (\"yes\")",
        ]
    );
}

#[test]
fn job_config_values_must_be_strings() {
    let text = format!("{HB}[jobs.config]\nport = 8080\nlist = [1]\n");
    assert_eq!(
        problems_in(&text, &[]),
        vec![
            "job \"hb\": config.port: values must be strings; quote it: port = \"8080\"",
            "job \"hb\": config.list: values must be strings, found an array",
        ]
    );
}

#[test]
fn jobs_missing_unnamed_or_not_an_array() {
    assert_eq!(
        one_problem("[sink]\nkind = \"stdout\"\n", &[]),
        "jobs: no jobs defined; add at least one [[jobs]] table with name, guest, schedule and log_group"
    );
    assert_eq!(
        one_problem("[jobs]\nname = \"x\"\n", &[]),
        "jobs: expected [[jobs]] tables (an array of tables), found a table; write [[jobs]] rather than [jobs]"
    );
    let text = format!(
        "{HB}\n[[jobs]]\nguest = \"builtin:emf\"\nschedule = \"@hourly\"\nlog_group = \"/g\"\n"
    );
    assert_eq!(
        one_problem(&text, &[]),
        "job #2: name: missing required key; add e.g. name = \"heartbeat\""
    );
    let text = HB.replace("name = \"hb\"", "name = \"heart beat\"");
    assert_eq!(
        one_problem(&text, &[]),
        "job \"heart beat\": name \"heart beat\": character ' ' is not allowed in a job name; use only A-Z a-z 0-9 . _ -"
    );
}

#[test]
fn bad_environment_overrides_name_the_variable() {
    let p = problems_in(
        HB,
        &[
            ("CWPUB_SINK_KIND", "kafka"),
            ("CWPUB_OBSERVE_LISTEN", "localhost"),
            ("CWPUB_LOG_LEVEL", "loud"),
        ],
    );
    assert_eq!(
        p,
        vec![
            "environment variable CWPUB_SINK_KIND \"kafka\": unknown sink kind; use \"cloudwatch\", \"datadog\" or \"stdout\"",
            "environment variable CWPUB_OBSERVE_LISTEN \"localhost\": expected an IP address and port like \"127.0.0.1:9464\" (\"0.0.0.0:9464\" listens on every interface)",
            "environment variable CWPUB_LOG_LEVEL \"loud\": \"loud\" is not a level; expected a level (trace, debug, info, warn, error, off) or directives like \"info,cwpub=debug\"",
        ]
    );
}

#[test]
fn every_problem_in_every_section_is_reported_together() {
    let text = r#"
[sink]
kind = "cloudwatch"

[observe]
listen = "nowhere"

[log]
format = "xml"

[[jobs]]
name = "a"
guest = "builtin:heartbeat"
schedule = "*/5 * *"
log_group = "/ok"

[[jobs]]
name = "b"
guest = "builtin:nope"
schedule = "@every 10s"
log_group = "bad group"
"#;
    let p = problems_in(text, &[]);
    assert_eq!(p.len(), 6, "{p:#?}");
    assert!(p[0].starts_with("sink.region: the cloudwatch sink needs an AWS region"));
    assert!(p[1].starts_with("observe.listen \"nowhere\": expected an IP address and port"));
    assert!(p[2].starts_with("log.format \"xml\": unknown log format"));
    assert!(p[3].starts_with("job \"a\": schedule \"*/5 * *\": invalid cron expression"));
    assert!(p[4].starts_with("job \"b\": guest \"builtin:nope\": unknown built-in guest"));
    assert!(p[5].starts_with("job \"b\": log_group \"bad group\": invalid log group name"));
}
