//! How a guest run (or load) fails: a [`RunError`] names the job, the kind of
//! failure, and carries the guest's captured stderr, so an operator can tell a
//! deadline from a panic from a bad config without reading wasm traps.
//!
//! Everything a guest said (its error messages, panic text, stderr, function
//! names in backtraces) is held as [`GuestText`], so every rendering of a
//! failure is one line, escaped and capped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::untrusted::GuestText;

/// The kind of failure of one guest call, with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The run did not finish within its wall-clock deadline.
    Deadline {
        /// The deadline that was exceeded.
        limit: Duration,
    },
    /// The guest needed more linear memory than its cap.
    Memory {
        /// The memory cap in bytes.
        limit: usize,
        /// The size the guest asked for, in bytes.
        requested: usize,
        /// True when the guest needed it to start at all (its initial memory).
        at_start: bool,
    },
    /// The guest overflowed its stack: deep recursion, or a function whose
    /// locals do not fit (a large array on the stack).
    StackOverflow {
        /// Where, as the innermost frames of the backtrace (may be empty).
        backtrace: GuestText,
    },
    /// The guest panicked (a Rust guest's `panic!`, or an abort with a message).
    Panic {
        /// The panic message, from the guest's stderr.
        message: GuestText,
    },
    /// The guest trapped for another reason (unreachable, out-of-bounds, …).
    Trap {
        /// The trap description from wasmtime, with the innermost frames.
        message: GuestText,
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
    InvalidConfig(GuestText),
    /// The guest returned `transient`.
    Transient(GuestText),
    /// The guest returned `fatal`.
    Fatal(GuestText),
    /// The guest could not be instantiated (missing import, link error, resource exhaustion).
    Instantiate(GuestText),
    /// The host shut down before the run finished.
    Cancelled,
}

impl FailureKind {
    /// A stable snake_case label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::Deadline { .. } => "deadline",
            FailureKind::Memory { .. } => "memory",
            FailureKind::StackOverflow { .. } => "stack_overflow",
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
            FailureKind::Memory {
                limit,
                requested,
                at_start: true,
            } => write!(
                f,
                "guest needs {} MiB at start, limit is {} MiB; raise the job's memory_mb",
                mib(*requested),
                mib(*limit)
            ),
            FailureKind::Memory {
                limit, requested, ..
            } => write!(
                f,
                "guest exceeded its memory limit: asked for {} MiB, limit is {} MiB (raise the job's memory_mb if this is expected)",
                mib(*requested),
                mib(*limit)
            ),
            FailureKind::StackOverflow { backtrace } => {
                f.write_str(
                    "guest overflowed its stack (deep recursion, or a large local variable such as \
                     a big array: move it to the heap, e.g. into a Vec or Box)",
                )?;
                if !backtrace.is_empty() {
                    write!(f, " in {backtrace}")?;
                }
                Ok(())
            }
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

/// `bytes` in MiB: whole when exact, else with one decimal ("12.4").
fn mib(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes.is_multiple_of(MIB) {
        (bytes / MIB).to_string()
    } else {
        format!("{:.1}", bytes as f64 / MIB as f64)
    }
}

/// A failed guest call: which job, what kind of failure, and what the guest printed.
#[derive(Debug, Clone)]
pub struct RunError {
    /// The job whose guest failed.
    pub job: Arc<str>,
    /// What went wrong.
    pub kind: FailureKind,
    /// The end of the guest's captured stderr (without a panic report already
    /// in `kind`).
    pub stderr: GuestText,
}

impl RunError {
    /// The error without the guest's stderr: `job "x": <what went wrong>`.
    pub fn headline(&self) -> impl fmt::Display + '_ {
        Headline(self)
    }
}

struct Headline<'a>(&'a RunError);

impl fmt::Display for Headline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job \"{}\": {}", self.0.job, self.0.kind)
    }
}

/// One line: the headline, then the guest's stderr (escaped) if it wrote any.
impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if !self.stderr.is_empty() {
            write!(f, "; guest stderr: {}", self.stderr)?;
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
    /// What is wrong and how to fix it (anything quoted from the component
    /// itself is escaped).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_the_operator_configures_them() {
        let at_start = FailureKind::Memory {
            limit: 8 << 20,
            requested: 13_002_342,
            at_start: true,
        };
        assert_eq!(
            at_start.to_string(),
            "guest needs 12.4 MiB at start, limit is 8 MiB; raise the job's memory_mb"
        );
    }

    #[test]
    fn a_run_error_is_one_line_whatever_the_guest_wrote() {
        let e = RunError {
            job: "j".into(),
            kind: FailureKind::Fatal(GuestText::new("bad\nERROR forged")),
            stderr: GuestText::tail("line 1\nline 2\n"),
        };
        assert_eq!(
            e.to_string(),
            "job \"j\": guest failed: bad\\nERROR forged; guest stderr: line 1\\nline 2\\n"
        );
        assert_eq!(
            e.headline().to_string(),
            "job \"j\": guest failed: bad\\nERROR forged"
        );
    }
}
