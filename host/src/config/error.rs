//! Configuration problems: each [`Problem`] names the file, the job (by name or
//! position) and the key it concerns; a [`ConfigError`] carries all of them so
//! an operator can fix a config file in one pass.

use std::fmt;

/// Which job a problem concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    /// A job with a usable `name`.
    Named(String),
    /// A job without a usable name, by 1-based position among the `[[jobs]]` tables.
    Position(usize),
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobRef::Named(name) => write!(f, "job {name:?}"),
            JobRef::Position(n) => write!(f, "job #{n}"),
        }
    }
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config file, as the operator named it.
    pub file: String,
    /// The job concerned, if the problem is inside a `[[jobs]]` table.
    pub job: Option<JobRef>,
    /// The key concerned (relative to the job for job problems, dotted otherwise,
    /// or an environment variable), if any.
    pub key: Option<String>,
    /// The offending value, if it helps to show it.
    pub value: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(job) = &self.job {
            write!(f, "{job}: ")?;
        }
        if let Some(key) = &self.key {
            f.write_str(key)?;
            if let Some(value) = &self.value {
                write!(f, " {value:?}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a configuration (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in file order where possible.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The problems as display lines (`file: job "x": key "value": message`).
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while a configuration is read, all with the same file.
#[derive(Debug)]
pub(crate) struct Problems {
    file: String,
    list: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new(file: impl Into<String>) -> Self {
        Problems {
            file: file.into(),
            list: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn push(
        &mut self,
        job: Option<&JobRef>,
        key: Option<&str>,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.list.push(Problem {
            file: self.file.clone(),
            job: job.cloned(),
            key: key.map(str::to_string),
            value: value.map(str::to_string),
            message: message.into(),
        });
    }

    pub(crate) fn into_error(self) -> ConfigError {
        ConfigError {
            problems: self.list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let mut p = Problems::new("examples/x.toml");
        let job = JobRef::Named("heartbeat".into());
        p.push(
            Some(&job),
            Some("schedule"),
            Some("*/5 * *"),
            "invalid cron expression: bad",
        );
        p.push(
            Some(&JobRef::Position(2)),
            Some("name"),
            None,
            "missing required key",
        );
        p.push(None, None, None, "TOML syntax error at line 1, column 2: x");
        let e = p.into_error();
        assert_eq!(
            e.lines(),
            vec![
                r#"examples/x.toml: job "heartbeat": schedule "*/5 * *": invalid cron expression: bad"#,
                "examples/x.toml: job #2: name: missing required key",
                "examples/x.toml: TOML syntax error at line 1, column 2: x",
            ]
        );
        assert_eq!(e.to_string().lines().count(), 3);
    }
}
