//! The DataDog sink: `json-log` events to the logs intake, `emf` documents
//! to the metrics intake as series. The adapter itself is [`sink`]; its
//! parts say where to send ([`site`]), with which key ([`key`]), how events
//! become log items ([`logs`]) and documents become metric series
//! ([`series`]), how a batch becomes a request within DataDog's limits
//! ([`encode`]), how one request is sent ([`service`]) and how its answer is
//! classified ([`retry`]); [`window`] is the rule for the time windows
//! DataDog accepts data in; [`config`] the sink's settings.

pub mod config;
pub mod encode;
pub mod key;
pub mod logs;
pub mod retry;
pub mod series;
pub mod service;
pub mod sink;
pub mod site;
pub mod window;

use std::sync::Arc;

use anyhow::Context as _;

use crate::delivery::{Delivery, DeliveryConfig};
use crate::env::Env;
use crate::http::{HttpClient, HttpConfig};
use crate::ledger::Ledger;

pub use config::DataDogConfig;
pub use sink::DataDog;

/// Starts a DataDog sink named `name`: its delivery core set up by `core`,
/// sending as `dd` says with the key read now (from `env` or its file),
/// host facts from `hostname`, counting into `ledger`.
pub async fn start(
    name: &str,
    core: DeliveryConfig,
    dd: &DataDogConfig,
    env: &Env,
    hostname: Option<&str>,
    ledger: Ledger,
) -> anyhow::Result<Delivery> {
    let endpoints = site::Endpoints::from_config(Some(&dd.site), dd.endpoint_url.as_deref())
        .map_err(|e| anyhow::anyhow!(e))?;
    let source = dd.key.clone();
    let env = env.clone();
    // Reading a key file is disk work: off the runtime's workers.
    let store = tokio::task::spawn_blocking(move || key::ApiKeyStore::load(source, &env))
        .await
        .context("reading the API key")?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let http = HttpClient::new(HttpConfig {
        request_timeout: core.request_timeout,
        connect_timeout: core.request_timeout.min(std::time::Duration::from_secs(5)),
        ..HttpConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let service = service::DatadogService::new(http, endpoints, Arc::new(store));
    let hostname = dd
        .send_hostname
        .then(|| hostname.map(str::to_owned))
        .flatten();
    let defaults = logs::LogDefaults {
        service: dd.service.clone(),
        ddsource: dd.ddsource.clone(),
        ddtags: dd.ddtags.clone(),
        hostname: hostname.clone(),
    };
    let sink = DataDog::new(name.into(), service, defaults, hostname, &ledger);
    Delivery::builder(name, Arc::new(sink), core)
        .ledger(ledger)
        .start()
        .await
}

/// What a DataDog sink set up as `dd` would send for a run's `events` of
/// `kind` at `now_ms`: each request body as sent before compression (log
/// items one per line; a series payload whole), and the events it would
/// drop, with why. `cwpub invoke --sink` prints this.
pub fn preview(
    kind: crate::event::PayloadKind,
    events: &[crate::event::LogEvent],
    dd: &DataDogConfig,
    hostname: Option<&str>,
    now_ms: i64,
) -> Preview {
    let hostname = dd.send_hostname.then_some(hostname).flatten();
    let plan = match kind {
        crate::event::PayloadKind::JsonLog => {
            let defaults = logs::LogDefaults {
                service: dd.service.clone(),
                ddsource: dd.ddsource.clone(),
                ddtags: dd.ddtags.clone(),
                hostname: hostname.map(str::to_owned),
            };
            encode::encode_logs(events, &defaults, now_ms, encode::LogLimits::DATADOG)
        }
        crate::event::PayloadKind::Emf => {
            encode::encode_series(events, hostname, now_ms, encode::SeriesLimits::DATADOG)
        }
    };
    let mut bodies = Vec::new();
    for p in &plan.payloads {
        let mut raw = Vec::new();
        // The encoder's own gzip output: reading it back cannot fail.
        let _ =
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&p.body[..]), &mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        match p.intake {
            // `[item,item]`: one item per line.
            site::Intake::Logs => match serde_json::from_str::<Vec<serde_json::Value>>(&text) {
                Ok(items) => bodies.extend(items.iter().map(|i| i.to_string())),
                Err(_) => bodies.push(text),
            },
            site::Intake::Series => bodies.push(text),
        }
    }
    Preview {
        bodies,
        skipped: plan
            .skipped
            .iter()
            .map(|s| {
                (
                    s.event,
                    DropReasonText(s.reason.to_string(), sink::drop_reason(&s.reason)),
                )
            })
            .collect(),
    }
}

/// An event a preview would drop: its reason as a sentence, and as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReasonText(pub String, pub crate::ledger::DropReason);

/// See [`preview`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// What would be sent, one line each.
    pub bodies: Vec<String>,
    /// Events (by index) that would be dropped, and why.
    pub skipped: Vec<(usize, DropReasonText)>,
}
