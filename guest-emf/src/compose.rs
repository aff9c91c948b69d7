//! Turns a run context and the job's [`Settings`] into EMF documents, using
//! only the `cwpub-emf` builder (which does every EMF check and split).

use cwpub_guest::emf::{DimensionSet, MetricsLogger};
use cwpub_guest::{Context, Error, Result};

use crate::config::{DimensionSource, FACT_METRICS, Settings};

/// A logger holding this run's metrics, dimensions and properties, stamped
/// with the run's actual time; flush it for the documents.
pub fn compose(ctx: &Context, settings: &Settings) -> Result<MetricsLogger> {
    let mut logger = ctx.metrics_logger(&settings.namespace)?;

    let mut dimensions = DimensionSet::new();
    for (name, source) in &settings.dimensions {
        let value = match source {
            DimensionSource::Service => settings.service.as_deref().unwrap_or(&ctx.job),
            DimensionSource::Host => &ctx.host.hostname,
            DimensionSource::Static(value) => value,
        };
        dimensions
            .insert(name.as_str(), value)
            .map_err(|e| match source {
                DimensionSource::Host => Error::fatal(format!(
                    "the host's hostname cannot be the `Host` dimension: {e}"
                )),
                _ => e.into(),
            })?;
    }
    logger.set_dimensions([dimensions], false)?;

    let host = &ctx.host;
    logger.put_property("event_id", format!("{}:{}", ctx.job, ctx.invocation_id))?;
    logger.put_property("sequence", ctx.sequence)?;
    logger.put_property("host_version", host.version.as_str())?;
    if let Some(region) = &host.region {
        logger.put_property("region", region.as_str())?;
    }

    let delivery = &host.delivery;
    // Counters are sent as f64 (CloudWatch stores doubles); exact below 2^53.
    let values = [
        1.0,
        host.uptime.as_secs_f64(),
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
        logger.put_metric(name, value, *unit)?;
    }
    for (name, value, unit) in &settings.metrics {
        logger.put_metric(name, *value, *unit)?;
    }
    Ok(logger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cwpub_guest::emf::{Unit, read_metrics, validate};
    use cwpub_guest::serde_json::{self, Value};
    use cwpub_guest::{Config, Output, Timestamp};
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000_000;

    fn context(config: &[(&str, &str)]) -> Context {
        let mut ctx = Context::new("emf", Timestamp::from_millis(NOW).unwrap());
        ctx.scheduled = Timestamp::from_millis(NOW - 5).unwrap();
        ctx.sequence = 7;
        ctx.invocation_id = "0b6f7c1e-8d1a-4c59-9a43-2f7e0c7d9a11".into();
        ctx.config = Config::new("emf", config.iter().copied());
        ctx.host.hostname = "ip-10-0-0-1".into();
        ctx.host.region = Some("eu-west-1".into());
        ctx.host.version = "0.1.0".into();
        ctx.host.uptime = Duration::from_millis(12_345);
        let d = &mut ctx.host.delivery;
        (d.events_delivered, d.bytes_delivered, d.events_dropped) = (100, 2048, 1);
        (d.events_pending, d.requests, d.retries, d.throttled) = (2, 3, 4, 5);
        (d.runs_succeeded, d.runs_failed) = (6, 7);
        ctx
    }

    /// Runs the guest on `ctx` as the host does; every document must validate.
    fn run(ctx: &Context) -> Output {
        let output = ctx.run_for::<crate::Emf>().unwrap();
        for event in &output.events {
            assert_eq!(
                validate(&event.message, NOW as i64),
                vec![],
                "{}",
                event.message
            );
        }
        output
    }

    fn documents(ctx: &Context) -> Vec<String> {
        run(ctx).events.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn default_document() {
        let documents = documents(&context(&[]));
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
        ctx.host.region = None;
        let documents = documents(&ctx);
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
        let mut ctx = context(&[]);
        let mut entries = vec![("dimensions".to_owned(), String::new())];
        entries.extend(names);
        ctx.config = Config::new("emf", entries);
        let documents = documents(&ctx);
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
        let output = run(&context(&[]));
        assert_eq!(output.events.len(), 1);
        for event in output.events {
            let doc: Value = serde_json::from_str(&event.message).unwrap();
            assert_eq!(doc["_aws"]["Timestamp"], event.timestamp.millis());
            assert_eq!(event.timestamp.millis(), NOW);
        }
    }

    #[test]
    fn bad_hostname_is_reported() {
        let mut ctx = context(&[]);
        ctx.host.hostname = String::new();
        let error = ctx.run_for::<crate::Emf>().unwrap_err();
        let message = error.message();
        assert!(
            matches!(error, Error::Fatal(_))
                && message.contains("hostname")
                && message.contains("Host"),
            "{message}"
        );
    }
}
