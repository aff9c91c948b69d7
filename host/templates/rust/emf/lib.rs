//! {{project-name}}: a cwpub guest that publishes CloudWatch metrics as one
//! Embedded Metric Format (EMF) document per run.
//!
//! The host calls `validate_config` once when it loads the job and `run` on
//! every tick, each in a fresh sandboxed instance. README.md says how to
//! build, test and run it; the SDK's documentation (`cargo doc --open`) is the
//! manual.

use cwpub_guest::emf::{DimensionSet, MetricsLogger, Unit};
use cwpub_guest::{Config, Context, Error, Guest, Output, Result};

struct {{project-name | upper_camel_case}};

impl Guest for {{project-name | upper_camel_case}} {
    const NAME: &'static str = "{{project-name}}";
    /// Any other key in the job's config is refused with a clear message.
    const CONFIG_KEYS: &'static [&'static str] = &["namespace", "service"];

    fn validate_config(config: &Config) -> Result<()> {
        Settings::read(config).map(drop)
    }

    fn run(ctx: &Context) -> Result<Output> {
        let settings = Settings::read(&ctx.config)?;
        // Stamped with the run's time; refuses anything that would make invalid EMF.
        let mut metrics = ctx.metrics_logger(settings.namespace)?;
        compose(ctx, &settings, &mut metrics)?;
        cwpub_guest::debug!("run {} of job {}", ctx.sequence, ctx.job);
        Output::from_metrics(&mut metrics)
    }
}

cwpub_guest::export!({{project-name | upper_camel_case}});

/// The metrics published on every run. Edit me, then update cwpub-test.toml.
fn compose(ctx: &Context, settings: &Settings, metrics: &mut MetricsLogger) -> Result<()> {
    let service = settings.service.unwrap_or(&ctx.job);
    metrics.put_dimensions(DimensionSet::from_pairs([("Service", service)])?)?;
    metrics.put_property("host", ctx.host.hostname.as_str())?;
    metrics.put_metric("Heartbeat", 1.0, Unit::Count)?;
    let uptime = ctx.host.uptime.as_secs_f64();
    metrics.put_metric("UptimeSeconds", uptime, Unit::Seconds)?;
    let dropped = ctx.host.delivery.events_dropped as f64;
    metrics.put_metric("EventsDropped", dropped, Unit::Count)?;
    Ok(())
}

/// The namespace when the job's config sets none.
const DEFAULT_NAMESPACE: &str = "{{project-name}}";

/// The job's configuration, read in one place for the check and the run.
struct Settings<'a> {
    namespace: &'a str,
    service: Option<&'a str>,
}

impl<'a> Settings<'a> {
    fn read(config: &'a Config) -> Result<Self> {
        let namespace = config.optional("namespace")?.unwrap_or(DEFAULT_NAMESPACE);
        let service = config.optional("service")?;
        // Check the values now, so a bad one stops the host at start-up.
        MetricsLogger::new(namespace).map_err(|e| Error::config("namespace", e))?;
        if let Some(service) = service {
            DimensionSet::from_pairs([("Service", service)])
                .map_err(|e| Error::config("service", e))?;
        }
        Ok(Settings { namespace, service })
    }
}

/// Unit tests run the guest natively (`cargo test`) with a context you build.
#[cfg(test)]
mod tests {
    use super::{{project-name | upper_camel_case}} as TheGuest;
    use super::*;
    use cwpub_guest::emf::validate;

    #[test]
    fn one_valid_document_per_run() {
        let mut ctx = Context::new("metrics", "2026-01-01T00:00:00Z".parse().unwrap());
        ctx.config = Config::new("metrics", [("service", "orders")]);
        let output = ctx.run_for::<TheGuest>().unwrap();
        let document = &output.events[0].message;
        assert_eq!(validate(document, ctx.actual.millis() as i64), vec![]);
        assert!(document.contains(r#""Service":"orders""#), "{document}");
    }

    #[test]
    fn a_reserved_namespace_is_refused() {
        let config = Config::new("metrics", [("namespace", "AWS/EC2")]);
        let e = config.validate_for::<TheGuest>().unwrap_err();
        assert!(e.message().contains("namespace"), "{e}");
    }
}
