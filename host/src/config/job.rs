//! `[[jobs]]`: each job's name, guest, schedule, sinks, CloudWatch log group
//! and stream (placeholders expanded and checked here, so a guest can only
//! ever write where its job says), string config handed to the guest in
//! file order, and per-run limits.
//!
//! Adding a key: read it in [`read_job`] (`r.string("key")`, `r.integer(..)`,
//! `r.duration(..)`) and add a field to [`JobConfig`]; reading a key is what
//! makes it allowed. A limit that `invoke` also takes gets its range as a
//! constant here, used by both.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::{Table, Value};

use crate::env::HostIdentity;
use crate::guest::{GuestSource, RunLimits};
use crate::schedule::Schedule;

use super::error::{JobRef, Problems};
use super::names::{PlaceholderValues, check_log_group, check_log_stream, expand};
use super::reader::{self, Reader, Scope};

/// Default `log_stream` template of a job.
pub const DEFAULT_LOG_STREAM: &str = "{hostname}-{job}";
/// Longest job name, in characters.
pub const MAX_JOB_NAME: usize = 64;
/// Allowed run deadlines (`timeout`, `invoke --timeout-ms`), in milliseconds.
pub const TIMEOUT_MS: RangeInclusive<u64> = 1..=3_600_000;
/// Allowed linear-memory caps (`memory_mb`, `invoke --memory-mb`), in MiB.
pub const MEMORY_MB: RangeInclusive<u64> = 1..=(RunLimits::MAX_MEMORY_CEILING >> 20) as u64;

/// One `[[jobs]]` entry, validated.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Unique job name (1–64 of `A-Z a-z 0-9 . _ -`).
    pub name: String,
    /// Position among the `[[jobs]]` tables, from 1.
    pub position: usize,
    /// The guest to run; a `Path` is absolute or joined to the config file's
    /// directory, and the file existed at load time.
    pub guest: GuestSource,
    /// When it runs.
    pub schedule: Schedule,
    /// The sinks its events go to, by name (`sink` or `sinks`; after
    /// loading never empty: a job that names none has the default sink).
    pub sinks: Vec<Arc<str>>,
    /// The only log group its events go to at CloudWatch sinks (placeholders
    /// expanded); required when it sends to one.
    pub log_group: Option<String>,
    /// Its log stream at CloudWatch sinks (placeholders expanded).
    pub log_stream: String,
    /// String key/values handed to the guest, in file order.
    pub config: Vec<(String, String)>,
    /// Per-run limits (defaults from the guest contract, overridable per job).
    pub limits: RunLimits,
    /// Run once at start, before the first scheduled tick.
    pub run_at_start: bool,
    /// Random delay `[0, jitter)` added to each scheduled run.
    pub jitter: Duration,
}

/// Reads the `jobs` value of the file: every `[[jobs]]` table, names unique.
pub(super) fn read_all(
    jobs: Option<&Value>,
    base_dir: &Path,
    host: &HostIdentity,
    problems: &mut Problems,
) -> Vec<JobConfig> {
    let mut out = Vec::new();
    match jobs {
        None => problems.push(
            None,
            Some("jobs"),
            None,
            "no jobs defined; add at least one [[jobs]] table with name, guest, schedule and log_group",
        ),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                problems.push(
                    None,
                    Some("jobs"),
                    None,
                    "no jobs defined; add at least one [[jobs]] table",
                );
            }
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let position = i + 1;
                let Value::Table(t) = item else {
                    problems.push(
                        Some(&JobRef::Position(position)),
                        None,
                        None,
                        format!(
                            "expected a [[jobs]] table, found {}",
                            reader::describe(item)
                        ),
                    );
                    continue;
                };
                if let Some(job) = read_job(t, position, base_dir, host, &mut seen, problems) {
                    out.push(job);
                }
            }
        }
        Some(other) => problems.push(
            None,
            Some("jobs"),
            None,
            format!(
                "expected [[jobs]] tables (an array of tables), found {}; write [[jobs]] rather than [jobs]",
                reader::describe(other)
            ),
        ),
    }
    out
}

/// Reads one `[[jobs]]` table at `position`; `seen` holds the names so far.
fn read_job(
    t: &Table,
    position: usize,
    base_dir: &Path,
    host: &HostIdentity,
    seen: &mut BTreeMap<String, usize>,
    problems: &mut Problems,
) -> Option<JobConfig> {
    // Name the job in messages by its name when it has a usable one.
    let name_value = t.get("name").and_then(Value::as_str).map(str::trim);
    let job_ref = match name_value {
        Some(n) if !n.is_empty() => JobRef::Named(n.to_string()),
        _ => JobRef::Position(position),
    };
    let before = problems.len();
    let mut r = Reader::new(t, Scope::Job(job_ref), problems);

    let name = r.required_string("name", "\"heartbeat\"").map(str::trim);
    if let Some(name) = name {
        if let Err(e) = check_job_name(name) {
            r.problem("name", Some(name), e);
        } else if let Some(first) = seen.get(name) {
            let msg = format!(
                "duplicate job name (job #{first} has the same name); job names must be unique"
            );
            r.problem("name", None, msg);
        } else {
            seen.insert(name.to_string(), position);
        }
    }

    let guest = r
        .required_string("guest", "\"builtin:heartbeat\"")
        .and_then(|g| match resolve_guest(g, base_dir) {
            Ok(src) => Some(src),
            Err(e) => {
                r.problem("guest", Some(g), e);
                None
            }
        });

    let schedule =
        r.required_string("schedule", "\"@every 1m\"")
            .and_then(|s| match Schedule::parse(s) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.problem("schedule", Some(s), e.to_string());
                    None
                }
            });

    let values = PlaceholderValues {
        hostname: &host.hostname,
        job: name.unwrap_or(""),
        task_id: host.task_id.as_deref(),
        instance_id: host.instance_id.as_deref(),
    };
    let target_name = |r: &mut Reader<'_, '_>,
                       key: &str,
                       template: &str,
                       check: fn(&str) -> Result<(), String>| {
        match expand(template, &values).and_then(|n| {
            check(&n).map_err(|e| {
                if n != template {
                    format!("{e} (expanded to {n:?})")
                } else {
                    e
                }
            })?;
            Ok(n)
        }) {
            Ok(n) => Some(n),
            Err(e) => {
                r.problem(key, Some(template), e);
                None
            }
        }
    };
    let sinks = read_sinks(&mut r);
    let log_group = r
        .string("log_group")
        .map(|g| target_name(&mut r, "log_group", g, check_log_group));
    let stream_template = match r.raw("log_stream") {
        None => Some(DEFAULT_LOG_STREAM),
        Some(_) => r.string("log_stream"),
    };
    let log_stream =
        stream_template.and_then(|s| target_name(&mut r, "log_stream", s, check_log_stream));

    let config = match r.table("config") {
        Some(ct) => read_job_config(ct, &mut r),
        None => Vec::new(),
    };

    let limits = read_limits(&mut r);
    let run_at_start = r.bool("run_at_start").unwrap_or(false);
    let jitter = r
        .duration("jitter", Duration::ZERO, Duration::from_secs(3600))
        .unwrap_or_default();
    if let Some(interval) = schedule.as_ref().and_then(Schedule::interval)
        && jitter >= interval
        && !jitter.is_zero()
    {
        let msg = format!(
            "jitter must be shorter than the schedule's interval ({})",
            humantime::format_duration(interval)
        );
        let shown = humantime::format_duration(jitter).to_string();
        r.problem("jitter", Some(&shown), msg);
    }
    r.finish();

    if problems.len() != before {
        return None;
    }
    Some(JobConfig {
        name: name?.to_string(),
        position,
        guest: guest?,
        schedule: schedule?,
        sinks: sinks?,
        log_group: log_group.flatten(),
        log_stream: log_stream?,
        config,
        limits,
        run_at_start,
        jitter,
    })
}

/// The sinks a job names: `sink = "name"` or `sinks = ["a", "b"]` (not
/// both); whether they exist is checked once every sink is read.
fn read_sinks(r: &mut Reader<'_, '_>) -> Option<Vec<Arc<str>>> {
    let one = r.raw("sink");
    let many = r.raw("sinks");
    match (one, many) {
        (Some(_), Some(_)) => {
            r.problem(
                "sinks",
                None,
                "give either sink = \"name\" or sinks = [\"a\", \"b\"], not both",
            );
            None
        }
        (Some(Value::String(s)), None) => Some(vec![s.trim().into()]),
        (None, Some(Value::Array(items))) => {
            let mut out: Vec<Arc<str>> = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if out.iter().any(|o| **o == *s.trim()) => {
                        r.problem("sinks", Some(s), "named twice; name each sink once");
                        return None;
                    }
                    Value::String(s) => out.push(s.trim().into()),
                    other => {
                        let msg = format!(
                            "expected sink names (strings), found {}",
                            reader::describe(other)
                        );
                        r.problem("sinks", None, msg);
                        return None;
                    }
                }
            }
            if out.is_empty() {
                r.problem(
                    "sinks",
                    None,
                    "empty; name at least one sink, or remove the key for the default sink",
                );
                return None;
            }
            Some(out)
        }
        (None, None) => Some(Vec::new()),
        (Some(other), None) => {
            let msg = format!("expected a sink name, found {}", reader::describe(other));
            r.problem("sink", None, msg);
            None
        }
        (None, Some(other)) => {
            let msg = format!(
                "expected a list of sink names, found {}",
                reader::describe(other)
            );
            r.problem("sinks", None, msg);
            None
        }
    }
}

/// The per-run limit keys a job (or a `cwpub test` case) may set (those [`read_limits`] reads).
#[cfg(test)]
pub(crate) const LIMIT_KEYS: [&str; 5] = [
    "timeout",
    "memory_mb",
    "max_events",
    "max_output_bytes",
    "max_stdio_bytes",
];

/// Reads the per-run limits of a job or a `cwpub test` case over the contract's defaults.
pub(crate) fn read_limits(r: &mut Reader<'_, '_>) -> RunLimits {
    let mut limits = RunLimits::default();
    let (min_ms, max_ms) = (*TIMEOUT_MS.start(), *TIMEOUT_MS.end());
    if let Some(d) = r.duration(
        "timeout",
        Duration::from_millis(min_ms),
        Duration::from_millis(max_ms),
    ) {
        limits.deadline = d;
    }
    let (min_mb, max_mb) = (*MEMORY_MB.start() as i64, *MEMORY_MB.end() as i64);
    if let Some(mb) = r.integer("memory_mb", min_mb, max_mb) {
        limits.max_memory_bytes = (mb as usize) << 20;
    }
    if let Some(n) = r.integer("max_events", 1, 1_000_000) {
        limits.max_events = n as usize;
    }
    if let Some(n) = r.integer("max_output_bytes", 1, 256 << 20) {
        limits.max_output_bytes = n as usize;
    }
    if let Some(n) = r.integer("max_stdio_bytes", 1, 16 << 20) {
        limits.max_stdio_bytes = n as usize;
    }
    limits
}

/// A string map handed to a guest (`[jobs.config]`, a `cwpub test` case's `config`)
/// as string pairs in file order; dotted keys
/// (`field.team = "x"`) and sub-tables flatten to `"field.team"`. Linear in
/// the number of keys (the TOML table keeps file order itself).
pub(crate) fn read_job_config(t: &Table, r: &mut Reader<'_, '_>) -> Vec<(String, String)> {
    let mut flat: Vec<(String, &Value)> = Vec::with_capacity(t.len());
    flatten(t, "", &mut flat);
    let mut seen: HashSet<&str> = HashSet::with_capacity(flat.len());
    let mut out = Vec::with_capacity(flat.len());
    for (k, value) in &flat {
        let key = format!("config.{k}");
        if !seen.insert(k.as_str()) {
            // `"a.b" = …` and `a.b = …` name the same flattened key.
            r.problem(
                &key,
                None,
                "duplicate key (written once quoted and once dotted); keep one",
            );
            continue;
        }
        match value {
            _ if k.split('.').any(|part| part.trim().is_empty()) => {
                r.problem(&key, None, "empty key; give every config entry a name")
            }
            Value::String(v) => out.push((k.clone(), v.clone())),
            Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {
                let shown = value.to_string();
                let last = k.rsplit('.').next().unwrap_or(k);
                r.problem(
                    &key,
                    None,
                    format!(
                        "values must be strings; quote it: {last} = \"{}\"",
                        shown.trim_matches('"')
                    ),
                )
            }
            other => r.problem(
                &key,
                None,
                format!("values must be strings, found {}", reader::describe(other)),
            ),
        }
    }
    out
}

fn flatten<'a>(t: &'a Table, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
    for (k, v) in t {
        let key = format!("{prefix}{k}");
        match v {
            Value::Table(sub) if !sub.is_empty() => flatten(sub, &format!("{key}."), out),
            v => out.push((key, v)),
        }
    }
}

/// Checks a job name: 1–64 characters from `A-Z a-z 0-9 . _ -`.
pub fn check_job_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("job name is empty".to_string());
    }
    if name.chars().count() > MAX_JOB_NAME {
        return Err(format!("job name is longer than {MAX_JOB_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {c:?} is not allowed in a job name; use only A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

/// Resolves `builtin:NAME` or a component path (relative to `base_dir`), checking the file exists.
pub fn resolve_guest(text: &str, base_dir: &Path) -> Result<GuestSource, String> {
    let text = text.trim();
    match GuestSource::parse(text).map_err(|e| e.message)? {
        GuestSource::Path(path) => {
            let full = if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            };
            match std::fs::metadata(&full) {
                Ok(m) if m.is_file() => Ok(GuestSource::Path(full)),
                Ok(_) => Err(format!(
                    "{} is not a file; give the path to a .wasm component",
                    full.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                    "component file not found at {} (relative paths are resolved against the config file's directory); build it or fix the path",
                    full.display()
                )),
                Err(e) => Err(format!("cannot read {}: {e}", full.display())),
            }
        }
        builtin => Ok(builtin),
    }
}
