//! The data that flows down the pipeline: events produced by a guest run,
//! tagged with the job that made them and the sink target they go to.
//!
//! These types are shared by every stage (guest → validate → delivery →
//! sinks); none of them knows about the stages themselves.

use std::fmt;
use std::sync::Arc;

/// What the messages of a run are: plain log lines or EMF metric documents.
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

/// Where one stream of a sink's events goes: the sink's name and the
/// labelled values the sink uses to address it — a CloudWatch sink's
/// `log_group` and `log_stream`, nothing for a DataDog or stdout sink. The
/// delivery core batches, spools and counts by target without reading the
/// labels; the sink that made a target reads them back with [`Target::get`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The sink's name (`[sinks.<name>]`, or the kind of the `[sink]` table).
    pub sink: Arc<str>,
    /// The sink's address of the stream, as (label, value) pairs in a fixed order.
    pub labels: Vec<(String, String)>,
}

impl Target {
    /// A target of `sink` addressed by `labels`.
    pub fn new(sink: impl Into<Arc<str>>, labels: Vec<(String, String)>) -> Target {
        Target {
            sink: sink.into(),
            labels,
        }
    }

    /// The value of one label, if the target has it.
    pub fn get(&self, label: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Target {
    /// The label values joined by `:` (a CloudWatch target reads
    /// `group:stream`), or the sink's name when there are none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(&self.sink);
        }
        for (i, (_, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            f.write_str(v)?;
        }
        Ok(())
    }
}

/// The events of one successful guest run, ready to hand to a sink.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The job that produced the events (for per-job accounting).
    pub job: Arc<str>,
    /// How the messages are to be read.
    pub kind: PayloadKind,
    /// Where the events go: the job's own target at one of its sinks.
    pub target: Arc<Target>,
    /// The events, in the order the guest returned them.
    pub events: Vec<LogEvent>,
}
