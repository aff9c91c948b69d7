//! The data that flows down the pipeline: events produced by a guest run,
//! tagged with the job that made them and the log group/stream they go to.
//!
//! These types are shared by every stage (guest → validate → delivery → sink);
//! none of them knows about the stages themselves.

use std::fmt;
use std::sync::Arc;

/// How CloudWatch should read a batch of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// Ordinary (JSON) log lines.
    JsonLog,
    /// CloudWatch Embedded Metric Format documents (`x-amzn-logs-format: json/emf`).
    Emf,
}

impl PayloadKind {
    /// The stable lowercase name used in logs, metrics and config.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::JsonLog => "json-log",
            PayloadKind::Emf => "emf",
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log event: a timestamp and the exact message that will be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// UTF-8 message, sent byte for byte.
    pub message: String,
}

/// A CloudWatch Logs destination: one log stream inside one log group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Log group name.
    pub log_group: String,
    /// Log stream name.
    pub log_stream: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.log_group, self.log_stream)
    }
}

/// The events of one successful guest run, ready to hand to a sink.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The job that produced the events (for per-job accounting).
    pub job: Arc<str>,
    /// How the messages are to be read.
    pub kind: PayloadKind,
    /// Where the events go; always the job's own configured target.
    pub target: Arc<Target>,
    /// The events, in the order the guest returned them.
    pub events: Vec<LogEvent>,
}
