//! The DataDog API key: where it comes from, and the one type that holds it.
//!
//! * From the environment variable named by `api_key_env` (default
//!   [`DEFAULT_API_KEY_ENV`], `DD_API_KEY`), read once at start, or from the
//!   file named by `api_key_file` (a mounted secret), re-read on demand —
//!   after DataDog refused the key — so a rotated secret takes effect without
//!   a restart ([`ApiKeyStore::reload`]).
//! * Never from the config file: [`literal_key_refusal`] says why and what to
//!   do instead for every config key people put a key under.
//! * [`ApiKey`] shows `[redacted]` through `Debug` and `Display`; the value
//!   is only reachable through [`ApiKey::header_value`] (marked sensitive, so
//!   HTTP tooling does not print it either) and [`ApiKeyStore::redact`],
//!   which scrubs it from remote text before that text is shown anywhere.
//!   No message of this module contains the key or any part of it.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use hyper::header::HeaderValue;

use crate::env::{Env, get};

/// The variable the key is read from when `api_key_env` is not set.
pub const DEFAULT_API_KEY_ENV: &str = "DD_API_KEY";

/// A key file larger than this is refused: it cannot hold a key alone.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Config keys under which people put a literal key; each is refused.
pub const LITERAL_KEY_NAMES: [&str; 6] = [
    "api_key",
    "apikey",
    "dd_api_key",
    "default_api_key",
    "key",
    "app_key",
];

/// An API key. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Box<str>);

impl ApiKey {
    /// `raw` without surrounding whitespace (a trailing newline in a secret
    /// file is usual), if what is left can be a key: not empty, and only
    /// visible ASCII characters (an HTTP header value). `Err` is the
    /// problem, without the value.
    pub fn parse(raw: &str) -> Result<ApiKey, &'static str> {
        let key = raw.trim();
        if key.is_empty() {
            return Err("is empty");
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "holds spaces, line breaks or non-ASCII characters inside the key; \
                 it must hold the key alone, on one line",
            );
        }
        Ok(ApiKey(key.into()))
    }

    /// The `DD-API-KEY` header value, marked sensitive.
    pub fn header_value(&self) -> HeaderValue {
        // `parse` admits visible ASCII only, which is always a valid value.
        let mut value =
            HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable, read once at start.
    Env(String),
    /// A file (a mounted secret), re-read on demand.
    File(PathBuf),
}

impl KeySource {
    /// The source a sink configuration names: `api_key_file` if set, else
    /// `api_key_env`, else [`DEFAULT_API_KEY_ENV`]. Both at once is refused.
    pub fn from_config(
        api_key_env: Option<&str>,
        api_key_file: Option<&Path>,
    ) -> Result<KeySource, String> {
        match (api_key_env, api_key_file) {
            (Some(_), Some(_)) => Err(
                "api_key_env and api_key_file are both set; keep one: api_key_file for a \
                 mounted secret, api_key_env for a variable"
                    .into(),
            ),
            (None, Some(path)) => Ok(KeySource::File(path.to_path_buf())),
            (Some(var), None) => {
                check_api_key_env(var)?;
                Ok(KeySource::Env(var.trim().to_string()))
            }
            (None, None) => Ok(KeySource::Env(DEFAULT_API_KEY_ENV.to_string())),
        }
    }

    /// Reads the key: from `env` for a variable, from disk for a file
    /// (blocking; see [`ApiKeyStore::reload`] for async callers).
    pub fn read(&self, env: &Env) -> Result<ApiKey, KeyError> {
        match self {
            KeySource::Env(var) => {
                let raw = get(env, var).ok_or_else(|| KeyError {
                    source: self.clone(),
                    problem: "is not set or empty".into(),
                })?;
                ApiKey::parse(raw).map_err(|p| KeyError {
                    source: self.clone(),
                    problem: p.into(),
                })
            }
            KeySource::File(path) => {
                let raw = read_key_file(path).map_err(|problem| KeyError {
                    source: self.clone(),
                    problem,
                })?;
                ApiKey::parse(&raw).map_err(|p| KeyError {
                    source: self.clone(),
                    problem: p.into(),
                })
            }
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "environment variable {var}"),
            KeySource::File(path) => write!(f, "api_key_file {}", path.display()),
        }
    }
}

/// Reads at most [`MAX_KEY_FILE_BYTES`] of `path` as UTF-8.
fn read_key_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut raw = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if raw.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "is larger than {MAX_KEY_FILE_BYTES} bytes; it must hold the key alone"
        ));
    }
    String::from_utf8(raw).map_err(|_| "is not UTF-8 text; it must hold the key alone".into())
}

/// The key could not be read; the message names the source and the fix and
/// never contains the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Where the key was read from.
    pub source: KeySource,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fix = match &self.source {
            KeySource::Env(_) => {
                "set it to a DataDog API key (from a secret: ECS `secrets`, a Kubernetes Secret), \
                 or name a mounted secret file with api_key_file"
            }
            KeySource::File(_) => {
                "mount the secret there with the API key alone in it, or use api_key_env"
            }
        };
        write!(
            f,
            "DataDog API key: {} {}; {fix}",
            self.source, self.problem
        )
    }
}

impl std::error::Error for KeyError {}

/// For the config reader: `Some(message)` when `config_key` is one under
/// which people write a literal key ([`LITERAL_KEY_NAMES`]), which is
/// refused: a key in the config file is readable by whoever reads the file
/// (and config maps are rarely treated as secrets).
pub fn literal_key_refusal(config_key: &str) -> Option<String> {
    LITERAL_KEY_NAMES
        .contains(&config_key.trim().to_ascii_lowercase().as_str())
        .then(|| {
            format!(
                "`{config_key}` is not accepted: the API key never goes in the config file. Put it in \
                 the environment variable {DEFAULT_API_KEY_ENV} (or the one api_key_env names), or in a \
                 file named by api_key_file (a mounted secret)"
            )
        })
}

/// The rule for `api_key_env`: an environment variable name, and not a key
/// pasted in its place. The message never repeats the value; a config reader
/// must not show it either.
pub fn check_api_key_env(name: &str) -> Result<(), String> {
    let name = name.trim();
    let hex = name.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && (name.len() == 32 || name.len() == 40) {
        return Err(format!(
            "api_key_env looks like a key, not a variable name; it names the environment variable \
             that holds the key (default {DEFAULT_API_KEY_ENV}). If this was a real key, rotate it"
        ));
    }
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "api_key_env must be an environment variable name (letters, digits and _, not starting \
             with a digit), e.g. \"{DEFAULT_API_KEY_ENV}\""
        ))
    }
}

/// The current key of one sink, shared by its requests; a file source can
/// be re-read while requests go on (the lock is held only to swap an `Arc`).
#[derive(Debug)]
pub struct ApiKeyStore {
    source: KeySource,
    current: RwLock<Arc<ApiKey>>,
}

impl ApiKeyStore {
    /// Reads the key from `source` (blocking for a file: call at start-up).
    pub fn load(source: KeySource, env: &Env) -> Result<ApiKeyStore, KeyError> {
        let key = source.read(env)?;
        Ok(ApiKeyStore {
            source,
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// A store holding `key` from `source` (for callers that read the key themselves).
    pub fn with_key(source: KeySource, key: ApiKey) -> ApiKeyStore {
        ApiKeyStore {
            source,
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// Where the key comes from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The key to send now.
    pub fn current(&self) -> Arc<ApiKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads a file source off the async workers; `Ok(true)` when the
    /// key changed (a rotated secret), `Ok(false)` when it is the same or
    /// the source is a variable (read once at start). On error the current
    /// key is kept.
    pub async fn reload(&self) -> Result<bool, KeyError> {
        let KeySource::File(_) = &self.source else {
            return Ok(false);
        };
        let source = self.source.clone();
        let empty = Env::new();
        let key = tokio::task::spawn_blocking(move || source.read(&empty))
            .await
            .map_err(|e| KeyError {
                source: self.source.clone(),
                problem: format!("could not be re-read: {e}"),
            })??;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if **current == key {
            return Ok(false);
        }
        *current = Arc::new(key);
        Ok(true)
    }

    /// `text` with every occurrence of the current key replaced by
    /// `[redacted]`: for remote text (an endpoint may echo the key back).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let key = self.current();
        if text.contains(&*key.0) {
            Cow::Owned(text.replace(&*key.0, "[redacted]"))
        } else {
            Cow::Borrowed(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::env::from_pairs;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_key_is_never_shown() {
        let key = ApiKey::parse(&format!("  {KEY}\n")).unwrap();
        assert_eq!(format!("{key}"), "[redacted]");
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert_eq!(format!("{:?}", Some(&key)), "Some(ApiKey([redacted]))");
        let value = key.header_value();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), KEY);
        assert!(!format!("{value:?}").contains(KEY), "{value:?}");
    }

    #[test]
    fn keys_are_trimmed_and_checked_without_echo() {
        assert_eq!(
            ApiKey::parse(&format!("{KEY}\r\n")).unwrap(),
            ApiKey(KEY.into())
        );
        assert_eq!(ApiKey::parse(" \n"), Err("is empty"));
        let secret = "abc def";
        let err = ApiKey::parse(secret).unwrap_err();
        assert!(!err.contains(secret) && err.contains("one line"), "{err}");
        assert!(ApiKey::parse("clé").is_err());
    }

    #[test]
    fn env_source_reads_the_named_variable() {
        let env = from_pairs(&[("DD_API_KEY", KEY), ("OTHER", "k2")]);
        let default = KeySource::from_config(None, None).unwrap();
        assert_eq!(default, KeySource::Env("DD_API_KEY".into()));
        assert_eq!(default.read(&env).unwrap(), ApiKey(KEY.into()));
        let other = KeySource::from_config(Some("OTHER"), None).unwrap();
        assert_eq!(other.read(&env).unwrap(), ApiKey("k2".into()));
        let err = default
            .read(&from_pairs(&[("DD_API_KEY", " ")]))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "DataDog API key: environment variable DD_API_KEY is not set or empty;"
            ),
            "{text}"
        );
        assert!(text.contains("api_key_file"), "{text}");
    }

    #[test]
    fn file_source_is_trimmed_capped_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dd-api-key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        let source = KeySource::from_config(None, Some(&path)).unwrap();
        assert_eq!(source.read(&Env::new()).unwrap(), ApiKey(KEY.into()));

        std::fs::write(&path, "\n").unwrap();
        let err = source.read(&Env::new()).unwrap_err().to_string();
        assert!(
            err.contains("api_key_file") && err.contains("is empty"),
            "{err}"
        );

        std::fs::write(&path, "x".repeat(5000)).unwrap();
        let err = source.read(&Env::new()).unwrap_err().to_string();
        assert!(err.contains("larger than 4096 bytes"), "{err}");
        assert!(!err.contains("xxxx"), "{err}");

        let missing = KeySource::File(dir.path().join("absent"));
        let err = missing.read(&Env::new()).unwrap_err().to_string();
        assert!(
            err.contains("absent") && err.contains("cannot be read"),
            "{err}"
        );
        assert!(err.contains("mount the secret"), "{err}");
    }

    #[test]
    fn both_sources_at_once_are_refused() {
        let err = KeySource::from_config(Some("DD_API_KEY"), Some(Path::new("/k"))).unwrap_err();
        assert!(err.contains("keep one"), "{err}");
    }

    #[test]
    fn literal_keys_in_the_config_are_refused_with_the_fix() {
        for name in LITERAL_KEY_NAMES {
            let message = literal_key_refusal(name).unwrap();
            assert!(message.contains("DD_API_KEY"), "{message}");
            assert!(message.contains("api_key_file"), "{message}");
        }
        assert!(literal_key_refusal("API_KEY").is_some());
        assert_eq!(literal_key_refusal("api_key_env"), None);
        assert_eq!(literal_key_refusal("api_key_file"), None);
        assert_eq!(literal_key_refusal("site"), None);
    }

    #[test]
    fn api_key_env_must_be_a_name_not_a_key() {
        assert!(check_api_key_env("DD_API_KEY").is_ok());
        assert!(check_api_key_env("_my_key2").is_ok());
        for bad in ["", "1ABC", "DD-API-KEY", "dd key"] {
            assert!(check_api_key_env(bad).is_err(), "{bad}");
        }
        let pasted = "abcdef0123456789abcdef0123456789";
        let err = check_api_key_env(pasted).unwrap_err();
        assert!(
            err.contains("looks like a key") && !err.contains(pasted),
            "{err}"
        );
        assert!(KeySource::from_config(Some(pasted), None).is_err());
    }

    #[tokio::test]
    async fn a_file_key_is_reloaded_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "old-key\n").unwrap();
        let store = ApiKeyStore::load(KeySource::File(path.clone()), &Env::new()).unwrap();
        assert_eq!(*store.current(), ApiKey("old-key".into()));
        assert!(!store.reload().await.unwrap(), "unchanged");
        std::fs::write(&path, "new-key").unwrap();
        assert!(store.reload().await.unwrap(), "rotated");
        assert_eq!(*store.current(), ApiKey("new-key".into()));
        assert_eq!(
            store.redact("echo new-key and new-key"),
            "echo [redacted] and [redacted]"
        );
        assert_eq!(store.redact("nothing here"), "nothing here");
        // A failed re-read keeps the key.
        std::fs::remove_file(&path).unwrap();
        assert!(store.reload().await.is_err());
        assert_eq!(*store.current(), ApiKey("new-key".into()));

        let env_store =
            ApiKeyStore::load(KeySource::Env("K".into()), &from_pairs(&[("K", "env-key")]))
                .unwrap();
        assert!(!env_store.reload().await.unwrap());
    }
}
