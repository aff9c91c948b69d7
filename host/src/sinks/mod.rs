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
use crate::delivery::{Delivery, DrainReport, Health};
use crate::env::{Env, HostIdentity};
use crate::event::Submission;
use crate::ledger::Ledger;

pub use stdout::StdoutSink;

/// Prepares `[delivery] spool_dir` for the sinks' spools, which live in
/// its subdirectories: creates and locks it for the life of the returned
/// lock (one cwpub per spool directory, whatever its version), and moves the
/// segment files cwpub 0.1 wrote at its root — it had one CloudWatch sink
/// and no subdirectories — into the default sink's directory when that is a
/// CloudWatch sink, so they are replayed there. Blocking: call off the
/// async runtime.
pub fn prepare_spool_root(
    base: &std::path::Path,
    default: Option<&SinkConfig>,
) -> std::io::Result<crate::delivery::spool::lock::DirLock> {
    use crate::delivery::spool::segment;
    std::fs::create_dir_all(base).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot create spool_dir {}: {e}", base.display()),
        )
    })?;
    let lock = crate::delivery::spool::lock::DirLock::acquire(base)?;
    let old: Vec<std::path::PathBuf> = std::fs::read_dir(base)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| segment::parse_name(&e.file_name().to_string_lossy()).is_some())
        .map(|e| e.path())
        .collect();
    if old.is_empty() {
        return Ok(lock);
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
        return Ok(lock);
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
    Ok(lock)
}

/// One running sink, as the daemon uses it.
pub enum Output {
    /// Lines on stdout, written by the sink's own thread.
    Stdout(StdoutSink),
    /// A delivery core with its adapter (CloudWatch, …).
    Core(Delivery),
}

/// Starts the sink `cfg`, counting into `ledger`; secrets it needs (a
/// DataDog API key) are read from `env` now, the host's name from `host`.
pub async fn start(
    cfg: &SinkConfig,
    ledger: &Ledger,
    env: &Env,
    host: &HostIdentity,
) -> anyhow::Result<Output> {
    Ok(match &cfg.settings {
        SinkSettings::Stdout => Output::Stdout(StdoutSink::new(cfg.name.clone(), ledger.clone())),
        SinkSettings::CloudWatch(cw) => {
            let client = cloudwatch::client_from_settings(&cw.aws, cfg.delivery.request_timeout)
                .await
                .with_context(|| {
                    format!("sink {:?}: setting up the CloudWatch Logs client", cfg.name)
                })?;
            cloudwatch::client::warn_without_credentials(&cfg.name).await;
            let core = cloudwatch::start(
                &cfg.name,
                cfg.delivery.clone(),
                cw.clone(),
                client,
                ledger.clone(),
            )
            .await
            .with_context(|| format!("sink {:?}", cfg.name))?;
            Output::Core(core)
        }
        SinkSettings::DataDog(dd) => {
            let core = datadog::start(
                &cfg.name,
                cfg.delivery.clone(),
                dd,
                env,
                Some(&host.hostname),
                ledger.clone(),
            )
            .await
            .with_context(|| format!("sink {:?}", cfg.name))?;
            Output::Core(core)
        }
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
        let lock = prepare_spool_root(base.path(), Some(&sink)).expect("prepared");
        assert!(
            prepare_spool_root(base.path(), Some(&sink)).is_err(),
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
        prepare_spool_root(base.path(), Some(&stdout)).expect("prepared");
        assert!(old.exists());
    }
}
