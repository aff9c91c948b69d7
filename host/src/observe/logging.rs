//! The host's own structured logs: a `tracing` subscriber writing to stderr
//! (stdout belongs to the stdout sink) in human or JSON format, filtered by
//! `RUST_LOG` when set, else by the configured level. Colour only when stderr
//! is a terminal and `NO_COLOR` is unset. Whatever a guest says reaches these
//! records already escaped and capped ([`crate::untrusted`]), so every record
//! is one line in either format.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::http::ObserveError;
use crate::config::{LogConfig, LogFormat};

/// The filter in force: `rust_log` (the `RUST_LOG` value) when set and non-blank, else `level`.
pub fn log_filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, String> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => {
            EnvFilter::try_new(directives).map_err(|e| format!("RUST_LOG {directives:?}: {e}"))
        }
        None => EnvFilter::try_new(level.trim()).map_err(|e| format!("[log] level {level:?}: {e}")),
    }
}

/// Installs the global subscriber for `cfg` (call once, early). `rust_log` is the `RUST_LOG` value, if any.
pub fn init_logging(cfg: &LogConfig, rust_log: Option<&str>) -> Result<(), ObserveError> {
    let filter = log_filter(&cfg.level, rust_log).map_err(ObserveError::Logging)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write must not be reported with `eprintln!`, which panics
        // when stderr is gone (a closed pipe): the daemon keeps running and
        // still stops on SIGTERM.
        .log_internal_errors(false);
    let result = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Human => builder.with_ansi(colour()).try_init(),
    };
    result.map_err(|e| ObserveError::Logging(format!("cannot install the log subscriber: {e}")))
}

/// Whether to colour the logs: stderr is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>). Every log subscriber asks this.
pub fn colour() -> bool {
    colour_for(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// [`colour`], given whether stderr is a terminal and the value of `NO_COLOR`.
fn colour_for(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_for(true, None));
        assert!(
            colour_for(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour_for(true, Some(OsStr::new("1"))));
        assert!(!colour_for(false, None));
    }

    #[test]
    fn rust_log_wins_over_level() {
        let f = log_filter("info", Some("cwpub=trace")).unwrap();
        assert_eq!(f.to_string(), "cwpub=trace");
        let f = log_filter("warn", Some("  ")).unwrap();
        assert_eq!(f.to_string(), "warn");
    }
}
