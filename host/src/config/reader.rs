//! A small typed reader over one TOML table that records every problem (wrong
//! type, out of range, unknown key) instead of stopping at the first, so the
//! loader can report all of them at once.

use std::time::Duration;

use toml::{Table, Value};

use super::error::{JobRef, Problems};

/// Reads the keys of one table; call [`Reader::finish`] to report unknown keys.
pub(crate) struct Reader<'a, 'p> {
    table: &'a Table,
    /// Prepended to keys in messages (`"sink."`, `""` inside a job).
    prefix: &'static str,
    job: Option<JobRef>,
    known: &'static [&'static str],
    pub(crate) problems: &'p mut Problems,
}

impl<'a, 'p> Reader<'a, 'p> {
    pub(crate) fn new(
        table: &'a Table,
        prefix: &'static str,
        job: Option<JobRef>,
        known: &'static [&'static str],
        problems: &'p mut Problems,
    ) -> Self {
        Reader {
            table,
            prefix,
            job,
            known,
            problems,
        }
    }

    /// The dotted key as shown in messages.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Records a problem about `key` (with an optional value to show).
    pub(crate) fn problem(&mut self, key: &str, value: Option<&str>, message: impl Into<String>) {
        let k = self.key(key);
        self.problems
            .push(self.job.as_ref(), Some(&k), value, message);
    }

    fn type_problem(&mut self, key: &str, expected: &str, found: &Value) {
        let msg = format!("expected {expected}, found {}", describe(found));
        self.problem(key, None, msg);
    }

    /// The raw value of `key`, if present.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }

    /// An optional string.
    pub(crate) fn string(&mut self, key: &str) -> Option<&'a str> {
        match self.table.get(key)? {
            Value::String(s) => Some(s.as_str()),
            other => {
                self.type_problem(key, "a string", other);
                None
            }
        }
    }

    /// A required string; `example` completes "missing required key; e.g. ".
    pub(crate) fn required_string(&mut self, key: &str, example: &str) -> Option<&'a str> {
        if !self.table.contains_key(key) {
            self.problem(
                key,
                None,
                format!("missing required key; add e.g. {key} = {example}"),
            );
            return None;
        }
        self.string(key)
    }

    /// An optional boolean.
    pub(crate) fn bool(&mut self, key: &str) -> Option<bool> {
        match self.table.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.type_problem(key, "true or false", other);
                None
            }
        }
    }

    /// An optional integer within `min..=max`.
    pub(crate) fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        match self.table.get(key)? {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                let msg = format!("{n} is out of range; it must be between {min} and {max}");
                self.problem(key, None, msg);
                None
            }
            other => {
                self.type_problem(key, "an integer", other);
                None
            }
        }
    }

    /// An optional duration (a string like `"2s"` or an integer of milliseconds) within `min..=max`.
    pub(crate) fn duration(&mut self, key: &str, min: Duration, max: Duration) -> Option<Duration> {
        let value = self.table.get(key)?;
        let (d, shown) = match value {
            Value::String(s) => match humantime::parse_duration(s.trim()) {
                Ok(d) => (d, s.clone()),
                Err(e) => {
                    let msg = format!(
                        "invalid duration: {e}; write e.g. \"500ms\", \"2s\", \"1m 30s\" (or an integer number of milliseconds)"
                    );
                    self.problem(key, Some(s), msg);
                    return None;
                }
            },
            Value::Integer(ms) if *ms >= 0 => {
                (Duration::from_millis(*ms as u64), format!("{ms}ms"))
            }
            Value::Integer(ms) => {
                self.problem(
                    key,
                    None,
                    format!("{ms} is negative; a duration must be zero or more"),
                );
                return None;
            }
            other => {
                self.type_problem(
                    key,
                    "a duration such as \"2s\" or an integer of milliseconds",
                    other,
                );
                return None;
            }
        };
        if !(min..=max).contains(&d) {
            let msg = format!(
                "duration out of range; it must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            );
            self.problem(key, Some(&shown), msg);
            return None;
        }
        Some(d)
    }

    /// An optional sub-table.
    pub(crate) fn table(&mut self, key: &str) -> Option<&'a Table> {
        match self.table.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.type_problem(key, "a table", other);
                None
            }
        }
    }

    /// Reports every key that is not in the known list, with a suggestion.
    pub(crate) fn finish(self) {
        for key in self.table.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let hint = match suggest(key, self.known) {
                Some(s) => format!(
                    "unknown key (did you mean {s:?}?); allowed keys: {}",
                    self.known.join(", ")
                ),
                None => format!("unknown key; allowed keys: {}", self.known.join(", ")),
            };
            let k = format!("{}{key}", self.prefix);
            self.problems.push(self.job.as_ref(), Some(&k), None, hint);
        }
    }
}

/// "a table", "an integer (5)", … for type-mismatch messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("a string ({s:?})"),
        Value::Integer(n) => format!("an integer ({n})"),
        Value::Float(f) => format!("a float ({f})"),
        Value::Boolean(b) => format!("a boolean ({b})"),
        Value::Datetime(d) => format!("a date-time ({d})"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// The known key closest to `key`, if it is close enough to be a likely typo.
pub(crate) fn suggest(key: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("shedule", &["schedule", "name"]).as_deref(),
            Some("schedule")
        );
        assert_eq!(suggest("zzzzzz", &["schedule", "name"]), None);
    }

    #[test]
    fn collects_every_problem() {
        let t: Table = toml::from_str("a = 1\nb = \"x\"\nc = \"5 parsecs\"\nextra = true").unwrap();
        let mut p = Problems::new("f.toml");
        let mut r = Reader::new(&t, "s.", None, &["a", "b", "c"], &mut p);
        assert_eq!(r.string("a"), None);
        assert_eq!(r.integer("b", 0, 10), None);
        assert_eq!(r.duration("c", Duration::ZERO, Duration::MAX), None);
        r.finish();
        let lines = p.into_error().lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(
            lines[0],
            "f.toml: s.a: expected a string, found an integer (1)"
        );
        assert!(
            lines[2].starts_with("f.toml: s.c \"5 parsecs\": invalid duration"),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with("f.toml: s.extra: unknown key; allowed keys: a, b, c"));
    }
}
