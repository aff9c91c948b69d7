//! [`Reader`]: the one way every section of the config file is read. It reads
//! one TOML table through typed getters that record every problem (wrong
//! type, out of range, unknown key) instead of stopping at the first, so the
//! loader reports all of them at once, each naming its file, job and key. It
//! learns a section's keys from the keys it is asked for, so a section gains
//! a key by reading it: there is no second list of allowed keys to keep in
//! step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::error::{JobRef, Problems};

/// How the keys of a table are named in messages.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// The file's top level: `sink`, `jobs`.
    Top,
    /// A `[section]` (or `[sinks.<name>]`): keys shown dotted, `sink.region`.
    Section(std::borrow::Cow<'static, str>),
    /// A `[[jobs]]` table: the problem names the job, keys shown bare.
    Job(JobRef),
    /// A section whose messages read `[delivery] key = value: …` (the wording
    /// `[delivery]` problems have always had).
    Bracketed(&'static str),
}

/// A value read from TOML by [`Reader::value`].
pub(crate) trait FromToml: Sized {
    /// Reads `key` from `r`: `None` when absent or wrong (the problem is recorded).
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self>;
}

/// Reads the keys of one table; call [`Reader::finish`] to report unknown keys.
pub(crate) struct Reader<'a, 'p> {
    table: &'a Table,
    scope: Scope,
    /// Every key asked for, in the order asked (the allowed keys).
    known: Vec<&'static str>,
    pub(crate) problems: &'p mut Problems,
}

impl<'a, 'p> Reader<'a, 'p> {
    pub(crate) fn new(table: &'a Table, scope: Scope, problems: &'p mut Problems) -> Self {
        Reader {
            table,
            scope,
            known: Vec::new(),
            problems,
        }
    }

    /// Allows `keys` besides those read (for a table whose keys are read
    /// only in some cases, or merged from elsewhere).
    pub(crate) fn allow(&mut self, keys: &[&'static str]) {
        for key in keys {
            if !self.known.contains(key) {
                self.known.push(key);
            }
        }
    }

    /// The value of `key`, noting `key` as allowed.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.table.get(key)
    }

    /// Records a problem about `key` (with an optional value to show).
    pub(crate) fn problem(&mut self, key: &str, value: Option<&str>, message: impl Into<String>) {
        let message = message.into();
        match &self.scope {
            Scope::Top => self.problems.push(None, Some(key), value, message),
            Scope::Section(section) => {
                let key = format!("{section}.{key}");
                self.problems.push(None, Some(&key), value, message);
            }
            Scope::Job(job) => self.problems.push(Some(job), Some(key), value, message),
            Scope::Bracketed(section) => {
                let shown = match value {
                    Some(v) => format!("[{section}] {key} = {v:?}: {message}"),
                    None => format!("[{section}] {key}: {message}"),
                };
                self.problems.push(None, None, None, shown);
            }
        }
    }

    fn type_problem(&mut self, key: &str, expected: &str, found: &Value) {
        let msg = format!("expected {expected}, found {}", describe(found));
        self.problem(key, None, msg);
    }

    /// The raw value of `key`, if present.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.get(key)
    }

    /// Reads `key` as a `T` (see [`FromToml`]).
    pub(crate) fn value<T: FromToml>(&mut self, key: &'static str) -> Option<T> {
        T::read(self, key)
    }

    /// An optional string.
    pub(crate) fn string(&mut self, key: &'static str) -> Option<&'a str> {
        match self.get(key)? {
            Value::String(s) => Some(s.as_str()),
            other => {
                self.type_problem(key, "a string", other);
                None
            }
        }
    }

    /// A required string; `example` completes "missing required key; add e.g. ".
    pub(crate) fn required_string(&mut self, key: &'static str, example: &str) -> Option<&'a str> {
        if self.get(key).is_none() {
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
    pub(crate) fn bool(&mut self, key: &'static str) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.type_problem(key, "true or false", other);
                None
            }
        }
    }

    /// An optional integer within `min..=max`.
    pub(crate) fn integer(&mut self, key: &'static str, min: i64, max: i64) -> Option<i64> {
        match self.get(key)? {
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
    pub(crate) fn duration(
        &mut self,
        key: &'static str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let value = self.get(key)?;
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
    pub(crate) fn table(&mut self, key: &'static str) -> Option<&'a Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.type_problem(key, "a table", other);
                None
            }
        }
    }

    /// Reports every key of the table that was never asked for, with a suggestion.
    pub(crate) fn finish(mut self) {
        let known = std::mem::take(&mut self.known);
        let table = self.table;
        for key in table.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = suggest(key, &known);
            let message = match &self.scope {
                Scope::Bracketed(section) => {
                    let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                    let mut m = format!(
                        "[{section}] unknown field `{key}`, expected one of {}",
                        expected.join(", ")
                    );
                    if let Some(s) = hint {
                        m.push_str(&format!(" (did you mean `{s}`?)"));
                    }
                    self.problems.push(None, None, None, m);
                    continue;
                }
                _ => match hint {
                    Some(s) => format!(
                        "unknown key (did you mean {s:?}?); allowed keys: {}",
                        known.join(", ")
                    ),
                    None => format!("unknown key; allowed keys: {}", known.join(", ")),
                },
            };
            self.problem(key, None, message);
        }
    }
}

impl FromToml for bool {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        r.bool(key)
    }
}

impl FromToml for u32 {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        r.integer(key, 0, i64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
    }
}

impl FromToml for usize {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        let max = i64::try_from(usize::MAX).unwrap_or(i64::MAX);
        r.integer(key, 0, max).and_then(|n| usize::try_from(n).ok())
    }
}

impl FromToml for u64 {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        r.integer(key, 0, i64::MAX)
            .and_then(|n| u64::try_from(n).ok())
    }
}

impl FromToml for PathBuf {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        match r.string(key)?.trim() {
            "" => {
                r.problem(key, None, "empty path; give a directory or remove the key");
                None
            }
            path => Some(PathBuf::from(path)),
        }
    }
}

impl FromToml for Duration {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        r.duration(key, Duration::ZERO, Duration::MAX)
    }
}

impl FromToml for String {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        r.string(key).map(str::to_owned)
    }
}

impl<T: FromToml> FromToml for Option<T> {
    /// Present and valid: `Some(Some(value))`.
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        T::read(r, key).map(Some)
    }
}

impl FromToml for BTreeMap<String, String> {
    /// A table of strings, e.g. `[delivery.tags]`.
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        let table = r.table(key)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in table {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => {
                    let msg = format!("expected a string, found {}", describe(other));
                    r.problem(&format!("{key}.{k}"), None, msg);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Parses config text into a table (keys in file order), or says where the syntax is wrong:
/// `TOML syntax error at line L, column C: message`.
pub(crate) fn parse_toml(text: &str) -> Result<Table, String> {
    text.parse::<Table>().map_err(|e| {
        let msg = e.message().trim().replace('\n', "; ");
        match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("TOML syntax error at line {line}, column {col}: {msg}")
            }
            None => format!("TOML syntax error: {msg}"),
        }
    })
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
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

/// The known key closest to `key`, if it is close enough to be a likely typo
/// (a few edits away, or a shortened or lengthened form: `retention` for
/// `retention_days`).
pub(crate) fn suggest(key: &str, known: &[&str]) -> Option<String> {
    let affix = |k: &str| key.len().min(k.len()) >= 4 && (k.starts_with(key) || key.starts_with(k));
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) || affix(k))
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
        assert_eq!(
            suggest("retention", &["retention_days", "tags"]).as_deref(),
            Some("retention_days")
        );
    }

    #[test]
    fn collects_every_problem_and_learns_the_keys_it_reads() {
        let t = parse_toml("a = 1\nb = \"x\"\nc = \"5 parsecs\"\nextra = true").unwrap();
        let mut p = Problems::new("f.toml");
        let mut r = Reader::new(&t, Scope::Section("s".into()), &mut p);
        assert_eq!(r.string("a"), None);
        assert_eq!(r.integer("b", 0, 10), None);
        assert_eq!(r.duration("c", Duration::ZERO, Duration::MAX), None);
        assert_eq!(r.bool("absent"), None);
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
        assert_eq!(
            lines[3],
            "f.toml: s.extra: unknown key; allowed keys: a, b, c, absent"
        );
    }

    #[test]
    fn bracketed_sections_name_the_key_in_the_message() {
        let t = parse_toml("n = \"x\"\nretenton = 3\n[tags]\nteam = 5").unwrap();
        let mut p = Problems::new("f.toml");
        let mut r = Reader::new(&t, Scope::Bracketed("delivery"), &mut p);
        assert_eq!(r.value::<usize>("n"), None);
        assert_eq!(r.value::<Option<u32>>("retention"), None);
        assert_eq!(r.value::<BTreeMap<String, String>>("tags"), None);
        r.finish();
        assert_eq!(
            p.into_error().lines(),
            vec![
                "f.toml: [delivery] n: expected an integer, found a string (\"x\")",
                "f.toml: [delivery] tags.team: expected a string, found an integer (5)",
                "f.toml: [delivery] unknown field `retenton`, expected one of `n`, `retention`, `tags` (did you mean `retention`?)",
            ]
        );
    }

    #[test]
    fn keys_keep_file_order() {
        let t = parse_toml("z = 1\na = 2\nm = 3").unwrap();
        let keys: Vec<&str> = t.keys().map(String::as_str).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let e = parse_toml("a = \n").unwrap_err();
        assert!(e.starts_with("TOML syntax error at line 1, column "), "{e}");
    }
}
