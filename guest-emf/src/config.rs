//! The job configuration of `builtin:emf`, read and checked once so that the
//! configuration check and `run` agree. Every error names the key and the fix;
//! unknown and repeated keys are refused by the SDK against
//! [`CONFIG_KEYS`](crate::Emf).

use cwpub_guest::emf::Unit;
use cwpub_guest::emf::limits::MAX_DIMENSIONS_PER_SET;
use cwpub_guest::emf::names::{
    dimension_name_problems, dimension_value_problems, metric_name_problems, namespace_problems,
    value_problem,
};
use cwpub_guest::{Config, Error, Result};

/// The namespace used when `namespace` is not configured.
pub const DEFAULT_NAMESPACE: &str = "cwpub";

/// The dimension names used when `dimensions` is not configured.
pub const DEFAULT_DIMENSIONS: &str = "Service,Host";

/// Metrics the guest derives from the host facts, with their units.
pub const FACT_METRICS: [(&str, Unit); 11] = [
    ("Heartbeat", Unit::Count),
    ("UptimeSeconds", Unit::Seconds),
    ("EventsDelivered", Unit::Count),
    ("BytesDelivered", Unit::Bytes),
    ("EventsDropped", Unit::Count),
    ("EventsPending", Unit::Count),
    ("Requests", Unit::Count),
    ("Retries", Unit::Count),
    ("Throttled", Unit::Count),
    ("RunsSucceeded", Unit::Count),
    ("RunsFailed", Unit::Count),
];

/// Root properties every document carries.
pub const PROPERTIES: [&str; 4] = ["event_id", "sequence", "host_version", "region"];

/// Where a dimension's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimensionSource {
    /// `Service`: the `service` key, else the job name.
    Service,
    /// `Host`: the host's hostname fact.
    Host,
    /// Any other name: its `dimension.<Name>` value.
    Static(String),
}

/// A read and checked job configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The EMF namespace.
    pub namespace: String,
    /// Dimension names, in configured order, with their value sources.
    pub dimensions: Vec<(String, DimensionSource)>,
    /// The `service` value, if configured.
    pub service: Option<String>,
    /// Static metrics from `metric.<Name>`: name, value, unit.
    pub metrics: Vec<(String, f64, Unit)>,
}

impl Settings {
    /// Reads and checks `config`.
    pub fn read(config: &Config) -> Result<Settings> {
        let namespace = config.get("namespace").unwrap_or(DEFAULT_NAMESPACE);
        if let Some(problem) = namespace_problems(namespace).into_iter().next() {
            return Err(Error::config(
                "namespace",
                format!("{namespace:?} {problem}; use e.g. \"cwpub\" or \"MyCompany/MyApp\""),
            ));
        }

        let names = dimension_names(config.get("dimensions").unwrap_or(DEFAULT_DIMENSIONS))?;
        let service = config.get("service").map(str::to_owned);
        let job = config.job();
        if let Some(service) = &service {
            if !names.iter().any(|n| n == "Service") {
                return Err(Error::config(
                    "service",
                    "sets the `Service` dimension, which is not listed in `dimensions`; add it there or remove `service`",
                ));
            }
            check_dimension_value("service", service)?;
        } else if names.iter().any(|n| n == "Service")
            && let Some(problem) = dimension_value_problems(job).into_iter().next()
        {
            return Err(Error::config(
                "service",
                format!(
                    "is not set, and the job name {job:?} {problem}, so it cannot be the `Service` dimension; set `service`"
                ),
            ));
        }

        let mut dimensions = Vec::with_capacity(names.len());
        for name in names {
            let source = match name.as_str() {
                "Service" => DimensionSource::Service,
                "Host" => DimensionSource::Host,
                _ => {
                    let key = format!("dimension.{name}");
                    let value = config.get(&key).ok_or_else(|| {
                        Error::config(&key, format!("is missing: dimension `{name}` is listed in `dimensions` and needs a value, e.g. `{key} = \"prod\"`"))
                    })?;
                    check_dimension_value(&key, value)?;
                    DimensionSource::Static(value.to_owned())
                }
            };
            dimensions.push((name, source));
        }

        for (name, _) in config.prefixed("dimension.") {
            let key = format!("dimension.{name}");
            match dimensions.iter().find(|(n, _)| n == name) {
                Some((_, DimensionSource::Static(_))) => {}
                Some((_, DimensionSource::Service)) => {
                    return Err(Error::config(
                        &key,
                        "the `Service` dimension is set with `service`; rename the key to `service`",
                    ));
                }
                Some((_, DimensionSource::Host)) => {
                    return Err(Error::config(
                        &key,
                        "the `Host` dimension always holds the host's hostname; remove this key",
                    ));
                }
                None => {
                    return Err(Error::config(
                        &key,
                        format!(
                            "dimension `{name}` is not listed in `dimensions`; add it there or remove this key"
                        ),
                    ));
                }
            }
        }

        let mut metrics = Vec::new();
        for (name, value) in config.prefixed("metric.") {
            let key = format!("metric.{name}");
            let (number, unit) = metric(&key, name, value)?;
            if dimensions.iter().any(|(n, _)| n == name) {
                return Err(Error::config(
                    &key,
                    format!("`{name}` is already a dimension; choose another metric name"),
                ));
            }
            metrics.push((name.to_owned(), number, unit));
        }
        Ok(Settings {
            namespace: namespace.to_owned(),
            dimensions,
            service,
            metrics,
        })
    }
}

/// Splits and checks the comma-separated `dimensions` value.
fn dimension_names(value: &str) -> Result<Vec<String>> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |why: String| Error::config("dimensions", why);
    let mut names: Vec<String> = Vec::new();
    for raw in value.split(',') {
        let name = raw.trim();
        if name.is_empty() {
            return Err(invalid(format!(
                "{value:?} has an empty name; separate names with single commas"
            )));
        }
        if let Some(problem) = dimension_name_problems(name).into_iter().next() {
            return Err(invalid(format!("dimension name {name:?} {problem}")));
        }
        if names.iter().any(|n| n == name) {
            return Err(invalid(format!(
                "lists {name:?} twice; list each dimension once"
            )));
        }
        if FACT_METRICS.iter().any(|(m, _)| *m == name) || PROPERTIES.contains(&name) {
            return Err(invalid(format!(
                "{name:?} is a metric or property of every document; choose another dimension name"
            )));
        }
        names.push(name.to_owned());
    }
    if names.len() > MAX_DIMENSIONS_PER_SET {
        return Err(invalid(format!(
            "lists {} dimensions; CloudWatch allows at most {MAX_DIMENSIONS_PER_SET} per dimension set",
            names.len()
        )));
    }
    Ok(names)
}

/// Checks one dimension value configured under `key`.
fn check_dimension_value(key: &str, value: &str) -> Result<()> {
    match dimension_value_problems(value).into_iter().next() {
        Some(problem) => Err(Error::config(
            key,
            format!("{value:?} {problem}; use 1-1024 printable ASCII characters"),
        )),
        None => Ok(()),
    }
}

/// Reads `metric.<Name> = "<value> [<Unit>]"`.
fn metric(key: &str, name: &str, value: &str) -> Result<(f64, Unit)> {
    let invalid = |why: String| Error::config(key, why);
    if let Some(problem) = metric_name_problems(name).into_iter().next() {
        return Err(invalid(format!("metric name {name:?} {problem}")));
    }
    if FACT_METRICS.iter().any(|(m, _)| *m == name) {
        return Err(invalid(format!(
            "`{name}` is a built-in metric; choose another name"
        )));
    }
    if PROPERTIES.contains(&name) {
        return Err(invalid(format!(
            "`{name}` is a property of every document; choose another name"
        )));
    }
    let mut parts = value.split_whitespace();
    let Some(number) = parts.next() else {
        return Err(invalid(
            "is empty; write \"<value> [<Unit>]\", e.g. \"42 Count\"".to_owned(),
        ));
    };
    let number: f64 = number.parse().map_err(|_| {
        invalid(format!(
            "{number:?} is not a number; write \"<value> [<Unit>]\", e.g. \"42 Count\""
        ))
    })?;
    if let Some(problem) = value_problem(number) {
        return Err(invalid(format!("value {number} {problem}")));
    }
    let unit = match parts.next() {
        None => Unit::None,
        Some(unit) => unit.parse::<Unit>().map_err(|e| invalid(e.to_string()))?,
    };
    if parts.next().is_some() {
        return Err(invalid(format!(
            "{value:?} has extra words; write \"<value> [<Unit>]\", e.g. \"250 Milliseconds\""
        )));
    }
    Ok((number, unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Emf;

    fn cfg(job: &str, pairs: &[(&str, &str)]) -> Config {
        Config::new(job, pairs.iter().copied())
    }

    /// Checks `pairs` as the host does (keys, then settings).
    fn read(job: &str, pairs: &[(&str, &str)]) -> Result<Settings> {
        let config = cfg(job, pairs);
        config.validate_for::<Emf>()?;
        Settings::read(&config)
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        error_for("job", pairs)
    }

    fn error_for(job: &str, pairs: &[(&str, &str)]) -> String {
        read(job, pairs).unwrap_err().message().to_owned()
    }

    #[test]
    fn defaults() {
        let settings = read("heartbeat", &[]).unwrap();
        assert_eq!(settings.namespace, "cwpub");
        assert_eq!(
            settings.dimensions,
            vec![
                ("Service".to_owned(), DimensionSource::Service),
                ("Host".to_owned(), DimensionSource::Host)
            ]
        );
        assert!(settings.metrics.is_empty());
    }

    #[test]
    fn full_configuration() {
        let settings = read(
            "job",
            &[
                ("namespace", "MyCo/App"),
                ("dimensions", " Service , Env,Host"),
                ("service", "orders"),
                ("dimension.Env", "prod"),
                ("metric.QueueDepth", "42 Count"),
                ("metric.Ratio", "0.5"),
                ("metric.Latency", "  250   Milliseconds "),
            ],
        )
        .unwrap();
        assert_eq!(settings.namespace, "MyCo/App");
        assert_eq!(
            settings.dimensions[1],
            ("Env".to_owned(), DimensionSource::Static("prod".into()))
        );
        assert_eq!(settings.service.as_deref(), Some("orders"));
        assert_eq!(
            settings.metrics,
            vec![
                ("QueueDepth".to_owned(), 42.0, Unit::Count),
                ("Ratio".to_owned(), 0.5, Unit::None),
                ("Latency".to_owned(), 250.0, Unit::Milliseconds),
            ]
        );
        assert!(
            read("job", &[("dimensions", "")])
                .unwrap()
                .dimensions
                .is_empty()
        );
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("color", "red")], "`color`", "unknown key"),
            (
                &[("metric.Latency", "250 ms")],
                "`metric.Latency`",
                "did you mean Milliseconds?",
            ),
            (
                &[("metric.Latency", "250 Nanoseconds")],
                "`metric.Latency`",
                "Microseconds",
            ),
            (
                &[("metric.Latency", "fast")],
                "`metric.Latency`",
                "is not a number",
            ),
            (
                &[("metric.Latency", "NaN")],
                "`metric.Latency`",
                "not finite",
            ),
            (
                &[("metric.Latency", "1e300 Count")],
                "`metric.Latency`",
                "out of range",
            ),
            (&[("metric.Latency", "")], "`metric.Latency`", "is empty"),
            (
                &[("metric.Latency", "1 Count extra")],
                "`metric.Latency`",
                "extra words",
            ),
            (
                &[("metric.Heartbeat", "1")],
                "`metric.Heartbeat`",
                "built-in metric",
            ),
            (&[("metric.event_id", "1")], "`metric.event_id`", "property"),
            (
                &[("metric.Host", "1")],
                "`metric.Host`",
                "already a dimension",
            ),
            (
                &[("metric.", "1")],
                "`metric.`",
                "needs a name after `metric.`",
            ),
            (&[("namespace", "AWS/EC2")], "`namespace`", "reserved"),
            (&[("namespace", "a*b")], "`namespace`", "'*'"),
            (
                &[("dimensions", "Service,,Host")],
                "`dimensions`",
                "empty name",
            ),
            (
                &[("dimensions", "Service,Service")],
                "`dimensions`",
                "twice",
            ),
            (
                &[("dimensions", "Service,:x")],
                "`dimensions`",
                "starts with ':'",
            ),
            (
                &[("dimensions", "Heartbeat")],
                "`dimensions`",
                "metric or property",
            ),
            (&[("dimensions", "Env")], "`dimension.Env`", "is missing"),
            (
                &[("dimension.Env", "prod")],
                "`dimension.Env`",
                "not listed",
            ),
            (
                &[("dimension.Service", "x")],
                "`dimension.Service`",
                "`service`",
            ),
            (&[("dimension.Host", "x")], "`dimension.Host`", "hostname"),
            (
                &[("dimensions", "Env"), ("dimension.Env", "Zürich")],
                "`dimension.Env`",
                "non-ASCII",
            ),
            (&[("service", "")], "`service`", "is empty"),
            (
                &[("dimensions", "Host"), ("service", "x")],
                "`service`",
                "not listed",
            ),
            (
                &[("namespace", "a"), ("namespace", "b")],
                "`namespace`",
                "more than once",
            ),
        ];
        for (pairs, key, fix) in cases {
            let message = error(pairs);
            assert!(
                message.contains(key) && message.contains(fix),
                "{pairs:?}: {message}"
            );
        }
        assert_eq!(
            error(&[("color", "red")]),
            "config key `color`: unknown key; builtin:emf accepts `namespace`, `dimensions`, `service`, `dimension.<Name>` and `metric.<Name>`"
        );
        let wide: String = (0..31)
            .map(|i| format!("D{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut pairs = vec![("dimensions".to_owned(), wide)];
        pairs.extend((0..31).map(|i| (format!("dimension.D{i}"), "v".to_owned())));
        let config = Config::new("job", pairs);
        assert!(
            Settings::read(&config)
                .unwrap_err()
                .message()
                .contains("at most 30")
        );
        assert!(error_for("jöb", &[]).contains("set `service`"));
        assert!(read("jöb", &[("service", "job")]).is_ok());
    }
}
