//! A CloudWatch sink's delivery core for tests: one config with both the
//! core's settings and the sink's own, started against a test endpoint.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use cwpub::delivery::{Delivery, DeliveryConfig};
use cwpub::event::Target;
use cwpub::ledger::Ledger;
use cwpub::sinks::cloudwatch::{self, CloudWatchConfig};

/// The name tests give their CloudWatch sink.
pub const SINK: &str = "cloudwatch";

/// A core's settings (reached through `Deref`) and the sink's (`cw`).
#[derive(Debug, Clone, Default)]
pub struct Cfg {
    /// The delivery core's settings.
    pub core: DeliveryConfig,
    /// The CloudWatch sink's own settings.
    pub cw: CloudWatchConfig,
}

impl From<DeliveryConfig> for Cfg {
    fn from(core: DeliveryConfig) -> Self {
        Cfg {
            core,
            cw: CloudWatchConfig::default(),
        }
    }
}

impl Deref for Cfg {
    type Target = DeliveryConfig;
    fn deref(&self) -> &DeliveryConfig {
        &self.core
    }
}

impl DerefMut for Cfg {
    fn deref_mut(&mut self) -> &mut DeliveryConfig {
        &mut self.core
    }
}

/// Starts the core, counting into a ledger of its own, its clients built
/// from `sdk`.
pub async fn start(cfg: impl Into<Cfg>, sdk: aws_config::SdkConfig) -> Delivery {
    try_start(cfg, sdk).await.expect("start delivery")
}

/// Starts the core, or says why it could not.
pub async fn try_start(
    cfg: impl Into<Cfg>,
    sdk: aws_config::SdkConfig,
) -> anyhow::Result<Delivery> {
    let cfg = cfg.into();
    let ledger = Ledger::new(cfg.core.drop_log_interval);
    cloudwatch::start(SINK, cfg.core, cfg.cw, &sdk, ledger).await
}

/// The test sink's target for a log group and stream.
pub fn target(group: &str, stream: &str) -> Arc<Target> {
    Arc::new(cloudwatch::target(SINK, group, stream))
}
