//! The stdout sink: writes each message on its own line, in the order each
//! run produced them, and counts them as delivered. A message that would
//! break line framing (empty, or containing a line break) is dropped and
//! counted instead of being written.

use std::io::Write as _;

use crate::delivery::DrainReport;
use crate::event::Submission;
use crate::ledger::{DropReason, Ledger, Share};

/// Prints messages to the process's stdout.
#[derive(Clone)]
pub struct StdoutSink {
    ledger: Ledger,
}

impl StdoutSink {
    /// A stdout sink counting into `ledger`.
    pub fn new(ledger: Ledger) -> Self {
        StdoutSink { ledger }
    }

    /// The ledger holding this sink's counters.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Writes the submission's messages, one per line, in one locked write.
    pub fn submit(&self, submission: Submission) {
        let Submission {
            job,
            target,
            events,
            ..
        } = submission;
        let (mut empty, mut multiline) = (0, 0);
        let mut out = String::new();
        let (mut sent, mut bytes) = (0u64, 0u64);
        for event in &events {
            match drop_reason(&event.message) {
                Some(DropReason::EmptyMessage) => empty += 1,
                Some(_) => multiline += 1,
                None => {
                    out.push_str(&event.message);
                    out.push('\n');
                    sent += 1;
                    bytes += event.message.len() as u64;
                }
            }
        }
        let ledger = &self.ledger;
        ledger.dropped(&job, &target, DropReason::EmptyMessage, empty);
        ledger.dropped(&job, &target, DropReason::MultilineMessage, multiline);
        if sent == 0 {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => ledger.delivered(
                &target,
                &[Share {
                    job: &job,
                    events: sent,
                    bytes,
                }],
            ),
            Err(e) => {
                tracing::error!(job = &*job, error = %e, "cannot write events to stdout");
                ledger.dropped(&job, &target, DropReason::StdoutWriteFailed, sent);
            }
        }
    }

    /// Nothing is ever buffered: the report is always complete.
    pub fn drain(&self) -> DrainReport {
        self.ledger.flush_drop_log();
        DrainReport {
            completed: true,
            ..DrainReport::default()
        }
    }
}

/// Why this sink would drop `message` ([`DropReason::EmptyMessage`] or
/// [`DropReason::MultilineMessage`]), or `None` when it can be written as one line.
pub fn drop_reason(message: &str) -> Option<DropReason> {
    if message.is_empty() {
        Some(DropReason::EmptyMessage)
    } else if message.contains(['\n', '\r']) {
        Some(DropReason::MultilineMessage)
    } else {
        None
    }
}
