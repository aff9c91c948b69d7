//! One guest call in a fresh store and instance: set the deadline and memory
//! cap, call `validate-config` or `run`, enforce the output limits, and turn
//! every way it can fail into a [`RunError`] that names the job and the kind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::cwpub::publisher::types as wit;
use super::error::{FailureKind, RunError};
use super::facts::{HostFacts, RunRequest};
use super::limits::RunLimits;
use super::load::LoadedGuest;
use super::sandbox::RunState;
use super::stdio::StdioOverflow;
use crate::event::{LogEvent, PayloadKind};

/// Extra time granted to host-side waits beyond the deadline before the call
/// is abandoned (the epoch check normally fires first).
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// How the messages are to be read.
    pub kind: PayloadKind,
    /// The events, in the order the guest returned them.
    pub events: Vec<LogEvent>,
    /// What the guest printed to stdout (normally nothing).
    pub stdout: String,
    /// What the guest printed to stderr (normally nothing).
    pub stderr: String,
    /// Wall-clock time of the call, including instantiation.
    pub elapsed: Duration,
    /// Largest linear memory size reached, in bytes.
    pub peak_memory_bytes: usize,
}

/// The message wasmtime's (private) hostcall-fuel error carries; seen when a
/// guest returns far more data than its limits allow.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Bytes of hostcall fuel granted per list element on top of the output byte
/// limit (a `log-event` is 16 bytes of canonical ABI plus bookkeeping).
const FUEL_PER_EVENT: usize = 64;

/// The marker error the epoch callback traps with when the deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

enum Call<'a> {
    Validate(&'a [(String, String)]),
    Run(&'a RunRequest),
}

enum Returned {
    Validated,
    Ran(wit::Output),
}

impl LoadedGuest {
    /// Asks the guest to check `config` for `job`; fails with `InvalidConfig` (or another kind).
    pub async fn validate_config(
        &self,
        job: &Arc<str>,
        config: &[(String, String)],
        limits: &RunLimits,
    ) -> Result<(), RunError> {
        self.call(
            job,
            "validate-config",
            limits,
            Call::Validate(config),
            &CancellationToken::new(),
        )
        .await
        .map(|_| ())
    }

    /// Runs one tick of the guest in a fresh instance.
    pub async fn run(
        &self,
        request: &RunRequest,
        limits: &RunLimits,
    ) -> Result<RunOutput, RunError> {
        self.run_until(request, limits, &CancellationToken::new())
            .await
    }

    /// [`run`](Self::run), abandoned with [`FailureKind::Cancelled`] as soon as `cancel` fires.
    pub async fn run_until(
        &self,
        request: &RunRequest,
        limits: &RunLimits,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, RunError> {
        let (returned, mut output) = self
            .call(
                &request.job,
                &request.invocation_id,
                limits,
                Call::Run(request),
                cancel,
            )
            .await?;
        let Returned::Ran(wit_output) = returned else {
            unreachable!("a run call returns a run output")
        };
        let fail = |kind| RunError {
            job: request.job.clone(),
            kind,
            stderr: output.stderr.clone(),
        };
        let count = wit_output.events.len();
        if count > limits.max_events {
            return Err(fail(FailureKind::OutputTooLarge {
                detail: format!(
                    "{count} events (limit {}; raise the job's max_events)",
                    limits.max_events
                ),
            }));
        }
        let bytes: usize = wit_output.events.iter().map(|e| e.message.len()).sum();
        if bytes > limits.max_output_bytes {
            return Err(fail(FailureKind::OutputTooLarge {
                detail: format!(
                    "{bytes} message bytes (limit {}; raise the job's max_output_bytes)",
                    limits.max_output_bytes
                ),
            }));
        }
        output.kind = match wit_output.kind {
            wit::PayloadKind::JsonLog => PayloadKind::JsonLog,
            wit::PayloadKind::Emf => PayloadKind::Emf,
        };
        output.events = wit_output
            .events
            .into_iter()
            .map(|e| LogEvent {
                timestamp_ms: i64::try_from(e.timestamp_ms).unwrap_or(i64::MAX),
                message: e.message,
            })
            .collect();
        Ok(output)
    }

    async fn call(
        &self,
        job: &Arc<str>,
        invocation_id: &str,
        limits: &RunLimits,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<(Returned, RunOutput), RunError> {
        let cancelled = || RunError {
            job: job.clone(),
            kind: FailureKind::Cancelled,
            stderr: String::new(),
        };
        // Wait for an instance slot outside the deadline clock.
        let _slot = tokio::select! {
            slot = self.runtime.inner.slots.acquire() => slot.map_err(|_| cancelled())?,
            () = cancel.cancelled() => return Err(cancelled()),
        };
        let started = Instant::now();
        let state = RunState::new(job.clone(), invocation_id.into(), limits);
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Bounds what lifting the result may allocate on the host, before the
        // event and byte limits are checked on what was lifted.
        store.set_hostcall_fuel(
            limits
                .max_output_bytes
                .saturating_add(limits.max_events.saturating_mul(FUEL_PER_EVENT))
                + (1 << 20),
        );
        let deadline_at = started + limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline_at {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let mut instantiated = false;
        let work = tokio::time::timeout(limits.deadline + DEADLINE_GRACE, async {
            let guest = self.pre.instantiate_async(&mut store).await?;
            instantiated = true;
            let publisher = guest.cwpub_publisher_publisher();
            match call {
                Call::Validate(config) => Ok(publisher
                    .call_validate_config(&mut store, job, config)
                    .await?
                    .map(|()| Returned::Validated)),
                Call::Run(request) => {
                    let ctx = to_wit_context(request);
                    Ok(publisher
                        .call_run(&mut store, &ctx)
                        .await?
                        .map(Returned::Ran))
                }
            }
        });
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            () = cancel.cancelled() => None,
        };

        let state = store.data();
        let output = RunOutput {
            kind: PayloadKind::JsonLog,
            events: Vec::new(),
            stdout: state.stdout.contents(),
            stderr: state.stderr.contents(),
            elapsed: started.elapsed(),
            peak_memory_bytes: state.limiter.peak_bytes,
        };
        if state.diagnostics_dropped > 0 {
            tracing::warn!(
                job = &**job,
                dropped = state.diagnostics_dropped,
                "guest sent more diagnostics than the per-run cap; the rest were not logged"
            );
        }
        let kind = match outcome {
            None => FailureKind::Cancelled,
            Some(Err(_elapsed)) => FailureKind::Deadline {
                limit: limits.deadline,
            },
            Some(Ok(Ok(Ok(returned)))) => return Ok((returned, output)),
            Some(Ok(Ok(Err(guest_error)))) => match guest_error {
                wit::GuestError::InvalidConfig(m) => FailureKind::InvalidConfig(m),
                wit::GuestError::Transient(m) => FailureKind::Transient(m),
                wit::GuestError::Fatal(m) => FailureKind::Fatal(m),
            },
            Some(Ok(Err(error))) => classify(&error, state, limits, instantiated, &output.stderr),
        };
        Err(RunError {
            job: job.clone(),
            kind,
            stderr: output.stderr,
        })
    }
}

/// Names the failure behind a wasmtime error.
fn classify(
    error: &wasmtime::Error,
    state: &RunState,
    limits: &RunLimits,
    instantiated: bool,
    stderr: &str,
) -> FailureKind {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return FailureKind::Deadline {
            limit: limits.deadline,
        };
    }
    if let Some(overflow) = error.downcast_ref::<StdioOverflow>() {
        return FailureKind::StdioOverflow {
            stream: overflow.stream,
            limit: overflow.limit,
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return FailureKind::Trap {
            message: format!("guest called exit({}); return from `run` instead", exit.0),
        };
    }
    if format!("{error:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        return FailureKind::OutputTooLarge {
            detail: format!(
                "far more than {} events or {} message bytes (raise the job's max_events / max_output_bytes if this is expected)",
                limits.max_events, limits.max_output_bytes
            ),
        };
    }
    let trap = error.downcast_ref::<Trap>().copied();
    // A Rust guest reports an allocation failure or a panic on stderr and then
    // aborts with `unreachable`; only trust stderr when the trap agrees.
    let aborted = trap == Some(Trap::UnreachableCodeReached);
    if let Some(requested) = state.limiter.refused
        && (aborted || stderr.contains("memory allocation of"))
    {
        return FailureKind::Memory {
            limit: limits.max_memory_bytes,
            requested,
        };
    }
    if aborted && let Some(message) = panic_message(stderr) {
        return FailureKind::Panic { message };
    }
    if !instantiated {
        return FailureKind::Instantiate(format!("{error:#}"));
    }
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| format!("\n{bt}"))
        .unwrap_or_default();
    match trap {
        Some(trap) => FailureKind::Trap {
            message: format!("{trap}{backtrace}"),
        },
        None => FailureKind::Trap {
            message: format!("{error:#}"),
        },
    }
}

/// Extracts "message (at file:line:col)" from a Rust panic report on stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")? + "panicked at ".len();
    let rest = &stderr[start..];
    let (location, after) = rest
        .split_once(":\n")
        .unwrap_or((rest.lines().next().unwrap_or(""), ""));
    let message: Vec<&str> = after
        .lines()
        .take_while(|l| !l.starts_with("note: "))
        .collect();
    let message = message.join("\n");
    Some(if message.is_empty() {
        format!("at {location}")
    } else {
        format!("{message} (at {location})")
    })
}

fn to_wit_context(request: &RunRequest) -> wit::RunContext {
    wit::RunContext {
        job_name: request.job.to_string(),
        scheduled_ms: request.scheduled_ms,
        actual_ms: request.actual_ms,
        sequence: request.sequence,
        invocation_id: request.invocation_id.clone(),
        config: request.config.to_vec(),
        facts: to_wit_facts(&request.facts),
    }
}

fn to_wit_facts(facts: &HostFacts) -> wit::HostFacts {
    let d = &facts.delivery;
    wit::HostFacts {
        hostname: facts.hostname.clone(),
        task_id: facts.task_id.clone(),
        region: facts.region.clone(),
        host_version: facts.host_version.clone(),
        uptime_ms: facts.uptime_ms,
        delivery: wit::DeliveryStats {
            events_delivered: d.events_delivered,
            bytes_delivered: d.bytes_delivered,
            events_dropped: d.events_dropped,
            events_pending: d.events_pending,
            requests: d.requests,
            retries: d.retries,
            throttled: d.throttled,
            runs_succeeded: d.runs_succeeded,
            runs_failed: d.runs_failed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_message_is_extracted_from_rust_panic_reports() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:23:43:\nguest panicked on purpose\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("guest panicked on purpose (at src/lib.rs:23:43)")
        );
        assert_eq!(panic_message("memory allocation of 5 bytes failed\n"), None);
    }
}
