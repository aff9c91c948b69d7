//! The daemon's configuration file: TOML text → a typed, fully validated
//! [`Config`], with environment overrides (`CWPUB_*`, taken from the injected
//! [`Env`] map) and every problem reported at once, each naming the file, the
//! job and the key.
//!
//! **One way of reading.** Every section is read by the same [`reader`]: typed
//! getters over the parsed TOML table that record a problem and carry on,
//! rather than serde, which stops at the first type error of a table and
//! does not name the key. The reader also learns each section's keys from what
//! the section reads, so unknown keys are found (with a "did you mean")
//! without a second key list. Key order comes from the TOML library itself
//! (`preserve_order`), so a job's `config` keeps file order in one pass.
//!
//! One file per section — [`sinks`], [`delivery`], [`observe`], [`log`],
//! [`shutdown`], [`job`] — each saying how to add a key to it. Everything that
//! can be checked without compiling a guest is checked here: syntax, unknown
//! keys, types and ranges, schedules, builtin names, that a `.wasm` file
//! exists, CloudWatch log group/stream names after placeholder expansion,
//! unique job names, that every sink a job names exists (and that a job sent
//! to CloudWatch has a log group), each sink's region and endpoint (by the
//! sink's own rules) and the delivery settings (by their `validate`).

pub mod delivery;
mod error;
pub mod job;
pub mod log;
mod names;
pub mod observe;
pub(crate) mod reader;
pub mod shutdown;
pub mod sinks;

use std::path::{Path, PathBuf};

use toml::Table;

use crate::delivery::DeliveryConfig;
use crate::guest::RuntimeOptions;

pub use crate::env::{
    AWS_REGION_VARS, CWPUB_VARS, ENV_ENDPOINT_URL, ENV_HOSTNAME, ENV_INSTANCE_ID, ENV_LOG_FORMAT,
    ENV_LOG_LEVEL, ENV_OBSERVE_ENABLED, ENV_OBSERVE_LISTEN, ENV_REGION, ENV_SINK_KIND, ENV_TASK_ID,
    Env, HostIdentity, process_env,
};
pub(crate) use error::Problems;
pub use error::{ConfigError, JobRef, Problem};
pub use job::{
    DEFAULT_LOG_STREAM, JobConfig, MAX_JOB_NAME, MEMORY_MB, TIMEOUT_MS, check_job_name,
    resolve_guest,
};
pub use log::{LogConfig, LogFormat, check_log_level};
pub use names::{
    MAX_NAME_CHARS, PLACEHOLDERS, PlaceholderValues, check_log_group, check_log_stream, expand,
};
pub use observe::{DEFAULT_OBSERVE_LISTEN, ObserveConfig};
pub use shutdown::{DEFAULT_DRAIN_DEADLINE, ShutdownConfig};
pub use sinks::{
    SinkConfig, SinkKind, SinkSettings, SinksConfig, check_sink_name, region_from_env,
};

use reader::{Reader, Scope};

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as given.
    pub path: PathBuf,
    /// Directory relative guest paths are resolved against (the file's directory).
    pub base_dir: PathBuf,
    /// Where events go: every sink, each with its delivery settings.
    pub sinks: SinksConfig,
    /// The jobs, in file order (at least one), each naming its sinks.
    pub jobs: Vec<JobConfig>,
    /// The `[delivery]` table, validated: every sink's defaults.
    pub delivery: DeliveryConfig,
    /// The AWS region guests see as a host fact: the default sink's, else
    /// the first CloudWatch sink's, else the environment's.
    pub region: Option<String>,
    /// Largest event the validation stage lets through (`[delivery]
    /// max_event_bytes`, the CloudWatch limit unless set lower).
    pub max_event_bytes: usize,
    /// The self-observability HTTP endpoint (`[observe]`).
    pub observe: ObserveConfig,
    /// Log output (`[log]`).
    pub log: LogConfig,
    /// Graceful-shutdown settings (`[shutdown]`).
    pub shutdown: ShutdownConfig,
    /// The host identity used for placeholders (and host facts).
    pub host: HostIdentity,
    /// How the wasm engine is built (from the environment).
    pub runtime: RuntimeOptions,
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
    let root = match reader::parse_toml(text) {
        Ok(t) => t,
        Err(message) => {
            problems.push(None, None, None, message);
            return Err(problems.into_error());
        }
    };
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let host = HostIdentity::detect(env);

    let mut top = Reader::new(&root, Scope::Top, &mut problems);
    let sink_t = top.table("sink");
    let sinks_t = top.table("sinks");
    let jobs_v = top.raw("jobs");
    let delivery_t = top.table("delivery");
    let observe_t = top.table("observe");
    let log_t = top.table("log");
    let shutdown_t = top.table("shutdown");
    top.finish();

    let empty = Table::new();
    let delivery = delivery::read(delivery_t.unwrap_or(&empty), &mut problems);
    let sinks = match &delivery {
        Some((base, base_cw)) => sinks::read(sink_t, sinks_t, base, base_cw, env, &mut problems),
        None => None,
    };
    let observe = observe::read(observe_t.unwrap_or(&empty), env, &mut problems);
    let log = log::read(log_t.unwrap_or(&empty), env, &mut problems);
    let shutdown = shutdown::read(shutdown_t.unwrap_or(&empty), &mut problems);
    let mut jobs = job::read_all(jobs_v, &base_dir, &host, &mut problems);
    if let Some(sinks) = &sinks {
        route(&mut jobs, sinks, &mut problems);
    }

    if !problems.is_empty() {
        return Err(problems.into_error());
    }
    let (Some(sinks), Some((delivery, base_cw)), Some(observe), Some(log), Some(shutdown)) =
        (sinks, delivery, observe, log, shutdown)
    else {
        // Every `None` above recorded a problem; this is unreachable in practice.
        problems.push(None, None, None, "invalid configuration");
        return Err(problems.into_error());
    };
    Ok(Config {
        path: path.to_path_buf(),
        base_dir,
        jobs,
        delivery,
        max_event_bytes: base_cw.max_event_bytes,
        region: sinks.region.clone(),
        sinks,
        observe,
        log,
        shutdown,
        host,
        runtime: RuntimeOptions::from_env(env),
    })
}

/// Gives each job that names no sink the default one, and checks that every
/// sink a job names exists and that a job sent to CloudWatch has a log group.
fn route(jobs: &mut [JobConfig], sinks: &SinksConfig, problems: &mut Problems) {
    for job in jobs {
        let at = JobRef::Named(job.name.clone());
        if job.sinks.is_empty() {
            match &sinks.default {
                Some(d) => job.sinks.push(d.clone()),
                None => {
                    problems.push(
                        Some(&at),
                        Some("sinks"),
                        None,
                        format!(
                            "name where its events go: sink = \"name\" or sinks = [...]; the sinks are {}",
                            sinks.names()
                        ),
                    );
                    continue;
                }
            }
        }
        for name in &job.sinks {
            match sinks.get(name) {
                None => problems.push(
                    Some(&at),
                    Some("sinks"),
                    Some(name),
                    format!("no such sink; the sinks are {}", sinks.names()),
                ),
                Some(s) if s.kind() == SinkKind::CloudWatch && job.log_group.is_none() => {
                    problems.push(
                        Some(&at),
                        Some("log_group"),
                        None,
                        format!(
                            "required: the job sends to the cloudwatch sink {name:?}; add log_group = \"/cwpub/{}\"",
                            job.name
                        ),
                    )
                }
                Some(_) => {}
            }
        }
    }
}
