//! Logging for the one-shot commands (`invoke`, `check`, `test`): the host's
//! warnings, compile progress and (for `invoke`, `check`) the guest's
//! diagnostics on stderr, so stdout stays events or the report. `RUST_LOG`
//! overrides the filter.
//!
//! Records of the `log` crate (Cranelift, regalloc2 and wasmtime log through
//! it) are capped at `warn` unless `RUST_LOG` asks for more: with the guest
//! diagnostics at `trace`, every `log::trace!` in the compiler would otherwise
//! reach the filter: a debug build compiled the 140 KB heartbeat guest 2.3x
//! and an 18 MB Python guest 7.4x slower (352 s instead of 48 s).

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the stderr logger with `default_filter` (unless `RUST_LOG` is
/// set) plus `extra` (e.g. a capture layer), once per process; colour as
/// [`cwpub::observe::colour`] says.
pub fn init<L>(default_filter: &str, extra: Option<L>)
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = rust_log
        .as_deref()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_filter));
    let installed = tracing_subscriber::registry()
        .with(extra)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .log_internal_errors(false)
                .with_ansi(cwpub::observe::colour())
                .with_filter(filter),
        )
        .try_init()
        .is_ok();
    if installed && rust_log.is_none() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
