//! [`Output`]: what a successful run returns, and the constructors for the two
//! kinds of payload the host delivers.

use serde::Serialize;

use crate::error::Result;
use crate::time::Timestamp;

/// How CloudWatch should read the messages of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// Each message is an ordinary log line, usually one JSON object.
    JsonLog,
    /// Each message is a CloudWatch Embedded Metric Format document. The host
    /// validates every document before delivery and drops (and counts) invalid
    /// ones; compose with `cwpub_guest::emf::MetricsLogger` (feature `emf`) to
    /// produce only valid documents.
    Emf,
}

/// One log event to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's time, usually the run's [`Context::actual`](crate::Context::actual).
    /// CloudWatch refuses events more than 14 days old or 2 hours ahead; the
    /// host drops and counts those.
    pub timestamp: Timestamp,
    /// The message exactly as it will be stored: non-empty, on one line, at
    /// most 1,048,550 bytes of UTF-8. Other messages are dropped and counted,
    /// never truncated.
    pub message: String,
}

/// What a successful run returns: a payload kind and the events to deliver.
/// No events is a valid "nothing to publish this time".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the messages in `events` are to be read.
    pub kind: PayloadKind,
    /// The events, in order. The CloudWatch sink sorts each batch by time
    /// (stably); the stdout sink prints them in this order.
    pub events: Vec<Event>,
}

impl Output {
    /// JSON log events: each value serialized as one compact JSON line, all
    /// stamped `at`. Object keys keep the order they were written in.
    ///
    /// ```
    /// use cwpub_guest::{Output, Timestamp, serde_json::json};
    ///
    /// let at = Timestamp::from_millis(1_767_225_600_000).unwrap();
    /// let output = Output::json_lines(at, [json!({"msg": "hello", "n": 1})])?;
    /// assert_eq!(output.events[0].message, r#"{"msg":"hello","n":1}"#);
    /// # Ok::<(), cwpub_guest::Error>(())
    /// ```
    ///
    /// Any `serde::Serialize` value works; one that cannot be JSON (a map
    /// with non-string keys) fails the run with [`Error::Fatal`](crate::Error::Fatal).
    pub fn json_lines<I>(at: Timestamp, values: I) -> Result<Output>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let events = values
            .into_iter()
            .map(|value| {
                Ok(Event {
                    timestamp: at,
                    message: serde_json::to_string(&value)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Output {
            kind: PayloadKind::JsonLog,
            events,
        })
    }

    /// EMF documents, each one event stamped `at`. `at` must equal the
    /// documents' `_aws.Timestamp`; `Output::from_metrics` (feature `emf`)
    /// takes care of that for you.
    pub fn emf(at: Timestamp, documents: impl IntoIterator<Item = String>) -> Output {
        Output {
            kind: PayloadKind::Emf,
            events: documents
                .into_iter()
                .map(|message| Event {
                    timestamp: at,
                    message,
                })
                .collect(),
        }
    }

    /// No events: nothing to publish this time.
    pub fn none(kind: PayloadKind) -> Output {
        Output {
            kind,
            events: Vec::new(),
        }
    }

    /// Flushes `logger` and returns its EMF documents as events stamped with
    /// the logger's own timestamp, so each event's time equals its document's
    /// `_aws.Timestamp`. The logger keeps its namespace, dimensions and
    /// properties, as after any flush.
    ///
    /// ```
    /// use cwpub_guest::emf::{MetricsLogger, Unit};
    /// use cwpub_guest::{Context, Output, Timestamp};
    ///
    /// let ctx = Context::new("job", Timestamp::from_millis(1_767_225_600_000).unwrap());
    /// let mut metrics = ctx.metrics_logger("MyApp")?;
    /// metrics.put_metric("QueueDepth", 42.0, Unit::Count)?;
    /// let output = Output::from_metrics(&mut metrics)?;
    /// assert_eq!(output.events[0].timestamp, ctx.actual);
    /// # Ok::<(), cwpub_guest::Error>(())
    /// ```
    #[cfg(feature = "emf")]
    pub fn from_metrics(logger: &mut cwpub_emf::MetricsLogger) -> Result<Output> {
        let millis = logger.timestamp_ms();
        let at = u64::try_from(millis)
            .ok()
            .and_then(Timestamp::from_millis)
            .ok_or_else(|| {
                crate::Error::fatal(format!(
                    "the metrics logger's timestamp {millis} ms is out of range"
                ))
            })?;
        Ok(Output::emf(at, logger.flush()?))
    }
}

#[cfg(feature = "emf")]
impl crate::Context {
    /// A `MetricsLogger` for `namespace` stamped with this run's
    /// [`actual`](crate::Context::actual) time (feature `emf`).
    pub fn metrics_logger(&self, namespace: &str) -> Result<cwpub_emf::MetricsLogger> {
        let mut logger = cwpub_emf::MetricsLogger::new(namespace)?;
        let millis = i64::try_from(self.actual.millis())
            .map_err(|_| crate::Error::fatal("the run's time is out of range"))?;
        logger.set_timestamp(millis)?;
        Ok(logger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at() -> Timestamp {
        Timestamp::from_millis(1_000).unwrap()
    }

    #[test]
    fn json_lines_are_compact_and_keep_key_order() {
        let output = Output::json_lines(
            at(),
            [
                serde_json::json!({"z": "multi\nline", "a": 1}),
                serde_json::json!(2),
            ],
        )
        .unwrap();
        assert_eq!(output.kind, PayloadKind::JsonLog);
        let messages: Vec<&str> = output.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, [r#"{"z":"multi\nline","a":1}"#, "2"]);
        assert!(output.events.iter().all(|e| e.timestamp == at()));
    }

    #[test]
    fn unserializable_values_fail_the_run() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let e = Output::json_lines(at(), [map]).unwrap_err();
        assert!(matches!(e, crate::Error::Fatal(_)), "{e}");
    }

    #[test]
    fn emf_and_none() {
        let output = Output::emf(at(), ["{}".to_owned()]);
        assert_eq!(output.kind, PayloadKind::Emf);
        assert_eq!(output.events.len(), 1);
        assert!(Output::none(PayloadKind::Emf).events.is_empty());
    }
}
