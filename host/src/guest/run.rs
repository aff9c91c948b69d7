//! One guest call in a fresh store and instance: set the deadline and memory
//! cap, call `validate-config` or `run`, enforce the output limits, and turn
//! every way it can fail into a [`RunError`] that names the job and the kind
//! (see [`classify`](super::classify)). A call starts on the caller's thread
//! and goes on on a guest thread if it outlasts one epoch tick.

use std::future::{Future as _, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::GuestPre;
use super::bindings::cwpub::publisher::types as wit;
use super::classify::{Circumstances, DeadlineExceeded, classify, stack_pointer_wrapped};
use super::error::{FailureKind, RunError};
use super::facts::{HostFacts, RunRequest};
use super::limits::RunLimits;
use super::load::LoadedGuest;
use super::sandbox::RunState;
use super::ticker::Ticking;
use crate::event::{LogEvent, PayloadKind};
use crate::untrusted::{GuestText, LogBudget};

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
    /// The end of what the guest printed to stdout (normally nothing).
    pub stdout: GuestText,
    /// The end of what the guest printed to stderr (normally nothing).
    pub stderr: GuestText,
    /// Wall-clock time of the call, including instantiation.
    pub elapsed: Duration,
    /// Largest linear memory size reached, in bytes.
    pub peak_memory_bytes: usize,
}

/// Which export to call, with what it is given.
enum Call {
    Validate(Vec<(String, String)>),
    Run(Box<RunRequest>),
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
        let budget = Arc::new(LogBudget::new(job.clone()));
        self.call(
            job,
            "validate-config".into(),
            limits,
            Call::Validate(config.to_vec()),
            &CancellationToken::new(),
            budget,
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
        let budget = Arc::new(LogBudget::new(request.job.clone()));
        self.run_until(request, limits, &CancellationToken::new(), &budget)
            .await
    }

    /// [`run`](Self::run), abandoned with [`FailureKind::Cancelled`] as soon
    /// as `cancel` fires; what the guest logs is charged to `log_budget`.
    pub async fn run_until(
        &self,
        request: &RunRequest,
        limits: &RunLimits,
        cancel: &CancellationToken,
        log_budget: &Arc<LogBudget>,
    ) -> Result<RunOutput, RunError> {
        let (returned, mut output) = self
            .call(
                &request.job,
                request.invocation_id.as_str().into(),
                limits,
                Call::Run(Box::new(request.clone())),
                cancel,
                log_budget.clone(),
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

    /// Waits for an instance slot, then makes the call: on this thread until
    /// the guest has run for one epoch tick (most calls end well before,
    /// and then no other thread wakes up), then on a guest thread.
    async fn call(
        &self,
        job: &Arc<str>,
        invocation_id: Arc<str>,
        limits: &RunLimits,
        call: Call,
        cancel: &CancellationToken,
        log_budget: Arc<LogBudget>,
    ) -> Result<(Returned, RunOutput), RunError> {
        let failed = |kind| RunError {
            job: job.clone(),
            kind,
            stderr: GuestText::default(),
        };
        // Wait for an instance slot outside the deadline clock; the call
        // holds it until it has really ended, even if abandoned.
        let slot = tokio::select! {
            slot = self.runtime.inner.slots.clone().acquire_owned() => {
                slot.map_err(|_| failed(FailureKind::Cancelled))?
            }
            () = cancel.cancelled() => return Err(failed(FailureKind::Cancelled)),
        };
        let code = self.code();
        let task = CallTask {
            _slot: slot,
            pre: code.pre.clone(),
            engine: code.engine.clone(),
            _ticking: self.runtime.inner.ticker.busy(),
            job: job.clone(),
            invocation_id,
            limits: *limits,
            log_budget,
        };
        // Abandoning this future (a caller's timeout) abandons the call too.
        let mut running = Box::pin(task.run(call, cancel.clone()));
        // The first slice, up to the guest's first yield (at the first epoch
        // tick, or when it waits for a host clock), runs here.
        if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await {
            return result;
        }
        let handle = AbortOnDropHandle::new(self.runtime.inner.pool.spawn(running));
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(failed(FailureKind::Trap {
                message: GuestText::new(&format!("the host task running the guest failed: {e}")),
            })),
        }
    }
}

/// One call, owned, ready to run on a guest thread.
struct CallTask {
    /// The instance slot the call occupies.
    _slot: tokio::sync::OwnedSemaphorePermit,
    pre: GuestPre<RunState>,
    engine: wasmtime::Engine,
    /// Keeps the epoch ticking while the call is in flight.
    _ticking: Ticking,
    job: Arc<str>,
    invocation_id: Arc<str>,
    limits: RunLimits,
    log_budget: Arc<LogBudget>,
}

impl CallTask {
    async fn run(
        self,
        call: Call,
        cancel: CancellationToken,
    ) -> Result<(Returned, RunOutput), RunError> {
        let CallTask {
            pre,
            engine,
            job,
            invocation_id,
            limits,
            log_budget,
            ..
        } = &self;
        let started = Instant::now();
        let state = RunState::new(
            job.clone(),
            invocation_id.clone(),
            limits,
            log_budget.clone(),
        );
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        // Bounds what one guest-to-host transfer (an import's arguments, the
        // result of `run`) may make the host allocate: twice the guest's
        // memory cap, as a lifted log-event takes 32 host bytes for 16 guest
        // bytes. A guest cannot hand over more than it holds, so this never
        // fails a call the output limits (checked after lifting) would allow,
        // and a 10 MiB diagnostic message is accepted (and cut) as promised.
        store.set_hostcall_fuel(limits.max_memory_bytes.saturating_mul(2));
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
            let guest = pre.instantiate_async(&mut store).await?;
            instantiated = true;
            let publisher = guest.cwpub_publisher_publisher();
            match &call {
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

        let stack_pointer_wrapped = match &outcome {
            Some(Ok(Err(error))) => stack_pointer_wrapped(error, &mut store),
            _ => false,
        };
        let state = store.data();
        state.report_dropped_diagnostics();
        let stdout = state.stdout.contents();
        let stderr = state.stderr.contents();
        let output = |stderr: &str| RunOutput {
            kind: PayloadKind::JsonLog,
            events: Vec::new(),
            stdout: GuestText::tail(stdout.trim_end()),
            stderr: GuestText::tail(stderr.trim_end()),
            elapsed: started.elapsed(),
            peak_memory_bytes: state.limiter.peak_bytes,
        };
        let (kind, stderr_shown) = match outcome {
            None => (FailureKind::Cancelled, stderr.as_str()),
            Some(Err(_elapsed)) => (
                FailureKind::Deadline {
                    limit: limits.deadline,
                },
                stderr.as_str(),
            ),
            Some(Ok(Ok(Ok(returned)))) => return Ok((returned, output(&stderr))),
            Some(Ok(Ok(Err(guest_error)))) => (
                match guest_error {
                    wit::GuestError::InvalidConfig(m) => FailureKind::InvalidConfig(m.into()),
                    wit::GuestError::Transient(m) => FailureKind::Transient(m.into()),
                    wit::GuestError::Fatal(m) => FailureKind::Fatal(m.into()),
                },
                stderr.as_str(),
            ),
            Some(Ok(Err(error))) => classify(
                &error,
                &Circumstances {
                    limits,
                    instantiated,
                    memory_refused: state.limiter.refused,
                    stderr: &stderr,
                    stack_pointer_wrapped,
                },
            ),
        };
        Err(RunError {
            job: job.clone(),
            kind,
            stderr: GuestText::tail(stderr_shown.trim_end()),
        })
    }
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
