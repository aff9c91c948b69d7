//! The CloudWatch Logs sink: an adapter of the delivery core that sends
//! batches with `PutLogEvents`.
//!
//! * [`config`] — [`CloudWatchConfig`]: region, endpoint, creation, per-event rules.
//! * [`limits`] — PutLogEvents' limits and the log group/stream name rules.
//! * [`client`] — the AWS configuration from the default credential chain.
//! * [`put_log_events`] — the PutLogEvents call: SigV4 over the SDK's HTTP
//!   client, without the SDK's per-call pipeline.
//! * `service` — one batch as one PutLogEvents request, and its answer.
//! * `retry` — error codes and SDK errors into the core's classes.
//! * `target` — lazy creation of missing streams and groups (the SDK's client).
//!
//! A job's target at a CloudWatch sink is its log group and stream
//! ([`target`]); batches go per stream and payload kind, so only EMF
//! requests carry `x-amzn-logs-format: json/emf`. Missing streams (and
//! groups) are created when PutLogEvents reports them missing, never looked
//! up in advance.

pub mod client;
pub mod config;
pub mod limits;
pub mod put_log_events;
pub(crate) mod retry;
mod service;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::delivery::{
    Answer, BatchLimits, Delivery, DeliveryConfig, ErrorClass, EventRules, Failure, Item, Sink,
};
use crate::event::{PayloadKind, Target};
use crate::ledger::Ledger;

pub use client::{check_endpoint_url, check_region, sdk_config_from_settings};
pub use config::{AwsSettings, CloudWatchConfig, RETENTION_DAYS};

/// The label of a CloudWatch target naming its log group.
pub const LOG_GROUP: &str = "log_group";
/// The label of a CloudWatch target naming its log stream.
pub const LOG_STREAM: &str = "log_stream";

/// The target of `sink` for one log group and stream.
pub fn target(sink: &str, group: &str, stream: &str) -> Target {
    Target::new(
        sink,
        vec![
            (LOG_GROUP.to_string(), group.to_string()),
            (LOG_STREAM.to_string(), stream.to_string()),
        ],
    )
}

/// The log group and stream a target names.
fn names(target: &Target) -> Result<(&str, &str), Failure> {
    match (target.get(LOG_GROUP), target.get(LOG_STREAM)) {
        (Some(g), Some(s)) => Ok((g, s)),
        _ => Err(Failure::new(
            ErrorClass::Permanent,
            "not a CloudWatch target",
            &format!("{target} names no log group and stream"),
        )),
    }
}

/// Starts a CloudWatch sink named `name`: its delivery core set up by
/// `core`, its clients built from `sdk` as `cw` says, counting into `ledger`.
pub async fn start(
    name: &str,
    core: DeliveryConfig,
    cw: CloudWatchConfig,
    sdk: &SdkConfig,
    ledger: Ledger,
) -> anyhow::Result<Delivery> {
    let sink = CloudWatch::new(sdk, cw, &core, ledger.clone()).await?;
    Delivery::builder(name, Arc::new(sink), core)
        .ledger(ledger)
        .start()
        .await
}

/// The adapter of a CloudWatch sink set up as `cw`, its clients from the
/// default credential chain, requests timed by `core`.
pub async fn adapter(
    name: &str,
    core: &DeliveryConfig,
    cw: &CloudWatchConfig,
    ledger: &Ledger,
) -> anyhow::Result<CloudWatch> {
    let sdk = sdk_config_from_settings(&cw.aws, core.request_timeout)
        .await
        .map_err(|e| anyhow::anyhow!("setting up the CloudWatch Logs client: {e}"))?;
    client::warn_without_credentials(name).await;
    CloudWatch::new(&sdk, cw.clone(), core, ledger.clone()).await
}

/// The CloudWatch Logs sink.
pub struct CloudWatch {
    /// Sends the batches.
    api: put_log_events::Client,
    cfg: Arc<CloudWatchConfig>,
    targets: target::Targets,
}

impl CloudWatch {
    /// A sink whose clients come from `sdk` (the SDK's retries switched off
    /// and every request given up after `core.request_timeout`, whatever
    /// `sdk` says), counting creations into `ledger`. Fails when `sdk` names
    /// no region or no endpoint can be resolved for it.
    pub async fn new(
        sdk: &SdkConfig,
        cfg: CloudWatchConfig,
        core: &DeliveryConfig,
        ledger: Ledger,
    ) -> anyhow::Result<CloudWatch> {
        let api = put_log_events::Client::new(sdk, core.request_timeout).await?;
        let conf = aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
            .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
            .timeout_config(client::timeout_config(core.request_timeout))
            .build();
        let cfg = Arc::new(cfg);
        let targets = target::Targets::new(
            aws_sdk_cloudwatchlogs::Client::from_conf(conf),
            cfg.clone(),
            (core.backoff_base, core.backoff_cap),
            ledger,
        );
        Ok(CloudWatch { api, cfg, targets })
    }
}

#[async_trait]
impl Sink for CloudWatch {
    fn service(&self) -> &'static str {
        "CloudWatch Logs"
    }

    fn limits(&self, _kind: PayloadKind) -> BatchLimits {
        BatchLimits {
            max_events: limits::MAX_BATCH_EVENTS,
            max_bytes: limits::MAX_BATCH_BYTES,
            per_event_bytes: limits::EVENT_OVERHEAD,
            max_span_ms: Some(limits::MAX_SPAN_MS),
        }
    }

    fn rules(&self, _kind: PayloadKind) -> EventRules {
        EventRules {
            max_message_bytes: self.cfg.max_event_bytes,
            max_age: self.cfg.drop_older_than,
            max_ahead: self.cfg.drop_newer_than,
        }
    }

    fn check_target(&self, target: &Target) -> Result<(), String> {
        limits::check_target(target)
    }

    async fn send(&self, target: &Target, kind: PayloadKind, batch: &[Item]) -> Answer {
        match names(target) {
            Ok((group, stream)) => {
                service::put_log_events(&self.api, group, stream, kind, self.cfg.emf_header, batch)
                    .await
            }
            Err(f) => Answer::Failed(f),
        }
    }

    fn can_create(&self) -> bool {
        self.cfg.create_log_streams
    }

    async fn create(&self, target: &Target) -> Result<(), Failure> {
        self.targets.ensure(target, Instant::now()).await
    }

    fn accepted(&self, target: &Target) {
        self.targets.mark_known(target);
    }

    fn credentials_hint(&self) -> &'static str {
        "check the role or keys and logs:PutLogEvents, see docs/iam.md"
    }
}

/// How long the start-up credentials check may take (IMDS probes time out in about a second each).
pub const CREDENTIALS_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
