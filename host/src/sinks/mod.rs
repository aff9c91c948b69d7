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
