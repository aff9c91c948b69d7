//! Health of the delivery stage: per-target circuit breakers (which stop a
//! failing target from being hammered) and the account-wide credential
//! state, exposed as a [`Health`] value for the host's health endpoint.

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

#[derive(Debug)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    last_error: String,
}

/// Per-target circuit breakers plus the credential state.
#[derive(Debug)]
pub(crate) struct HealthState {
    threshold: u32,
    open_for: Duration,
    breakers: Mutex<HashMap<Target, Breaker>>,
    credentials: Mutex<Option<CredentialProblem>>,
    last_loud_log: Mutex<Option<Instant>>,
}

impl HealthState {
    /// Breakers open after `threshold` failures in a row and stay open for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> HealthState {
        HealthState {
            threshold: threshold.max(1),
            open_for,
            breakers: Mutex::new(HashMap::new()),
            credentials: Mutex::new(None),
            last_loud_log: Mutex::new(None),
        }
    }

    /// How long requests to `target` must still wait (`None`: go ahead).
    pub fn wait_for(&self, target: &Target) -> Option<Duration> {
        let b = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let until = b.get(target)?.open_until?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// Records a failed request; returns true when this failure opened the circuit.
    pub fn failure(&self, target: &Target, error: &str) -> bool {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(target.clone()).or_insert(Breaker {
            failures: 0,
            open_until: None,
            last_error: String::new(),
        });
        b.failures = b.failures.saturating_add(1);
        b.last_error = error.to_string();
        if b.failures >= self.threshold {
            let was_open = b.open_until.is_some();
            b.open_until = Some(Instant::now() + self.open_for);
            return !was_open;
        }
        false
    }

    /// Records a successful request: closes the target's circuit. Returns
    /// true when a circuit was open.
    pub fn success(&self, target: &Target) -> bool {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(target).is_some_and(|b| b.open_until.is_some())
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
            let map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .filter_map(|(t, b)| {
                    let until = b.open_until?;
                    Some(OpenCircuit {
                        target: t.clone(),
                        consecutive_failures: b.failures,
                        last_error: b.last_error.clone(),
                        retry_in: until.saturating_duration_since(now),
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

    #[test]
    fn breaker_opens_after_threshold_and_closes_on_success() {
        let h = HealthState::new(3, Duration::from_secs(60));
        let t = Target {
            log_group: "g".into(),
            log_stream: "s".into(),
        };
        assert!(!h.failure(&t, "e1"));
        assert!(!h.failure(&t, "e2"));
        assert!(h.wait_for(&t).is_none());
        assert!(h.failure(&t, "e3"), "third failure opens");
        assert!(h.wait_for(&t).is_some());
        let snap = h.snapshot();
        assert_eq!(snap.open_circuits.len(), 1);
        assert_eq!(snap.open_circuits[0].consecutive_failures, 3);
        assert_eq!(snap.open_circuits[0].last_error, "e3");
        assert!(!snap.is_healthy());
        assert!(h.success(&t));
        assert!(h.snapshot().is_healthy());
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
