//! Naming the failure behind a wasmtime error.
//!
//! Types decide wherever wasmtime offers them: the epoch callback's own
//! marker ([`DeadlineExceeded`]), the stdio cap's ([`StdioOverflow`]),
//! WASI's `exit` ([`wasmtime_wasi::I32Exit`]), the memory limiter's record of
//! what it refused, wasmtime's [`Trap`] codes, and the trap's core dump (a
//! shadow-stack pointer that wrapped below zero: a stack frame too large
//! for the guest's stack, which wasmtime reports as an out-of-bounds
//! access). One fact exists only as text: a Rust guest's panic message,
//! which only its panic report on stderr carries (`thread '…' panicked at
//! <location>:` / message / `note: …`). It is matched here and nowhere else
//! ([`TEXT_MATCHES`]), and a test pins it against a real guest.

use std::fmt::Write as _;

use wasmtime::{Trap, WasmBacktrace};

use super::error::FailureKind;
use super::limits::RunLimits;
use super::stdio::StdioOverflow;
use crate::untrusted::GuestText;

/// Starts the line of a Rust panic report on stderr (`thread '<name>' …`).
pub const PANIC_THREAD: &str = "thread '";
/// Precedes the location on that line (`… panicked at src/lib.rs:3:5:`).
pub const PANIC_MARKER: &str = " panicked at ";
/// Starts the line after a Rust panic message (`note: run with RUST_BACKTRACE=1 …`).
pub const PANIC_NOTE: &str = "note: ";
/// Every piece of wasmtime's or Rust's text this module relies on.
pub const TEXT_MATCHES: [&str; 3] = [PANIC_THREAD, PANIC_MARKER, PANIC_NOTE];

/// A stack pointer at or above this address (the top 256 MiB of a 32-bit
/// memory) wrapped below zero: a shadow-stack overflow.
const WRAPPED_STACK_POINTER: u64 = (1 << 32) - (256 << 20);

/// Innermost backtrace frames shown in an error.
const SHOWN_FRAMES: usize = 6;

/// The marker error the epoch callback traps with when the deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub(crate) struct DeadlineExceeded;

/// What the host knows about a failed call besides the error itself.
pub(crate) struct Circumstances<'a> {
    /// The run's limits.
    pub(crate) limits: &'a RunLimits,
    /// Whether instantiation had succeeded.
    pub(crate) instantiated: bool,
    /// The total memory the limiter refused, if it refused any.
    pub(crate) memory_refused: Option<usize>,
    /// Everything the guest wrote to stderr.
    pub(crate) stderr: &'a str,
    /// Whether the guest's stack pointer wrapped ([`stack_pointer_wrapped`]).
    pub(crate) stack_pointer_wrapped: bool,
}

/// Names the failure behind `error`; returns it with the part of stderr
/// still worth showing (a panic report already in the kind is left out).
pub(crate) fn classify<'a>(
    error: &wasmtime::Error,
    at: &Circumstances<'a>,
) -> (FailureKind, &'a str) {
    let limits = at.limits;
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return (
            FailureKind::Deadline {
                limit: limits.deadline,
            },
            at.stderr,
        );
    }
    if let Some(overflow) = error.downcast_ref::<StdioOverflow>() {
        let kind = FailureKind::StdioOverflow {
            stream: overflow.stream,
            limit: overflow.limit,
        };
        return (kind, at.stderr);
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        let message = format!("guest called exit({}); return from `run` instead", exit.0);
        let kind = FailureKind::Trap {
            message: GuestText::new(&message),
        };
        return (kind, at.stderr);
    }
    let trap = error.downcast_ref::<Trap>().copied();
    if let Some(requested) = at.memory_refused {
        // Refused at instantiation: the guest's initial memory is over the
        // cap. Refused later: a guest aborts (a Rust guest after printing
        // "memory allocation of … failed") with `unreachable`.
        if !at.instantiated || trap == Some(Trap::UnreachableCodeReached) {
            let kind = FailureKind::Memory {
                limit: limits.max_memory_bytes,
                requested,
                at_start: !at.instantiated,
            };
            return (kind, at.stderr);
        }
    }
    if trap == Some(Trap::StackOverflow) || (trap.is_some() && at.stack_pointer_wrapped) {
        let kind = FailureKind::StackOverflow {
            backtrace: innermost_frames(error),
        };
        return (kind, at.stderr);
    }
    if trap == Some(Trap::UnreachableCodeReached)
        && let Some(panic) = panic_report(at.stderr)
    {
        let kind = FailureKind::Panic {
            message: GuestText::new(&panic.message),
        };
        return (kind, panic.before);
    }
    if !at.instantiated {
        let kind = FailureKind::Instantiate(GuestText::new(&format!("{error:#}")));
        return (kind, at.stderr);
    }
    let message = match trap {
        Some(trap) => {
            let frames = innermost_frames(error);
            if frames.is_empty() {
                GuestText::new(&trap.to_string())
            } else {
                GuestText::new(&format!("{trap} in {frames}"))
            }
        }
        None => GuestText::new(&format!("{error:#}")),
    };
    (FailureKind::Trap { message }, at.stderr)
}

/// A Rust panic report found on stderr.
struct PanicReport<'a> {
    /// "message (at file:line:col)".
    message: String,
    /// What the guest wrote before the report.
    before: &'a str,
}

/// Finds the last panic report Rust's default hook wrote on stderr:
/// `thread '<name>' panicked at <location>:` / the message / `note: …`.
fn panic_report(stderr: &str) -> Option<PanicReport<'_>> {
    let mut report = None;
    let mut offset = 0;
    for line in stderr.split_inclusive('\n') {
        if line.starts_with(PANIC_THREAD)
            && let Some(at) = line.find(PANIC_MARKER)
        {
            report = Some((offset, offset + at + PANIC_MARKER.len()));
        }
        offset += line.len();
    }
    let (report_start, location_start) = report?;
    let rest = &stderr[location_start..];
    let (location, after) = rest
        .split_once(":\n")
        .unwrap_or((rest.lines().next().unwrap_or(""), ""));
    let message: Vec<&str> = after
        .lines()
        .take_while(|l| !l.starts_with(PANIC_NOTE))
        .collect();
    let message = message.join("\n");
    Some(PanicReport {
        message: if message.is_empty() {
            format!("at {location}")
        } else {
            format!("{message} (at {location})")
        },
        before: &stderr[..report_start],
    })
}

/// Whether the trap's core dump shows a shadow-stack pointer (a mutable i32
/// global, LLVM's `__stack_pointer`) that wrapped below address 0: a stack
/// frame larger than what was left of the guest's stack.
pub(crate) fn stack_pointer_wrapped(
    error: &wasmtime::Error,
    mut store: impl wasmtime::AsContextMut,
) -> bool {
    let Some(dump) = error.downcast_ref::<wasmtime::WasmCoreDump>() else {
        return false;
    };
    dump.globals().iter().any(|global| {
        global.ty(&store).mutability() == wasmtime::Mutability::Var
            && matches!(
                global.get(&mut store),
                wasmtime::Val::I32(sp) if u64::from(sp.cast_unsigned()) >= WRAPPED_STACK_POINTER
            )
    })
}

/// The innermost frames of the error's wasm backtrace, demangled, as
/// `f (file:line) ← g ← …`; the names come from the guest, so the result
/// is untrusted text.
fn innermost_frames(error: &wasmtime::Error) -> GuestText {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return GuestText::default();
    };
    let frames = backtrace.frames();
    let mut out = String::new();
    for (i, frame) in frames.iter().take(SHOWN_FRAMES).enumerate() {
        if i > 0 {
            out.push_str(" ← ");
        }
        let _ = match frame.func_name() {
            Some(name) => write!(out, "{:#}", rustc_demangle::demangle(name)),
            None => write!(out, "<wasm function {}>", frame.func_index()),
        };
        if let Some(symbol) = frame.symbols().first()
            && let (Some(file), Some(line)) = (symbol.file(), symbol.line())
        {
            let _ = write!(out, " ({file}:{line})");
        }
    }
    if frames.len() > SHOWN_FRAMES {
        let _ = write!(out, " ← … {} more frames", frames.len() - SHOWN_FRAMES);
    }
    GuestText::new(&out)
}

#[cfg(test)]
mod tests {
    use super::panic_report;

    #[test]
    fn panic_message_is_extracted_from_rust_panic_reports() {
        let stderr = "before\n\nthread '<unnamed>' panicked at src/lib.rs:23:43:\nguest panicked on purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let report = panic_report(stderr).expect("a report");
        assert_eq!(
            report.message,
            "guest panicked on purpose (at src/lib.rs:23:43)"
        );
        assert_eq!(report.before, "before\n\n");
        assert!(panic_report("memory allocation of 5 bytes failed\n").is_none());
        let quoting = "log: worker panicked at startup\nthread '<unnamed>' (1) panicked at src/a.rs:1:2:\nthe worker panicked at startup\nnote: run with …\n";
        let report = panic_report(quoting).expect("a report");
        assert_eq!(
            report.message,
            "the worker panicked at startup (at src/a.rs:1:2)"
        );
        assert_eq!(report.before, "log: worker panicked at startup\n");
    }
}
