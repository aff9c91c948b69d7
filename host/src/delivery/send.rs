//! Sending one chunk: a sender task builds the chunk's requests and, for
//! each, executes the retry policy (`policy`) — it attempts, feeds the
//! outcome to the circuit breaker, the adaptive rate and the counters, asks
//! the policy what next, and does that. An attempt waits for the target's
//! circuit, the rate and an in-flight slot, notes the request in the spool,
//! then has the sink send it. Retry is per request: a request the service
//! accepted is never sent again. When done the sender tells the owner, giving
//! back whatever the drain's deadline kept it from resolving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::ledger::DropReason;

use super::batch::{Item, TimeWindow, build_requests, check_request};
use super::health::{Admit, Tripped};
use super::policy::{self, Action, Attempts, CircuitEffect, Outcome};
use super::record::RecordItems as _;
use super::sink::{Answer, ErrorClass, Failure};
use super::{BatchKey, Marks, Msg, Shared};

/// How often persistent credential/permission problems are logged at error level.
const LOUD_LOG_EVERY: Duration = Duration::from_secs(60);

/// Sends `chunk` of `key` (as one or more requests), then reports to the owner.
pub(crate) async fn run(
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    key: BatchKey,
    chunk: Vec<Item>,
) {
    let limits = shared.sink().limits(key.kind);
    let mut undelivered: Vec<Item> = Vec::new();
    for batch in build_requests(chunk, &limits) {
        if !undelivered.is_empty() {
            undelivered.extend(batch);
        } else if let Err(rest) = deliver(&shared, &tx, &key, batch).await {
            undelivered = rest;
        }
    }
    let _ = tx.send(Msg::Sent { key, undelivered });
}

/// Delivers `batch` (already valid: sorted, within the limits). Returns
/// `Err` with the events not yet delivered when delivery was cancelled by
/// the drain deadline; everything else is delivered or counted as dropped.
async fn deliver(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Msg>,
    key: &BatchKey,
    batch: Vec<Item>,
) -> Result<(), Vec<Item>> {
    // Batches still to deliver (halves after a split), last = next.
    let mut work = vec![batch];
    while let Some(mut b) = work.pop() {
        let (mut tried, mut create) = (Attempts::default(), false);
        loop {
            drop_aged(shared, key, &mut b);
            if b.is_empty() {
                break;
            }
            let attempt = if create {
                create_target(shared, key).await
            } else {
                send_once(shared, tx, key, &b).await
            };
            let Some((outcome, failure, rejected)) = attempt else {
                return Err(cancelled(b, work));
            };
            if outcome == Outcome::Accepted {
                record_accepted(shared, key, &b, &rejected);
            }
            let jitter = rand::random::<f64>();
            let (action, next) = policy::decide(
                &shared.policy(),
                outcome,
                b.len(),
                tried,
                jitter,
                shared.draining(),
            );
            observe(shared, key, &b, outcome, failure.as_ref(), action);
            (tried, create) = (next, action == Action::CreateTarget);
            match action {
                Action::Done => break,
                Action::Resend | Action::CreateTarget => {}
                Action::RetryAfter(d) | Action::HoldForCredentials(d) => {
                    let d = policy::at_least(
                        d,
                        failure.as_ref().and_then(|f| f.retry_after),
                        shared.draining(),
                    );
                    if !pause(shared, d).await {
                        return Err(cancelled(b, work));
                    }
                }
                Action::Split => {
                    let second = b.split_off(b.len() / 2);
                    work.extend([second, b]);
                    break;
                }
                Action::Drop(reason) => {
                    log_drop(shared, key, &b, reason, failure.as_ref());
                    shared.ledger.drop_items(&key.target, reason, b.iter());
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Drops (as `too_old`) the events that aged out while waiting: the
/// service would refuse them.
fn drop_aged(shared: &Shared, key: &BatchKey, b: &mut Vec<Item>) {
    let w = TimeWindow::of(&shared.sink().rules(key.kind), SystemTime::now());
    let cut = b.partition_point(|i| i.timestamp_ms < w.oldest_ms);
    if cut > 0 {
        let old: Vec<Item> = b.drain(..cut).collect();
        shared
            .ledger
            .drop_items(&key.target, DropReason::TooOld, old.iter());
    }
}

/// Events the service rejected one by one in an accepted request.
type Rejected = Vec<(std::ops::Range<usize>, DropReason)>;

/// One attempt once the circuit lets it through; `None` when cancelled. The
/// spool notes the request before it goes out, and notes a refusal, so a
/// crash leaves an honest count of possible duplicates.
async fn send_once(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Msg>,
    key: &BatchKey,
    b: &[Item],
) -> Option<(Outcome, Option<Failure>, Rejected)> {
    loop {
        match shared.health.admit(&key.target) {
            Admit::Go | Admit::Probe => break,
            Admit::Wait(d) => {
                if !pause(shared, d).await {
                    return None;
                }
            }
        }
    }
    let (lo, hi) = seq_range(b);
    if !mark(shared, tx, key, lo, hi, false).await {
        return None;
    }
    let answer = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => return None,
        a = send(shared, key, b) => a?,
    };
    let (outcome, failure, rejected) = match answer {
        Answer::Accepted { rejected } => (Outcome::Accepted, None, rejected),
        Answer::Failed(f) => (Outcome::PutFailed(f.class), Some(f), Vec::new()),
    };
    if policy::refused_for_sure(outcome) {
        mark(shared, tx, key, lo, hi, true).await;
    }
    Some((outcome, failure, rejected))
}

/// One request, within the in-flight bound and the adaptive rate; `None`
/// when the core is shutting down.
async fn send(shared: &Shared, key: &BatchKey, batch: &[Item]) -> Option<Answer> {
    debug_assert_eq!(
        check_request(batch, &shared.sink().limits(key.kind)),
        Ok(())
    );
    let _permit = shared.in_flight.acquire().await.ok()?;
    shared.rate.acquire().await;
    let sink = shared.sink();
    Some(sink.send(&key.target, key.kind, batch).await)
}

/// Creates the missing target; `None` when cancelled.
async fn create_target(
    shared: &Shared,
    key: &BatchKey,
) -> Option<(Outcome, Option<Failure>, Rejected)> {
    let sink = shared.sink();
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => None,
        r = sink.create(&key.target) => Some(match r {
            Ok(()) => (Outcome::Created, None, Vec::new()),
            Err(f) => (Outcome::CreateFailed(f.class), Some(f), Vec::new()),
        }),
    }
}

fn seq_range(b: &[Item]) -> (u64, u64) {
    b.iter()
        .fold((u64::MAX, 0), |(lo, hi), i| (lo.min(i.seq), hi.max(i.seq)))
}

/// Notes the request in the spool (through the owner, which plans the
/// write); under `spool_sync = "always"` waits until the note is durable.
/// False when cancelled meanwhile.
async fn mark(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Msg>,
    key: &BatchKey,
    lo: u64,
    hi: u64,
    refused: bool,
) -> bool {
    let (reply, durable) = match shared.marks {
        Marks::None => return true,
        Marks::Written => (None, None),
        Marks::Durable => {
            let (reply, done) = oneshot::channel();
            (Some(reply), Some(done))
        }
    };
    let msg = Msg::Mark {
        key: key.clone(),
        lo,
        hi,
        refused,
        durable: reply,
    };
    if tx.send(msg).is_err() {
        return true;
    }
    match durable {
        None => true,
        Some(done) => tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => false,
            _ = done => true,
        },
    }
}

/// Counts an accepted request and clears what it proves healed.
fn record_accepted(shared: &Shared, key: &BatchKey, batch: &[Item], rejected: &Rejected) {
    if let Some(p) = shared.health.credentials_ok() {
        tracing::info!(sink = %shared.name, failures = p.failures, code = %p.code, "{} accepts our credentials again", shared.sink().service());
    }
    shared.sink().accepted(&key.target);
    shared.ledger.record_success(&key.target, batch, rejected);
}

/// Feeds an outcome to the circuit breaker, the adaptive rate, the
/// credential state and the request counters, logging state changes.
fn observe(
    shared: &Shared,
    key: &BatchKey,
    b: &[Item],
    outcome: Outcome,
    failure: Option<&Failure>,
    action: Action,
) {
    let target = &key.target;
    let sink = &shared.name;
    let desc = failure.map(|f| format!("{}: {}", f.code, f.message));
    let desc = desc.as_deref().unwrap_or("");
    match policy::circuit_effect(outcome) {
        CircuitEffect::Success => {
            if shared.health.success(target) {
                tracing::info!(sink = %sink, target = %target, "circuit breaker closed: target accepts events again");
            }
        }
        CircuitEffect::Failure => {
            if let Tripped::Opened(d) = shared.health.failure(target, desc, shared.draining()) {
                tracing::warn!(sink = %sink, target = %target, error = desc, open_for = ?d, "circuit breaker opened: pausing requests to this target, then one probe");
            }
        }
        CircuitEffect::Neutral => shared.health.neutral(target),
    }
    match outcome {
        Outcome::Accepted => shared.rate.on_success(),
        Outcome::PutFailed(ErrorClass::Throttled) => {
            if let Some(r) = shared.rate.on_throttle() {
                tracing::debug!(sink = %sink, rate = r, "throttled: lowering the request rate");
            }
        }
        _ => {}
    }
    if let (
        Outcome::PutFailed(ErrorClass::Credentials)
        | Outcome::CreateFailed(ErrorClass::Credentials),
        Some(f),
    ) = (outcome, failure)
    {
        let new = shared
            .health
            .credential_failure(&f.code.to_string(), &f.message.to_string());
        if new || shared.health.loud_log_due(LOUD_LOG_EVERY) {
            tracing::error!(
                sink = %sink,
                target = %target,
                code = %f.code,
                error = %f.message,
                "{} refused our credentials or permissions; events stay buffered and delivery resumes when fixed ({})",
                shared.sink().service(),
                shared.sink().credentials_hint(),
            );
        }
    }
    if let Action::RetryAfter(wait) | Action::HoldForCredentials(wait) = action
        && matches!(outcome, Outcome::PutFailed(_))
    {
        let throttled = outcome == Outcome::PutFailed(ErrorClass::Throttled);
        shared.ledger.record_failure(
            target,
            b,
            if throttled {
                super::record::RequestOutcome::Throttled
            } else {
                super::record::RequestOutcome::Retry
            },
        );
        tracing::debug!(sink = %sink, target = %target, error = desc, ?wait, "request failed, retrying");
    }
}

fn log_drop(
    shared: &Shared,
    key: &BatchKey,
    b: &[Item],
    reason: DropReason,
    failure: Option<&Failure>,
) {
    let (code, message) = failure.map_or((String::new(), String::new()), |f| {
        (f.code.to_string(), f.message.to_string())
    });
    let (sink, target) = (&shared.name, &key.target);
    let service = shared.sink().service();
    let job = b.first().map_or("", |i| &*i.job);
    match reason {
        DropReason::TargetMissing => {
            tracing::error!(sink = %sink, target = %target, error = message, "the target is missing and may not be created (for CloudWatch: create_log_groups / create_log_streams): events dropped")
        }
        DropReason::TargetCreationFailed => {
            tracing::error!(sink = %sink, target = %target, code, error = message, "could not create the target: events dropped; check the name, KMS key, tags and quotas")
        }
        DropReason::InvalidParameter => {
            tracing::warn!(sink = %sink, target = %target, job, error = message, "{service} refused an event as invalid: dropped")
        }
        DropReason::Oversize => {
            tracing::warn!(sink = %sink, target = %target, job, error = message, "{service} refused an event as too large: dropped")
        }
        DropReason::Rejected => {
            tracing::error!(sink = %sink, target = %target, code, reason = message, events = b.len(), "{service} rejected the request as malformed: events dropped")
        }
        _ => {
            tracing::error!(sink = %sink, target = %target, code, error = message, events = b.len(), "{service} keeps failing with a non-retryable error: events dropped")
        }
    }
}

/// Sleeps `d` unless cancelled first (false); the start of the drain cuts
/// the sleep short so the wait is decided again under the drain's caps.
async fn pause(shared: &Shared, d: Duration) -> bool {
    let drain = async {
        if shared.draining() {
            std::future::pending::<()>().await;
        }
        shared.state.drain_started().await;
    };
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
        _ = drain => true,
    }
}

fn cancelled(current: Vec<Item>, rest: Vec<Vec<Item>>) -> Vec<Item> {
    let mut out = current;
    for b in rest.into_iter().rev() {
        out.extend(b);
    }
    out
}
