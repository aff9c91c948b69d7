//! [`Config`]: a job's string keys and values, with accessors that word every
//! `invalid-config` message the same way, and the key check every guest gets.

use std::fmt;
use std::str::FromStr;

use crate::Guest;
use crate::error::{Error, Result};

/// A job's configuration: the string keys and values of its `[jobs.config]`
/// table, in file order, exactly as the operator wrote them.
///
/// Before your guest sees it, the SDK has checked it against
/// [`Guest::CONFIG_KEYS`](crate::Guest::CONFIG_KEYS): no key appears twice
/// and every key is one the guest declared. The accessors return an
/// [`Error::InvalidConfig`] whose message names the key and the fix, so a
/// guest can just use `?`:
///
/// ```
/// use cwpub_guest::Config;
///
/// let config = Config::new("orders", [("service", "orders-api"), ("interval", "30")]);
/// assert_eq!(config.required("service")?, "orders-api");
/// assert_eq!(config.optional("status")?.unwrap_or("ok"), "ok");
/// assert_eq!(config.parse::<u32>("interval")?, Some(30));
///
/// let e = config.required("region").unwrap_err();
/// assert_eq!(e.message(), "config key `region`: is required; set it in the job's [jobs.config] table");
/// # Ok::<(), cwpub_guest::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    job: String,
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration for job `job` (for tests; the host builds the real one).
    pub fn new<K, V>(job: impl Into<String>, entries: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Config {
            job: job.into(),
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The name of the job this configuration belongs to.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Every key and value, in file order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Whether the job has no configuration at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw value of `key`, if present, including an empty string. Use it
    /// for keys where an empty value means something; otherwise prefer
    /// [`optional`](Self::optional) or [`required`](Self::required).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which must be present and not empty.
    ///
    /// Errors: ``config key `key`: is required; set it in the job's [jobs.config] table``
    /// or ``config key `key`: must not be empty``.
    pub fn required(&self, key: &str) -> Result<&str> {
        self.optional(key)?.ok_or_else(|| {
            Error::config(key, "is required; set it in the job's [jobs.config] table")
        })
    }

    /// The value of `key` if present; when present it must not be empty.
    ///
    /// Error: ``config key `key`: must not be empty``.
    pub fn optional(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            Some("") => Err(Error::config(key, "must not be empty")),
            value => Ok(value),
        }
    }

    /// The value of `key` parsed with [`FromStr`] (numbers, `bool`, your own
    /// enums, `cwpub_guest::emf::Unit`, …), or `None` when the key is absent.
    /// Surrounding whitespace is ignored.
    ///
    /// Error: ``config key `key`: "abc" is not a valid u32: invalid digit found in string``,
    /// i.e. the value, the type's name and the type's own parse error.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(value) = self.optional(key)? else {
            return Ok(None);
        };
        value.trim().parse::<T>().map(Some).map_err(|e| {
            let type_name = std::any::type_name::<T>();
            let short = type_name.rsplit("::").next().unwrap_or(type_name);
            Error::config(key, format!("{value:?} is not a valid {short}: {e}"))
        })
    }

    /// Every `(name, value)` whose key starts with `prefix`, with the prefix
    /// removed, in file order: `config.prefixed("field.")` reads a family of
    /// keys declared as `"field.<name>"` in
    /// [`Guest::CONFIG_KEYS`](crate::Guest::CONFIG_KEYS). The key check has
    /// already made sure each `name` is non-empty.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.entries
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|name| (name, v.as_str())))
    }

    /// Checks this configuration as the host's configuration check does for
    /// guest `G`: the keys against [`Guest::CONFIG_KEYS`], then
    /// [`Guest::validate_config`]. Use it in unit tests.
    pub fn validate_for<G: Guest>(&self) -> Result<()> {
        self.check_keys(G::NAME, G::CONFIG_KEYS)?;
        G::validate_config(self)
    }

    /// Checks the keys against `accepted`, as the SDK does before your guest
    /// sees the configuration: no key may appear twice, and every key must
    /// match an accepted pattern. A pattern is a key (`"service"`) or a prefix
    /// followed by a `<placeholder>` (`"field.<name>"`), which accepts any key
    /// that starts with the prefix and has something after it. `guest` names
    /// the guest in the message, e.g.
    /// ``config key `colour`: unknown key; builtin:heartbeat accepts `service`, `status` and `field.<name>` ``.
    pub fn check_keys(&self, guest: &str, accepted: &[&str]) -> Result<()> {
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.entries[..i].iter().any(|(k, _)| k == key) {
                return Err(Error::config(key, "appears more than once; keep one"));
            }
            check_key(key, guest, accepted)?;
        }
        Ok(())
    }
}

/// Checks one key against the accepted patterns.
fn check_key(key: &str, guest: &str, accepted: &[&str]) -> Result<()> {
    let mut wants_name = None;
    for pattern in accepted {
        match split_pattern(pattern) {
            (exact, None) if exact == key => return Ok(()),
            (prefix, Some(_)) => match key.strip_prefix(prefix) {
                Some("") => wants_name = Some((prefix, pattern)),
                Some(_) => return Ok(()),
                None => {}
            },
            _ => {}
        }
    }
    Err(match wants_name {
        Some((prefix, pattern)) => Error::config(
            key,
            format!("needs a name after `{prefix}`, as in `{pattern}`"),
        ),
        None => Error::config(
            key,
            format!("unknown key; {guest} accepts {}", accepted_list(accepted)),
        ),
    })
}

/// Splits `"field.<name>"` into `("field.", Some("<name>"))`; a plain key has no placeholder.
fn split_pattern(pattern: &str) -> (&str, Option<&str>) {
    match pattern.find('<') {
        Some(at) if pattern.ends_with('>') => (&pattern[..at], Some(&pattern[at..])),
        _ => (pattern, None),
    }
}

/// "`a`", "`a` and `b`", "`a`, `b` and `c`", or "no configuration keys".
fn accepted_list(accepted: &[&str]) -> String {
    let quoted: Vec<String> = accepted.iter().map(|p| format!("`{p}`")).collect();
    match quoted.as_slice() {
        [] => "no configuration keys".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT: &[&str] = &["service", "status", "field.<name>"];

    fn check(pairs: &[(&str, &str)], accepted: &[&str]) -> Result<()> {
        Config::new("job", pairs.iter().copied()).check_keys("builtin:heartbeat", accepted)
    }

    fn message(result: Result<impl fmt::Debug>) -> String {
        result.unwrap_err().message().to_owned()
    }

    #[test]
    fn accepts_declared_keys_and_families() {
        check(
            &[("service", "a"), ("field.env", "prod"), ("field.team", "x")],
            HEARTBEAT,
        )
        .unwrap();
        check(&[], &[]).unwrap();
        check(&[("anything", "goes")], &["<key>"]).unwrap();
    }

    #[test]
    fn unknown_keys_list_what_is_accepted() {
        assert_eq!(
            message(check(&[("colour", "red")], HEARTBEAT)),
            "config key `colour`: unknown key; builtin:heartbeat accepts `service`, `status` and `field.<name>`"
        );
        assert_eq!(
            message(check(&[("x", "1")], &["a", "b"])),
            "config key `x`: unknown key; builtin:heartbeat accepts `a` and `b`"
        );
        assert_eq!(
            message(check(&[("x", "1")], &["a"])),
            "config key `x`: unknown key; builtin:heartbeat accepts `a`"
        );
        assert_eq!(
            message(check(&[("x", "1")], &[])),
            "config key `x`: unknown key; builtin:heartbeat accepts no configuration keys"
        );
        // A prefix alone is not a key of the family.
        assert_eq!(
            message(check(&[("field.", "1")], HEARTBEAT)),
            "config key `field.`: needs a name after `field.`, as in `field.<name>`"
        );
        assert!(message(check(&[("fieldx", "1")], HEARTBEAT)).contains("unknown key"));
    }

    #[test]
    fn problems_are_reported_in_file_order() {
        assert_eq!(
            message(check(
                &[("service", "a"), ("colour", "b"), ("service", "c")],
                HEARTBEAT
            )),
            "config key `colour`: unknown key; builtin:heartbeat accepts `service`, `status` and `field.<name>`"
        );
        assert_eq!(
            message(check(&[("service", "a"), ("service", "c")], HEARTBEAT)),
            "config key `service`: appears more than once; keep one"
        );
    }

    #[test]
    fn accessors_word_their_errors() {
        let config = Config::new(
            "job",
            [
                ("empty", ""),
                ("n", " 42 "),
                ("bad", "4x2"),
                ("field.a", "1"),
            ],
        );
        assert_eq!(config.job(), "job");
        assert_eq!(config.get("empty"), Some(""));
        assert_eq!(
            message(config.optional("empty")),
            "config key `empty`: must not be empty"
        );
        assert_eq!(
            message(config.required("missing")),
            "config key `missing`: is required; set it in the job's [jobs.config] table"
        );
        assert_eq!(config.parse::<u16>("n").unwrap(), Some(42));
        assert_eq!(config.parse::<u16>("missing").unwrap(), None);
        assert_eq!(
            message(config.parse::<u16>("bad")),
            "config key `bad`: \"4x2\" is not a valid u16: invalid digit found in string"
        );
        assert_eq!(
            config.prefixed("field.").collect::<Vec<_>>(),
            vec![("a", "1")]
        );
    }
}
