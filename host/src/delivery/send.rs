//! Sending one batch: [`deliver`] executes the retry policy (`policy`) —
//! it attempts, feeds the outcome to the circuit breaker, the adaptive rate
//! and the counters, asks the policy what next, and does that. An attempt
//! waits for the target's circuit, the shared rate and an in-flight slot,
//! then sends PutLogEvents (with the EMF header for EMF batches). Retry is
//! per request: a batch CloudWatch accepted is never sent again.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatchlogs::error::SdkError;
use aws_sdk_cloudwatchlogs::operation::put_log_events::{PutLogEventsError, PutLogEventsOutput};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::event::PayloadKind;

use crate::ledger::DropReason;

use super::batch::{Item, TimeWindow};
use super::health::{Admit, Tripped};
use super::policy::{self, Action, Attempts, CircuitEffect, Outcome};
use super::record::{RecordItems as _, Rejected, RequestOutcome};
use super::retry::{Classified, ErrorClass, classify};
use super::{BatchKey, Shared};

/// How often persistent credential/permission problems are logged at error level.
const LOUD_LOG_EVERY: Duration = Duration::from_secs(60);

/// Delivers `batch` (already valid: sorted, within every limit). Returns
/// `Err` with the events not yet delivered when delivery was cancelled by
/// the drain deadline; everything else is delivered or counted as dropped.
pub(crate) async fn deliver(
    shared: &Shared,
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
                put_once(shared, key, &b).await
            };
            let Some((outcome, error)) = attempt else {
                return Err(cancelled(b, work));
            };
            let jitter = rand::random::<f64>();
            let (action, next) = policy::decide(
                &shared.policy,
                outcome,
                b.len(),
                tried,
                jitter,
                shared.draining(),
            );
            observe(shared, key, &b, outcome, error.as_ref(), action);
            (tried, create) = (next, action == Action::CreateTarget);
            match action {
                Action::Done => break,
                Action::Resend | Action::CreateTarget => {}
                Action::RetryAfter(d) | Action::HoldForCredentials(d) => {
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
                    log_drop(key, &b, reason, error.as_ref());
                    shared.ledger.drop_items(&key.target, reason, b.iter());
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Drops (as `too_old`) the events that aged out while waiting: CloudWatch
/// would refuse them.
fn drop_aged(shared: &Shared, key: &BatchKey, b: &mut Vec<Item>) {
    let cfg = &shared.cfg;
    let w = TimeWindow::around(SystemTime::now(), cfg.drop_older_than, cfg.drop_newer_than);
    let cut = b.partition_point(|i| i.timestamp_ms < w.oldest_ms);
    if cut > 0 {
        let old: Vec<Item> = b.drain(..cut).collect();
        shared
            .ledger
            .drop_items(&key.target, DropReason::TooOld, old.iter());
    }
}

/// One PutLogEvents attempt once the circuit lets it through; `None` when
/// cancelled. The spool notes the request before it goes out, and notes a
/// refusal, so a crash leaves an honest count of possible duplicates.
async fn put_once(
    shared: &Shared,
    key: &BatchKey,
    b: &[Item],
) -> Option<(Outcome, Option<Classified>)> {
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
    mark(shared, key, lo, hi, false);
    let res = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => return None,
        r = put(shared, key, b) => r,
    };
    let (outcome, error) = match res {
        Ok(out) => {
            record_accepted(shared, key, b, &out);
            (Outcome::Accepted, None)
        }
        Err(e) => {
            let c = classify(&e);
            (Outcome::PutFailed(c.class), Some(c))
        }
    };
    if policy::refused_for_sure(outcome) {
        mark(shared, key, lo, hi, true);
    }
    Some((outcome, error))
}

/// Creates the missing stream (and group); `None` when cancelled.
async fn create_target(shared: &Shared, key: &BatchKey) -> Option<(Outcome, Option<Classified>)> {
    let started = std::time::Instant::now();
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => None,
        r = shared.targets.ensure(&key.target, started) => Some(match r {
            Ok(()) => (Outcome::Created, None),
            Err(c) => (Outcome::CreateFailed(c.class), Some(c)),
        }),
    }
}

fn seq_range(b: &[Item]) -> (u64, u64) {
    b.iter()
        .fold((u64::MAX, 0), |(lo, hi), i| (lo.min(i.seq), hi.max(i.seq)))
}

fn mark(shared: &Shared, key: &BatchKey, lo: u64, hi: u64, refused: bool) {
    if let Some(s) = shared.lock_core().spool.as_mut() {
        s.mark(key, lo, hi, refused);
    }
}

/// Feeds an outcome to the circuit breaker, the adaptive rate, the
/// credential state and the request counters, logging state changes.
fn observe(
    shared: &Shared,
    key: &BatchKey,
    b: &[Item],
    outcome: Outcome,
    error: Option<&Classified>,
    action: Action,
) {
    let target = &key.target;
    let desc = error.map(|c| format!("{}: {}", c.code, c.message));
    match policy::circuit_effect(outcome) {
        CircuitEffect::Success => {
            if shared.health.success(target) {
                tracing::info!(target = %target, "circuit breaker closed: target accepts events again");
            }
        }
        CircuitEffect::Failure => {
            if let Tripped::Opened(d) = shared.health.failure(target, desc.as_deref().unwrap_or(""))
            {
                tracing::warn!(target = %target, error = desc.as_deref().unwrap_or(""), open_for = ?d, "circuit breaker opened: pausing requests to this target, then one probe");
            }
        }
        CircuitEffect::Neutral => shared.health.neutral(target),
    }
    match outcome {
        Outcome::Accepted => shared.rate.on_success(),
        Outcome::PutFailed(ErrorClass::Throttled) => {
            if let Some(r) = shared.rate.on_throttle() {
                tracing::debug!(rate = r, "throttled: lowering the PutLogEvents rate");
            }
        }
        _ => {}
    }
    if let (
        Outcome::PutFailed(ErrorClass::Credentials)
        | Outcome::CreateFailed(ErrorClass::Credentials),
        Some(c),
    ) = (outcome, error)
    {
        let new = shared.health.credential_failure(&c.code, &c.message);
        if new || shared.health.loud_log_due(LOUD_LOG_EVERY) {
            tracing::error!(
                target = %target,
                code = %c.code,
                error = %c.message,
                "CloudWatch Logs refused our credentials or permissions; events stay buffered and delivery \
                 resumes when fixed (check the role/keys and logs:PutLogEvents, see docs/iam.md)"
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
                RequestOutcome::Throttled
            } else {
                RequestOutcome::Retry
            },
        );
        tracing::debug!(target = %target, error = desc.as_deref().unwrap_or(""), ?wait, "PutLogEvents failed, retrying");
    }
}

fn log_drop(key: &BatchKey, b: &[Item], reason: DropReason, error: Option<&Classified>) {
    let (code, message) = error.map_or(("", ""), |c| (c.code.as_str(), c.message.as_str()));
    let target = &key.target;
    let job = b.first().map_or("", |i| &*i.job);
    match reason {
        DropReason::TargetMissing => {
            tracing::error!(target = %target, error = message, "log group or stream missing and its creation is disabled (create_log_groups / create_log_streams): events dropped")
        }
        DropReason::TargetCreationFailed => {
            tracing::error!(target = %target, code, error = message, "could not create the log group/stream: events dropped; check the name, KMS key, tags and quotas")
        }
        DropReason::InvalidParameter => {
            tracing::warn!(target = %target, job, error = message, "CloudWatch refused an event (InvalidParameter): dropped")
        }
        _ => {
            tracing::error!(target = %target, code, error = message, events = b.len(), "PutLogEvents keeps failing with a non-retryable error: events dropped")
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
        shared.drain_started.cancelled().await;
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

fn record_accepted(shared: &Shared, key: &BatchKey, batch: &[Item], out: &PutLogEventsOutput) {
    if let Some(p) = shared.health.credentials_ok() {
        tracing::info!(failures = p.failures, code = %p.code, "CloudWatch Logs accepts our credentials again");
    }
    shared.targets.mark_known(&key.target);
    let rejected = out
        .rejected_log_events_info()
        .map(|r| Rejected {
            too_old_end: r.too_old_log_event_end_index(),
            too_new_start: r.too_new_log_event_start_index(),
            expired_end: r.expired_log_event_end_index(),
        })
        .unwrap_or_default();
    shared.ledger.record_success(&key.target, batch, rejected);
}

/// One PutLogEvents request, within the adaptive rate and the in-flight bound.
async fn put(
    shared: &Shared,
    key: &BatchKey,
    batch: &[Item],
) -> Result<PutLogEventsOutput, SdkError<PutLogEventsError, HttpResponse>> {
    debug_assert_eq!(super::batch::check_request(batch), Ok(()));
    let events = batch
        .iter()
        .map(|i| {
            InputLogEvent::builder()
                .timestamp(i.timestamp_ms)
                .message(i.message.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(SdkError::construction_failure)?;
    let _permit = shared
        .in_flight
        .acquire()
        .await
        .map_err(SdkError::construction_failure)?;
    shared.rate.acquire().await;
    let req = shared
        .client
        .put_log_events()
        .log_group_name(&key.target.log_group)
        .log_stream_name(&key.target.log_stream)
        .set_log_events(Some(events));
    if key.kind == PayloadKind::Emf && shared.cfg.emf_header {
        req.customize()
            .mutate_request(|r| {
                r.headers_mut().insert("x-amzn-logs-format", "json/emf");
            })
            .send()
            .await
    } else {
        req.send().await
    }
}
