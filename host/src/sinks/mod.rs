//! The sinks: where validated events go. Each kind lives in its own folder —
//! [`cloudwatch`] and the others are adapters of the delivery core
//! ([`crate::delivery::Sink`]); [`stdout`] writes lines itself — and this
//! file only starts a configured sink ([`start`]) and gives the daemon one
//! handle for every kind ([`Output`]).

pub mod cloudwatch;
pub mod datadog;
pub mod stdout;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{SinkConfig, SinkSettings};
use crate::delivery::{Delivery, DrainReport, Health, Sink};
use crate::env::{Env, HostIdentity};
use crate::event::Submission;
use crate::ledger::Ledger;

pub use stdout::StdoutSink;

/// Prepares `[delivery] spool_dir` for the sinks' spools, which live in
/// its subdirectories: creates and locks it for the life of the returned
/// lock (one cwpub per spool directory, whatever its version), and moves the
/// segment files cwpub 0.1 wrote at its root — it had one CloudWatch sink
/// and no subdirectories — into the default sink's directory when that is a
/// CloudWatch sink, so they are replayed there. A subdirectory holding the
/// spool of a sink the config no longer has is left alone and logged: its
/// events go out once that sink is configured again. Blocking: call off
/// the async runtime.
pub fn prepare_spool_root(
    base: &std::path::Path,
    sinks: &crate::config::SinksConfig,
) -> std::io::Result<crate::delivery::spool::lock::DirLock> {
    std::fs::create_dir_all(base).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot create spool_dir {}: {e}", base.display()),
        )
    })?;
    let lock = crate::delivery::spool::lock::DirLock::acquire(base)?;
    let default = sinks.default.as_ref().and_then(|d| sinks.get(d));
    migrate_0_1_segments(base, default)?;
    warn_about_orphans(base, sinks);
    Ok(lock)
}

/// The segment files directly in `dir`.
fn segments_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    use crate::delivery::spool::segment;
    Ok(std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| segment::parse_name(&e.file_name().to_string_lossy()).is_some())
        .map(|e| e.path())
        .collect())
}

/// Logs each subdirectory of `base` that holds spool segments but is no
/// configured sink's spool directory.
fn warn_about_orphans(base: &std::path::Path, sinks: &crate::config::SinksConfig) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for dir in entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
    {
        let used = sinks
            .list
            .iter()
            .any(|s| s.delivery.spool_dir.as_deref() == Some(dir.as_path()));
        let held = segments_in(&dir).map_or(0, |s| s.len());
        if !used && held > 0 {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            tracing::warn!(
                dir = %dir.display(),
                segments = held,
                "spool: this directory holds the undelivered events of a sink named {name:?}, which the config does not have; configure that sink again to deliver them, or delete the directory to discard them"
            );
        }
    }
}

/// Moves the segments cwpub 0.1 left at the root of `base` into the
/// default CloudWatch sink's directory.
fn migrate_0_1_segments(
    base: &std::path::Path,
    default: Option<&SinkConfig>,
) -> std::io::Result<()> {
    let old = segments_in(base)?;
    if old.is_empty() {
        return Ok(());
    }
    let into = default
        .filter(|s| matches!(s.settings, SinkSettings::CloudWatch(_)))
        .and_then(|s| s.delivery.spool_dir.clone().map(|d| (s.name.clone(), d)));
    let Some((sink, dir)) = into else {
        tracing::warn!(
            spool_dir = %base.display(),
            segments = old.len(),
            "spool: segments written by cwpub 0.1 are at the root of spool_dir, and no default CloudWatch sink is configured to replay them; they are left in place"
        );
        return Ok(());
    };
    std::fs::create_dir_all(&dir)?;
    for path in &old {
        if let Some(name) = path.file_name() {
            // Ids are unique within the old spool; one already in the
            // sink's directory is left alone rather than overwritten.
            let target = dir.join(name);
            if target.exists() {
                tracing::warn!(segment = %path.display(), "spool: a segment of that name already exists in the sink's directory; the old one is left at the root");
                continue;
            }
            std::fs::rename(path, &target)?;
        }
    }
    tracing::info!(
        sink = %sink,
        segments = old.len(),
        into = %dir.display(),
        "spool: moved the segments an earlier cwpub left at the root of spool_dir into the sink's own directory, to be replayed"
    );
    Ok(())
}

/// One running sink, as the daemon uses it.
pub enum Output {
    /// Lines on stdout, written by the sink's own thread.
    Stdout(StdoutSink),
    /// A delivery core with its adapter (CloudWatch, …).
    Core(Delivery),
}

/// The adapter a sink set up as `cfg` sends through (none for stdout,
/// which writes lines itself): clients and keys made now, secrets read from
/// `env`, host facts from `host`. A reload builds the adapters of changed
/// sinks with this before it changes anything.
pub async fn adapter(
    cfg: &SinkConfig,
    ledger: &Ledger,
    env: &Env,
    host: &HostIdentity,
) -> anyhow::Result<Option<Arc<dyn Sink>>> {
    let named = |e: anyhow::Error| e.context(format!("sink {:?}", cfg.name));
    Ok(match &cfg.settings {
        SinkSettings::Stdout => None,
        SinkSettings::CloudWatch(cw) => Some(Arc::new(
            cloudwatch::adapter(&cfg.name, &cfg.delivery, cw, ledger)
                .await
                .map_err(named)?,
        )),
        SinkSettings::DataDog(dd) => Some(Arc::new(
            datadog::adapter(
                &cfg.name,
                &cfg.delivery,
                dd,
                env,
                Some(&host.hostname),
                ledger,
            )
            .await
            .map_err(named)?,
        )),
    })
}

/// Starts the sink `cfg`, counting into `ledger`; secrets it needs (a
/// DataDog API key) are read from `env` now, the host's name from `host`.
pub async fn start(
    cfg: &SinkConfig,
    ledger: &Ledger,
    env: &Env,
    host: &HostIdentity,
) -> anyhow::Result<Output> {
    Ok(match adapter(cfg, ledger, env, host).await? {
        None => Output::Stdout(StdoutSink::new(cfg.name.clone(), ledger.clone())),
        Some(sink) => Output::Core(
            Delivery::builder(cfg.name.clone(), sink, cfg.delivery.clone())
                .ledger(ledger.clone())
                .start()
                .await
                .with_context(|| format!("sink {:?}", cfg.name))?,
        ),
    })
}

impl Output {
    /// The sink's name.
    pub fn name(&self) -> &Arc<str> {
        match self {
            Output::Stdout(s) => s.name(),
            Output::Core(d) => d.name(),
        }
    }

    /// Hands over the events of one run; never blocks.
    pub fn submit(&self, submission: Submission) {
        match self {
            Output::Stdout(s) => s.submit(submission),
            Output::Core(d) => d.submit(submission),
        }
    }

    /// Events held and not yet delivered.
    pub fn pending_events(&self) -> u64 {
        match self {
            Output::Stdout(s) => s.pending_events(),
            Output::Core(d) => d.pending_events(),
        }
    }

    /// Open circuits and credential problems (always healthy for stdout).
    pub fn health(&self) -> Health {
        match self {
            Output::Stdout(s) => Health {
                buffered_events: s.pending_events(),
                ..Health::default()
            },
            Output::Core(d) => d.health(),
        }
    }

    /// Applies a reload's new settings of the same kind in place, keeping
    /// what the sink holds; `Err` names the settings only a restart can change.
    pub fn reconfigure(
        &self,
        adapter: Option<Arc<dyn Sink>>,
        cfg: &SinkConfig,
    ) -> Result<(), Vec<String>> {
        match (self, adapter) {
            (Output::Core(d), Some(sink)) => d.reconfigure(sink, &cfg.delivery),
            _ => Ok(()),
        }
    }

    /// Delivers what is held within `deadline` and reports what could not be.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        match self {
            Output::Stdout(s) => s.drain(deadline).await,
            Output::Core(d) => d.drain(deadline).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, SinkSettings};
    use crate::delivery::DeliveryConfig;
    use crate::delivery::spool::io::OsFs;
    use crate::delivery::spool::{Spool, SpoolOptions, SyncPolicy, frame};
    use crate::event::PayloadKind;

    /// A segment as cwpub 0.1 wrote it: its KEY frame names a log group and stream.
    fn old_segment(events: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = frame::header().to_vec();
        frame::encode_key_v0_1(&mut out, PayloadKind::JsonLog, "/cwpub/hb", "host-hb");
        for seq in events {
            frame::encode_event(
                &mut out,
                frame::EventRef {
                    seq,
                    timestamp_ms: 1_700_000_000_000,
                    job: "hb",
                    message: "{}",
                },
            );
        }
        out
    }

    #[test]
    fn segments_of_cwpub_0_1_move_to_the_default_cloudwatch_sink_and_replay_there() {
        let base = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            base.path().join("00000000000000000003.seg"),
            old_segment(0..4),
        )
        .expect("old segment");
        std::fs::write(base.path().join("notes.txt"), "mine").expect("foreign");
        let sink = SinkConfig {
            name: "cloudwatch".into(),
            settings: SinkSettings::CloudWatch(Default::default()),
            delivery: DeliveryConfig {
                spool_dir: Some(base.path().join("cloudwatch")),
                ..DeliveryConfig::default()
            },
        };
        let sinks = one_sink(sink);
        let lock = prepare_spool_root(base.path(), &sinks).expect("prepared");
        assert!(
            prepare_spool_root(base.path(), &sinks).is_err(),
            "one cwpub per spool directory"
        );
        assert!(
            base.path().join("notes.txt").exists(),
            "other files are left alone"
        );
        let (_spool, recovered) = Spool::open(
            SpoolOptions {
                sink: "cloudwatch".into(),
                dir: base.path().join("cloudwatch"),
                max_bytes: 64 << 20,
                sync: SyncPolicy::Batch,
            },
            &OsFs,
        )
        .expect("open");
        let [(key, events)] = recovered.streams.as_slice() else {
            panic!("one stream: {:?}", recovered.streams);
        };
        assert_eq!(
            *key.target,
            cloudwatch::target("cloudwatch", "/cwpub/hb", "host-hb")
        );
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        drop(lock);
    }

    #[test]
    fn without_a_default_cloudwatch_sink_old_segments_stay_where_they_are() {
        let base = tempfile::tempdir().expect("tempdir");
        let old = base.path().join("00000000000000000000.seg");
        std::fs::write(&old, old_segment(0..1)).expect("old segment");
        let stdout = SinkConfig {
            name: "stdout".into(),
            settings: SinkSettings::Stdout,
            delivery: DeliveryConfig::default(),
        };
        prepare_spool_root(base.path(), &one_sink(stdout)).expect("prepared");
        assert!(old.exists());
    }

    /// A config's sinks: `sink` alone, the default.
    fn one_sink(sink: SinkConfig) -> crate::config::SinksConfig {
        crate::config::SinksConfig {
            default: Some(sink.name.clone()),
            list: vec![sink],
            region: None,
        }
    }
}
