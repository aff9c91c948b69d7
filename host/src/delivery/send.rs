//! Sending one batch: rate limiter, in-flight bound, PutLogEvents (with the
//! EMF header for EMF batches), and the retry loop that decides by error
//! class — back off on throttling/5xx/timeouts/connection failures, split on
//! InvalidParameter to isolate bad events, create the target on
//! ResourceNotFound and replay the same batch, hold on through credential
//! errors — for as long as the events are young enough to be accepted.
//! Retry is per request: a batch CloudWatch accepted is never sent again.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::error::SdkError;
use aws_sdk_cloudwatchlogs::operation::put_log_events::{PutLogEventsError, PutLogEventsOutput};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::event::PayloadKind;
use crate::ledger::DropReason;

use super::batch::{Item, TimeWindow};
use super::record::{RecordItems as _, Rejected, RequestOutcome};
use super::retry::{Classified, ErrorClass, classify, full_jitter};
use super::{BatchKey, Shared};

/// How often persistent credential/permission problems are logged at error level.
const LOUD_LOG_EVERY: Duration = Duration::from_secs(60);
/// Non-retryable errors of unknown kind get this many tries before the batch is dropped.
const PERMANENT_TRIES: u32 = 3;
/// ResourceNotFound right after a successful creation is retried this often
/// (eventual consistency) before being treated like a transient error.
const CREATE_ROUNDS: u32 = 3;

/// Delivers `batch` (already valid: sorted, within every limit). Returns
/// `Err` with the events not yet delivered when delivery was cancelled by
/// the drain deadline; everything else is delivered or counted as dropped.
pub(crate) async fn deliver(
    shared: &Shared,
    key: &BatchKey,
    batch: Vec<Item>,
) -> Result<(), Vec<Item>> {
    let target = &*key.target;
    let acc = &shared.ledger;
    let cfg = &shared.cfg;
    // Sub-batches still to deliver (split on InvalidParameter), last = next.
    let mut stack = vec![batch];
    while let Some(mut b) = stack.pop() {
        let mut attempt: u32 = 0;
        let mut cred_attempt: u32 = 0;
        let mut permanent_tries: u32 = 0;
        let mut create_rounds: u32 = 0;
        loop {
            // Events that aged out while waiting can no longer be accepted.
            let w = TimeWindow::around(SystemTime::now(), cfg.drop_older_than, cfg.drop_newer_than);
            let cut = b.partition_point(|i| i.timestamp_ms < w.oldest_ms);
            if cut > 0 {
                let old: Vec<Item> = b.drain(..cut).collect();
                acc.drop_items(target, DropReason::TooOld, old.iter());
            }
            if b.is_empty() {
                break;
            }
            if let Some(wait) = shared.health.wait_for(target)
                && !pause(shared, wait).await
            {
                return Err(cancelled(b, stack));
            }
            let sent_at = Instant::now();
            let res = tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return Err(cancelled(b, stack)),
                r = put(shared, key, &b) => r,
            };
            let err = match res {
                Ok(out) => {
                    on_success(shared, key, &b, &out);
                    break;
                }
                Err(e) => e,
            };
            let mut c = classify(&err);
            if c.class == ErrorClass::AlreadyExists {
                c.class = ErrorClass::Transient;
            }
            if c.class == ErrorClass::NotFound {
                if !cfg.create_log_streams {
                    tracing::error!(target = %target, error = %c.message, "log stream missing and create_log_streams = false: events dropped; create it or enable creation");
                    acc.drop_items(target, DropReason::TargetMissing, b.iter());
                    break;
                }
                if create_rounds < CREATE_ROUNDS {
                    let created = tokio::select! {
                        biased;
                        _ = shared.cancel.cancelled() => return Err(cancelled(b, stack)),
                        r = shared.targets.ensure(target, sent_at) => r,
                    };
                    match created {
                        // Replay the same batch.
                        Ok(()) => {
                            create_rounds += 1;
                            continue;
                        }
                        Err(ce) => c = ce,
                    }
                    if c.class == ErrorClass::NotFound {
                        tracing::error!(target = %target, error = %c.message, "log group missing and create_log_groups = false: events dropped; create the group or enable creation");
                        acc.drop_items(target, DropReason::TargetMissing, b.iter());
                        break;
                    }
                    if matches!(
                        c.class,
                        ErrorClass::InvalidParameter | ErrorClass::Permanent
                    ) {
                        tracing::error!(target = %target, code = %c.code, error = %c.message, "could not create the log group/stream: events dropped; check the name, KMS key, tags and quotas");
                        acc.drop_items(target, DropReason::TargetCreationFailed, b.iter());
                        break;
                    }
                } else {
                    c.class = ErrorClass::Transient;
                }
            }
            match c.class {
                ErrorClass::InvalidParameter => {
                    if b.len() > 1 {
                        // Isolate the bad events: retry each half on its own.
                        let second = b.split_off(b.len() / 2);
                        stack.push(second);
                        stack.push(b);
                        break;
                    }
                    tracing::warn!(target = %target, job = %b[0].job, error = %c.message, "CloudWatch refused an event (InvalidParameter): dropped");
                    acc.drop_items(target, DropReason::InvalidParameter, b.iter());
                    break;
                }
                ErrorClass::Throttled | ErrorClass::Transient => {
                    let throttled = c.class == ErrorClass::Throttled;
                    acc.record_failure(
                        target,
                        &b,
                        if throttled {
                            RequestOutcome::Throttled
                        } else {
                            RequestOutcome::Retry
                        },
                    );
                    note_failure(shared, key, &c);
                    let wait = full_jitter(cfg.backoff_base, cfg.backoff_cap, attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::debug!(target = %target, code = %c.code, attempt, ?wait, "PutLogEvents failed, retrying");
                    if !pause(shared, wait).await {
                        return Err(cancelled(b, stack));
                    }
                }
                ErrorClass::Credentials => {
                    acc.record_failure(target, &b, RequestOutcome::Retry);
                    note_failure(shared, key, &c);
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
                    let wait = full_jitter(
                        cfg.credential_backoff_base,
                        cfg.credential_backoff_cap,
                        cred_attempt,
                    );
                    cred_attempt = cred_attempt.saturating_add(1);
                    if !pause(shared, wait).await {
                        return Err(cancelled(b, stack));
                    }
                }
                ErrorClass::Permanent | ErrorClass::NotFound | ErrorClass::AlreadyExists => {
                    permanent_tries += 1;
                    note_failure(shared, key, &c);
                    if permanent_tries >= PERMANENT_TRIES {
                        tracing::error!(target = %target, code = %c.code, error = %c.message, events = b.len(), "PutLogEvents keeps failing with a non-retryable error: events dropped");
                        acc.drop_items(target, DropReason::PermanentError, b.iter());
                        break;
                    }
                    acc.record_failure(target, &b, RequestOutcome::Retry);
                    let wait = full_jitter(cfg.backoff_base, cfg.backoff_cap, permanent_tries);
                    if !pause(shared, wait).await {
                        return Err(cancelled(b, stack));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Sleeps `d` unless cancelled first; false when cancelled.
async fn pause(shared: &Shared, d: Duration) -> bool {
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

fn cancelled(current: Vec<Item>, stack: Vec<Vec<Item>>) -> Vec<Item> {
    let mut out = current;
    for b in stack.into_iter().rev() {
        out.extend(b);
    }
    out
}

fn note_failure(shared: &Shared, key: &BatchKey, c: &Classified) {
    let desc = format!("{}: {}", c.code, c.message);
    if shared.health.failure(&key.target, &desc) {
        tracing::warn!(target = %key.target, error = %desc, open_for = ?shared.cfg.circuit_open_for, "circuit breaker opened: pausing requests to this target");
    }
}

fn on_success(shared: &Shared, key: &BatchKey, batch: &[Item], out: &PutLogEventsOutput) {
    if shared.health.success(&key.target) {
        tracing::info!(target = %key.target, "circuit breaker closed: target accepts events again");
    }
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

/// One PutLogEvents attempt, within the rate limit and in-flight bound.
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
    shared.put_limiter.until_ready().await;
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
