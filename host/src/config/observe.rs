//! `[observe]`: the HTTP endpoint with `/healthz`, `/readyz` and `/metrics`.
//!
//! Adding a key: read it in [`read`] and add a field to [`ObserveConfig`];
//! reading a key is what makes it allowed.

use std::net::SocketAddr;

use toml::Table;

use crate::env::{ENV_OBSERVE_ENABLED, ENV_OBSERVE_LISTEN, Env, get};

use super::error::Problems;
use super::reader::{Reader, Scope};

/// Default `[observe] listen` address.
pub const DEFAULT_OBSERVE_LISTEN: &str = "127.0.0.1:9464";

/// `[observe]` after environment overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserveConfig {
    /// Whether to serve it (default true; `CWPUB_OBSERVE_ENABLED` overrides).
    pub enabled: bool,
    /// Address to listen on (default 127.0.0.1:9464; `CWPUB_OBSERVE_LISTEN` overrides).
    pub listen: SocketAddr,
}

/// Reads `[observe]` (`t`, empty when absent) with `env`'s overrides.
pub(super) fn read(t: &Table, env: &Env, problems: &mut Problems) -> Option<ObserveConfig> {
    let before = problems.len();
    let mut r = Reader::new(t, Scope::Section("observe".into()), problems);
    let enabled_file = r.bool("enabled");
    let listen_file = r.string("listen");
    r.finish();
    let mut ok = problems.len() == before;

    let enabled = match get(env, ENV_OBSERVE_ENABLED) {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                let key = format!("environment variable {ENV_OBSERVE_ENABLED}");
                problems.push(None, Some(&key), Some(v), "expected true or false");
                ok = false;
                true
            }
        },
        None => enabled_file.unwrap_or(true),
    };
    let (listen_text, key) = match get(env, ENV_OBSERVE_LISTEN) {
        Some(v) => (v, format!("environment variable {ENV_OBSERVE_LISTEN}")),
        None => (
            listen_file.unwrap_or(DEFAULT_OBSERVE_LISTEN),
            "observe.listen".to_string(),
        ),
    };
    let listen = match listen_text.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(
                None,
                Some(&key),
                Some(listen_text),
                "expected an IP address and port like \"127.0.0.1:9464\" (\"0.0.0.0:9464\" listens on every interface)",
            );
            None
        }
    };
    match listen {
        Some(listen) if ok => Some(ObserveConfig { enabled, listen }),
        _ => None,
    }
}
