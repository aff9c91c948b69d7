//! The sinks: where events go. `[sinks.<name>]` tables declare named sinks of
//! any kind, each with its own delivery core (budget, breakers, rate, spool
//! subdirectory), so one destination's trouble never reaches another's
//! events; a job names its sinks (`sink = "cw"`, `sinks = ["cw", "dd"]`).
//! The `[sink]` table — one sink, named after its kind — is the form every
//! config had before there were several, and stays valid: it is the default
//! sink of jobs that name none (as is the only `[sinks.<name>]` sink, when
//! there is one). Without either, events go to stdout.
//!
//! A sink table may override any `[delivery]` key for its sink; the
//! CloudWatch sink's own keys (region, endpoint, creation, retention…) are
//! read here too. Environment variables override the file: `CWPUB_SINK_KIND`
//! the kind of `[sink]`, `CWPUB_REGION` and `CWPUB_ENDPOINT_URL` every
//! CloudWatch sink's region and endpoint; the region falls back to the AWS
//! SDK's variables. The region and endpoint rules themselves are the
//! CloudWatch sink's ([`check_region`], [`check_endpoint_url`]), so a value
//! accepted here is accepted by the client too.
//!
//! Adding a key to a kind: read it in that kind's arm of [`read_settings`];
//! reading a key is what makes it allowed.

use std::path::PathBuf;
use std::sync::Arc;

use toml::{Table, Value};

use crate::delivery::DeliveryConfig;
use crate::env::{AWS_REGION_VARS, ENV_ENDPOINT_URL, ENV_REGION, ENV_SINK_KIND, Env, get};
use crate::event::Target;
use crate::sinks::cloudwatch::{
    self, AwsSettings, CloudWatchConfig, check_endpoint_url, check_region,
};
use crate::sinks::datadog::{DataDogConfig, key, site};

use super::delivery::{read_cloudwatch, read_core};
use super::error::Problems;
use super::job::JobConfig;
use super::reader::{Reader, Scope};

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// CloudWatch Logs (PutLogEvents) through a delivery core.
    CloudWatch,
    /// DataDog's logs and metrics intakes through a delivery core.
    DataDog,
    /// One message per line on stdout, exactly as it would be sent.
    Stdout,
}

impl SinkKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [SinkKind; 3] = [SinkKind::CloudWatch, SinkKind::DataDog, SinkKind::Stdout];

    /// The name used in config (`"cloudwatch"`, `"datadog"`, `"stdout"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::CloudWatch => "cloudwatch",
            SinkKind::DataDog => "datadog",
            SinkKind::Stdout => "stdout",
        }
    }

    fn parse(text: &str) -> Option<SinkKind> {
        SinkKind::ALL
            .into_iter()
            .find(|k| text.trim().eq_ignore_ascii_case(k.as_str()))
    }

    fn choices() -> String {
        let names: Vec<String> = SinkKind::ALL
            .iter()
            .map(|k| format!("\"{}\"", k.as_str()))
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

/// What a sink of each kind is set up with.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSettings {
    /// The stdout sink has no settings.
    Stdout,
    /// A CloudWatch Logs sink.
    CloudWatch(CloudWatchConfig),
    /// A DataDog sink.
    DataDog(DataDogConfig),
}

impl SinkSettings {
    /// The kind.
    pub fn kind(&self) -> SinkKind {
        match self {
            SinkSettings::Stdout => SinkKind::Stdout,
            SinkSettings::CloudWatch(_) => SinkKind::CloudWatch,
            SinkSettings::DataDog(_) => SinkKind::DataDog,
        }
    }
}

/// One sink, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Its name (`[sinks.<name>]`, or the kind of `[sink]`): in metrics,
    /// logs, and its spool subdirectory.
    pub name: Arc<str>,
    /// Its kind and kind-specific settings.
    pub settings: SinkSettings,
    /// Its delivery core: `[delivery]` with the sink table's overrides; the
    /// spool directory is the sink's own.
    pub delivery: DeliveryConfig,
}

impl SinkConfig {
    /// The kind.
    pub fn kind(&self) -> SinkKind {
        self.settings.kind()
    }

    /// Where `job`'s events go at this sink: for CloudWatch its log group
    /// and stream; other kinds address nothing per job.
    pub fn target(&self, job: &JobConfig) -> Arc<Target> {
        Arc::new(match (&self.settings, &job.log_group) {
            (SinkSettings::CloudWatch(_), Some(group)) => {
                cloudwatch::target(&self.name, group, &job.log_stream)
            }
            _ => Target::new(self.name.clone(), Vec::new()),
        })
    }

    /// The region and endpoint of a CloudWatch sink.
    pub fn aws(&self) -> Option<&AwsSettings> {
        match &self.settings {
            SinkSettings::CloudWatch(cw) => Some(&cw.aws),
            SinkSettings::Stdout | SinkSettings::DataDog(_) => None,
        }
    }

    /// The AWS region of a CloudWatch sink.
    pub fn region(&self) -> Option<&str> {
        self.aws().and_then(|a| a.region.as_deref())
    }
}

/// Every sink of a config.
#[derive(Debug, Clone, PartialEq)]
pub struct SinksConfig {
    /// The sinks, `[sink]` first, then `[sinks.<name>]` in file order.
    pub list: Vec<SinkConfig>,
    /// Where jobs that name no sink send their events.
    pub default: Option<Arc<str>>,
    /// The AWS region guests see as a host fact: the default sink's, else
    /// the first CloudWatch sink's, else the `[sink]` table's (whatever its
    /// kind), else the environment's.
    pub region: Option<String>,
}

impl SinksConfig {
    /// The sink named `name`.
    pub fn get(&self, name: &str) -> Option<&SinkConfig> {
        self.list.iter().find(|s| &*s.name == name)
    }

    /// The names, for messages: `"cw", "dd"`.
    pub fn names(&self) -> String {
        let names: Vec<String> = self
            .list
            .iter()
            .map(|s| format!("{:?}", &*s.name))
            .collect();
        names.join(", ")
    }
}

/// How an environment variable is named in messages.
fn env_key(name: &str) -> String {
    format!("environment variable {name}")
}

/// The region and the key it came from, in precedence order: `CWPUB_REGION`,
/// the sink table's `region` (`file`, read from `file_key`), `AWS_REGION`,
/// `AWS_DEFAULT_REGION`.
fn region_source<'a>(
    file: Option<&'a str>,
    file_key: &str,
    env: &'a Env,
) -> Option<(&'a str, String)> {
    if let Some(v) = get(env, ENV_REGION) {
        return Some((v, env_key(ENV_REGION)));
    }
    if let Some(v) = file {
        return Some((v, file_key.to_string()));
    }
    AWS_REGION_VARS
        .iter()
        .find_map(|n| get(env, n).map(|v| (v, env_key(n))))
}

/// The region the environment names (the precedence of a sink's region
/// without a file), checked: what `invoke` reports to guests, as `run`
/// would. `Err` is a full message naming the variable.
pub fn region_from_env(env: &Env) -> Result<Option<String>, String> {
    match region_source(None, "", env) {
        None => Ok(None),
        Some((value, key)) => {
            let value = value.trim();
            check_region(value)
                .map(|()| Some(value.to_string()))
                .map_err(|e| format!("{key} {value:?}: {e}"))
        }
    }
}

/// Checks a sink name: 1–64 characters from `A-Z a-z 0-9 . _ -` (it names a
/// directory and a metrics label).
pub fn check_sink_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err("a sink name must be 1 to 64 characters".to_string());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "character {c:?} is not allowed in a sink name; use only A-Z a-z 0-9 . _ -"
        )),
        None if name == "." || name == ".." => Err("a sink name cannot be . or ..".to_string()),
        None => Ok(()),
    }
}

/// Reads `[sink]` and `[sinks]` over the `[delivery]` defaults (`base`,
/// `base_cw`), with `env`'s overrides.
pub(super) fn read(
    sink: Option<&Table>,
    sinks: Option<&Table>,
    base: &DeliveryConfig,
    base_cw: &CloudWatchConfig,
    env: &Env,
    problems: &mut Problems,
) -> Option<SinksConfig> {
    let before = problems.len();
    let mut list = Vec::new();
    let empty = Table::new();
    let legacy = match (sink, sinks) {
        (Some(t), _) => Some(t),
        // Neither table: one stdout sink (or CWPUB_SINK_KIND's kind).
        (None, None) => Some(&empty),
        (None, Some(_)) => {
            if let Some(kind) = get(env, ENV_SINK_KIND) {
                problems.push(
                    None,
                    Some(&env_key(ENV_SINK_KIND)),
                    Some(kind.trim()),
                    "sets the kind of the [sink] table, and this config has none (only [sinks.<name>] tables); unset it",
                );
            }
            None
        }
    };
    let mut legacy_region = None;
    if let Some(t) = legacy
        && let Some((s, region)) = read_legacy(t, base, base_cw, env, problems)
    {
        list.push(s);
        legacy_region = region;
    }
    if let Some(t) = sinks {
        for (name, value) in t {
            if let Err(e) = check_sink_name(name) {
                problems.push(None, Some(&format!("sinks.{name}")), None, e);
                continue;
            }
            let Value::Table(table) = value else {
                problems.push(
                    None,
                    Some(&format!("sinks.{name}")),
                    None,
                    format!(
                        "expected a table [sinks.{name}] with kind = {}",
                        SinkKind::choices()
                    ),
                );
                continue;
            };
            if list.iter().any(|s: &SinkConfig| &*s.name == name.as_str()) {
                problems.push(
                    None,
                    Some(&format!("sinks.{name}")),
                    None,
                    format!("the [sink] table's sink is already named {name:?}; give this one another name"),
                );
                continue;
            }
            if let Some(s) = read_named(name, table, base, base_cw, env, problems) {
                list.push(s);
            }
        }
    }
    check_spool_dirs(&list, problems);
    if problems.len() != before {
        return None;
    }
    let default = match (legacy.is_some(), list.as_slice()) {
        (true, [first, ..]) => Some(first.name.clone()),
        (false, [only]) => Some(only.name.clone()),
        _ => None,
    };
    let region = default
        .as_ref()
        .and_then(|d| list.iter().find(|s| s.name == *d))
        .and_then(SinkConfig::region)
        .or_else(|| list.iter().find_map(SinkConfig::region))
        .map(str::to_owned)
        .or(legacy_region)
        .or_else(|| region_from_env(env).ok().flatten());
    Some(SinksConfig {
        list,
        default,
        region,
    })
}

/// `[sink]`: kind, region and endpoint; the sink is named after its kind.
/// Also returns the region it names (as a host fact, whatever the kind).
fn read_legacy(
    t: &Table,
    base: &DeliveryConfig,
    base_cw: &CloudWatchConfig,
    env: &Env,
    problems: &mut Problems,
) -> Option<(SinkConfig, Option<String>)> {
    let mut r = Reader::new(t, Scope::Section("sink".into()), problems);
    let kind_file = r.string("kind");
    let region_file = r.string("region");
    let endpoint_file = r.string("endpoint_url");
    r.finish();
    let (kind_text, kind_key) = match get(env, ENV_SINK_KIND) {
        Some(v) => (Some(v), env_key(ENV_SINK_KIND)),
        None => (kind_file, "sink.kind".to_string()),
    };
    let kind = match kind_text {
        None => SinkKind::Stdout,
        Some(k) => match SinkKind::parse(k) {
            Some(kind) => kind,
            None => {
                problems.push(
                    None,
                    Some(&kind_key),
                    Some(k.trim()),
                    format!("unknown sink kind; use {}", SinkKind::choices()),
                );
                return None;
            }
        },
    };
    // Region and endpoint are checked whatever the kind, as they always were.
    let aws = aws_settings(region_file, endpoint_file, "sink", env, problems)?;
    let region = aws.region.clone();
    let settings = match kind {
        SinkKind::Stdout => SinkSettings::Stdout,
        SinkKind::CloudWatch => {
            require_region(&aws, "sink", problems)?;
            SinkSettings::CloudWatch(CloudWatchConfig {
                aws,
                ..base_cw.clone()
            })
        }
        SinkKind::DataDog => {
            problems.push(
                None,
                Some(&kind_key),
                Some("datadog"),
                "a DataDog sink is declared as [sinks.<name>] with kind = \"datadog\" (its site and API key have no place in [sink])",
            );
            return None;
        }
    };
    let name: Arc<str> = kind.as_str().into();
    let sink = SinkConfig {
        delivery: own_spool(base.clone(), base, &name),
        name,
        settings,
    };
    Some((sink, region))
}

/// `[sinks.<name>]`: a kind and that kind's keys, and any `[delivery]` key.
fn read_named(
    name: &str,
    t: &Table,
    base: &DeliveryConfig,
    base_cw: &CloudWatchConfig,
    env: &Env,
    problems: &mut Problems,
) -> Option<SinkConfig> {
    let before = problems.len();
    let section = format!("sinks.{name}");
    let mut r = Reader::new(t, Scope::Section(section.clone().into()), problems);
    let kind_text = r.required_string("kind", "\"cloudwatch\"");
    let kind = kind_text.and_then(|k| {
        let kind = SinkKind::parse(k);
        if kind.is_none() {
            r.problem(
                "kind",
                Some(k.trim()),
                format!("unknown sink kind; use {}", SinkKind::choices()),
            );
        }
        kind
    });
    let mut core = base.clone();
    let settings = match kind {
        None => None,
        Some(SinkKind::Stdout) => Some(SinkSettings::Stdout),
        Some(SinkKind::CloudWatch) => {
            let region = r.string("region");
            let endpoint = r.string("endpoint_url");
            let mut cw = base_cw.clone();
            read_cloudwatch(&mut r, &mut cw);
            read_core(&mut r, &mut core);
            aws_settings(region, endpoint, &section, env, r.problems).and_then(|aws| {
                require_region(&aws, &section, r.problems)?;
                cw.aws = aws;
                Some(SinkSettings::CloudWatch(cw))
            })
        }
        Some(SinkKind::DataDog) => {
            let dd = read_datadog(t, &mut r);
            read_core(&mut r, &mut core);
            dd.map(SinkSettings::DataDog)
        }
    };
    r.finish();
    if problems.len() != before {
        return None;
    }
    let settings = settings?;
    let mut errs = core.validate().err().unwrap_or_default();
    if let SinkSettings::CloudWatch(cw) = &settings {
        errs.extend(cw.validate().err().unwrap_or_default());
    }
    for e in &errs {
        problems.push(None, None, None, format!("[{section}] {e}"));
    }
    if !errs.is_empty() {
        return None;
    }
    let name: Arc<str> = name.into();
    Some(SinkConfig {
        delivery: own_spool(core, base, &name),
        name,
        settings,
    })
}

/// A DataDog sink's keys. The API key itself is refused wherever it is
/// written, and no message shows a value that may be a key.
fn read_datadog(t: &Table, r: &mut Reader<'_, '_>) -> Option<DataDogConfig> {
    let before = r.problems.len();
    let mut dd = DataDogConfig::default();
    if let Some(s) = r.string("site") {
        match site::check_site(s) {
            Ok(canonical) => dd.site = canonical.to_string(),
            Err(e) => r.problem("site", Some(s.trim()), e),
        }
    }
    if let Some(url) = r.string("endpoint_url") {
        let url = url.trim();
        match site::check_endpoint_url(url) {
            Ok(()) => dd.endpoint_url = Some(url.to_string()),
            Err(e) => r.problem("endpoint_url", Some(url), e),
        }
    }
    let env_name = r.string("api_key_env");
    let file: Option<PathBuf> = r.value("api_key_file");
    match key::KeySource::from_config(env_name, file.as_deref()) {
        Ok(source) => dd.key = source,
        Err(e) => r.problem("api_key_env", None, e),
    }
    for name in key::LITERAL_KEY_NAMES {
        if t.contains_key(name) {
            if let Some(refusal) = key::literal_key_refusal(name) {
                r.problem(name, None, refusal);
            }
            r.allow(&[name]);
        }
    }
    dd.service = r.string("service").map(str::to_owned);
    dd.ddsource = r.string("ddsource").map(str::to_owned);
    dd.ddtags = r.string("ddtags").map(str::to_owned);
    if let Some(b) = r.bool("send_hostname") {
        dd.send_hostname = b;
    }
    (r.problems.len() == before).then_some(dd)
}

/// The sink's delivery settings with its own spool directory: the
/// `[delivery]` spool directory's subdirectory named after the sink, unless
/// the sink table names a directory of its own.
fn own_spool(mut core: DeliveryConfig, base: &DeliveryConfig, name: &str) -> DeliveryConfig {
    if core.spool_dir.is_some() && core.spool_dir == base.spool_dir {
        core.spool_dir = core.spool_dir.map(|d| d.join(name));
    }
    core
}

/// Two sinks may not share a spool directory (each locks its own).
fn check_spool_dirs(list: &[SinkConfig], problems: &mut Problems) {
    let mut seen: Vec<(&PathBuf, &str)> = Vec::new();
    for s in list {
        if let Some(dir) = &s.delivery.spool_dir {
            if let Some((_, other)) = seen.iter().find(|(d, _)| *d == dir) {
                problems.push(
                    None,
                    Some(&format!("sinks.{}.spool_dir", s.name)),
                    Some(&dir.display().to_string()),
                    format!("sink {other:?} uses the same spool directory; give each sink its own"),
                );
            }
            seen.push((dir, &s.name));
        }
    }
}

/// Region and endpoint of a sink table `section`, after the environment.
fn aws_settings(
    region_file: Option<&str>,
    endpoint_file: Option<&str>,
    section: &str,
    env: &Env,
    problems: &mut Problems,
) -> Option<AwsSettings> {
    let mut ok = true;
    let region = checked(
        region_source(region_file, &format!("{section}.region"), env),
        check_region,
        problems,
        &mut ok,
    );
    let endpoint_src = match get(env, ENV_ENDPOINT_URL) {
        Some(v) => Some((v, env_key(ENV_ENDPOINT_URL))),
        None => endpoint_file.map(|v| (v, format!("{section}.endpoint_url"))),
    };
    let endpoint_url = checked(endpoint_src, check_endpoint_url, problems, &mut ok);
    ok.then_some(AwsSettings {
        region,
        endpoint_url,
    })
}

fn require_region(aws: &AwsSettings, section: &str, problems: &mut Problems) -> Option<()> {
    if aws.region.is_some() {
        return Some(());
    }
    problems.push(
        None,
        Some(&format!("{section}.region")),
        None,
        format!(
            "the cloudwatch sink needs an AWS region; set [{section}] region = \"us-east-1\", or CWPUB_REGION or AWS_REGION in the environment"
        ),
    );
    None
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
