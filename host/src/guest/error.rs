//! How a guest run (or load) fails: a [`RunError`] names the job, the kind of
//! failure, and carries the guest's captured stderr, so an operator can tell a
//! deadline from a panic from a bad config without reading wasm traps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The kind of failure of one guest call, with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The run did not finish within its wall-clock deadline.
    Deadline {
        /// The deadline that was exceeded.
        limit: Duration,
    },
    /// The guest tried to grow its linear memory past the cap.
    Memory {
        /// The memory cap in bytes.
        limit: usize,
        /// The size the guest asked for, in bytes.
        requested: usize,
    },
    /// The guest panicked (a Rust guest's `panic!`, or an abort with a message).
    Panic {
        /// The panic message, from the guest's stderr.
        message: String,
    },
    /// The guest trapped for another reason (unreachable, out-of-bounds, stack overflow, …).
    Trap {
        /// The trap description from wasmtime.
        message: String,
    },
    /// The run returned more than its limits allow.
    OutputTooLarge {
        /// What was too large, e.g. "1000000 events (limit 10000)".
        detail: String,
    },
    /// The guest wrote more to stdout or stderr than the capture cap.
    StdioOverflow {
        /// "stdout" or "stderr".
        stream: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest returned `invalid-config`.
    InvalidConfig(String),
    /// The guest returned `transient`.
    Transient(String),
    /// The guest returned `fatal`.
    Fatal(String),
    /// The guest could not be instantiated (missing import, link error, resource exhaustion).
    Instantiate(String),
    /// The host shut down before the run finished.
    Cancelled,
}

impl FailureKind {
    /// A stable snake_case label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::Deadline { .. } => "deadline",
            FailureKind::Memory { .. } => "memory",
            FailureKind::Panic { .. } => "panic",
            FailureKind::Trap { .. } => "trap",
            FailureKind::OutputTooLarge { .. } => "output_too_large",
            FailureKind::StdioOverflow { .. } => "stdio_overflow",
            FailureKind::InvalidConfig(_) => "invalid_config",
            FailureKind::Transient(_) => "transient",
            FailureKind::Fatal(_) => "fatal",
            FailureKind::Instantiate(_) => "instantiate",
            FailureKind::Cancelled => "shutdown",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Deadline { limit } => write!(
                f,
                "guest exceeded its {} ms deadline (raise the job's timeout if the guest needs longer)",
                limit.as_millis()
            ),
            FailureKind::Memory { limit, requested } => write!(
                f,
                "guest exceeded its memory limit: asked for {} MiB, limit is {} MiB (raise the job's memory_mb if this is expected)",
                requested.div_ceil(1 << 20),
                limit / (1 << 20)
            ),
            FailureKind::Panic { message } => write!(f, "guest panicked: {message}"),
            FailureKind::Trap { message } => write!(f, "guest trapped: {message}"),
            FailureKind::OutputTooLarge { detail } => {
                write!(f, "guest output too large: {detail}")
            }
            FailureKind::StdioOverflow { stream, limit } => write!(
                f,
                "guest wrote more than {limit} bytes to {stream} (the job's max_stdio_bytes); \
                 use the diagnostics log import for messages"
            ),
            FailureKind::InvalidConfig(m) => write!(f, "invalid job config: {m}"),
            FailureKind::Transient(m) => write!(f, "transient guest error: {m}"),
            FailureKind::Fatal(m) => write!(f, "guest failed: {m}"),
            FailureKind::Instantiate(m) => write!(f, "guest could not be instantiated: {m}"),
            FailureKind::Cancelled => f.write_str("run cancelled: the host is shutting down"),
        }
    }
}

/// A failed guest call: which job, what kind of failure, and what the guest printed.
#[derive(Debug, Clone)]
pub struct RunError {
    /// The job whose guest failed.
    pub job: Arc<str>,
    /// What went wrong.
    pub kind: FailureKind,
    /// The guest's captured stderr (possibly cut at the capture cap).
    pub stderr: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job \"{}\": {}", self.job, self.kind)?;
        let stderr = self.stderr.trim_end();
        if !stderr.is_empty() {
            const SHOWN: usize = 4096;
            let start = stderr.len().saturating_sub(SHOWN);
            let start = (start..=stderr.len())
                .find(|&i| stderr.is_char_boundary(i))
                .unwrap_or(0);
            let cut = if start > 0 { "…" } else { "" };
            write!(f, "\n  guest stderr:")?;
            for line in format!("{cut}{}", &stderr[start..]).lines() {
                write!(f, "\n  | {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RunError {}

/// Why a guest could not be loaded (read, compiled or type-checked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("guest {source_name}: {message}")]
pub struct LoadError {
    /// The guest as the operator named it (`builtin:emf`, a path).
    pub source_name: String,
    /// What is wrong and how to fix it.
    pub message: String,
}
