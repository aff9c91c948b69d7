//! Turns a run context and a parsed [`Config`] into EMF documents, using only
//! the `cwpub-emf` builder (which does every EMF check and split).

use cwpub_emf::{DimensionSet, MetricsLogger};

use crate::bindings::cwpub::publisher::types::{LogEvent, RunContext};
use crate::config::{Config, DimensionSource, FACT_METRICS};

/// Composes this run's EMF documents; errors say what failed and why.
pub fn compose(ctx: &RunContext, config: &Config) -> Result<Vec<String>, String> {
    let fail = |what: &str, e: cwpub_emf::EmfError| format!("{what}: {e}");
    let mut logger = MetricsLogger::new(&config.namespace).map_err(|e| fail("namespace", e))?;
    let timestamp = i64::try_from(ctx.actual_ms)
        .map_err(|_| format!("actual-ms {} is out of range", ctx.actual_ms))?;
    logger
        .set_timestamp(timestamp)
        .map_err(|e| fail("timestamp", e))?;

    let mut dimensions = DimensionSet::new();
    for (name, source) in &config.dimensions {
        let value = match source {
            DimensionSource::Service => config.service.as_deref().unwrap_or(&ctx.job_name),
            DimensionSource::Host => &ctx.facts.hostname,
            DimensionSource::Static(value) => value,
        };
        dimensions
            .insert(name.as_str(), value)
            .map_err(|e| match source {
                DimensionSource::Host => {
                    format!("the host's hostname cannot be the `Host` dimension: {e}")
                }
                _ => fail("dimensions", e),
            })?;
    }
    logger
        .set_dimensions([dimensions], false)
        .map_err(|e| fail("dimensions", e))?;

    let facts = &ctx.facts;
    logger
        .put_property(
            "event_id",
            format!("{}:{}", ctx.job_name, ctx.invocation_id),
        )
        .map_err(|e| fail("property", e))?;
    logger
        .put_property("sequence", ctx.sequence)
        .map_err(|e| fail("property", e))?;
    logger
        .put_property("host_version", facts.host_version.as_str())
        .map_err(|e| fail("property", e))?;
    if let Some(region) = &facts.region {
        logger
            .put_property("region", region.as_str())
            .map_err(|e| fail("property", e))?;
    }

    let delivery = &facts.delivery;
    // Counters are sent as f64 (CloudWatch stores doubles); exact below 2^53.
    let values = [
        1.0,
        facts.uptime_ms as f64 / 1000.0,
        delivery.events_delivered as f64,
        delivery.bytes_delivered as f64,
        delivery.events_dropped as f64,
        delivery.events_pending as f64,
        delivery.requests as f64,
        delivery.retries as f64,
        delivery.throttled as f64,
        delivery.runs_succeeded as f64,
        delivery.runs_failed as f64,
    ];
    for ((name, unit), value) in FACT_METRICS.iter().zip(values) {
        logger
            .put_metric(name, value, *unit)
            .map_err(|e| fail("metric", e))?;
    }
    for (name, value, unit) in &config.metrics {
        logger
            .put_metric(name, *value, *unit)
            .map_err(|e| fail("metric", e))?;
    }
    logger.flush().map_err(|e| fail("flush", e))
}

/// Wraps documents as log events stamped with the run's `actual-ms`, the same
/// value as each document's `_aws.Timestamp` (hard case 39).
pub fn to_events(ctx: &RunContext, documents: Vec<String>) -> Vec<LogEvent> {
    documents
        .into_iter()
        .map(|message| LogEvent {
            timestamp_ms: ctx.actual_ms,
            message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::cwpub::publisher::types::{DeliveryStats, HostFacts};
    use crate::config::parse;
    use cwpub_emf::{Unit, read_metrics, validate};
    use serde_json::Value;

    const NOW: u64 = 1_700_000_000_000;

    fn context(config: &[(&str, &str)]) -> RunContext {
        RunContext {
            job_name: "emf".into(),
            scheduled_ms: NOW - 5,
            actual_ms: NOW,
            sequence: 7,
            invocation_id: "0b6f7c1e-8d1a-4c59-9a43-2f7e0c7d9a11".into(),
            config: config
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            facts: HostFacts {
                hostname: "ip-10-0-0-1".into(),
                task_id: None,
                region: Some("eu-west-1".into()),
                host_version: "0.1.0".into(),
                uptime_ms: 12_345,
                delivery: DeliveryStats {
                    events_delivered: 100,
                    bytes_delivered: 2048,
                    events_dropped: 1,
                    events_pending: 2,
                    requests: 3,
                    retries: 4,
                    throttled: 5,
                    runs_succeeded: 6,
                    runs_failed: 7,
                },
            },
        }
    }

    fn run(ctx: &RunContext) -> Vec<String> {
        let config = parse(&ctx.job_name, &ctx.config).unwrap();
        let documents = compose(ctx, &config).unwrap();
        for document in &documents {
            assert_eq!(validate(document, NOW as i64), vec![], "{document}");
        }
        documents
    }

    #[test]
    fn default_document() {
        let documents = run(&context(&[]));
        assert_eq!(documents.len(), 1);
        let doc: Value = serde_json::from_str(&documents[0]).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], NOW);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "cwpub");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Service", "Host"]])
        );
        assert_eq!(doc["Service"], "emf");
        assert_eq!(doc["Host"], "ip-10-0-0-1");
        assert_eq!(doc["event_id"], "emf:0b6f7c1e-8d1a-4c59-9a43-2f7e0c7d9a11");
        assert_eq!(doc["sequence"], 7);
        assert_eq!(doc["host_version"], "0.1.0");
        assert_eq!(doc["region"], "eu-west-1");
        assert_eq!(doc["Heartbeat"], 1);
        assert_eq!(doc["UptimeSeconds"], 12.345);
        assert_eq!(doc["BytesDelivered"], 2048);
        assert_eq!(doc["RunsFailed"], 7);
        let metrics = read_metrics(&documents[0]).unwrap();
        assert_eq!(metrics.len(), 11);
        let unit_of = |n: &str| metrics.iter().find(|m| m.name == n).unwrap().unit;
        assert_eq!(unit_of("BytesDelivered"), Unit::Bytes);
        assert_eq!(unit_of("UptimeSeconds"), Unit::Seconds);
        assert_eq!(unit_of("EventsPending"), Unit::Count);
    }

    #[test]
    fn configured_document() {
        let mut ctx = context(&[
            ("namespace", "MyCo/App"),
            ("dimensions", "Service,Env"),
            ("service", "orders"),
            ("dimension.Env", "prod"),
            ("metric.QueueDepth", "42 Count"),
            ("metric.Ratio", "0.25"),
        ]);
        ctx.facts.region = None;
        let documents = run(&ctx);
        let doc: Value = serde_json::from_str(&documents[0]).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "MyCo/App");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Service", "Env"]])
        );
        assert_eq!(doc["Service"], "orders");
        assert_eq!(doc["Env"], "prod");
        assert_eq!(doc.get("Host"), None);
        assert_eq!(doc.get("region"), None);
        assert_eq!(doc["QueueDepth"], 42);
        let ratio = read_metrics(&documents[0])
            .unwrap()
            .into_iter()
            .find(|m| m.name == "Ratio")
            .unwrap();
        assert_eq!((ratio.unit, ratio.values), (Unit::None, vec![0.25]));
    }

    #[test]
    fn no_dimensions_and_many_metrics_split() {
        let names: Vec<(String, String)> = (0..120)
            .map(|i| (format!("metric.M{i:03}"), format!("{i} Count")))
            .collect();
        let mut ctx = context(&[("dimensions", "")]);
        ctx.config.extend(names);
        let documents = run(&ctx);
        assert_eq!(documents.len(), 2);
        let total: usize = documents
            .iter()
            .map(|d| read_metrics(d).unwrap().len())
            .sum();
        assert_eq!(total, 131);
        for document in &documents {
            let doc: Value = serde_json::from_str(document).unwrap();
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                serde_json::json!([[]])
            );
            assert_eq!(doc["event_id"], "emf:0b6f7c1e-8d1a-4c59-9a43-2f7e0c7d9a11");
        }
    }

    #[test]
    fn event_time_equals_the_metric_timestamp() {
        let ctx = context(&[]);
        let events = to_events(&ctx, run(&ctx));
        assert_eq!(events.len(), 1);
        for event in events {
            let doc: Value = serde_json::from_str(&event.message).unwrap();
            assert_eq!(doc["_aws"]["Timestamp"], event.timestamp_ms);
        }
    }

    #[test]
    fn bad_hostname_is_reported() {
        let mut ctx = context(&[]);
        ctx.facts.hostname = String::new();
        let config = parse(&ctx.job_name, &ctx.config).unwrap();
        let error = compose(&ctx, &config).unwrap_err();
        assert!(
            error.contains("hostname") && error.contains("Host"),
            "{error}"
        );
    }
}
