//! Diagnostics: messages for the host's log, tagged with the job name and the
//! run's invocation id. The macros format like `format!`:
//!
//! ```
//! cwpub_guest::info!("composed {} events", 3);
//! cwpub_guest::log::warn!("queue depth {} is high", 900);
//! ```
//!
//! The host cuts messages longer than 4 KiB and keeps at most 100 messages per
//! run (the rest are counted). Diagnostics are for operators debugging a
//! guest; the payload belongs in the run's [`Output`](crate::Output). To fail
//! a run, return an [`Error`](crate::Error) rather than logging at `error`.
//!
//! Outside WebAssembly (in a guest's native unit tests) messages go to stderr.

pub use crate::{debug, error, info, trace, warn};

/// Severity of a diagnostic message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very fine-grained detail, normally hidden.
    Trace,
    /// Detail useful when debugging a guest.
    Debug,
    /// Normal operational messages.
    Info,
    /// Something unexpected that the guest worked around.
    Warn,
    /// Something failed; prefer returning an [`Error`](crate::Error) for run failures.
    Error,
}

/// Writes `message` to the host's log at `level`. The macros ([`info!`](crate::info)
/// and friends) call this.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::export::bindings::cwpub::publisher::{diagnostics, types};
        let level = match level {
            Level::Trace => types::Level::Trace,
            Level::Debug => types::Level::Debug,
            Level::Info => types::Level::Info,
            Level::Warn => types::Level::Warn,
            Level::Error => types::Level::Error,
        };
        diagnostics::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs a `format!`-style message at [`Level::Trace`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Info`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}
