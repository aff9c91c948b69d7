//! [`Error`]: why a run or a configuration check failed, in the three cases
//! the host tells apart, and the one place config messages are worded.

use std::fmt;

/// Why a run (or a configuration check) failed.
///
/// The host logs the message with the job name and counts the failure under
/// the variant's kind (`invalid_config`, `transient`, `fatal`). Whatever the
/// kind, the job runs again at its next tick: a failed run is never retried
/// early. Write the message for the operator: say what went wrong and how to
/// fix it.
///
/// `?` converts `serde_json` errors (and, with the `emf` feature, EMF builder
/// errors) into [`Error::Fatal`] with their own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The job's configuration is unusable. From a configuration check it stops
    /// the host at start-up and fails `cwpub check`; from a run it fails that run.
    /// Build it with [`Error::config`] so that every message has the same shape.
    InvalidConfig(String),
    /// A temporary problem: logged as a warning.
    Transient(String),
    /// The guest cannot do its work: logged as an error.
    Fatal(String),
}

/// `Result<T, cwpub_guest::Error>`, the return type of every guest function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidConfig`] about config key `key`, worded as every
    /// cwpub guest words them: ``config key `key`: why``. Say in `why` what is
    /// wrong and how to fix it, e.g. `must be a number of seconds, like "30"`.
    pub fn config(key: &str, why: impl fmt::Display) -> Self {
        Error::InvalidConfig(format!("config key `{key}`: {why}"))
    }

    /// An [`Error::Transient`] with `message`.
    pub fn transient(message: impl Into<String>) -> Self {
        Error::Transient(message.into())
    }

    /// An [`Error::Fatal`] with `message`.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error::Fatal(message.into())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m) | Error::Transient(m) | Error::Fatal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::InvalidConfig(_) => "invalid config",
            Error::Transient(_) => "transient failure",
            Error::Fatal(_) => "fatal failure",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Fatal(format!("cannot serialize JSON: {e}"))
    }
}

#[cfg(feature = "emf")]
impl From<cwpub_emf::EmfError> for Error {
    fn from(e: cwpub_emf::EmfError) -> Self {
        Error::Fatal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_key() {
        let e = Error::config("service", "must not be empty");
        assert_eq!(
            e,
            Error::InvalidConfig("config key `service`: must not be empty".into())
        );
        assert_eq!(
            e.to_string(),
            "invalid config: config key `service`: must not be empty"
        );
        assert_eq!(Error::fatal("boom").message(), "boom");
    }
}
