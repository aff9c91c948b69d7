//! `[log]`: the host's own structured logs (always on stderr): line format
//! and level, with `CWPUB_LOG_FORMAT` / `CWPUB_LOG_LEVEL` overrides.
//!
//! Adding a key: read it in [`read`] and add a field to [`LogConfig`];
//! reading a key is what makes it allowed.

use toml::Table;

use crate::env::{ENV_LOG_FORMAT, ENV_LOG_LEVEL, Env, get};

use super::error::Problems;
use super::reader::{Reader, Scope};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]` after environment overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format (default human).
    pub format: LogFormat,
    /// Level or filter directives, e.g. `"info"` or `"info,cwpub=debug"` (default `"info"`; `RUST_LOG` wins).
    pub level: String,
}

/// Reads `[log]` (`t`, empty when absent) with `env`'s overrides.
pub(super) fn read(t: &Table, env: &Env, problems: &mut Problems) -> Option<LogConfig> {
    let before = problems.len();
    let mut r = Reader::new(t, Scope::Section("log".into()), problems);
    let format_file = r.string("format");
    let level_file = r.string("level");
    r.finish();
    let mut ok = problems.len() == before;

    let (format_text, key) = match get(env, ENV_LOG_FORMAT) {
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
    let (level, key) = match get(env, ENV_LOG_LEVEL) {
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
