//! The case file of `cwpub test` (`cwpub-test.toml` by convention): which
//! guest to test, how to build it, defaults shared by every case, and one
//! `[[case]]` table per case with its config, its fixed run context, its
//! limits and what it expects. Every problem is reported at once with the
//! file, the case and the key, as the config loader does; unknown keys are
//! errors (with a "did you mean" where one is close).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::context;
use super::expect::{EXPECT_KEYS, Expect};
use crate::config::job::{read_job_config, read_limits};
use crate::config::reader::{Reader, Scope, describe, parse_toml};
use crate::config::{self, Problems};
use crate::guest::{DeliveryStats, FixedContext, GuestSource, RunLimits};

/// The case file `cwpub test` reads when given none, in the current directory.
pub const DEFAULT_FILE: &str = "cwpub-test.toml";
/// When a case runs unless it sets `at`: 2026-01-01T00:00:00Z.
pub const DEFAULT_AT_MS: u64 = 1_767_225_600_000;
/// The host name a case's guest sees unless it sets `hostname`.
pub const DEFAULT_HOSTNAME: &str = "cwpub-test";
/// The job name a case's guest sees unless it sets `job`.
pub const DEFAULT_JOB: &str = "test";

const TOP_KEYS: &[&str] = &["guest", "build", "defaults", "case"];
/// What `[defaults]` and a case may set for the run.
const SETTING_KEYS: &[&str] = &[
    "job",
    "config",
    "at",
    "scheduled_at",
    "sequence",
    "invocation_id",
    "hostname",
    "task_id",
    "region",
    "host_version",
    "uptime_ms",
    "delivery",
    "timeout",
    "memory_mb",
    "max_events",
    "max_output_bytes",
    "max_stdio_bytes",
];
const CASE_KEYS: &[&str] = &[
    "name",
    "expect",
    "job",
    "config",
    "at",
    "scheduled_at",
    "sequence",
    "invocation_id",
    "hostname",
    "task_id",
    "region",
    "host_version",
    "uptime_ms",
    "delivery",
    "timeout",
    "memory_mb",
    "max_events",
    "max_output_bytes",
    "max_stdio_bytes",
];

/// A parsed case file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file, as given.
    pub path: PathBuf,
    /// The guest the file names (`guest`), resolved against the file's directory.
    pub guest: Option<GuestSource>,
    /// The command that builds the guest (`build`), run in the file's directory.
    pub build: Option<Vec<String>>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One case: a run with a fixed context and what it must produce.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name (unique in its file).
    pub name: String,
    /// The job name the guest sees.
    pub job: String,
    /// The job config handed to `validate-config` and `run`, in file order.
    pub config: Vec<(String, String)>,
    /// The run's sequence number.
    pub sequence: u64,
    /// Every part of the run context, pinned.
    pub context: FixedContext,
    /// The run's limits (the job defaults unless the case sets them).
    pub limits: RunLimits,
    /// What the run must produce.
    pub expect: Expect,
}

/// Why a case file cannot be used: every problem, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasesError {
    /// `file: case "name": key: message` lines.
    pub lines: Vec<String>,
}

impl fmt::Display for CasesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl std::error::Error for CasesError {}

impl Suite {
    /// Reads and checks the case file at `path`.
    pub fn load(path: &Path) -> Result<Suite, CasesError> {
        let text = std::fs::read_to_string(path).map_err(|e| CasesError {
            lines: vec![format!(
                "{}: {}",
                path.display(),
                match e.kind() {
                    std::io::ErrorKind::NotFound => "case file not found; write one (see `cwpub test --help`) or pass --cases FILE".to_owned(),
                    _ => format!("cannot read the case file: {e}"),
                }
            )],
        })?;
        Suite::parse(&text, path)
    }

    /// Checks case-file `text` as if read from `path` (relative guest paths
    /// are resolved against its directory).
    pub fn parse(text: &str, path: &Path) -> Result<Suite, CasesError> {
        let file = path.display().to_string();
        let root: Table = parse_toml(text).map_err(|message| CasesError {
            lines: vec![format!("{file}: {message}")],
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut lines = Vec::new();

        let mut problems = Problems::new(file.clone());
        let mut top = Reader::new(&root, Scope::Top, &mut problems);
        top.allow(TOP_KEYS);
        let guest = top
            .string("guest")
            .and_then(|g| match resolve_guest(g, &base_dir) {
                Ok(source) => Some(source),
                Err(e) => {
                    top.problem("guest", Some(g), e);
                    None
                }
            });
        let build = top.raw("build").and_then(|v| match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_str) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect::<Vec<_>>(),
            ),
            other => {
                let msg = format!(
                    "expected the command as an array of strings, e.g. [\"cargo\", \"build\", \"--target\", \"wasm32-wasip2\", \"--release\"], found {}",
                    describe(other)
                );
                top.problem("build", None, msg);
                None
            }
        });
        let defaults = top.table("defaults");
        let cases_v = top.raw("case");
        top.finish();
        lines.extend(problems.into_error().lines());

        // `[defaults]` is checked on its own, once, then merged under every case.
        let empty = Table::new();
        let defaults = defaults.unwrap_or(&empty);
        let defaults_ok = {
            let mut problems = Problems::new(file.clone());
            let mut r = Reader::new(defaults, Scope::Section("defaults".into()), &mut problems);
            r.allow(SETTING_KEYS);
            read_settings(&mut r, 0);
            r.finish();
            let before = lines.len();
            lines.extend(problems.into_error().lines());
            lines.len() == before
        };

        let mut cases = Vec::new();
        match cases_v {
            None => lines.push(format!(
                "{file}: no cases; add at least one [[case]] table with a name (see `cwpub test --help`)"
            )),
            Some(Value::Array(items)) => {
                let mut names = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let position = i + 1;
                    let Value::Table(t) = item else {
                        lines.push(format!(
                            "{file}: case #{position}: expected a [[case]] table, found {}",
                            describe(item)
                        ));
                        continue;
                    };
                    let label = match t.get("name").and_then(Value::as_str) {
                        Some(n) if !n.trim().is_empty() => format!("case {:?}", n.trim()),
                        _ => format!("case #{position}"),
                    };
                    // Problems are labelled "file: case …: key: message", like the config loader's.
                    let mut problems = Problems::new(format!("{file}: {label}"));
                    let merged;
                    let table = if defaults_ok {
                        merged = merge(defaults, t);
                        &merged
                    } else {
                        t
                    };
                    let case = read_case(table, position, &mut names, &mut problems);
                    let before = lines.len();
                    lines.extend(problems.into_error().lines());
                    if let Some(case) = case
                        && lines.len() == before
                    {
                        cases.push(case);
                    }
                }
                if items.is_empty() {
                    lines.push(format!("{file}: `case` is empty; add at least one [[case]] table"));
                }
            }
            Some(other) => lines.push(format!(
                "{file}: case: expected [[case]] tables (an array of tables), found {}; write [[case]] rather than [case]",
                describe(other)
            )),
        }
        if lines.is_empty() {
            Ok(Suite {
                path: path.to_path_buf(),
                guest,
                build,
                cases,
            })
        } else {
            Err(CasesError { lines })
        }
    }
}

/// `builtin:NAME` or a component path relative to the case file's directory.
/// The file need not exist yet: `build` may make it.
fn resolve_guest(text: &str, base_dir: &Path) -> Result<GuestSource, String> {
    match GuestSource::parse(text.trim()).map_err(|e| e.message)? {
        GuestSource::Path(p) if p.is_relative() => Ok(GuestSource::Path(base_dir.join(p))),
        source => Ok(source),
    }
}

/// The case's keys over the `[defaults]` ones (a key set in both: the case's, whole).
fn merge(defaults: &Table, case: &Table) -> Table {
    let mut merged: Table = defaults
        .iter()
        .filter(|(k, _)| SETTING_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in case {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// The run settings shared by `[defaults]` and cases.
struct Settings {
    job: String,
    config: Vec<(String, String)>,
    sequence: u64,
    context: FixedContext,
    limits: RunLimits,
}

fn read_settings(r: &mut Reader<'_, '_>, position: usize) -> Settings {
    let job = match r.string("job") {
        Some(j) => {
            if let Err(e) = config::check_job_name(j) {
                r.problem("job", Some(j), e);
            }
            j.to_owned()
        }
        None => DEFAULT_JOB.to_owned(),
    };
    let config = match r.table("config") {
        Some(t) => read_job_config(t, r),
        None => Vec::new(),
    };
    let time = |r: &mut Reader<'_, '_>, key: &'static str| {
        r.raw(key).and_then(|v| match context::time_value(v) {
            Ok(ms) => Some(ms),
            Err(e) => {
                r.problem(key, None, e);
                None
            }
        })
    };
    let at_ms = time(r, "at").unwrap_or(DEFAULT_AT_MS);
    let scheduled_ms = time(r, "scheduled_at").unwrap_or(at_ms);
    let sequence = r.integer("sequence", 1, i64::MAX).unwrap_or(1) as u64;
    let invocation_id = r
        .string("invocation_id")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("00000000-0000-4000-8000-{position:012}"));
    let hostname = r.string("hostname").unwrap_or(DEFAULT_HOSTNAME).to_owned();
    let task_id = r.string("task_id").map(str::to_owned);
    let region = r.string("region").map(str::to_owned);
    let host_version = r
        .string("host_version")
        .unwrap_or(env!("CARGO_PKG_VERSION"))
        .to_owned();
    let uptime_ms = r.integer("uptime_ms", 0, i64::MAX).unwrap_or(0) as u64;
    let delivery = match r.table("delivery") {
        Some(t) => read_delivery(t, r),
        None => DeliveryStats::default(),
    };
    let limits = read_limits(r);
    Settings {
        job,
        config,
        sequence,
        context: FixedContext {
            at_ms: Some(at_ms),
            scheduled_ms: Some(scheduled_ms),
            invocation_id: Some(invocation_id),
            hostname: Some(hostname),
            // A case pins "no task id / region" too: the test must not see the machine's.
            task_id,
            region,
            host_version: Some(host_version),
            uptime_ms: Some(uptime_ms),
            delivery: Some(delivery),
        },
        limits,
    }
}

fn read_delivery(t: &Table, outer: &mut Reader<'_, '_>) -> DeliveryStats {
    let mut stats = DeliveryStats::default();
    let mut r = Reader::new(t, Scope::Section("delivery".into()), outer.problems);
    r.allow(&DeliveryStats::KEYS);
    for key in DeliveryStats::KEYS {
        if let Some(n) = r.integer(key, 0, i64::MAX) {
            stats.set(key, n as u64);
        }
    }
    r.finish();
    stats
}

fn read_case(
    t: &Table,
    position: usize,
    names: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> Option<Case> {
    let before = problems.len();
    let mut r = Reader::new(t, Scope::Top, problems);
    r.allow(CASE_KEYS);
    let name = r
        .required_string("name", "\"emits one event\"")
        .map(str::trim);
    if let Some(n) = name {
        if n.is_empty() {
            r.problem("name", None, "empty name; give every case a name");
        } else if !names.insert(n.to_owned()) {
            r.problem(
                "name",
                Some(n),
                "duplicate case name; case names must be unique",
            );
        }
    }
    let settings = read_settings(&mut r, position);
    let expect = match r.table("expect") {
        Some(e) => {
            let mut er = Reader::new(e, Scope::Section("expect".into()), r.problems);
            er.allow(EXPECT_KEYS);
            let expect = Expect::read(&mut er);
            er.finish();
            expect
        }
        None => Expect::Success,
    };
    r.finish();
    if problems.len() != before {
        return None;
    }
    Some(Case {
        name: name?.to_owned(),
        job: settings.job,
        config: settings.config,
        sequence: settings.sequence,
        context: settings.context,
        limits: settings.limits,
        expect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PayloadKind;
    use crate::harness::expect::OutputExpect;

    fn parse(text: &str) -> Result<Suite, CasesError> {
        Suite::parse(text, Path::new("dir/cwpub-test.toml"))
    }

    #[test]
    fn the_setting_keys_are_the_case_keys_less_name_and_expect() {
        let case: BTreeSet<&str> = CASE_KEYS.iter().copied().collect();
        let settings: BTreeSet<&str> = SETTING_KEYS.iter().copied().collect();
        assert_eq!(
            case.difference(&settings).copied().collect::<Vec<_>>(),
            ["expect", "name"]
        );
        for key in config::job::LIMIT_KEYS {
            assert!(settings.contains(key), "cases may set the job limit {key}");
        }
    }

    #[test]
    fn a_full_case_file_reads_with_defaults_merged() {
        let suite = parse(
            r#"
guest = "target/guest.wasm"
build = ["cargo", "build"]

[defaults]
hostname = "web-1"
config = { zeta = "1", alpha = "2" }

[[case]]
name = "defaults only"

[[case]]
name = "everything"
job = "hb"
at = 2026-03-01T12:00:00Z
scheduled_at = "2026-03-01T11:59:59Z"
sequence = 7
invocation_id = "abc"
task_id = "t-1"
region = "eu-west-1"
host_version = "9.9.9"
uptime_ms = 1500
timeout = "500ms"
memory_mb = 16
delivery = { events_dropped = 2, requests = 3 }
config = { service = "orders-api", field.team = "payments" }
expect.kind = "json-log"
expect.json = [{ service = "orders-api" }]
"#,
        )
        .expect("valid");
        assert_eq!(
            suite.guest,
            Some(GuestSource::Path("dir/target/guest.wasm".into()))
        );
        assert_eq!(
            suite.build.as_deref(),
            Some(&["cargo".to_owned(), "build".to_owned()][..])
        );
        let [first, second] = &suite.cases[..] else {
            panic!("two cases")
        };
        assert_eq!(first.job, DEFAULT_JOB);
        assert_eq!(
            first.config,
            [("zeta".into(), "1".into()), ("alpha".into(), "2".into())],
            "file order"
        );
        assert_eq!(first.context.hostname.as_deref(), Some("web-1"));
        assert_eq!(first.context.at_ms, Some(DEFAULT_AT_MS));
        assert_eq!(
            first.context.invocation_id.as_deref(),
            Some("00000000-0000-4000-8000-000000000001")
        );
        assert_eq!(first.context.task_id, None);
        assert_eq!(first.expect, Expect::Success);
        assert_eq!(first.limits, RunLimits::default());

        assert_eq!(second.job, "hb");
        assert_eq!(
            second.config,
            [
                ("service".into(), "orders-api".into()),
                ("field.team".into(), "payments".into())
            ],
            "the case's config replaces the default one"
        );
        assert_eq!(second.context.hostname.as_deref(), Some("web-1"));
        assert_eq!(second.context.at_ms, Some(1_772_366_400_000));
        assert_eq!(second.context.scheduled_ms, Some(1_772_366_399_000));
        assert_eq!(second.sequence, 7);
        assert_eq!(second.context.task_id.as_deref(), Some("t-1"));
        assert_eq!(
            second
                .context
                .delivery
                .map(|d| (d.events_dropped, d.requests)),
            Some((2, 3))
        );
        assert_eq!(
            second.limits.deadline,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(second.limits.max_memory_bytes, 16 << 20);
        assert_eq!(
            second.expect,
            Expect::Output(OutputExpect {
                kind: Some(PayloadKind::JsonLog),
                json: Some(vec![serde_json::json!({"service": "orders-api"})]),
                ..OutputExpect::default()
            })
        );
    }

    #[test]
    fn every_problem_names_the_file_the_case_and_the_key() {
        let err = parse(
            r#"
gest = "x.wasm"
[defaults]
hostnme = "h"
[[case]]
name = "typo"
expect.evnts = ["x"]
[[case]]
config = { n = 1 }
at = "yesterday"
memory_mb = 0
delivery = { dropped = 1 }
expect = { error = "boom", kind = "text" }
[[case]]
name = "typo"
expect = { error = "panic", count = 1 }
"#,
        )
        .unwrap_err();
        let all = err.lines.join("\n");
        let expected = [
            "dir/cwpub-test.toml: gest: unknown key (did you mean \"guest\"?)",
            "dir/cwpub-test.toml: defaults.hostnme: unknown key (did you mean \"hostname\"?)",
            "dir/cwpub-test.toml: case \"typo\": expect.evnts: unknown key (did you mean \"events\"?)",
            "dir/cwpub-test.toml: case #2: name: missing required key",
            "dir/cwpub-test.toml: case #2: config.n: values must be strings",
            "dir/cwpub-test.toml: case #2: at: \"yesterday\" is not a time",
            "dir/cwpub-test.toml: case #2: memory_mb: 0 is out of range",
            "dir/cwpub-test.toml: case #2: delivery.dropped: unknown key",
            "dir/cwpub-test.toml: case #2: expect.kind \"text\": unknown payload kind",
            "dir/cwpub-test.toml: case #2: expect.error \"boom\": unknown failure kind",
            "dir/cwpub-test.toml: case \"typo\": name \"typo\": duplicate case name",
            "dir/cwpub-test.toml: case \"typo\": expect.error: a case expects either a failure or output",
        ];
        for line in expected {
            assert!(
                err.lines.iter().any(|l| l.starts_with(line)),
                "missing {line:?} in:\n{all}"
            );
        }
    }

    #[test]
    fn syntax_errors_and_missing_cases_are_reported() {
        let err = parse("[[case]\nname = 1").unwrap_err();
        assert!(
            err.lines[0].starts_with("dir/cwpub-test.toml: TOML syntax error"),
            "{err}"
        );
        let err = parse("guest = \"builtin:heartbeat\"").unwrap_err();
        assert!(err.lines[0].contains("no cases"), "{err}");
        let err = parse("[case]\nname = \"x\"").unwrap_err();
        assert!(
            err.lines[0].contains("write [[case]] rather than [case]"),
            "{err}"
        );
        let err = parse("guest = \"builtin:nope\"\n[[case]]\nname = \"x\"").unwrap_err();
        assert!(err.lines[0].contains("unknown built-in guest"), "{err}");
    }
}
