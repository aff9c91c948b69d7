//! Where validated events go: CloudWatch Logs through the delivery stage, or
//! stdout (one message per line, exactly what would be sent — also a real
//! production path for EMF on Lambda or beside the CloudWatch agent).
//!
//! Both sinks count into a [`Ledger`], so metrics, host facts and the
//! shutdown summary read the same way whichever sink runs.

pub mod stdout;

use std::time::Duration;

use crate::delivery::{Delivery, DrainReport, Health};
use crate::event::Submission;
use crate::ledger::{Ledger, StatsSnapshot};

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

    /// The ledger the sink counts into.
    pub fn ledger(&self) -> &Ledger {
        match self {
            Sink::Stdout(s) => s.ledger(),
            Sink::CloudWatch(d) => d.ledger(),
        }
    }

    /// A snapshot of the delivery counters.
    pub fn stats(&self) -> StatsSnapshot {
        match self {
            Sink::Stdout(s) => s.ledger().snapshot(),
            Sink::CloudWatch(d) => d.stats(),
        }
    }

    /// Events buffered and not yet delivered (always 0 for stdout).
    pub fn pending_events(&self) -> u64 {
        self.health().buffered_events
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
