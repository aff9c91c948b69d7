//! [`Metrics`]: the one metrics registry. Every metric `/metrics` shows is
//! registered here by the stage that owns it and rendered in one pass, in the
//! Prometheus text format (0.0.4), by the official `prometheus-client` crate.
//!
//! Two ways to add a metric:
//!
//! * a value the stage updates as things happen: [`Metrics::counter`],
//!   [`Metrics::gauge`] or [`Metrics::float_gauge`] register it and hand back
//!   a cheap, cloneable handle (one atomic);
//! * a value read at scrape time from state the stage keeps anyway:
//!   [`Metrics::gauge_fn`] for one number, or [`Metrics::collector`] for
//!   whole families (one sample per job, per target…), written with
//!   [`encode_counters`] / [`encode_gauges`].
//!
//! Names carry the `cwpub_` prefix and base units (`_bytes`, `_seconds`);
//! counters are registered **without** `_total`, which the encoder appends.
//! Help texts are full sentences ending in a period.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::encoding::{EncodeGaugeValue, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;

/// A gauge holding a float (e.g. a rate in requests per second).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Content type of the rendered metrics (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The shared registry (cheap to clone; all clones are the same registry).
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn register(&self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        // The registry appends the period itself.
        let help = help.strip_suffix('.').unwrap_or(help);
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// Registers a counter named `name` (without `_total`) and returns its handle.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.register(name, help, counter.clone());
        counter
    }

    /// Registers an integer gauge and returns its handle.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.register(name, help, gauge.clone());
        gauge
    }

    /// Registers a float gauge and returns its handle.
    pub fn float_gauge(&self, name: &str, help: &str) -> FloatGauge {
        let gauge = FloatGauge::default();
        self.register(name, help, gauge.clone());
        gauge
    }

    /// Registers a gauge whose value `read` returns at each scrape.
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        self.collector(FnGauge {
            name,
            help,
            read: Box::new(read),
        });
    }

    /// Registers a collector, asked to write its families at each scrape.
    pub fn collector(&self, collector: impl Collector) {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .register_collector(Box::new(collector));
    }

    /// Every registered metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        // Writing to a String cannot fail; a collector error would only cut the output short.
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "rendering /metrics failed; the output is incomplete");
        }
        out
    }
}

/// Writes a counter family: `# HELP`/`# TYPE` for `name` (without `_total`),
/// then one sample per (labels, value).
pub fn encode_counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a gauge family: `# HELP`/`# TYPE`, then one sample per (labels, value).
pub fn encode_gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge read at scrape time.
struct FnGauge {
    name: &'static str,
    help: &'static str,
    read: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl fmt::Debug for FnGauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnGauge").field("name", &self.name).finish()
    }
}

impl Collector for FnGauge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let value = (self.read)();
        let metric = encoder.encode_descriptor(self.name, self.help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics_collectors_and_escapes_labels() {
        let m = Metrics::new();
        let c = m.counter("cwpub_test_events", "Events seen.");
        c.inc_by(3);
        m.gauge("cwpub_test_level", "A level.").set(-2);
        m.float_gauge("cwpub_test_rate", "A rate.").set(2.5);
        m.gauge_fn("cwpub_test_read", "Read at scrape.", || 7);
        #[derive(Debug)]
        struct Fam;
        impl Collector for Fam {
            fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
                encode_counters(
                    &mut e,
                    "cwpub_test_family",
                    "Per target.",
                    [
                        ([("target", "a\"b\\c\nd")], 1u64),
                        ([("target", "/g:s")], 5),
                    ],
                )
            }
        }
        m.collector(Fam);
        let expected = "\
# HELP cwpub_test_events_total Events seen.
# TYPE cwpub_test_events_total counter
cwpub_test_events_total 3
# HELP cwpub_test_level A level.
# TYPE cwpub_test_level gauge
cwpub_test_level -2
# HELP cwpub_test_rate A rate.
# TYPE cwpub_test_rate gauge
cwpub_test_rate 2.5
# HELP cwpub_test_read Read at scrape.
# TYPE cwpub_test_read gauge
cwpub_test_read 7
# HELP cwpub_test_family_total Per target.
# TYPE cwpub_test_family_total counter
cwpub_test_family_total{target=\"a\\\"b\\\\c\\nd\"} 1
cwpub_test_family_total{target=\"/g:s\"} 5
";
        assert_eq!(m.render(), expected);
    }
}
