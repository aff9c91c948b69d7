//! The stdout sink: writes each message on its own line, in the order each
//! run produced them, and counts them as delivered. A message that would
//! break line framing (empty, or containing a line break) is dropped and
//! counted instead of being written.

use std::io::Write as _;
use std::time::Duration;

use crate::delivery::{Accounting, DrainReport};
use crate::event::Submission;

/// Drop reason for empty messages.
pub const EMPTY_MESSAGE: &str = "empty_message";
/// Drop reason for messages containing `\n` or `\r`, which stdout framing cannot carry.
pub const MULTILINE_MESSAGE: &str = "multiline_message";

/// Prints messages to the process's stdout.
#[derive(Clone)]
pub struct StdoutSink {
    accounting: Accounting,
}

impl StdoutSink {
    /// A stdout sink whose aggregated drop log lines are at least a minute apart.
    pub fn new() -> Self {
        StdoutSink {
            accounting: Accounting::new(Duration::from_secs(60)),
        }
    }

    /// The observer holding this sink's counters.
    pub fn accounting(&self) -> Accounting {
        self.accounting.clone()
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
                Some(EMPTY_MESSAGE) => empty += 1,
                Some(_) => multiline += 1,
                None => {
                    out.push_str(&event.message);
                    out.push('\n');
                    sent += 1;
                    bytes += event.message.len() as u64;
                }
            }
        }
        self.accounting
            .record_drop(&job, &target, EMPTY_MESSAGE, empty);
        self.accounting
            .record_drop(&job, &target, MULTILINE_MESSAGE, multiline);
        if sent == 0 {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => self.accounting.record_delivered(&job, &target, sent, bytes),
            Err(e) => {
                tracing::error!(job = &*job, error = %e, "cannot write events to stdout");
                self.accounting
                    .record_drop(&job, &target, "stdout_write_failed", sent);
            }
        }
    }

    /// Nothing is ever buffered: the report is always complete.
    pub fn drain(&self) -> DrainReport {
        DrainReport {
            completed: true,
            ..DrainReport::default()
        }
    }
}

/// Why this sink would drop `message` ([`EMPTY_MESSAGE`] or
/// [`MULTILINE_MESSAGE`]), or `None` when it can be written as one line.
pub fn drop_reason(message: &str) -> Option<&'static str> {
    if message.is_empty() {
        Some(EMPTY_MESSAGE)
    } else if message.contains(['\n', '\r']) {
        Some(MULTILINE_MESSAGE)
    } else {
        None
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}
