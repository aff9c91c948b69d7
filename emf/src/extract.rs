//! [`read_metrics`]: reads back what CloudWatch would extract from a document,
//! for tests, dry runs and debugging. It assumes a document that
//! [`crate::validate`] accepts and reports the first thing it cannot read.

use crate::json::{Json, parse};
use crate::unit::{StorageResolution, Unit};

/// One metric definition of a document, with its resolved root values.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractedMetric {
    /// The directive's namespace.
    pub namespace: String,
    /// The metric name.
    pub name: String,
    /// The unit (`None` when omitted).
    pub unit: Unit,
    /// The storage resolution (60 s when omitted).
    pub storage_resolution: StorageResolution,
    /// The directive's dimension sets, each as (name, value) pairs.
    pub dimensions: Vec<Vec<(String, String)>>,
    /// The samples: a scalar gives one, an array gives each element.
    pub values: Vec<f64>,
    /// `_aws.Timestamp` in ms.
    pub timestamp_ms: i64,
}

/// Every metric definition in `message`, in document order.
pub fn read_metrics(message: &str) -> Result<Vec<ExtractedMetric>, String> {
    let root = parse(message).map_err(|e| format!("invalid JSON at byte {}", e.offset))?;
    let aws = root.get("_aws").ok_or("no _aws member")?;
    let timestamp_ms = match aws.get("Timestamp") {
        Some(Json::Number(n)) => n.integer.ok_or("Timestamp is not an integer")?,
        _ => return Err("no numeric _aws.Timestamp".into()),
    };
    let Some(Json::Array(directives)) = aws.get("CloudWatchMetrics") else {
        return Err("no CloudWatchMetrics array".into());
    };
    let mut out = Vec::new();
    for directive in directives {
        let Some(Json::String(namespace)) = directive.get("Namespace") else {
            return Err("directive without a string Namespace".into());
        };
        let Some(Json::Array(sets)) = directive.get("Dimensions") else {
            return Err("directive without a Dimensions array".into());
        };
        let dimensions = sets
            .iter()
            .map(|set| match set {
                Json::Array(keys) => keys
                    .iter()
                    .map(|key| match (key, key_value(&root, key)) {
                        (Json::String(k), Some(Json::String(v))) => {
                            Ok((k.to_string(), v.to_string()))
                        }
                        _ => Err(format!("dimension {key:?} has no string value")),
                    })
                    .collect::<Result<Vec<_>, _>>(),
                _ => Err("dimension set is not an array".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(Json::Array(definitions)) = directive.get("Metrics") else {
            return Err("directive without a Metrics array".into());
        };
        for definition in definitions {
            let Some(Json::String(name)) = definition.get("Name") else {
                return Err("metric definition without a string Name".into());
            };
            let unit = match definition.get("Unit") {
                None => Unit::None,
                Some(Json::String(u)) => u.parse().map_err(|e| format!("{e}"))?,
                Some(_) => return Err(format!("metric {name:?} has a non-string Unit")),
            };
            let storage_resolution = match definition.get("StorageResolution") {
                None => StorageResolution::Standard,
                Some(Json::Number(n)) => n
                    .integer
                    .and_then(|r| u32::try_from(r).ok())
                    .and_then(|r| StorageResolution::try_from(r).ok())
                    .ok_or(format!("metric {name:?} has an invalid StorageResolution"))?,
                Some(_) => {
                    return Err(format!(
                        "metric {name:?} has a non-numeric StorageResolution"
                    ));
                }
            };
            let values = match root.get(name) {
                Some(Json::Number(n)) => vec![n.value],
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Json::Number(n) => Ok(n.value),
                        _ => Err(format!("metric {name:?} has a non-numeric element")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(format!("metric {name:?} has no numeric root value")),
            };
            out.push(ExtractedMetric {
                namespace: namespace.to_string(),
                name: name.to_string(),
                unit,
                storage_resolution,
                dimensions: dimensions.clone(),
                values,
                timestamp_ms,
            });
        }
    }
    Ok(out)
}

/// The root member named by the dimension key `key`.
fn key_value<'a>(root: &'a Json<'a>, key: &Json<'_>) -> Option<&'a Json<'a>> {
    match key {
        Json::String(k) => root.get(k),
        _ => None,
    }
}
