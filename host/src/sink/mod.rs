//! Where validated events go: CloudWatch Logs through the delivery stage, or
//! stdout (one message per line, exactly what would be sent — also a real
//! production path for EMF on Lambda or beside the CloudWatch agent).
//!
//! Both sinks report into the same [`Accounting`] observer, so metrics, host
//! facts and the shutdown summary read the same way whichever sink runs.

pub mod stdout;

use std::time::Duration;

use crate::delivery::{Accounting, Delivery, DrainReport, Health, StatsSnapshot};
use crate::event::{Submission, Target};

pub use stdout::StdoutSink;

/// The sink a daemon delivers to.
pub enum Sink {
    /// Print messages to stdout.
    Stdout(StdoutSink),
    /// Deliver to CloudWatch Logs.
    CloudWatch(Delivery),
}

impl Sink {
    /// Hands over the events of one run; never blocks on the network.
    pub fn submit(&self, submission: Submission) {
        match self {
            Sink::Stdout(s) => s.submit(submission),
            Sink::CloudWatch(d) => d.submit(submission),
        }
    }

    /// Records events an upstream stage dropped, in the sink's observer.
    pub fn record_drop(&self, job: &str, target: &Target, reason: &str, count: u64) {
        self.accounting().record_drop(job, target, reason, count);
    }

    /// The observer holding every delivery and drop counter.
    pub fn accounting(&self) -> Accounting {
        match self {
            Sink::Stdout(s) => s.accounting(),
            Sink::CloudWatch(d) => d.accounting(),
        }
    }

    /// A snapshot of the delivery counters.
    pub fn stats(&self) -> StatsSnapshot {
        match self {
            Sink::Stdout(s) => s.accounting().snapshot(),
            Sink::CloudWatch(d) => d.stats(),
        }
    }

    /// Open circuits and credential problems (always healthy for stdout).
    pub fn health(&self) -> Health {
        match self {
            Sink::Stdout(_) => Health::default(),
            Sink::CloudWatch(d) => d.health(),
        }
    }

    /// Delivers what is buffered within `deadline` and reports what could not be.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        match self {
            Sink::Stdout(s) => s.drain(),
            Sink::CloudWatch(d) => d.drain(deadline).await,
        }
    }

    /// The sink's name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Stdout(_) => "stdout",
            Sink::CloudWatch(_) => "cloudwatch",
        }
    }
}
