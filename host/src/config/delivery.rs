//! `[delivery]`: every sink's delivery-core settings ([`DeliveryConfig`],
//! whose `Default` gives every default), plus the CloudWatch sink's own
//! settings ([`CloudWatchConfig`]) that have always been accepted here and
//! apply to every CloudWatch sink. A `[sinks.<name>]` table may override any
//! of them for its sink ([`read_core`], [`read_cloudwatch`]). The ranges and
//! cross-key rules live in the two `validate` functions; problems read
//! `[delivery] key = value: …`.
//!
//! Adding a key: add the field (with its default and its rule in
//! `validate`) to [`DeliveryConfig`] in `delivery/config.rs` (or to
//! [`CloudWatchConfig`]), then add the field's name to the list in
//! [`read_core`] (or [`read_cloudwatch`]) below — the key is the field's
//! name, so they cannot drift. A field of a type not read yet needs a
//! [`FromToml`] impl (see [`OverflowPolicy`] below; plain numbers, booleans,
//! strings, paths, durations, `Option`s and string tables are read already).

use toml::Table;

use crate::delivery::{DeliveryConfig, OverflowPolicy, SyncPolicy};
use crate::sinks::cloudwatch::CloudWatchConfig;

use super::error::Problems;
use super::reader::{FromToml, Reader, Scope};

/// Reads each listed field of `cfg` from the key of the same name, if present.
macro_rules! read_fields {
    ($r:expr, $cfg:expr; $($field:ident),* $(,)?) => {
        $(
            if let Some(v) = $r.value(stringify!($field)) {
                $cfg.$field = v;
            }
        )*
    };
}

/// Reads the delivery core's keys of a table into `cfg` (keys absent keep
/// `cfg`'s values).
pub(super) fn read_core(r: &mut Reader<'_, '_>, cfg: &mut DeliveryConfig) {
    read_fields!(r, cfg;
        max_batch_delay,
        buffer_budget_bytes,
        overflow,
        max_in_flight,
        put_rate_per_sec,
        request_timeout,
        backoff_base,
        backoff_cap,
        credential_backoff_base,
        credential_backoff_cap,
        circuit_failure_threshold,
        circuit_open_max,
        drop_log_interval,
        spool_dir,
        spool_max_bytes,
        spool_sync,
    );
}

/// Reads the CloudWatch sink's own keys of a table into `cfg`.
pub(super) fn read_cloudwatch(r: &mut Reader<'_, '_>, cfg: &mut CloudWatchConfig) {
    read_fields!(r, cfg;
        max_event_bytes,
        create_rate_per_sec,
        create_log_groups,
        create_log_streams,
        retention_days,
        tags,
        kms_key_id,
        emf_header,
        drop_older_than,
        drop_newer_than,
    );
}

/// Reads `[delivery]` (`t`, empty when absent): every key's type first, then,
/// when all are well typed, every rule of both `validate` functions.
pub(super) fn read(
    t: &Table,
    problems: &mut Problems,
) -> Option<(DeliveryConfig, CloudWatchConfig)> {
    let before = problems.len();
    let mut core = DeliveryConfig::default();
    let mut cw = CloudWatchConfig::default();
    let mut r = Reader::new(t, Scope::Bracketed("delivery"), problems);
    read_core(&mut r, &mut core);
    read_cloudwatch(&mut r, &mut cw);
    r.finish();
    if problems.len() != before {
        return None;
    }
    let errs: Vec<String> = [core.validate(), cw.validate()]
        .into_iter()
        .filter_map(Result::err)
        .flatten()
        .collect();
    for e in &errs {
        problems.push(None, None, None, format!("[delivery] {e}"));
    }
    errs.is_empty().then_some((core, cw))
}

impl FromToml for OverflowPolicy {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        let all = [OverflowPolicy::DropOldest, OverflowPolicy::DropNewest];
        choice(r, key, &all, OverflowPolicy::as_str, "overflow policy")
    }
}

impl FromToml for SyncPolicy {
    fn read(r: &mut Reader<'_, '_>, key: &'static str) -> Option<Self> {
        let all = [SyncPolicy::Batch, SyncPolicy::Always, SyncPolicy::Never];
        choice(r, key, &all, SyncPolicy::as_str, "sync policy")
    }
}

/// One of `all`, written as its `name`; anything else is a problem listing them.
fn choice<T: Copy>(
    r: &mut Reader<'_, '_>,
    key: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Option<T> {
    let text = r.string(key)?;
    let found = all.iter().copied().find(|v| name(*v) == text.trim());
    if found.is_none() {
        let names: Vec<String> = all.iter().map(|v| format!("\"{}\"", name(*v))).collect();
        r.problem(
            key,
            Some(text),
            format!("unknown {what}; use {}", names.join(" or ")),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::reader::parse_toml;

    fn read_text(text: &str) -> Result<(DeliveryConfig, CloudWatchConfig), Vec<String>> {
        let t = parse_toml(text).expect("toml");
        let mut p = Problems::new("f.toml");
        match read(&t, &mut p) {
            Some(cfg) if p.is_empty() => Ok(cfg),
            _ => Err(p.into_error().lines()),
        }
    }

    #[test]
    fn reads_durations_policies_and_tags_and_keeps_defaults() {
        let (cfg, cw) = read_text(
            "max_batch_delay = \"250ms\"\noverflow = \"drop_newest\"\nretention_days = 30\nbackoff_cap = 60000\nspool_dir = \"/var/spool/cwpub\"\nspool_sync = \"always\"\n[tags]\nteam = \"obs\"\n",
        )
        .expect("valid");
        assert_eq!(cfg.spool_dir, Some("/var/spool/cwpub".into()));
        assert_eq!(cfg.spool_sync, SyncPolicy::Always);
        assert_eq!(cfg.max_batch_delay, Duration::from_millis(250));
        assert_eq!(cfg.overflow, OverflowPolicy::DropNewest);
        assert_eq!(cw.retention_days, Some(30));
        assert_eq!(cfg.backoff_cap, Duration::from_secs(60));
        assert_eq!(cw.tags.get("team").map(String::as_str), Some("obs"));
        assert_eq!(cfg.max_in_flight, 8, "unset fields keep defaults");
        assert_eq!(
            read_text("").expect("empty"),
            (DeliveryConfig::default(), CloudWatchConfig::default())
        );
    }

    #[test]
    fn every_type_problem_names_its_key() {
        let errs = read_text(
            "max_in_flight = \"eight\"\noverflow = \"drop_middle\"\nemf_header = 1\nrequest_timeout = \"soon\"\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        // In the order the section reads its keys.
        assert_eq!(
            errs[0],
            "f.toml: [delivery] overflow = \"drop_middle\": unknown overflow policy; use \"drop_oldest\" or \"drop_newest\""
        );
        assert_eq!(
            errs[1],
            "f.toml: [delivery] max_in_flight: expected an integer, found a string (\"eight\")"
        );
        assert!(
            errs[2].starts_with("f.toml: [delivery] request_timeout = \"soon\": invalid duration")
        );
        assert!(errs[3].starts_with("f.toml: [delivery] emf_header: expected true or false"));
    }

    #[test]
    fn rules_run_once_every_key_is_well_typed() {
        let errs = read_text("max_in_flight = 0\nretention = 3\n").unwrap_err();
        assert_eq!(errs.len(), 1, "unknown key first: {errs:#?}");
        assert!(errs[0].starts_with(
            "f.toml: [delivery] unknown field `retention`, expected one of `max_batch_delay`"
        ));
        assert!(
            errs[0].ends_with("(did you mean `retention_days`?)"),
            "{}",
            errs[0]
        );
        let errs = read_text("max_in_flight = 0\n").unwrap_err();
        assert_eq!(
            errs,
            ["f.toml: [delivery] max_in_flight = 0: must be between 1 and 1000"]
        );
    }
}
