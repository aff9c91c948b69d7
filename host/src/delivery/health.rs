//! Health of the delivery stage: per-target circuit breakers and the
//! account-wide credential state, exposed as a [`Health`] value for the
//! host's health endpoint.
//!
//! A breaker behaves as clients expect: it opens after
//! `circuit_failure_threshold` non-throttle failures in a row (5xx,
//! timeouts, connection errors — throttling is rate feedback and never
//! counts), stays open about a second, then lets exactly one probe through
//! (half-open); a failed probe reopens it for twice as long, up to
//! `circuit_open_max`, and any sensible answer closes it. The shutdown drain
//! turns every open circuit half-open at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::event::Target;

/// A snapshot of what is currently wrong with delivery, if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Targets whose circuit breaker is open (or half-open, waiting for a probe).
    pub open_circuits: Vec<OpenCircuit>,
    /// The last credential or permission failure, while it has not healed.
    pub credential_problem: Option<CredentialProblem>,
    /// Events buffered or held by requests in progress.
    pub buffered_events: u64,
    /// Whether drain has run (new submissions are dropped as `shutdown`).
    pub closed: bool,
}

impl Health {
    /// True when no circuit is open and credentials work.
    pub fn is_healthy(&self) -> bool {
        self.open_circuits.is_empty() && self.credential_problem.is_none()
    }
}

/// One target whose requests are paused after repeated failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCircuit {
    /// The target.
    pub target: Target,
    /// Failed requests in a row.
    pub consecutive_failures: u32,
    /// The last error (code and message).
    pub last_error: String,
    /// Time left before a probe request is allowed (zero: probing now).
    pub retry_in: Duration,
}

/// A credential or permission error that has not healed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProblem {
    /// Error code, e.g. `ExpiredTokenException`, or `credentials` when none could be loaded.
    pub code: String,
    /// The full error message.
    pub message: String,
    /// When the problem was first seen.
    pub since: SystemTime,
    /// Failed requests since then.
    pub failures: u64,
}

/// First open period of a circuit; it doubles on every failed probe.
pub(crate) const FIRST_OPEN: Duration = Duration::from_secs(1);
/// How often a worker waiting for another's probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(100);

/// A circuit's state as a number for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CircuitState {
    /// Requests flow (0).
    Closed,
    /// One probe request is allowed through (1).
    HalfOpen,
    /// Requests wait (2).
    Open,
}

impl CircuitState {
    /// 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Breaker {
    /// Non-throttle failures in a row.
    failures: u32,
    state: State,
    /// How long the next opening lasts.
    open_for: Duration,
    last_error: String,
}

/// What a request to a target may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead.
    Go,
    /// Go ahead as the one probe of a half-open circuit.
    Probe,
    /// Wait this long, then ask again.
    Wait(Duration),
}

/// What a recorded failure did to the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    /// Nothing changed state.
    No,
    /// The circuit opened (first time, or again after a failed probe) for this long.
    Opened(Duration),
}

/// Per-target circuit breakers plus the credential state.
#[derive(Debug)]
pub(crate) struct HealthState {
    /// Failures in a row that open a circuit, and the longest opening.
    limits: Mutex<(u32, Duration)>,
    breakers: Mutex<HashMap<Target, Breaker>>,
    credentials: Mutex<Option<CredentialProblem>>,
    last_loud_log: Mutex<Option<Instant>>,
}

impl HealthState {
    /// Circuits open after `threshold` non-throttle failures in a row, first
    /// for [`FIRST_OPEN`], doubling after each failed probe up to `open_max`.
    pub fn new(threshold: u32, open_max: Duration) -> HealthState {
        HealthState {
            limits: Mutex::new(Self::bounded(threshold, open_max)),
            breakers: Mutex::new(HashMap::new()),
            credentials: Mutex::new(None),
            last_loud_log: Mutex::new(None),
        }
    }

    fn bounded(threshold: u32, open_max: Duration) -> (u32, Duration) {
        (threshold.max(1), open_max.max(Duration::from_millis(1)))
    }

    /// New limits from a reload.
    pub fn set_limits(&self, threshold: u32, open_max: Duration) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = Self::bounded(threshold, open_max);
    }

    /// Forgets every circuit and the credential problem (new settings may have fixed them).
    pub fn reset(&self) {
        self.lock().clear();
        *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Breaker>> {
        self.breakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request to `target` may go now. A half-open circuit lets
    /// exactly one probe through; the others wait for its answer.
    pub fn admit(&self, target: &Target) -> Admit {
        let mut map = self.lock();
        let Some(b) = map.get_mut(target) else {
            return Admit::Go;
        };
        let now = Instant::now();
        match b.state {
            State::Closed => Admit::Go,
            State::Open { until } if until > now => Admit::Wait(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                b.state = State::HalfOpen { probing: true };
                Admit::Probe
            }
            State::HalfOpen { probing: true } => Admit::Wait(PROBE_POLL),
        }
    }

    /// Records an answer that proves the endpoint works: closes the circuit.
    /// Returns true when it was not closed.
    pub fn success(&self, target: &Target) -> bool {
        self.lock()
            .remove(target)
            .is_some_and(|b| b.state != State::Closed)
    }

    /// Records a throttled answer: no effect on the failure count, but a
    /// probe that was throttled frees the probe slot for the next attempt.
    pub fn neutral(&self, target: &Target) {
        if let Some(b) = self.lock().get_mut(target)
            && b.state == (State::HalfOpen { probing: true })
        {
            b.state = State::HalfOpen { probing: false };
        }
    }

    /// Records a non-throttle failure (5xx, timeout, connection error,
    /// unknown refusal). Opens the circuit after `threshold` in a row, and
    /// again, for twice as long, when a probe fails; while `draining`, for no
    /// longer than the drain's wait cap.
    pub fn failure(&self, target: &Target, error: &str, draining: bool) -> Tripped {
        let (threshold, open_max) = *self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = self.lock();
        let b = map.entry(target.clone()).or_insert(Breaker {
            failures: 0,
            state: State::Closed,
            open_for: FIRST_OPEN.min(open_max),
            last_error: String::new(),
        });
        b.failures = b.failures.saturating_add(1);
        b.last_error = error.to_string();
        let open = match b.state {
            State::Closed => b.failures >= threshold,
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
        };
        if !open {
            return Tripped::No;
        }
        let mut period = b.open_for;
        if draining {
            period = period.min(super::policy::DRAIN_WAIT_CAP);
        }
        b.state = State::Open {
            until: Instant::now() + period,
        };
        b.open_for = (b.open_for * 2).min(open_max);
        Tripped::Opened(period)
    }

    /// For the shutdown drain: every open circuit becomes half-open at once
    /// (one probe each, all in parallel).
    pub fn probe_all_now(&self) {
        for b in self.lock().values_mut() {
            if matches!(b.state, State::Open { .. }) {
                b.state = State::HalfOpen { probing: false };
            }
        }
    }

    /// Lets every open period end now (tests stand in for the clock).
    #[cfg(test)]
    fn expire_for_test(&self) {
        for b in self.lock().values_mut() {
            if let State::Open { until } = &mut b.state {
                *until = Instant::now();
            }
        }
    }

    /// Every target with a circuit that is not closed, and its state.
    pub fn circuits(&self) -> Vec<(Target, CircuitState)> {
        let now = Instant::now();
        let mut v: Vec<(Target, CircuitState)> = self
            .lock()
            .iter()
            .filter_map(|(t, b)| {
                let s = match b.state {
                    State::Closed => return None,
                    State::Open { until } if until > now => CircuitState::Open,
                    _ => CircuitState::HalfOpen,
                };
                Some((t.clone(), s))
            })
            .collect();
        v.sort();
        v
    }

    /// Records a credential or permission failure; returns true when it is new.
    pub fn credential_failure(&self, code: &str, message: &str) -> bool {
        let mut c = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        match c.as_mut() {
            Some(p) => {
                p.failures += 1;
                p.code = code.to_string();
                p.message = message.to_string();
                false
            }
            None => {
                *c = Some(CredentialProblem {
                    code: code.to_string(),
                    message: message.to_string(),
                    since: SystemTime::now(),
                    failures: 1,
                });
                true
            }
        }
    }

    /// True at most once per `every`: lets the sender log persistent
    /// problems loudly without a line per request.
    pub fn loud_log_due(&self, every: Duration) -> bool {
        let mut l = self.last_loud_log.lock().unwrap_or_else(|p| p.into_inner());
        if l.is_none_or(|t| t.elapsed() >= every) {
            *l = Some(Instant::now());
            true
        } else {
            false
        }
    }

    /// Clears the credential problem after any successful call; returns it if there was one.
    pub fn credentials_ok(&self) -> Option<CredentialProblem> {
        let mut c = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        c.take()
    }

    /// The current state as a [`Health`] (buffer fields left for the caller).
    pub fn snapshot(&self) -> Health {
        let now = Instant::now();
        let mut open_circuits: Vec<OpenCircuit> = {
            let map = self.lock();
            map.iter()
                .filter_map(|(t, b)| {
                    let retry_in = match b.state {
                        State::Closed => return None,
                        State::Open { until } => until.saturating_duration_since(now),
                        State::HalfOpen { .. } => Duration::ZERO,
                    };
                    Some(OpenCircuit {
                        target: t.clone(),
                        consecutive_failures: b.failures,
                        last_error: b.last_error.clone(),
                        retry_in,
                    })
                })
                .collect()
        };
        open_circuits.sort_by(|a, b| a.target.cmp(&b.target));
        let credential_problem = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Health {
            open_circuits,
            credential_problem,
            ..Health::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target::new("cw", vec![("log_stream".into(), "s".into())])
    }

    #[test]
    fn breaker_opens_after_threshold_and_closes_on_success() {
        let h = HealthState::new(3, Duration::from_secs(60));
        assert_eq!(h.failure(&t(), "e1", false), Tripped::No);
        assert_eq!(h.failure(&t(), "e2", false), Tripped::No);
        assert_eq!(h.admit(&t()), Admit::Go);
        assert_eq!(h.failure(&t(), "e3", false), Tripped::Opened(FIRST_OPEN));
        assert!(matches!(h.admit(&t()), Admit::Wait(d) if d <= FIRST_OPEN));
        let snap = h.snapshot();
        assert_eq!(snap.open_circuits.len(), 1);
        assert_eq!(snap.open_circuits[0].consecutive_failures, 3);
        assert_eq!(snap.open_circuits[0].last_error, "e3");
        assert!(!snap.is_healthy());
        assert_eq!(h.circuits(), [(t(), CircuitState::Open)]);
        assert!(h.success(&t()));
        assert!(h.snapshot().is_healthy());
        assert_eq!(h.admit(&t()), Admit::Go);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_doubles_the_open_time_up_to_the_cap() {
        let h = HealthState::new(1, Duration::from_millis(3_000));
        let open_times: Vec<Duration> = (0..4)
            .map(|_| {
                let Tripped::Opened(d) = h.failure(&t(), "down", false) else {
                    panic!("a failure when closed or probing opens the circuit");
                };
                // Time passes: the circuit is due for a probe.
                h.expire_for_test();
                assert_eq!(h.admit(&t()), Admit::Probe);
                assert_eq!(
                    h.admit(&t()),
                    Admit::Wait(PROBE_POLL),
                    "one probe at a time"
                );
                d
            })
            .collect();
        assert_eq!(
            open_times,
            [1_000, 2_000, 3_000, 3_000].map(Duration::from_millis)
        );
        // A throttled probe frees the slot without reopening.
        h.neutral(&t());
        assert_eq!(h.admit(&t()), Admit::Probe);
        assert!(h.success(&t()), "a good answer closes it");
        assert_eq!(
            h.failure(&t(), "again", false),
            Tripped::Opened(FIRST_OPEN),
            "closed resets the open time"
        );
    }

    #[test]
    fn drain_probes_every_open_circuit_at_once_and_caps_reopening() {
        let h = HealthState::new(1, Duration::from_secs(30));
        let u = Target::new("cw", vec![("log_stream".into(), "u".into())]);
        for _ in 0..3 {
            h.failure(&t(), "down", false);
            h.expire_for_test();
            h.admit(&t());
        }
        assert_eq!(
            h.failure(&t(), "down", false),
            Tripped::Opened(Duration::from_secs(8))
        );
        h.failure(&u, "down", false);
        assert!(matches!(h.admit(&t()), Admit::Wait(_)));
        h.probe_all_now();
        assert_eq!(h.admit(&t()), Admit::Probe);
        assert_eq!(h.admit(&u), Admit::Probe);
        assert_eq!(
            h.failure(&t(), "still down", true),
            Tripped::Opened(super::super::policy::DRAIN_WAIT_CAP)
        );
    }

    #[test]
    fn credential_problem_until_success() {
        let h = HealthState::new(3, Duration::from_secs(60));
        assert!(h.credential_failure("ExpiredTokenException", "expired"));
        assert!(!h.credential_failure("ExpiredTokenException", "expired"));
        assert_eq!(h.snapshot().credential_problem.map(|p| p.failures), Some(2));
        assert!(h.credentials_ok().is_some());
        assert!(h.snapshot().credential_problem.is_none());
    }
}
