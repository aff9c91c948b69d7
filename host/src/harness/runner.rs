//! Running a suite: every case in the real sandbox (a fresh instance, the
//! case's limits), `validate-config` first as the daemon does at start-up,
//! then `run` with the case's fixed context; the output is checked with the
//! daemon's own rules ([`checks`](super::checks)) and held against the
//! case's expectation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cases::{Case, Suite};
use super::checks;
use super::expect::{Mismatch, Outcome};
use crate::guest::{HostFacts, LoadedGuest, RunRequest};
use crate::untrusted::GuestText;

/// The result of one case.
#[derive(Debug)]
pub struct CaseReport {
    /// The case's name.
    pub name: String,
    /// Wall time of its guest calls.
    pub elapsed: Duration,
    /// Every difference from what it expected (empty: passed).
    pub mismatches: Vec<Mismatch>,
    /// What the guest printed to stdout and stderr in a successful run.
    pub stdio: (GuestText, GuestText),
}

impl CaseReport {
    /// True when the case got what it expected.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs one case against a loaded guest.
pub async fn run_case(guest: &LoadedGuest, case: &Case) -> CaseReport {
    let started = Instant::now();
    let job: Arc<str> = case.job.as_str().into();
    let config: Arc<[(String, String)]> = case.config.clone().into();
    let outcome = match guest.validate_config(&job, &config, &case.limits).await {
        Err(error) => Outcome::Failed {
            stage: "validate-config",
            error,
        },
        Ok(()) => {
            // The case pins every fact; nothing of this machine leaks into the run.
            let request = RunRequest::fixed(
                job,
                case.sequence,
                config,
                HostFacts::default(),
                &case.context,
            );
            match guest.run(&request, &case.limits).await {
                Ok(output) => Outcome::Ran { output },
                Err(error) => Outcome::Failed {
                    stage: "run",
                    error,
                },
            }
        }
    };
    let elapsed = started.elapsed();
    let (dropped, stdio) = match &outcome {
        Outcome::Ran { output } => (
            checks::would_drop(
                &case.job,
                output.kind,
                &output.events,
                case.context.at_ms.unwrap_or_default(),
            ),
            (output.stdout.clone(), output.stderr.clone()),
        ),
        Outcome::Failed { .. } => (Vec::new(), Default::default()),
    };
    CaseReport {
        name: case.name.clone(),
        elapsed,
        mismatches: case.expect.compare(&outcome, &dropped),
        stdio,
    }
}

/// Runs every case in file order, calling `done` after each one.
pub async fn run_suite(
    guest: &LoadedGuest,
    suite: &Suite,
    mut done: impl FnMut(&CaseReport),
) -> Vec<CaseReport> {
    let mut reports = Vec::with_capacity(suite.cases.len());
    for case in &suite.cases {
        let report = run_case(guest, case).await;
        done(&report);
        reports.push(report);
    }
    reports
}
