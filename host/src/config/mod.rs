//! The daemon's configuration file: TOML text → a typed, fully validated
//! [`Config`], with environment overrides (`CWPUB_*`, taken as an injected map)
//! and every problem reported at once, each naming the file, the job and the key.
//!
//! Everything that can be checked without compiling a guest is checked here:
//! syntax, unknown keys, types and ranges, schedules, builtin names, that a
//! `.wasm` file exists, CloudWatch log group/stream names after placeholder
//! expansion, unique job names, the sink's region, and the `[delivery]` table
//! (via [`DeliveryConfig::validate`]). Each job's target is fixed here, so a
//! guest can only ever write to the log group and stream its job names.

mod env;
mod error;
mod names;
pub(crate) mod order;
pub(crate) mod reader;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::{Table, Value};

use crate::delivery::{AwsSettings, DeliveryConfig};
use crate::event::Target;
use crate::guest::{GuestSource, RunLimits};
use crate::schedule::Schedule;

pub use env::{
    AWS_REGION_VARS, CWPUB_VARS, ENV_ENDPOINT_URL, ENV_HOSTNAME, ENV_INSTANCE_ID, ENV_LOG_FORMAT,
    ENV_LOG_LEVEL, ENV_OBSERVE_ENABLED, ENV_OBSERVE_LISTEN, ENV_REGION, ENV_SINK_KIND, ENV_TASK_ID,
    Env, HostIdentity, process_env,
};
pub use error::{ConfigError, JobRef, Problem};
pub use names::{
    MAX_NAME_CHARS, PLACEHOLDERS, PlaceholderValues, check_log_group, check_log_stream, expand,
};

pub(crate) use error::Problems;
use order::KeyOrder;
use reader::Reader;

/// Default `[observe] listen` address.
pub const DEFAULT_OBSERVE_LISTEN: &str = "127.0.0.1:9464";
/// Default `log_stream` template of a job.
pub const DEFAULT_LOG_STREAM: &str = "{hostname}-{job}";
/// Default `[shutdown] drain_deadline`.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Longest job name, in characters.
pub const MAX_JOB_NAME: usize = 64;

const TOP_KEYS: &[&str] = &["sink", "jobs", "delivery", "observe", "log", "shutdown"];
const SINK_KEYS: &[&str] = &["kind", "region", "endpoint_url"];
const JOB_KEYS: &[&str] = &[
    "name",
    "guest",
    "schedule",
    "log_group",
    "log_stream",
    "config",
    "timeout",
    "memory_mb",
    "max_events",
    "max_output_bytes",
    "max_stdio_bytes",
    "run_at_start",
    "jitter",
];
const OBSERVE_KEYS: &[&str] = &["enabled", "listen"];
const LOG_KEYS: &[&str] = &["format", "level"];
const SHUTDOWN_KEYS: &[&str] = &["drain_deadline"];

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as given.
    pub path: PathBuf,
    /// Directory relative guest paths are resolved against (the file's directory).
    pub base_dir: PathBuf,
    /// Where events go.
    pub sink: SinkConfig,
    /// The jobs, in file order (at least one).
    pub jobs: Vec<JobConfig>,
    /// Delivery-stage settings (`[delivery]`), validated.
    pub delivery: DeliveryConfig,
    /// The self-observability HTTP endpoint (`[observe]`).
    pub observe: ObserveConfig,
    /// Log output (`[log]`).
    pub log: LogConfig,
    /// Graceful-shutdown settings (`[shutdown]`).
    pub shutdown: ShutdownConfig,
    /// The host identity used for placeholders (and host facts).
    pub host: HostIdentity,
}

/// Which sink delivers events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// CloudWatch Logs via the delivery stage.
    CloudWatch,
    /// One message per line on stdout, exactly as it would be sent.
    Stdout,
}

impl SinkKind {
    /// The name used in config (`"cloudwatch"` / `"stdout"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::CloudWatch => "cloudwatch",
            SinkKind::Stdout => "stdout",
        }
    }
}

/// `[sink]` after environment overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// The sink (default `stdout`; `CWPUB_SINK_KIND` overrides).
    pub kind: SinkKind,
    /// AWS region: `CWPUB_REGION`, else `[sink] region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// Endpoint URL override (LocalStack/moto): `CWPUB_ENDPOINT_URL`, else `[sink] endpoint_url`.
    pub endpoint_url: Option<String>,
}

impl SinkConfig {
    /// The region and endpoint in the form the delivery stage takes.
    pub fn aws_settings(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

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
    /// The only log group and stream this job's events go to (placeholders expanded).
    pub target: Arc<Target>,
    /// String key/values handed to the guest, in file order.
    pub config: Vec<(String, String)>,
    /// Per-run limits (defaults from the guest contract, overridable per job).
    pub limits: RunLimits,
    /// Run once at start, before the first scheduled tick.
    pub run_at_start: bool,
    /// Random delay `[0, jitter)` added to each scheduled run.
    pub jitter: Duration,
}

/// `[observe]`: the HTTP endpoint with `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserveConfig {
    /// Whether to serve it (default true).
    pub enabled: bool,
    /// Address to listen on (default 127.0.0.1:9464).
    pub listen: SocketAddr,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`: the host's own structured logs (always on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format (default human).
    pub format: LogFormat,
    /// Level or filter directives, e.g. `"info"` or `"info,cwpub=debug"` (default `"info"`; `RUST_LOG` wins).
    pub level: String,
}

/// `[shutdown]`: what happens on SIGTERM/SIGINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long delivery may keep sending buffered events after the last run finished (default 10 s).
    pub drain_deadline: Duration,
}

/// Reads and validates the config file at `path`; `env` supplies overrides and the host identity.
pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path, env),
        Err(e) => {
            let mut p = Problems::new(path.display().to_string());
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "config file not found; check the path (see examples/quickstart.toml)"
                        .to_string()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "cannot read config file: permission denied".to_string()
                }
                _ => format!("cannot read config file: {e}"),
            };
            p.push(None, None, None, hint);
            Err(p.into_error())
        }
    }
}

/// Validates config `text` as if read from `path` (used for messages and to resolve relative guest paths).
pub fn parse(text: &str, path: &Path, env: &Env) -> Result<Config, ConfigError> {
    let mut problems = Problems::new(path.display().to_string());
    let root: Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(None, None, None, syntax_message(text, &e));
            return Err(problems.into_error());
        }
    };
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let host = HostIdentity::detect(env);

    let mut top = Reader::new(&root, "", None, TOP_KEYS, &mut problems);
    let sink_t = top.table("sink");
    let delivery_t = top.table("delivery");
    let observe_t = top.table("observe");
    let log_t = top.table("log");
    let shutdown_t = top.table("shutdown");
    let jobs_v = top.raw("jobs");
    top.finish();

    let empty = Table::new();
    let sink = read_sink(sink_t.unwrap_or(&empty), env, &mut problems);
    let delivery = read_delivery(delivery_t, &mut problems);
    let observe = read_observe(observe_t.unwrap_or(&empty), env, &mut problems);
    let log = read_log(log_t.unwrap_or(&empty), env, &mut problems);
    let shutdown = read_shutdown(shutdown_t.unwrap_or(&empty), &mut problems);

    let order = config_key_order(text);
    let mut jobs = Vec::new();
    match jobs_v {
        None => problems.push(
            None,
            Some("jobs"),
            None,
            "no jobs defined; add at least one [[jobs]] table with name, guest, schedule and log_group",
        ),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                problems.push(None, Some("jobs"), None, "no jobs defined; add at least one [[jobs]] table");
            }
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let position = i + 1;
                let Value::Table(t) = item else {
                    problems.push(
                        Some(&JobRef::Position(position)),
                        None,
                        None,
                        format!("expected a [[jobs]] table, found {}", reader::describe(item)),
                    );
                    continue;
                };
                let keys = order.get(i).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(job) = read_job(t, position, keys, &base_dir, &host, &mut seen, &mut problems) {
                    jobs.push(job);
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

    if !problems.is_empty() {
        return Err(problems.into_error());
    }
    let (Some(sink), Some(delivery), Some(observe), Some(log), Some(shutdown)) =
        (sink, delivery, observe, log, shutdown)
    else {
        // Every `None` above recorded a problem; this is unreachable in practice.
        problems.push(None, None, None, "invalid configuration");
        return Err(problems.into_error());
    };
    Ok(Config {
        path: path.to_path_buf(),
        base_dir,
        sink,
        jobs,
        delivery,
        observe,
        log,
        shutdown,
        host,
    })
}

/// `TOML syntax error at line L, column C: message`.
pub(crate) fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("TOML syntax error at line {line}, column {col}: {msg}")
        }
        None => format!("TOML syntax error: {msg}"),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn read_sink(t: &Table, env: &Env, problems: &mut Problems) -> Option<SinkConfig> {
    let mut r = Reader::new(t, "sink.", None, SINK_KEYS, problems);
    let kind_file = r.string("kind");
    let region_file = r.string("region");
    let endpoint_file = r.string("endpoint_url");
    r.finish();
    let mut ok = true;

    let env_key = |name: &str| format!("environment variable {name}");
    let (kind_text, kind_key) = match env::get(env, ENV_SINK_KIND) {
        Some(v) => (Some(v), env_key(ENV_SINK_KIND)),
        None => (kind_file, "sink.kind".to_string()),
    };
    let kind = match kind_text.map(str::trim) {
        None => SinkKind::Stdout,
        Some(k) if k.eq_ignore_ascii_case("cloudwatch") => SinkKind::CloudWatch,
        Some(k) if k.eq_ignore_ascii_case("stdout") => SinkKind::Stdout,
        Some(k) => {
            problems.push(
                None,
                Some(&kind_key),
                Some(k),
                "unknown sink kind; use \"cloudwatch\" or \"stdout\"",
            );
            ok = false;
            SinkKind::Stdout
        }
    };

    let mut region_src = None;
    if let Some(v) = env::get(env, ENV_REGION) {
        region_src = Some((v, env_key(ENV_REGION)));
    } else if let Some(v) = region_file {
        region_src = Some((v, "sink.region".to_string()));
    } else if let Some((name, v)) = AWS_REGION_VARS
        .iter()
        .find_map(|n| env::get(env, n).map(|v| (*n, v)))
    {
        region_src = Some((v, env_key(name)));
    }
    let region = checked(
        region_src,
        valid_region,
        "invalid AWS region; expected a region code like \"us-east-1\"",
        problems,
        &mut ok,
    );
    if kind == SinkKind::CloudWatch && region.is_none() && ok {
        problems.push(
            None,
            Some("sink.region"),
            None,
            "the cloudwatch sink needs an AWS region; set [sink] region = \"us-east-1\", or CWPUB_REGION or AWS_REGION in the environment",
        );
        ok = false;
    }

    let endpoint_src = match env::get(env, ENV_ENDPOINT_URL) {
        Some(v) => Some((v, env_key(ENV_ENDPOINT_URL))),
        None => endpoint_file.map(|v| (v, "sink.endpoint_url".to_string())),
    };
    let endpoint_url = checked(
        endpoint_src,
        valid_endpoint,
        "invalid endpoint URL; expected http:// or https:// followed by a host, e.g. \"http://127.0.0.1:4566\"",
        problems,
        &mut ok,
    );
    ok.then_some(SinkConfig {
        kind,
        region,
        endpoint_url,
    })
}

/// The trimmed value from `source` (value, key it came from) if `valid`
/// accepts it; otherwise records `message` against that key and clears `ok`.
fn checked(
    source: Option<(&str, String)>,
    valid: fn(&str) -> bool,
    message: &str,
    problems: &mut Problems,
    ok: &mut bool,
) -> Option<String> {
    let (value, key) = source?;
    let value = value.trim();
    if valid(value) {
        return Some(value.to_string());
    }
    problems.push(None, Some(&key), Some(value), message);
    *ok = false;
    None
}

/// A region code shaped like every AWS region (`us-east-1`, `us-gov-west-1`,
/// `eusc-de-east-1`): three or more hyphen-separated lowercase words, the
/// last one a number.
fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    r.len() <= 32
        && parts.len() >= 3
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
}

fn valid_endpoint(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.starts_with(':') && !u.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn read_delivery(t: Option<&Table>, problems: &mut Problems) -> Option<DeliveryConfig> {
    let Some(t) = t else {
        return Some(DeliveryConfig::default());
    };
    let cfg: DeliveryConfig = match Value::Table(t.clone()).try_into() {
        Ok(c) => c,
        Err(e) => {
            let e: toml::de::Error = e;
            let msg = e.message().trim().replace('\n', "; ");
            problems.push(None, None, None, format!("[delivery] {msg}"));
            return None;
        }
    };
    match cfg.validate() {
        Ok(()) => Some(cfg),
        Err(errs) => {
            for e in errs {
                problems.push(None, None, None, format!("[delivery] {e}"));
            }
            None
        }
    }
}

fn read_observe(t: &Table, env: &Env, problems: &mut Problems) -> Option<ObserveConfig> {
    let before = problems.len();
    let mut r = Reader::new(t, "observe.", None, OBSERVE_KEYS, problems);
    let enabled_file = r.bool("enabled");
    let listen_file = r.string("listen");
    r.finish();
    let mut ok = problems.len() == before;

    let enabled = match env::get(env, ENV_OBSERVE_ENABLED) {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                let key = format!("environment variable {ENV_OBSERVE_ENABLED}");
                problems.push(None, Some(&key), Some(v), "expected true or false");
                ok = false;
                true
            }
        },
        None => enabled_file.unwrap_or(true),
    };
    let (listen_text, key) = match env::get(env, ENV_OBSERVE_LISTEN) {
        Some(v) => (v, format!("environment variable {ENV_OBSERVE_LISTEN}")),
        None => (
            listen_file.unwrap_or(DEFAULT_OBSERVE_LISTEN),
            "observe.listen".to_string(),
        ),
    };
    let listen = match listen_text.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(
                None,
                Some(&key),
                Some(listen_text),
                "expected an IP address and port like \"127.0.0.1:9464\" (\"0.0.0.0:9464\" listens on every interface)",
            );
            None
        }
    };
    match listen {
        Some(listen) if ok => Some(ObserveConfig { enabled, listen }),
        _ => None,
    }
}

fn read_log(t: &Table, env: &Env, problems: &mut Problems) -> Option<LogConfig> {
    let before = problems.len();
    let mut r = Reader::new(t, "log.", None, LOG_KEYS, problems);
    let format_file = r.string("format");
    let level_file = r.string("level");
    r.finish();
    let mut ok = problems.len() == before;

    let (format_text, key) = match env::get(env, ENV_LOG_FORMAT) {
        Some(v) => (Some(v), format!("environment variable {ENV_LOG_FORMAT}")),
        None => (format_file, "log.format".to_string()),
    };
    let format = match format_text.map(|s| s.trim().to_ascii_lowercase()) {
        None => LogFormat::Human,
        Some(f) if f == "human" || f == "text" => LogFormat::Human,
        Some(f) if f == "json" => LogFormat::Json,
        Some(_) => {
            problems.push(
                None,
                Some(&key),
                format_text,
                "unknown log format; use \"human\" or \"json\"",
            );
            ok = false;
            LogFormat::Human
        }
    };
    let (level, key) = match env::get(env, ENV_LOG_LEVEL) {
        Some(v) => (v, format!("environment variable {ENV_LOG_LEVEL}")),
        None => (level_file.unwrap_or("info"), "log.level".to_string()),
    };
    if let Err(e) = check_log_level(level) {
        problems.push(None, Some(&key), Some(level), e);
        ok = false;
    }
    ok.then(|| LogConfig {
        format,
        level: level.trim().to_string(),
    })
}

/// Accepts a level (`trace`…`error`, `off`) or comma-separated `target=level` directives.
pub fn check_log_level(level: &str) -> Result<(), String> {
    use tracing_subscriber::filter::LevelFilter;
    let hint = "expected a level (trace, debug, info, warn, error, off) or directives like \"info,cwpub=debug\"";
    if level.trim().is_empty() {
        return Err(format!("empty log level; {hint}"));
    }
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lvl = part.rsplit_once('=').map_or(part, |(_, l)| l);
        if lvl.trim().parse::<LevelFilter>().is_err() {
            return Err(format!("{part:?} is not a level; {hint}"));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("{e}; {hint}"))
}

fn read_shutdown(t: &Table, problems: &mut Problems) -> Option<ShutdownConfig> {
    let mut r = Reader::new(t, "shutdown.", None, SHUTDOWN_KEYS, problems);
    let present = t.contains_key("drain_deadline");
    let d = r.duration(
        "drain_deadline",
        Duration::ZERO,
        Duration::from_secs(15 * 60),
    );
    r.finish();
    match (present, d) {
        (true, None) => None,
        (_, d) => Some(ShutdownConfig {
            drain_deadline: d.unwrap_or(DEFAULT_DRAIN_DEADLINE),
        }),
    }
}

fn read_job(
    t: &Table,
    position: usize,
    config_order: &[String],
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
    let mut r = Reader::new(t, "", Some(job_ref.clone()), JOB_KEYS, problems);

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
    let log_group = r
        .required_string("log_group", "\"/cwpub/heartbeat\"")
        .and_then(|g| target_name(&mut r, "log_group", g, check_log_group));
    let stream_template = match t.get("log_stream") {
        None => Some(DEFAULT_LOG_STREAM),
        Some(_) => r.string("log_stream"),
    };
    let log_stream =
        stream_template.and_then(|s| target_name(&mut r, "log_stream", s, check_log_stream));

    let config = match r.table("config") {
        Some(ct) => read_job_config(ct, config_order, &mut r),
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
        target: Arc::new(Target {
            log_group: log_group?,
            log_stream: log_stream?,
        }),
        config,
        limits,
        run_at_start,
        jitter,
    })
}

/// A string map handed to a guest (`[jobs.config]`, a test case's `config`):
/// dotted keys and sub-tables flatten to `a.b`, `order` (file order) first;
/// every non-string value or empty key is a problem.
pub(crate) fn read_job_config(
    t: &Table,
    order: &[String],
    r: &mut Reader<'_, '_>,
) -> Vec<(String, String)> {
    // Dotted keys (`field.team = "x"`) and sub-tables flatten to "field.team".
    let mut flat: Vec<(String, &Value)> = Vec::new();
    flatten(t, "", &mut flat);
    // File order first (from the order probe), then anything the probe missed.
    let mut out = Vec::with_capacity(flat.len());
    let mut keys: Vec<&str> = order.iter().map(String::as_str).collect();
    for (k, _) in &flat {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    for k in keys {
        let Some((_, value)) = flat.iter().find(|(fk, _)| fk == k) else {
            continue;
        };
        let key = format!("config.{k}");
        match value {
            _ if k.split('.').any(|part| part.trim().is_empty()) => {
                r.problem(&key, None, "empty key; give every config entry a name")
            }
            Value::String(v) => out.push((k.to_string(), v.clone())),
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

/// The per-run limit keys a job (or a test case) may set (those [`read_limits`] reads).
#[cfg(test)]
pub(crate) const LIMIT_KEYS: [&str; 5] = [
    "timeout",
    "memory_mb",
    "max_events",
    "max_output_bytes",
    "max_stdio_bytes",
];

/// Reads the [`LIMIT_KEYS`] of a job or test case over the contract's defaults.
pub(crate) fn read_limits(r: &mut Reader<'_, '_>) -> RunLimits {
    let mut limits = RunLimits::default();
    if let Some(d) = r.duration(
        "timeout",
        Duration::from_millis(1),
        Duration::from_secs(3600),
    ) {
        limits.deadline = d;
    }
    let max_mb = (RunLimits::MAX_MEMORY_CEILING >> 20) as i64;
    if let Some(mb) = r.integer("memory_mb", 1, max_mb) {
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

/// The flattened keys of each job's `[jobs.config]` table in file order
/// (empty where it cannot tell).
fn config_key_order(text: &str) -> Vec<Vec<String>> {
    let order = KeyOrder::of(text);
    order
        .get("jobs")
        .map(|jobs| {
            jobs.items()
                .iter()
                .map(|job| {
                    job.get("config")
                        .map(KeyOrder::flat_keys)
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod region_tests {
    use super::valid_region;

    #[test]
    fn region_codes_are_checked_for_shape() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(valid_region(ok), "{ok} is a region");
        }
        for bad in [
            "US East",
            "us-east",
            "mars-north-9x",
            "us-east-l",
            "us--east-1",
            "-us-east-1",
            "useast1",
            "",
        ] {
            assert!(!valid_region(bad), "{bad} is not a region");
        }
    }
}
