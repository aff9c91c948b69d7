//! What a case expects, and how a run's outcome is held against it: either
//! a success (payload kind, number of events, exact events, a JSON subset per
//! event — any combination) or a failure of a named kind whose message
//! contains a given text. Every difference becomes one readable
//! [`Mismatch`]; an empty list means the case passed.

use serde_json::Value as Json;
use toml::Value;

use assert_json_diff::{CompareMode, Config as JsonConfig, NumericMode};

use super::checks::Dropped;
use super::context;
use super::render::{self, MAX_SHOWN_BYTES, printable, printable_lines};
use crate::config::reader::{Reader, describe};
use crate::event::{LogEvent, PayloadKind};
use crate::guest::{RunError, RunOutput};

/// What one case's guest calls came to.
#[derive(Debug)]
pub enum Outcome {
    /// `run` returned output.
    Ran {
        /// The output, as the daemon would receive it.
        output: RunOutput,
    },
    /// `validate-config` or `run` failed.
    Failed {
        /// `"validate-config"` or `"run"`.
        stage: &'static str,
        /// The failure.
        error: RunError,
    },
}

/// The keys of a case's `expect` table.
pub const EXPECT_KEYS: &[&str] = &["kind", "count", "events", "json", "error", "message"];

/// The failure kinds a case may expect, as written in a case file (the WIT
/// `guest-error` cases, then the ways the host stops a run). `_` may be
/// written for `-`.
pub const ERROR_KINDS: &[&str] = &[
    "invalid-config",
    "transient",
    "fatal",
    "panic",
    "trap",
    "deadline",
    "memory",
    "stack-overflow",
    "output-too-large",
    "stdio-overflow",
    "instantiate",
];

/// One difference between what a case expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

/// What a case expects from its run.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Expect {
    /// The run succeeds, every event would be delivered, and each given
    /// property holds (none given: success is enough).
    #[default]
    Success,
    /// The run succeeds with these properties.
    Output(OutputExpect),
    /// `validate-config` or `run` fails with this kind (one of [`ERROR_KINDS`]).
    Failure {
        /// The expected kind, with `-` separators.
        kind: String,
        /// Text the error message must contain.
        message: Option<String>,
    },
}

/// The properties a successful run's output must have.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputExpect {
    /// The payload kind.
    pub kind: Option<PayloadKind>,
    /// The number of events.
    pub count: Option<usize>,
    /// The exact events, in order.
    pub events: Option<Vec<ExactEvent>>,
    /// A JSON value each event (in order) must contain.
    pub json: Option<Vec<Json>>,
}

/// An event expected byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactEvent {
    /// The exact message.
    pub message: String,
    /// The timestamp (ms since the epoch), when the case gives one.
    pub timestamp_ms: Option<i64>,
}

impl Expect {
    /// Reads an `expect` table; problems go to the reader (prefix `expect.`).
    pub(crate) fn read(r: &mut Reader<'_, '_>) -> Expect {
        let kind = r.string("kind").and_then(|k| match k {
            "json-log" => Some(PayloadKind::JsonLog),
            "emf" => Some(PayloadKind::Emf),
            other => {
                r.problem(
                    "kind",
                    Some(other),
                    "unknown payload kind; use \"json-log\" or \"emf\"",
                );
                None
            }
        });
        let count = r.integer("count", 0, 1_000_000).map(|n| n as usize);
        let events = r.raw("events").and_then(|v| read_events(v, r));
        let json = r.raw("json").and_then(|v| read_json(v, r));
        let error = r.string("error").and_then(|e| {
            let kind = e.replace('_', "-");
            if ERROR_KINDS.contains(&kind.as_str()) {
                Some(kind)
            } else {
                let msg = format!(
                    "unknown failure kind; use one of {}",
                    ERROR_KINDS.join(", ")
                );
                r.problem("error", Some(e), msg);
                None
            }
        });
        let message = r.string("message").map(str::to_owned);

        let output = OutputExpect {
            kind,
            count,
            events,
            json,
        };
        let has_output = output != OutputExpect::default();
        if let (Some(n), Some(list)) = (output.count, &output.events)
            && n != list.len()
        {
            r.problem(
                "count",
                None,
                format!("says {n} events but `events` lists {}", list.len()),
            );
        }
        if let (Some(events), Some(json)) = (&output.events, &output.json)
            && events.len() != json.len()
        {
            let msg = format!(
                "lists {} values but `events` lists {}",
                json.len(),
                events.len()
            );
            r.problem("json", None, msg);
        }
        if let (Some(n), Some(list)) = (output.count, &output.json)
            && n != list.len()
        {
            r.problem(
                "count",
                None,
                format!("says {n} events but `json` lists {}", list.len()),
            );
        }
        match error {
            Some(kind) if has_output => {
                r.problem(
                    "error",
                    None,
                    "a case expects either a failure or output (kind, count, events, json), not both",
                );
                Expect::Failure { kind, message }
            }
            Some(kind) => Expect::Failure { kind, message },
            None => {
                if message.is_some() {
                    r.problem(
                        "message",
                        None,
                        "`message` checks a failure's text; add `error` with the expected failure kind",
                    );
                }
                if has_output {
                    Expect::Output(output)
                } else {
                    Expect::Success
                }
            }
        }
    }

    /// Every way `outcome` differs from this expectation; `dropped` lists the
    /// events of a successful run the daemon would not deliver.
    pub fn compare(&self, outcome: &Outcome, dropped: &[Dropped]) -> Vec<Mismatch> {
        match (self, outcome) {
            (Expect::Failure { kind, message }, Outcome::Failed { stage, error }) => {
                let actual = error.kind.label().replace('_', "-");
                let text = error.kind.to_string();
                let mut out = Vec::new();
                if &actual != kind {
                    out.push(Mismatch(format!(
                        "expected the guest to fail with `{kind}`, but {stage} failed with `{actual}`:\n{}",
                        render::failure(error)
                    )));
                } else if let Some(m) = message
                    && !text.contains(m.as_str())
                {
                    out.push(Mismatch(format!(
                        "the `{kind}` error does not contain {:?}:\n{}",
                        printable(m, MAX_SHOWN_BYTES),
                        render::failure(error)
                    )));
                }
                out
            }
            (Expect::Failure { kind, .. }, Outcome::Ran { output }) => vec![Mismatch(format!(
                "expected the guest to fail with `{kind}`, but the run succeeded with {}:\n{}",
                plural(output.events.len(), "event"),
                list_events(&output.events)
            ))],
            (_, Outcome::Failed { stage, error }) => vec![Mismatch(format!(
                "{stage} failed:\n{}",
                render::failure(error)
            ))],
            (Expect::Success, Outcome::Ran { .. }) => dropped_mismatches(dropped),
            (Expect::Output(want), Outcome::Ran { output }) => {
                let mut out = dropped_mismatches(dropped);
                out.extend(want.compare(output.kind, &output.events));
                out
            }
        }
    }
}

impl OutputExpect {
    fn compare(&self, kind: PayloadKind, events: &[LogEvent]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(want) = self.kind
            && want != kind
        {
            out.push(Mismatch(format!(
                "expected payload kind `{want}`, got `{kind}`"
            )));
        }
        let want_count = self
            .count
            .or(self.events.as_ref().map(Vec::len))
            .or(self.json.as_ref().map(Vec::len));
        if let Some(n) = want_count
            && n != events.len()
        {
            let mut text = format!(
                "expected {}, got {}:\n{}",
                plural(n, "event"),
                events.len(),
                list_events(events)
            );
            if self.events.is_some() {
                text.push_str(&accept_hint(events));
            }
            out.push(Mismatch(text));
            if let Some(exact) = &self.events {
                let expected: Vec<&str> = exact.iter().map(|e| e.message.as_str()).collect();
                let actual: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
                out.push(Mismatch(format!(
                    "the events differ (one message per line):\n{}",
                    render::line_diff(&lines(&expected), &lines(&actual))
                )));
            }
        } else if let Some(exact) = &self.events {
            let mut any = false;
            for (i, (want, got)) in exact.iter().zip(events).enumerate() {
                if want.message != got.message {
                    any = true;
                    out.push(Mismatch(format!(
                        "event {i} differs:\n{}",
                        render::message_diff(&want.message, &got.message)
                    )));
                }
                if let Some(ts) = want.timestamp_ms
                    && ts != got.timestamp_ms
                {
                    out.push(Mismatch(format!(
                        "event {i}: expected timestamp {ts} ({}), got {} ({})",
                        context::format_time(ts),
                        got.timestamp_ms,
                        context::format_time(got.timestamp_ms)
                    )));
                }
            }
            if any && let Some(last) = out.last_mut() {
                last.0.push_str(&accept_hint(events));
            }
        }
        if let Some(subsets) = &self.json {
            for (i, (want, got)) in subsets.iter().zip(events).enumerate() {
                let actual: Json = match serde_json::from_str(&got.message) {
                    Ok(v) => v,
                    Err(e) => {
                        out.push(Mismatch(format!(
                            "event {i} is not JSON ({e}):\n    {}",
                            printable(&got.message, MAX_SHOWN_BYTES)
                        )));
                        continue;
                    }
                };
                let config =
                    JsonConfig::new(CompareMode::Inclusive).numeric_mode(NumericMode::AssumeFloat);
                if let Err(diff) =
                    assert_json_diff::assert_json_matches_no_panic(&actual, want, config)
                {
                    let pretty = serde_json::to_string_pretty(&actual).unwrap_or_default();
                    out.push(Mismatch(format!(
                        "event {i} does not contain the expected JSON:\n{}  the event:\n{}",
                        printable_lines(&diff, "    ", 60),
                        printable_lines(&pretty, "    ", 60)
                    )));
                }
            }
        }
        out
    }
}

fn dropped_mismatches(dropped: &[Dropped]) -> Vec<Mismatch> {
    dropped
        .iter()
        .map(|d| {
            let mut text = d.reason.clone();
            if !d.violations.is_empty() {
                text.push(':');
            }
            for v in &d.violations {
                text.push_str("\n    - ");
                text.push_str(&printable(v, MAX_SHOWN_BYTES));
            }
            Mismatch(text)
        })
        .collect()
}

/// The events, one indented line each (escaped, capped).
fn list_events(events: &[LogEvent]) -> String {
    if events.is_empty() {
        return "    (no events)\n".to_owned();
    }
    let mut out = String::new();
    for (i, e) in events.iter().take(20).enumerate() {
        out.push_str(&format!("    [{i}] {}\n", printable(&e.message, 400)));
    }
    if events.len() > 20 {
        out.push_str(&format!("    … ({} more)\n", events.len() - 20));
    }
    out
}

/// The actual messages as an `expect.events` line to paste into the case.
fn accept_hint(events: &[LogEvent]) -> String {
    if events.len() > 20 || events.iter().any(|e| e.message.len() > 4096) {
        return String::new();
    }
    let items: Vec<String> = events
        .iter()
        .map(|e| Value::String(e.message.clone()).to_string())
        .collect();
    let line = format!("expect.events = [{}]", items.join(", "));
    format!(
        "  if the new output is right, put this in the case:\n    {}\n",
        printable(&line, usize::MAX)
    )
}

fn lines(messages: &[&str]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&m.replace(['\n', '\r'], "\u{23ce}"));
        out.push('\n');
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `expect.events`: strings (messages) or `{ message, timestamp }` tables.
fn read_events(v: &Value, r: &mut Reader<'_, '_>) -> Option<Vec<ExactEvent>> {
    let Value::Array(items) = v else {
        let msg = format!("expected an array of messages, found {}", describe(v));
        r.problem("events", None, msg);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("events[{i}]");
        match item {
            Value::String(m) => out.push(ExactEvent {
                message: m.clone(),
                timestamp_ms: None,
            }),
            Value::Table(t) => {
                let mut message = None;
                let mut timestamp_ms = None;
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("message", Value::String(m)) => message = Some(m.clone()),
                        ("timestamp", v) => match context::time_value(v) {
                            Ok(ms) => timestamp_ms = Some(ms as i64),
                            Err(e) => r.problem(&format!("{key}.timestamp"), None, e),
                        },
                        ("message", other) => {
                            let msg = format!("expected a string, found {}", describe(other));
                            r.problem(&format!("{key}.message"), None, msg);
                        }
                        (other, _) => r.problem(
                            &format!("{key}.{other}"),
                            None,
                            "unknown key; allowed keys: message, timestamp",
                        ),
                    }
                }
                match message {
                    Some(message) => out.push(ExactEvent {
                        message,
                        timestamp_ms,
                    }),
                    None if !t.contains_key("message") => {
                        r.problem(&key, None, "missing `message`");
                    }
                    None => {}
                }
            }
            other => {
                let msg = format!(
                    "expected a message string or a {{ message, timestamp }} table, found {}",
                    describe(other)
                );
                r.problem(&key, None, msg);
            }
        }
    }
    Some(out)
}

/// `expect.json`: one TOML table (or JSON text, for `null`) per event.
fn read_json(v: &Value, r: &mut Reader<'_, '_>) -> Option<Vec<Json>> {
    let Value::Array(items) = v else {
        let msg = format!(
            "expected an array with one table per event, found {}",
            describe(v)
        );
        r.problem("json", None, msg);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("json[{i}]");
        let value = match item {
            Value::String(text) => {
                serde_json::from_str(text).map_err(|e| format!("not valid JSON text: {e}"))
            }
            other => to_json(other),
        };
        match value {
            Ok(v) => out.push(v),
            Err(e) => r.problem(&key, None, e),
        }
    }
    Some(out)
}

/// A TOML value as JSON: date-times become RFC 3339 strings.
fn to_json(v: &Value) -> Result<Json, String> {
    Ok(match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(n) => Json::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| format!("{f} is not a JSON number"))?,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::FailureKind;
    use crate::untrusted::GuestText;

    #[test]
    fn every_expectable_kind_is_a_failure_label() {
        let labels = [
            FailureKind::InvalidConfig(GuestText::default()),
            FailureKind::Transient(GuestText::default()),
            FailureKind::Fatal(GuestText::default()),
            FailureKind::Panic {
                message: GuestText::default(),
            },
            FailureKind::Trap {
                message: GuestText::default(),
            },
            FailureKind::Deadline {
                limit: std::time::Duration::ZERO,
            },
            FailureKind::Memory {
                limit: 0,
                requested: 0,
                at_start: false,
            },
            FailureKind::StackOverflow {
                backtrace: GuestText::default(),
            },
            FailureKind::OutputTooLarge {
                detail: String::new(),
            },
            FailureKind::StdioOverflow {
                stream: "stdout",
                limit: 0,
            },
            FailureKind::Instantiate(GuestText::default()),
        ]
        .map(|k| k.label().replace('_', "-"));
        assert_eq!(labels.as_slice(), ERROR_KINDS);
    }

    fn subset(actual: &str, expected: Json) -> Vec<Mismatch> {
        let want = OutputExpect {
            json: Some(vec![expected]),
            ..OutputExpect::default()
        };
        let event = LogEvent {
            timestamp_ms: 0,
            message: actual.to_owned(),
        };
        want.compare(PayloadKind::JsonLog, &[event])
    }

    #[test]
    fn json_subsets_allow_more_and_compare_numbers_by_value() {
        use serde_json::json;
        let event = r#"{"a":{"b":1,"c":[1,2,3]},"n":2,"s":"x"}"#;
        assert!(subset(event, json!({"a": {"b": 1}})).is_empty());
        assert!(subset(event, json!({"n": 2.0})).is_empty(), "2 == 2.0");
        assert!(
            subset(event, json!({"a": {"c": [1, 2]}})).is_empty(),
            "array prefix"
        );
        assert!(subset(event, json!({})).is_empty());
        let wrong = subset(event, json!({"a": {"c": [1, 5]}}));
        assert!(wrong[0].0.contains(".a.c[1]"), "{wrong:?}");
        let missing = subset(event, json!({"z": null}));
        assert!(missing[0].0.contains(".z"), "{missing:?}");
    }

    #[test]
    fn toml_values_become_json() {
        let t: toml::Table =
            toml::from_str("a = 1\nb = [true, 2.5]\nc = { d = \"x\" }\ne = 2026-01-01T00:00:00Z")
                .unwrap();
        let j = to_json(&Value::Table(t)).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": [true, 2.5], "c": {"d": "x"}, "e": "2026-01-01T00:00:00Z"})
        );
    }
}
