//! `[sink]`: where events go ([`SinkKind`]) and, for CloudWatch, the region
//! and endpoint. Environment variables override the file; the region falls
//! back to the AWS SDK's variables. The region and endpoint rules themselves
//! are the delivery stage's ([`check_region`], [`check_endpoint_url`]), so a
//! value accepted here is accepted by the client too.
//!
//! Adding a key: read it in [`read`] (`r.string("key")`, `r.value::<T>("key")`)
//! and add a field to [`SinkConfig`]; reading a key is what makes it allowed.

use toml::Table;

use crate::delivery::{AwsSettings, check_endpoint_url, check_region};
use crate::env::{AWS_REGION_VARS, ENV_ENDPOINT_URL, ENV_REGION, ENV_SINK_KIND, Env, get};

use super::error::Problems;
use super::reader::{Reader, Scope};

/// Which sink delivers events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// CloudWatch Logs via the delivery stage.
    CloudWatch,
    /// One message per line on stdout, exactly as it would be sent.
    Stdout,
}

impl SinkKind {
    /// The name used in config (`"cloudwatch"` / `"stdout"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::CloudWatch => "cloudwatch",
            SinkKind::Stdout => "stdout",
        }
    }
}

/// `[sink]` after environment overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// The sink (default `stdout`; `CWPUB_SINK_KIND` overrides).
    pub kind: SinkKind,
    /// AWS region: `CWPUB_REGION`, else `[sink] region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// Endpoint URL override (LocalStack/moto): `CWPUB_ENDPOINT_URL`, else `[sink] endpoint_url`.
    pub endpoint_url: Option<String>,
}

impl SinkConfig {
    /// The region and endpoint in the form the delivery stage takes.
    pub fn aws_settings(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// How an environment variable is named in messages.
fn env_key(name: &str) -> String {
    format!("environment variable {name}")
}

/// The region and the key it came from, in precedence order: `CWPUB_REGION`,
/// `[sink] region` (`file`), `AWS_REGION`, `AWS_DEFAULT_REGION`.
fn region_source<'a>(file: Option<&'a str>, env: &'a Env) -> Option<(&'a str, String)> {
    if let Some(v) = get(env, ENV_REGION) {
        return Some((v, env_key(ENV_REGION)));
    }
    if let Some(v) = file {
        return Some((v, "sink.region".to_string()));
    }
    AWS_REGION_VARS
        .iter()
        .find_map(|n| get(env, n).map(|v| (v, env_key(n))))
}

/// The region the environment names (the `[sink] region` precedence without
/// a file), checked: what `invoke` reports to guests, as `run` would.
/// `Err` is a full message naming the variable.
pub fn region_from_env(env: &Env) -> Result<Option<String>, String> {
    match region_source(None, env) {
        None => Ok(None),
        Some((value, key)) => {
            let value = value.trim();
            check_region(value)
                .map(|()| Some(value.to_string()))
                .map_err(|e| format!("{key} {value:?}: {e}"))
        }
    }
}

/// Reads `[sink]` (`t`, empty when absent) with `env`'s overrides.
pub(super) fn read(t: &Table, env: &Env, problems: &mut Problems) -> Option<SinkConfig> {
    let mut r = Reader::new(t, Scope::Section("sink"), problems);
    let kind_file = r.string("kind");
    let region_file = r.string("region");
    let endpoint_file = r.string("endpoint_url");
    r.finish();
    let mut ok = true;

    let (kind_text, kind_key) = match get(env, ENV_SINK_KIND) {
        Some(v) => (Some(v), env_key(ENV_SINK_KIND)),
        None => (kind_file, "sink.kind".to_string()),
    };
    let kind = match kind_text.map(str::trim) {
        None => SinkKind::Stdout,
        Some(k) if k.eq_ignore_ascii_case("cloudwatch") => SinkKind::CloudWatch,
        Some(k) if k.eq_ignore_ascii_case("stdout") => SinkKind::Stdout,
        Some(k) => {
            problems.push(
                None,
                Some(&kind_key),
                Some(k),
                "unknown sink kind; use \"cloudwatch\" or \"stdout\"",
            );
            ok = false;
            SinkKind::Stdout
        }
    };

    let region = checked(
        region_source(region_file, env),
        check_region,
        problems,
        &mut ok,
    );
    if kind == SinkKind::CloudWatch && region.is_none() && ok {
        problems.push(
            None,
            Some("sink.region"),
            None,
            "the cloudwatch sink needs an AWS region; set [sink] region = \"us-east-1\", or CWPUB_REGION or AWS_REGION in the environment",
        );
        ok = false;
    }

    let endpoint_src = match get(env, ENV_ENDPOINT_URL) {
        Some(v) => Some((v, env_key(ENV_ENDPOINT_URL))),
        None => endpoint_file.map(|v| (v, "sink.endpoint_url".to_string())),
    };
    let endpoint_url = checked(endpoint_src, check_endpoint_url, problems, &mut ok);
    ok.then_some(SinkConfig {
        kind,
        region,
        endpoint_url,
    })
}

/// The trimmed value from `source` (value, key it came from) if `check`
/// accepts it; otherwise records its message against that key and clears `ok`.
fn checked(
    source: Option<(&str, String)>,
    check: fn(&str) -> Result<(), String>,
    problems: &mut Problems,
    ok: &mut bool,
) -> Option<String> {
    let (value, key) = source?;
    let value = value.trim();
    match check(value) {
        Ok(()) => Some(value.to_string()),
        Err(message) => {
            problems.push(None, Some(&key), Some(value), message);
            *ok = false;
            None
        }
    }
}
