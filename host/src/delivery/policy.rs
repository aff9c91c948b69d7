//! The retry policy as one pure function: given how an attempt at a batch
//! ended and what was tried before, [`decide`] says what happens next —
//! done, resend, retry after a backoff, split, create the target, hold for
//! credentials, or drop with a reason. The sender (`send`) only executes
//! the action; nothing here sleeps, sends, logs or counts, so the whole
//! policy is one table test away.
//!
//! [`circuit_effect`] says the same for the circuit breaker: throttling is
//! the service asking for a lower rate, never a sign of a broken target, so
//! it neither opens nor closes a circuit.

use std::time::Duration;

use super::sink::ErrorClass;
use crate::ledger::DropReason;

/// Non-retryable errors of unknown kind get this many tries before the batch is dropped.
pub(crate) const PERMANENT_TRIES: u32 = 3;
/// ResourceNotFound right after creating the target is replayed this often
/// (eventual consistency) before it is retried like a transient error.
pub(crate) const CREATE_ROUNDS: u32 = 3;
/// While draining no wait is longer than this, so the drain keeps trying
/// until its deadline instead of sleeping through it.
pub(crate) const DRAIN_WAIT_CAP: Duration = Duration::from_millis(500);

/// How one attempt at a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The service accepted the request (events it rejected one by one, if
    /// any, are accounted separately).
    Accepted,
    /// The missing target was created.
    Created,
    /// Sending failed with this class of error.
    PutFailed(ErrorClass),
    /// Creating the target failed with this class of error. `NotFound`
    /// means it may not be created.
    CreateFailed(ErrorClass),
}

/// What to do next with the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing left to do.
    Done,
    /// Send the same batch again at once.
    Resend,
    /// Wait, then send the same batch again.
    RetryAfter(Duration),
    /// Send each half of the batch on its own (isolates a bad event).
    Split,
    /// Create the stream (and group), then resend.
    CreateTarget,
    /// Credentials or permissions are broken: keep the batch, wait, try again.
    HoldForCredentials(Duration),
    /// Give the batch up, counting its events under this reason.
    Drop(DropReason),
}

/// What was tried so far for one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Attempts {
    /// Throttled or transient failures (backoff exponent).
    pub retries: u32,
    /// Credential failures (credential backoff exponent).
    pub credential: u32,
    /// Unknown non-retryable failures.
    pub permanent: u32,
    /// Successful creations of the target.
    pub creations: u32,
}

/// The configurable part of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// First backoff step for throttling and transient errors.
    pub backoff_base: Duration,
    /// Longest such backoff.
    pub backoff_cap: Duration,
    /// First backoff step after credential errors.
    pub credential_base: Duration,
    /// Longest credential backoff.
    pub credential_cap: Duration,
    /// Whether the sink may create a missing target.
    pub create_targets: bool,
}

impl Policy {
    /// The policy `cfg` sets, for a sink that can (or cannot) create targets.
    pub fn of(cfg: &super::DeliveryConfig, create_targets: bool) -> Policy {
        Policy {
            backoff_base: cfg.backoff_base,
            backoff_cap: cfg.backoff_cap,
            credential_base: cfg.credential_backoff_base,
            credential_cap: cfg.credential_backoff_cap,
            create_targets,
        }
    }
}

/// Exponential backoff with full jitter: `jitter` (in `[0, 1]`) of
/// `min(cap, base · 2^step)` (AWS Architecture Blog, "Exponential Backoff
/// And Jitter"); at most [`DRAIN_WAIT_CAP`] while draining.
pub(crate) fn backoff(
    base: Duration,
    cap: Duration,
    step: u32,
    jitter: f64,
    draining: bool,
) -> Duration {
    let ceiling = base
        .checked_mul(1u32 << step.min(20))
        .unwrap_or(cap)
        .min(cap);
    let ceiling = if draining {
        ceiling.min(DRAIN_WAIT_CAP)
    } else {
        ceiling
    };
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

/// The wait before a retry: the policy's, or longer when the service asked
/// for longer (`Retry-After`), but never over [`DRAIN_WAIT_CAP`] while draining.
pub(crate) fn at_least(wait: Duration, asked: Option<Duration>, draining: bool) -> Duration {
    let wait = asked.map_or(wait, |a| wait.max(a));
    if draining {
        wait.min(DRAIN_WAIT_CAP)
    } else {
        wait
    }
}

/// [`backoff`] with a fresh random draw (outside a batch's retry loop:
/// creation jitter, retention retries).
pub(crate) fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    backoff(base, cap, attempt, rand::random::<f64>(), false)
}

/// The next action for a batch of `len` events after `outcome`, and the
/// attempt state to carry on with.
pub(crate) fn decide(
    p: &Policy,
    outcome: Outcome,
    len: usize,
    mut a: Attempts,
    jitter: f64,
    draining: bool,
) -> (Action, Attempts) {
    use ErrorClass as C;
    let retry = |a: &mut Attempts| {
        let wait = backoff(p.backoff_base, p.backoff_cap, a.retries, jitter, draining);
        a.retries = a.retries.saturating_add(1);
        Action::RetryAfter(wait)
    };
    let action = match outcome {
        Outcome::Accepted => Action::Done,
        Outcome::Created => {
            a.creations += 1;
            Action::Resend
        }
        Outcome::PutFailed(C::Throttled | C::Transient | C::AlreadyExists)
        | Outcome::CreateFailed(C::Throttled | C::Transient | C::AlreadyExists) => retry(&mut a),
        Outcome::PutFailed(C::Credentials) | Outcome::CreateFailed(C::Credentials) => {
            let wait = backoff(
                p.credential_base,
                p.credential_cap,
                a.credential,
                jitter,
                draining,
            );
            a.credential = a.credential.saturating_add(1);
            Action::HoldForCredentials(wait)
        }
        Outcome::PutFailed(C::InvalidRequest | C::TooLarge) if len > 1 => Action::Split,
        Outcome::PutFailed(C::InvalidRequest) => Action::Drop(DropReason::InvalidParameter),
        Outcome::PutFailed(C::TooLarge) => Action::Drop(DropReason::Oversize),
        Outcome::PutFailed(C::Rejected) => Action::Drop(DropReason::Rejected),
        Outcome::PutFailed(C::NotFound) if !p.create_targets => {
            Action::Drop(DropReason::TargetMissing)
        }
        Outcome::PutFailed(C::NotFound) if a.creations < CREATE_ROUNDS => Action::CreateTarget,
        // Still missing right after creating it: eventual consistency.
        Outcome::PutFailed(C::NotFound) => retry(&mut a),
        Outcome::CreateFailed(C::NotFound) => Action::Drop(DropReason::TargetMissing),
        Outcome::CreateFailed(C::InvalidRequest | C::TooLarge | C::Rejected | C::Permanent) => {
            Action::Drop(DropReason::TargetCreationFailed)
        }
        Outcome::PutFailed(C::Permanent) => {
            a.permanent += 1;
            if a.permanent >= PERMANENT_TRIES {
                Action::Drop(DropReason::PermanentError)
            } else {
                Action::RetryAfter(backoff(
                    p.backoff_base,
                    p.backoff_cap,
                    a.permanent,
                    jitter,
                    draining,
                ))
            }
        }
    };
    (action, a)
}

/// What an outcome means for the target's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CircuitEffect {
    /// The endpoint answered sensibly: closes the circuit.
    Success,
    /// 5xx, timeout, connection failure, unknown error: counts towards opening it.
    Failure,
    /// Throttling: the service works and asks for less; no effect.
    Neutral,
}

/// The circuit breaker's view of an outcome.
pub(crate) fn circuit_effect(outcome: Outcome) -> CircuitEffect {
    use ErrorClass as C;
    match outcome {
        Outcome::PutFailed(C::Throttled) | Outcome::CreateFailed(C::Throttled) => {
            CircuitEffect::Neutral
        }
        Outcome::PutFailed(C::Transient | C::Permanent)
        | Outcome::CreateFailed(C::Transient | C::Permanent) => CircuitEffect::Failure,
        _ => CircuitEffect::Success,
    }
}

/// True when the answer proves the service accepted nothing of the request
/// (an error response other than 5xx); false when it may have (timeouts,
/// connection failures, 5xx) — used to count possible duplicates after a crash.
pub(crate) fn refused_for_sure(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::PutFailed(
            ErrorClass::Throttled
                | ErrorClass::InvalidRequest
                | ErrorClass::TooLarge
                | ErrorClass::Rejected
                | ErrorClass::NotFound
                | ErrorClass::Credentials
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use ErrorClass as C;
    use Outcome as O;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> Policy {
        Policy {
            backoff_base: MS(200),
            backoff_cap: Duration::from_secs(30),
            credential_base: Duration::from_secs(5),
            credential_cap: Duration::from_secs(300),
            create_targets: true,
        }
    }

    fn at(retries: u32, credential: u32, permanent: u32, creations: u32) -> Attempts {
        Attempts {
            retries,
            credential,
            permanent,
            creations,
        }
    }

    /// The decision table: (outcome, batch length, attempts before, draining)
    /// → (action, attempts after), with the full jitter draw fixed at 1.0
    /// so waits are the backoff ceilings.
    #[test]
    fn decision_table() {
        let none = Attempts::default();
        #[rustfmt::skip]
        let rows: Vec<(O, usize, Attempts, bool, A, Attempts)> = vec![
            (O::Accepted, 5, none, false, A::Done, none),
            (O::Created, 5, none, false, A::Resend, at(0, 0, 0, 1)),
            // Throttling and transient errors: exponential backoff, forever.
            (O::PutFailed(C::Throttled), 5, none, false, A::RetryAfter(MS(200)), at(1, 0, 0, 0)),
            (O::PutFailed(C::Throttled), 5, at(3, 0, 0, 0), false, A::RetryAfter(MS(1_600)), at(4, 0, 0, 0)),
            (O::PutFailed(C::Transient), 5, at(40, 0, 0, 0), false, A::RetryAfter(MS(30_000)), at(41, 0, 0, 0)),
            (O::PutFailed(C::Transient), 5, at(40, 0, 0, 0), true, A::RetryAfter(DRAIN_WAIT_CAP), at(41, 0, 0, 0)),
            (O::PutFailed(C::AlreadyExists), 5, none, false, A::RetryAfter(MS(200)), at(1, 0, 0, 0)),
            // Credentials: hold the data, long backoff.
            (O::PutFailed(C::Credentials), 5, none, false, A::HoldForCredentials(MS(5_000)), at(0, 1, 0, 0)),
            (O::PutFailed(C::Credentials), 5, at(0, 9, 0, 0), false, A::HoldForCredentials(MS(300_000)), at(0, 10, 0, 0)),
            (O::CreateFailed(C::Credentials), 5, none, true, A::HoldForCredentials(DRAIN_WAIT_CAP), at(0, 1, 0, 0)),
            // A bad request is split until the bad event stands alone, then dropped.
            (O::PutFailed(C::InvalidRequest), 2, none, false, A::Split, none),
            (O::PutFailed(C::InvalidRequest), 1, none, false, A::Drop(DropReason::InvalidParameter), none),
            // Too large: halves until one event alone is too large for the service.
            (O::PutFailed(C::TooLarge), 2, none, false, A::Split, none),
            (O::PutFailed(C::TooLarge), 1, none, false, A::Drop(DropReason::Oversize), none),
            // Refused for good as a whole: dropped at once, not split.
            (O::PutFailed(C::Rejected), 9, none, false, A::Drop(DropReason::Rejected), none),
            // Missing target: create it, replay; a few rounds, then treat as transient.
            (O::PutFailed(C::NotFound), 5, none, false, A::CreateTarget, none),
            (O::PutFailed(C::NotFound), 5, at(0, 0, 0, 2), false, A::CreateTarget, at(0, 0, 0, 2)),
            (O::PutFailed(C::NotFound), 5, at(0, 0, 0, 3), false, A::RetryAfter(MS(200)), at(1, 0, 0, 3)),
            (O::CreateFailed(C::NotFound), 5, none, false, A::Drop(DropReason::TargetMissing), none),
            (O::CreateFailed(C::InvalidRequest), 5, none, false, A::Drop(DropReason::TargetCreationFailed), none),
            (O::CreateFailed(C::Permanent), 5, none, false, A::Drop(DropReason::TargetCreationFailed), none),
            (O::CreateFailed(C::Throttled), 5, none, false, A::RetryAfter(MS(200)), at(1, 0, 0, 0)),
            (O::CreateFailed(C::Transient), 5, at(1, 0, 0, 0), false, A::RetryAfter(MS(400)), at(2, 0, 0, 0)),
            // Unknown refusals: a few tries, then drop.
            (O::PutFailed(C::Permanent), 5, none, false, A::RetryAfter(MS(400)), at(0, 0, 1, 0)),
            (O::PutFailed(C::Permanent), 5, at(0, 0, 1, 0), false, A::RetryAfter(MS(800)), at(0, 0, 2, 0)),
            (O::PutFailed(C::Permanent), 5, at(0, 0, 2, 0), false, A::Drop(DropReason::PermanentError), at(0, 0, 3, 0)),
        ];
        for (i, (outcome, len, before, draining, action, after)) in rows.into_iter().enumerate() {
            assert_eq!(
                decide(&policy(), outcome, len, before, 1.0, draining),
                (action, after),
                "row {i}: {outcome:?} len {len} after {before:?}"
            );
        }
        let no_create = Policy {
            create_targets: false,
            ..policy()
        };
        assert_eq!(
            decide(&no_create, O::PutFailed(C::NotFound), 5, none, 1.0, false).0,
            A::Drop(DropReason::TargetMissing)
        );
    }

    #[test]
    fn jitter_scales_the_wait() {
        let (a, _) = decide(
            &policy(),
            O::PutFailed(C::Throttled),
            1,
            at(2, 0, 0, 0),
            0.25,
            false,
        );
        assert_eq!(a, A::RetryAfter(MS(200)));
        let (a, _) = decide(
            &policy(),
            O::PutFailed(C::Throttled),
            1,
            Attempts::default(),
            0.0,
            false,
        );
        assert_eq!(a, A::RetryAfter(Duration::ZERO));
    }

    #[test]
    fn throttling_never_counts_against_the_circuit() {
        use CircuitEffect as E;
        let table = [
            (O::Accepted, E::Success),
            (O::Created, E::Success),
            (O::PutFailed(C::Throttled), E::Neutral),
            (O::CreateFailed(C::Throttled), E::Neutral),
            (O::PutFailed(C::Transient), E::Failure),
            (O::PutFailed(C::Permanent), E::Failure),
            (O::CreateFailed(C::Transient), E::Failure),
            (O::PutFailed(C::InvalidRequest), E::Success),
            (O::PutFailed(C::TooLarge), E::Success),
            (O::PutFailed(C::Rejected), E::Success),
            (O::PutFailed(C::NotFound), E::Success),
            (O::PutFailed(C::Credentials), E::Success),
        ];
        for (o, e) in table {
            assert_eq!(circuit_effect(o), e, "{o:?}");
        }
    }

    #[test]
    fn only_definite_refusals_rule_out_a_duplicate() {
        assert!(refused_for_sure(O::PutFailed(C::Throttled)));
        assert!(refused_for_sure(O::PutFailed(C::InvalidRequest)));
        assert!(refused_for_sure(O::PutFailed(C::Rejected)));
        assert!(!refused_for_sure(O::PutFailed(C::Transient)));
        assert!(!refused_for_sure(O::Accepted));
    }

    #[test]
    fn a_service_asking_for_longer_is_heard_within_the_drain_cap() {
        let s = Duration::from_secs;
        assert_eq!(at_least(MS(200), None, false), MS(200));
        assert_eq!(at_least(MS(200), Some(s(5)), false), s(5));
        assert_eq!(at_least(s(9), Some(s(5)), false), s(9));
        assert_eq!(at_least(MS(200), Some(s(5)), true), DRAIN_WAIT_CAP);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 0..40 {
            let d = full_jitter(base, cap, attempt);
            let ceiling = (base * (1u32 << attempt.min(20))).min(cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        assert_eq!(full_jitter(Duration::ZERO, cap, 3), Duration::ZERO);
    }
}
