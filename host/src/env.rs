//! The process environment as cwpub sees it: one map read once at start and
//! handed to whoever needs a variable (so tests inject their own), the name
//! of every variable cwpub reads, and the host's identity (hostname, task id,
//! instance id) used by name placeholders and host facts. `invoke`, `check`
//! and `run` all read the environment through this module, so they see the
//! same values.

use std::collections::BTreeMap;

/// Environment variables, name → value (inject a literal map in tests).
pub type Env = BTreeMap<String, String>;

/// Overrides `[sink] kind`.
pub const ENV_SINK_KIND: &str = "CWPUB_SINK_KIND";
/// Overrides `[sink] region`.
pub const ENV_REGION: &str = "CWPUB_REGION";
/// Overrides `[sink] endpoint_url`.
pub const ENV_ENDPOINT_URL: &str = "CWPUB_ENDPOINT_URL";
/// Overrides `[observe] enabled` (`true`/`false`/`1`/`0`).
pub const ENV_OBSERVE_ENABLED: &str = "CWPUB_OBSERVE_ENABLED";
/// Overrides `[observe] listen`.
pub const ENV_OBSERVE_LISTEN: &str = "CWPUB_OBSERVE_LISTEN";
/// Overrides `[log] format`.
pub const ENV_LOG_FORMAT: &str = "CWPUB_LOG_FORMAT";
/// Overrides `[log] level` (`RUST_LOG`, read when logging starts, wins over both).
pub const ENV_LOG_LEVEL: &str = "CWPUB_LOG_LEVEL";
/// Sets the `{hostname}` placeholder instead of the system hostname.
pub const ENV_HOSTNAME: &str = "CWPUB_HOSTNAME";
/// Sets the `{task_id}` placeholder.
pub const ENV_TASK_ID: &str = "CWPUB_TASK_ID";
/// Sets the `{instance_id}` placeholder.
pub const ENV_INSTANCE_ID: &str = "CWPUB_INSTANCE_ID";
/// `0` builds the wasm engine without the pooling allocator.
pub const ENV_POOLING: &str = "CWPUB_POOLING";
/// Where compiled guests are cached (`off` disables the cache).
pub const ENV_CACHE_DIR: &str = "CWPUB_CACHE_DIR";
/// AWS SDK region variables, consulted (in this order) when no region is configured.
pub const AWS_REGION_VARS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

/// Every `CWPUB_*` variable the configuration reads, for documentation and checks.
pub const CWPUB_VARS: &[&str] = &[
    ENV_SINK_KIND,
    ENV_REGION,
    ENV_ENDPOINT_URL,
    ENV_OBSERVE_ENABLED,
    ENV_OBSERVE_LISTEN,
    ENV_LOG_FORMAT,
    ENV_LOG_LEVEL,
    ENV_HOSTNAME,
    ENV_TASK_ID,
    ENV_INSTANCE_ID,
    ENV_POOLING,
    ENV_CACHE_DIR,
];

/// The current process environment (variables that are not UTF-8 are left out).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// An environment of `pairs` (for tests and tools that inject their own).
pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A variable's value, treating unset and blank alike (as container tooling often sets empty values).
pub fn get<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Who this host is, for placeholders and host facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// `CWPUB_HOSTNAME`, else the system hostname, else `"localhost"`.
    pub hostname: String,
    /// `CWPUB_TASK_ID`, else the ECS task id from `ECS_CONTAINER_METADATA_URI_V4` on Fargate.
    pub task_id: Option<String>,
    /// `CWPUB_INSTANCE_ID`.
    pub instance_id: Option<String>,
}

impl HostIdentity {
    /// Works the identity out from `env` (and the system hostname when `env` has none).
    pub fn detect(env: &Env) -> HostIdentity {
        let hostname = get(env, ENV_HOSTNAME)
            .map(str::to_string)
            .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let task_id = get(env, ENV_TASK_ID).map(str::to_string).or_else(|| {
            [
                "ECS_CONTAINER_METADATA_URI_V4",
                "ECS_CONTAINER_METADATA_URI",
            ]
            .iter()
            .find_map(|var| get(env, var).and_then(ecs_task_id))
        });
        let instance_id = get(env, ENV_INSTANCE_ID).map(str::to_string);
        HostIdentity {
            hostname,
            task_id,
            instance_id,
        }
    }
}

/// On Fargate the metadata URI ends in `<32-hex task id>-<number>`; elsewhere
/// it holds a container id, which is not a task id, so nothing is returned.
fn ecs_task_id(uri: &str) -> Option<String> {
    let last = uri.trim_end_matches('/').rsplit('/').next()?;
    let (id, num) = last.split_once('-')?;
    let ok = id.len() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit())
        && !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit());
    ok.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::from_pairs as env;

    #[test]
    fn identity_from_env() {
        let id = HostIdentity::detect(&env(&[
            ("CWPUB_HOSTNAME", "web-1"),
            (
                "ECS_CONTAINER_METADATA_URI_V4",
                "http://169.254.170.2/v4/0123456789abcdef0123456789abcdef-1234567890",
            ),
        ]));
        assert_eq!(id.hostname, "web-1");
        assert_eq!(
            id.task_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(id.instance_id, None);
        let id = HostIdentity::detect(&env(&[
            ("CWPUB_TASK_ID", "t-1"),
            ("CWPUB_INSTANCE_ID", "i-0abc"),
            (
                "ECS_CONTAINER_METADATA_URI_V4",
                "http://169.254.170.2/v4/4f7e1a2b",
            ),
        ]));
        assert_eq!(id.task_id.as_deref(), Some("t-1"));
        assert_eq!(id.instance_id.as_deref(), Some("i-0abc"));
        assert!(!id.hostname.is_empty());
        assert_eq!(ecs_task_id("http://169.254.170.2/v4/4f7e1a2b"), None);
    }

    #[test]
    fn blank_is_unset() {
        let e = env(&[("CWPUB_REGION", "  ")]);
        assert_eq!(get(&e, "CWPUB_REGION"), None);
    }
}
