//! `emf` events as DataDog metric series (Metrics intake v2, `POST /api/v2/series`).
//!
//! One EMF document (which the project's validator accepted; anything else
//! is refused with a reason, never a panic) becomes one series per metric,
//! with this mapping:
//!
//! | EMF | DataDog series | notes |
//! |---|---|---|
//! | `Namespace` + metric `Name` | `metric`: `<Namespace>.<Name>`, normalised | characters other than ASCII letters, digits, `_` and `.` become `_`; leading characters up to the first letter are dropped; a name left empty or longer than 200 characters is refused, never cut (a cut name could merge two metrics) |
//! | dimensions of every dimension set of the metric | `tags`: `<Dimension>:<value>`, each dimension once | one series with the union of the sets, see below; a tag longer than 200 characters is refused, never cut; DataDog lowercases tags itself |
//! | the value, or each value of an array | `points`: `{timestamp, value}` | all at the document's time |
//! | `_aws.Timestamp` (ms) | point `timestamp` (s, rounded down) | |
//! | `Unit` | `unit`, where DataDog has the same unit | table below |
//! | — | `type`: 3 (gauge) | |
//! | — | `resources`: `[{"type": "host", "name": <host>}]` | when the sink knows the host |
//! | `StorageResolution`, properties, `{Values,Counts}` / `{Min,Max,Sum,Count}` | — | resolution and properties are not sent; a document with a histogram or statistic-set value is refused (a gauge cannot carry it) |
//!
//! **Dimension sets.** CloudWatch makes one metric per dimension set and
//! cannot aggregate across dimensions, so EMF writers list several sets
//! (`[["Service"], ["Service", "Host"]]`) to get the rollups. DataDog stores
//! a series per tag combination and aggregates at query time: a query for
//! `service:orders` sums or averages every series carrying that tag. One
//! series per set would make that query count the value once per set that
//! contains `Service`; one series with the union of the sets' dimensions
//! answers every rollup CloudWatch had, each value counted once. The same
//! metric in two directives of one document merges the same way. Two
//! different EMF metrics whose names normalise to the same DataDog name are
//! refused rather than overwrite each other.
//!
//! **Arrays.** DataDog keeps one gauge value per series and timestamp, so of
//! an array's points (all at the document's time) DataDog keeps one. EMF
//! writers that need every sample in DataDog should emit one document per
//! sample time.
//!
//! **Units.** The series intake takes one `unit` name and has no per-unit
//! field, so rates (`…/Second`) go without a unit (set the metric's unit and
//! per-unit once in DataDog's metric metadata). DataDog's byte multiples are
//! binary (`kibibyte`, …) and it has no `kilobit`; CloudWatch's `Kilobytes`
//! does not say which kilo it means, so the multiples go without a unit too
//! rather than with one that may be wrong by 2–10 %.
//!
//! | EMF unit | DataDog unit |
//! |---|---|
//! | `Seconds` | `second` |
//! | `Milliseconds` | `millisecond` |
//! | `Microseconds` | `microsecond` |
//! | `Bytes` | `byte` |
//! | `Bits` | `bit` |
//! | `Percent` | `percent` |
//! | `Count`, `None` | — |
//! | `Kilobytes`, `Megabytes`, `Gigabytes`, `Terabytes`, `Kilobits`, `Megabits`, `Gigabits`, `Terabits` | — |
//! | every `…/Second` (`Bytes/Second`, `Count/Second`, …) | — |
//!
//! Points more than 10 minutes ahead or 1 hour behind are not accepted by
//! DataDog: [`check_time`] says so for a document's time.

use std::fmt;

use cwpub_emf::{ExtractedMetric, Unit, read_metrics};
use serde::Serialize;

use super::window::{TimeRefusal, Window};

/// The series `type` of every mapped series: gauge.
pub const GAUGE: u8 = 3;
/// Longest metric name DataDog accepts, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest tag DataDog accepts, in characters.
pub const MAX_TAG_CHARS: usize = 200;
/// Points DataDog accepts: not "more than ten minutes in the future or more
/// than one hour in the past".
pub const WINDOW: Window = Window {
    what: "metric points",
    max_age_ms: 60 * 60_000,
    max_ahead_ms: 10 * 60_000,
};

/// One series of a `/api/v2/series` payload, serialised as DataDog's
/// `MetricSeries` (fields in this order; empty ones left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The metric name.
    pub metric: String,
    /// The intake type ([`GAUGE`]).
    #[serde(rename = "type")]
    pub kind: u8,
    /// The points.
    pub points: Vec<Point>,
    /// `key:value` tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// DataDog's unit name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// The host, as a resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// One point: a time in seconds and a finite value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

/// A resource of a series (`{"name": …, "type": "host"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The resource's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The series of one EMF document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `_aws.Timestamp`, ms since the epoch.
    pub timestamp_ms: i64,
    /// One series per DataDog metric name, in document order.
    pub series: Vec<Series>,
}

/// Why a document cannot be mapped. Names in messages come from the
/// guest: callers show these through `crate::untrusted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The EMF structure cannot be read (the validator should have caught it).
    Unreadable(String),
    /// A metric's value is a histogram or statistic-set object.
    Histogram {
        /// The EMF metric name.
        metric: String,
    },
    /// A value is not finite.
    NotFinite {
        /// The EMF metric name.
        metric: String,
    },
    /// Nothing of the name is left after normalisation (no letter).
    NoLetter {
        /// The name before normalisation.
        name: String,
    },
    /// The normalised name is longer than [`MAX_NAME_CHARS`].
    NameTooLong {
        /// The normalised name.
        name: String,
    },
    /// A `key:value` tag is longer than [`MAX_TAG_CHARS`].
    TagTooLong {
        /// The EMF metric name.
        metric: String,
        /// The dimension.
        dimension: String,
        /// The tag's length in characters.
        chars: usize,
    },
    /// Two EMF metrics map to one DataDog name.
    NameClash {
        /// The DataDog name.
        name: String,
        /// The first EMF metric (`Namespace/Name`).
        first: String,
        /// The second.
        second: String,
    },
}

impl MapError {
    /// A stable label for counters.
    pub const fn label(&self) -> &'static str {
        match self {
            MapError::Unreadable(_) => "unreadable",
            MapError::Histogram { .. } => "histogram",
            MapError::NotFinite { .. } => "not_finite",
            MapError::NoLetter { .. } => "invalid_name",
            MapError::NameTooLong { .. } => "name_too_long",
            MapError::TagTooLong { .. } => "tag_too_long",
            MapError::NameClash { .. } => "name_clash",
        }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Unreadable(why) => write!(f, "the EMF document cannot be read: {why}"),
            MapError::Histogram { metric } => write!(
                f,
                "metric {metric:?} is a histogram or statistic set; DataDog's series intake has no \
                 such type, so the document is not sent"
            ),
            MapError::NotFinite { metric } => {
                write!(
                    f,
                    "metric {metric:?} has a value that is not a finite number"
                )
            }
            MapError::NoLetter { name } => write!(
                f,
                "metric name {name:?} has no letter; DataDog metric names start with a letter"
            ),
            MapError::NameTooLong { name } => write!(
                f,
                "DataDog metric name {name:?} is {} characters; at most {MAX_NAME_CHARS} are accepted \
                 (shorten the namespace or the metric name)",
                name.chars().count()
            ),
            MapError::TagTooLong {
                metric,
                dimension,
                chars,
            } => write!(
                f,
                "metric {metric:?}: the tag of dimension {dimension:?} is {chars} characters; DataDog \
                 accepts at most {MAX_TAG_CHARS}"
            ),
            MapError::NameClash {
                name,
                first,
                second,
            } => write!(
                f,
                "EMF metrics {first:?} and {second:?} both become DataDog metric {name:?}; rename one"
            ),
        }
    }
}

impl std::error::Error for MapError {}

/// Whether DataDog accepts points of a document dated `timestamp_ms` at
/// `now_ms` ([`WINDOW`]), judged on the second that is sent.
pub fn check_time(timestamp_ms: i64, now_ms: i64) -> Result<(), TimeRefusal> {
    WINDOW.check(timestamp_ms.div_euclid(1000).saturating_mul(1000), now_ms)
}

/// DataDog's name for `unit`, where it has the same unit (table in the module docs).
pub const fn datadog_unit(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Seconds => Some("second"),
        Unit::Milliseconds => Some("millisecond"),
        Unit::Microseconds => Some("microsecond"),
        Unit::Bytes => Some("byte"),
        Unit::Bits => Some("bit"),
        Unit::Percent => Some("percent"),
        Unit::Count
        | Unit::None
        | Unit::Kilobytes
        | Unit::Megabytes
        | Unit::Gigabytes
        | Unit::Terabytes
        | Unit::Kilobits
        | Unit::Megabits
        | Unit::Gigabits
        | Unit::Terabits
        | Unit::BytesPerSecond
        | Unit::KilobytesPerSecond
        | Unit::MegabytesPerSecond
        | Unit::GigabytesPerSecond
        | Unit::TerabytesPerSecond
        | Unit::BitsPerSecond
        | Unit::KilobitsPerSecond
        | Unit::MegabitsPerSecond
        | Unit::GigabitsPerSecond
        | Unit::TerabitsPerSecond
        | Unit::CountPerSecond => None,
    }
}

/// The DataDog metric name of EMF metric `name` in `namespace`:
/// `<namespace>.<name>` normalised (see the module docs).
pub fn metric_name(namespace: &str, name: &str) -> Result<String, MapError> {
    let joined = format!("{namespace}.{name}");
    let normalised: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let Some(start) = normalised.find(|c: char| c.is_ascii_alphabetic()) else {
        return Err(MapError::NoLetter { name: joined });
    };
    let name = &normalised[start..];
    if name.len() > MAX_NAME_CHARS {
        return Err(MapError::NameTooLong { name: name.into() });
    }
    Ok(name.to_string())
}

/// The series of EMF document `message`; `host` (the host's identity, when
/// the sink sends it) becomes each series' host resource.
pub fn map_document(message: &str, host: Option<&str>) -> Result<Document, MapError> {
    let metrics = read_metrics(message).map_err(|why| unreadable(message, why))?;
    let timestamp_ms = metrics
        .first()
        .map_or_else(|| timestamp_of(message), |m| m.timestamp_ms);
    let timestamp = timestamp_ms.div_euclid(1000);
    let resources: Vec<Resource> = host
        .map(|name| Resource {
            name: name.to_string(),
            kind: "host",
        })
        .into_iter()
        .collect();
    // (DataDog name, EMF origin, dimension keys in first-seen order).
    let mut series: Vec<Series> = Vec::new();
    let mut origins: Vec<(String, String)> = Vec::new();
    for metric in &metrics {
        let name = metric_name(&metric.namespace, &metric.name)?;
        let origin = format!("{}/{}", metric.namespace, metric.name);
        if metric.values.iter().any(|v| !v.is_finite()) {
            return Err(MapError::NotFinite {
                metric: metric.name.clone(),
            });
        }
        let tags = tags(metric)?;
        match origins.iter().position(|(n, _)| *n == name) {
            Some(i) if origins[i].1 == origin => {
                for tag in tags {
                    if !series[i].tags.contains(&tag) {
                        series[i].tags.push(tag);
                    }
                }
            }
            Some(i) => {
                return Err(MapError::NameClash {
                    name,
                    first: origins[i].1.clone(),
                    second: origin,
                });
            }
            None => {
                series.push(Series {
                    metric: name.clone(),
                    kind: GAUGE,
                    points: metric
                        .values
                        .iter()
                        .map(|&value| Point { timestamp, value })
                        .collect(),
                    tags,
                    unit: datadog_unit(metric.unit),
                    resources: resources.clone(),
                });
                origins.push((name, origin));
            }
        }
    }
    Ok(Document {
        timestamp_ms,
        series,
    })
}

/// The `key:value` tags of every dimension of every set of `metric`, each dimension once.
fn tags(metric: &ExtractedMetric) -> Result<Vec<String>, MapError> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in metric.dimensions.iter().flatten() {
        if seen.contains(&key.as_str()) {
            continue;
        }
        seen.push(key);
        let tag = format!("{key}:{value}");
        let chars = tag.chars().count();
        if chars > MAX_TAG_CHARS {
            return Err(MapError::TagTooLong {
                metric: metric.name.clone(),
                dimension: key.clone(),
                chars,
            });
        }
        out.push(tag);
    }
    Ok(out)
}

/// `read_metrics`' refusal, named more precisely when a value is a histogram.
fn unreadable(message: &str, why: String) -> MapError {
    if let Ok(serde_json::Value::Object(root)) = serde_json::from_str::<serde_json::Value>(message)
        && let Some(name) = why
            .strip_prefix("metric ")
            .and_then(|rest| rest.split(" has no numeric root value").next())
            .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
        && root.get(&name).is_some_and(serde_json::Value::is_object)
    {
        return MapError::Histogram { metric: name };
    }
    MapError::Unreadable(why)
}

/// `_aws.Timestamp` of a document without metrics (0 when unreadable).
fn timestamp_of(message: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(message)
        .ok()
        .and_then(|v| v["_aws"]["Timestamp"].as_i64())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use cwpub_emf::{DimensionSet, MetricsLogger, validate};
    use serde_json::json;

    const T: i64 = 1_767_225_600_123;

    fn doc(body: serde_json::Value) -> String {
        let text = body.to_string();
        assert_eq!(validate(&text, T), vec![], "test documents are valid EMF");
        text
    }

    #[test]
    fn names_are_normalised_to_datadog_rules() {
        for (namespace, name, expected) in [
            ("cwpub", "Heartbeat", "cwpub.Heartbeat"),
            ("MyApp/Orders", "Latency p99", "MyApp_Orders.Latency_p99"),
            ("ns#1:x-y", "a.b", "ns_1_x_y.a.b"),
            ("1st", "Count", "st.Count"),
            ("_internal", "x", "internal.x"),
            ("9", "Latency", "Latency"),
        ] {
            assert_eq!(metric_name(namespace, name).unwrap(), expected);
        }
        assert_eq!(
            metric_name("9", "42").unwrap_err(),
            MapError::NoLetter {
                name: "9.42".into()
            }
        );
        assert_eq!(metric_name("é", "x").unwrap(), "x");
        let long = "a".repeat(MAX_NAME_CHARS - 2);
        assert_eq!(metric_name(&long, "b").unwrap().len(), MAX_NAME_CHARS);
        let err = metric_name(&long, "bc").unwrap_err();
        assert_eq!(err.label(), "name_too_long");
        assert!(err.to_string().contains("201 characters"), "{err}");
    }

    #[test]
    fn units_map_only_where_datadog_has_the_same_unit() {
        let mapped: Vec<(Unit, &str)> = Unit::ALL
            .into_iter()
            .filter_map(|u| datadog_unit(u).map(|d| (u, d)))
            .collect();
        assert_eq!(
            mapped,
            vec![
                (Unit::Seconds, "second"),
                (Unit::Microseconds, "microsecond"),
                (Unit::Milliseconds, "millisecond"),
                (Unit::Bytes, "byte"),
                (Unit::Bits, "bit"),
                (Unit::Percent, "percent"),
            ]
        );
        for unit in [
            Unit::Count,
            Unit::None,
            Unit::BytesPerSecond,
            Unit::Kilobytes,
        ] {
            assert_eq!(datadog_unit(unit), None, "{unit}");
        }
    }

    #[test]
    fn a_document_becomes_one_gauge_per_metric() {
        let text = doc(json!({
            "_aws": {"Timestamp": T, "CloudWatchMetrics": [{
                "Namespace": "orders/api",
                "Dimensions": [["Service"], ["Service", "Host"]],
                "Metrics": [
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Throughput", "Unit": "Bytes/Second", "StorageResolution": 1}
                ]
            }]},
            "Service": "orders",
            "Host": "ip-10-0-0-7",
            "Latency": [12.5, 30.0],
            "Requests": 3,
            "Throughput": 1024.5,
            "event_id": "prop"
        }));
        let document = map_document(&text, Some("node-1")).unwrap();
        assert_eq!(document.timestamp_ms, T);
        let payload = serde_json::to_value(&document.series).unwrap();
        let host = json!([{"name": "node-1", "type": "host"}]);
        let tags = json!(["Service:orders", "Host:ip-10-0-0-7"]);
        assert_eq!(
            payload,
            json!([
                {"metric": "orders_api.Latency", "type": 3,
                 "points": [{"timestamp": 1_767_225_600, "value": 12.5}, {"timestamp": 1_767_225_600, "value": 30.0}],
                 "tags": tags, "unit": "millisecond", "resources": host},
                {"metric": "orders_api.Requests", "type": 3,
                 "points": [{"timestamp": 1_767_225_600, "value": 3.0}],
                 "tags": tags, "resources": host},
                {"metric": "orders_api.Throughput", "type": 3,
                 "points": [{"timestamp": 1_767_225_600, "value": 1024.5}],
                 "tags": tags, "resources": host},
            ])
        );
    }

    #[test]
    fn no_dimensions_and_no_host_leave_the_fields_out() {
        let text = doc(json!({
            "_aws": {"Timestamp": T, "CloudWatchMetrics": [{
                "Namespace": "cwpub", "Dimensions": [[]], "Metrics": [{"Name": "Up"}]}]},
            "Up": 1
        }));
        let series = map_document(&text, None).unwrap().series;
        assert_eq!(
            serde_json::to_string(&series).unwrap(),
            r#"[{"metric":"cwpub.Up","type":3,"points":[{"timestamp":1767225600,"value":1.0}]}]"#
        );
    }

    #[test]
    fn one_metric_in_two_directives_is_one_series_with_both_dimensions() {
        let text = doc(json!({
            "_aws": {"Timestamp": T, "CloudWatchMetrics": [
                {"Namespace": "app", "Dimensions": [["Service"]], "Metrics": [{"Name": "Errors"}]},
                {"Namespace": "app", "Dimensions": [["Region"]], "Metrics": [{"Name": "Errors"}]},
                {"Namespace": "other", "Dimensions": [["Region"]], "Metrics": [{"Name": "Errors"}]}
            ]},
            "Service": "orders", "Region": "eu-west-1", "Errors": 2
        }));
        let series = map_document(&text, None).unwrap().series;
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].metric, "app.Errors");
        assert_eq!(series[0].tags, ["Service:orders", "Region:eu-west-1"]);
        assert_eq!(series[1].metric, "other.Errors");
        assert_eq!(series[1].tags, ["Region:eu-west-1"]);
    }

    #[test]
    fn names_that_collide_after_normalisation_are_refused() {
        let text = doc(json!({
            "_aws": {"Timestamp": T, "CloudWatchMetrics": [{
                "Namespace": "app", "Dimensions": [[]],
                "Metrics": [{"Name": "a-b"}, {"Name": "a b"}]}]},
            "a-b": 1, "a b": 2
        }));
        let err = map_document(&text, None).unwrap_err();
        assert_eq!(
            err,
            MapError::NameClash {
                name: "app.a_b".into(),
                first: "app/a-b".into(),
                second: "app/a b".into()
            }
        );
    }

    #[test]
    fn tags_over_200_characters_are_refused_at_the_exact_length() {
        let make = |value_len: usize| {
            doc(json!({
                "_aws": {"Timestamp": T, "CloudWatchMetrics": [{
                    "Namespace": "app", "Dimensions": [["Path"]], "Metrics": [{"Name": "Hits"}]}]},
                "Path": "p".repeat(value_len), "Hits": 1
            }))
        };
        // "Path:" is 5 characters.
        let ok = map_document(&make(MAX_TAG_CHARS - 5), None).unwrap();
        assert_eq!(ok.series[0].tags[0].len(), MAX_TAG_CHARS);
        let err = map_document(&make(MAX_TAG_CHARS - 4), None).unwrap_err();
        assert_eq!(
            err,
            MapError::TagTooLong {
                metric: "Hits".into(),
                dimension: "Path".into(),
                chars: 201
            }
        );
    }

    #[test]
    fn histograms_and_broken_documents_are_refused_never_a_panic() {
        let histogram = doc(json!({
            "_aws": {"Timestamp": T, "CloudWatchMetrics": [{
                "Namespace": "app", "Dimensions": [[]], "Metrics": [{"Name": "Lat"}]}]},
            "Lat": {"Values": [1.0, 2.0], "Counts": [3, 4]}
        }));
        assert_eq!(
            map_document(&histogram, None).unwrap_err(),
            MapError::Histogram {
                metric: "Lat".into()
            }
        );
        for broken in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"_aws":{"Timestamp":"x","CloudWatchMetrics":[]}}"#,
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"a","Dimensions":[[]],"Metrics":[{"Name":"m"}]}]},"m":"7"}"#,
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"a","Dimensions":[[]],"Metrics":[{"Name":"m"}]}]},"m":1e999}"#,
        ] {
            let err = map_document(broken, None).unwrap_err();
            assert!(
                matches!(err, MapError::Unreadable(_) | MapError::NotFinite { .. }),
                "{broken}: {err:?}"
            );
        }
        let err = map_document(
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"a","Dimensions":[[]],"Metrics":[{"Name":"m"}]}]},"m":1e999}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(err.label(), "not_finite");
    }

    #[test]
    fn the_builders_documents_map_with_every_metric() {
        let mut logger = MetricsLogger::new("cwpub").unwrap();
        logger.set_timestamp(T).unwrap();
        logger
            .put_dimensions(DimensionSet::from_pairs([("Service", "orders")]).unwrap())
            .unwrap();
        for i in 0..150 {
            logger
                .put_metric(&format!("M{i}"), f64::from(i), Unit::Count)
                .unwrap();
        }
        let documents = logger.flush().unwrap();
        assert_eq!(documents.len(), 2, "split above 100 metrics");
        let names: Vec<String> = documents
            .iter()
            .flat_map(|d| map_document(d, None).unwrap().series)
            .map(|s| s.metric)
            .collect();
        let expected: Vec<String> = (0..150).map(|i| format!("cwpub.M{i}")).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn the_point_window_is_10_minutes_ahead_and_1_hour_back() {
        let now = 1_767_225_600_000;
        let hour = 3_600_000;
        assert_eq!(check_time(now - hour, now), Ok(()));
        assert_eq!(
            check_time(now - hour - 1, now),
            Err(TimeRefusal::TooOld {
                age_ms: hour + 1000,
                window: WINDOW
            }),
            "judged on the second sent"
        );
        assert_eq!(check_time(now + 600_000 + 999, now), Ok(()));
        let refusal = check_time(now + 601_000, now).unwrap_err();
        assert!(
            refusal
                .to_string()
                .contains("metric points up to 10 min ahead"),
            "{refusal}"
        );
        assert_eq!(
            check_time(i64::MIN, i64::MAX).unwrap_err().label(),
            "too_old"
        );
    }
}
