//! [`MetricsLogger`]: composes EMF documents with the semantics of the AWS
//! `aws-embedded-metrics` MetricsLogger, and refuses anything that would make
//! an invalid document.
//!
//! * Metrics: [`MetricsLogger::put_metric`] appends a value; putting the same
//!   name again adds another sample (it must keep its unit and resolution).
//! * Dimensions: default dimensions are prepended to every custom set
//!   ([`MetricsLogger::put_dimensions`], [`MetricsLogger::set_dimensions`]);
//!   with no custom set the defaults alone are used; custom values win over
//!   default values for the same name. Sets with the same names are deduped
//!   (the newer one replaces the older one).
//! * Timestamp: the time the logger was created unless set explicitly
//!   (hard case 40); it is kept across flushes, like properties, namespace and
//!   dimensions. [`MetricsLogger::flush`] clears only the metrics.
//! * Output: one compact, single-line JSON object per document; `_aws` first,
//!   then dimension values, properties and metric values, each key once.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::dimensions::DimensionSet;
use crate::error::{EmfError, KeyRole};
use crate::limits::MAX_EVENT_BYTES;
use crate::names::{RESERVED_KEY, metric_name_problems, namespace_problems, value_problem};
use crate::unit::{StorageResolution, Unit};

mod render;

/// One metric's definition and the samples put since the last flush.
#[derive(Debug, Clone)]
struct Metric {
    name: String,
    unit: Unit,
    resolution: StorageResolution,
    values: Vec<f64>,
}

/// Collects metrics, dimensions and properties and flushes them as EMF documents.
#[derive(Debug, Clone)]
pub struct MetricsLogger {
    namespace: String,
    timestamp_ms: i64,
    default_dimensions: DimensionSet,
    custom_dimensions: Vec<DimensionSet>,
    use_default_dimensions: bool,
    properties: Vec<(String, Value)>,
    metrics: Vec<Metric>,
    metric_index: HashMap<String, usize>,
    max_event_bytes: usize,
}

impl MetricsLogger {
    /// A logger for `namespace`, timestamped now, with no dimensions or properties.
    pub fn new(namespace: &str) -> Result<Self, EmfError> {
        check_namespace(namespace)?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(Self {
            namespace: namespace.to_owned(),
            timestamp_ms: now_ms,
            default_dimensions: DimensionSet::new(),
            custom_dimensions: Vec::new(),
            use_default_dimensions: true,
            properties: Vec::new(),
            metrics: Vec::new(),
            metric_index: HashMap::new(),
            max_event_bytes: MAX_EVENT_BYTES,
        })
    }

    /// The namespace of flushed documents.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Replaces the namespace (1–255 of `[0-9A-Za-z._-/#: ]`, not `AWS/…`).
    pub fn set_namespace(&mut self, namespace: &str) -> Result<(), EmfError> {
        check_namespace(namespace)?;
        self.namespace = namespace.to_owned();
        Ok(())
    }

    /// The `_aws.Timestamp` of flushed documents, in ms since the Unix epoch.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// Sets `_aws.Timestamp` in milliseconds since the Unix epoch (not seconds; hard case 37).
    pub fn set_timestamp(&mut self, timestamp_ms: i64) -> Result<(), EmfError> {
        if timestamp_ms < 0 {
            return Err(EmfError::InvalidTimestamp { timestamp_ms });
        }
        self.timestamp_ms = timestamp_ms;
        Ok(())
    }

    /// Lowers (or restores) the largest document size `flush` may produce, in bytes.
    pub fn set_max_event_bytes(&mut self, max_event_bytes: usize) {
        self.max_event_bytes = max_event_bytes;
    }

    /// Records one sample of metric `name` at the standard 60 s resolution.
    pub fn put_metric(&mut self, name: &str, value: f64, unit: Unit) -> Result<(), EmfError> {
        self.put_metric_with_resolution(name, value, unit, StorageResolution::Standard)
    }

    /// Records one sample of metric `name` with an explicit storage resolution.
    pub fn put_metric_with_resolution(
        &mut self,
        name: &str,
        value: f64,
        unit: Unit,
        resolution: StorageResolution,
    ) -> Result<(), EmfError> {
        if let Some(problem) = value_problem(value) {
            return Err(EmfError::InvalidValue {
                name: name.to_owned(),
                value,
                problem,
            });
        }
        if let Some(&index) = self.metric_index.get(name) {
            let metric = &mut self.metrics[index];
            if metric.unit != unit {
                return Err(EmfError::UnitConflict {
                    name: name.to_owned(),
                    existing: metric.unit,
                    new: unit,
                });
            }
            if metric.resolution != resolution {
                return Err(EmfError::ResolutionConflict {
                    name: name.to_owned(),
                    existing: metric.resolution,
                    new: resolution,
                });
            }
            metric.values.push(value);
            return Ok(());
        }
        if let Some(problem) = metric_name_problems(name).into_iter().next() {
            return Err(EmfError::InvalidMetricName {
                name: name.to_owned(),
                problem,
            });
        }
        if let Some(existing) = self.role_of(name) {
            return Err(EmfError::KeyCollision {
                key: name.to_owned(),
                existing,
                new: KeyRole::Metric,
            });
        }
        self.metric_index
            .insert(name.to_owned(), self.metrics.len());
        self.metrics.push(Metric {
            name: name.to_owned(),
            unit,
            resolution,
            values: vec![value],
        });
        Ok(())
    }

    /// Sets property `key` (any JSON value), replacing an earlier value of the same key.
    pub fn put_property(&mut self, key: &str, value: impl Into<Value>) -> Result<(), EmfError> {
        if key == RESERVED_KEY {
            return Err(EmfError::ReservedKey {
                key: key.to_owned(),
            });
        }
        let value = value.into();
        if let Some(slot) = self.properties.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
            return Ok(());
        }
        if let Some(existing) = self.role_of(key) {
            return Err(EmfError::KeyCollision {
                key: key.to_owned(),
                existing,
                new: KeyRole::Property,
            });
        }
        self.properties.push((key.to_owned(), value));
        Ok(())
    }

    /// Replaces the default dimensions, which are prepended to every dimension set.
    pub fn set_default_dimensions(&mut self, defaults: DimensionSet) -> Result<(), EmfError> {
        let custom = self.custom_dimensions.clone();
        self.apply_dimensions(defaults, custom, self.use_default_dimensions)
    }

    /// Adds a dimension set; a set with the same names replaces the older one.
    pub fn put_dimensions(&mut self, set: DimensionSet) -> Result<(), EmfError> {
        let mut custom = self.custom_dimensions.clone();
        match custom.iter_mut().find(|existing| existing.same_names(&set)) {
            Some(existing) => *existing = set,
            None => custom.push(set),
        }
        self.apply_dimensions(
            self.default_dimensions.clone(),
            custom,
            self.use_default_dimensions,
        )
    }

    /// Replaces all custom dimension sets; `use_default` says whether the default
    /// dimensions are still prepended (MetricsLogger `setDimensions`).
    pub fn set_dimensions(
        &mut self,
        sets: impl IntoIterator<Item = DimensionSet>,
        use_default: bool,
    ) -> Result<(), EmfError> {
        let mut custom: Vec<DimensionSet> = Vec::new();
        for set in sets {
            match custom.iter_mut().find(|existing| existing.same_names(&set)) {
                Some(existing) => *existing = set,
                None => custom.push(set),
            }
        }
        self.apply_dimensions(self.default_dimensions.clone(), custom, use_default)
    }

    /// Removes all custom dimension sets; `use_default` says whether the default
    /// dimensions stay in use (MetricsLogger `resetDimensions`).
    pub fn reset_dimensions(&mut self, use_default: bool) {
        self.custom_dimensions.clear();
        self.use_default_dimensions = use_default;
    }

    /// The dimension sets the next document will declare (defaults merged in, deduped).
    pub fn dimension_sets(&self) -> Vec<DimensionSet> {
        effective_sets(
            &self.default_dimensions,
            &self.custom_dimensions,
            self.use_default_dimensions,
        )
        .unwrap_or_default()
    }

    /// Number of distinct metrics put since the last flush.
    pub fn metric_count(&self) -> usize {
        self.metrics.len()
    }

    /// True when nothing was put since the last flush (a flush would emit nothing).
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Renders every metric put since the last flush as finished EMF documents and
    /// clears the metrics (dimensions, properties, namespace and timestamp stay).
    ///
    /// Splits above 100 metrics per document and above 100 values per metric,
    /// and further whenever a document would exceed the size limit; every piece
    /// repeats the dimensions, properties and timestamp. Emits nothing when no
    /// metric was put. On error nothing is cleared.
    pub fn flush(&mut self) -> Result<Vec<String>, EmfError> {
        if self.metrics.is_empty() {
            return Ok(Vec::new());
        }
        let sets = effective_sets(
            &self.default_dimensions,
            &self.custom_dimensions,
            self.use_default_dimensions,
        )?;
        let documents = self.render_documents(&sets)?;
        self.metrics.clear();
        self.metric_index.clear();
        Ok(documents)
    }

    /// What `key` is already used for at the root, if anything.
    fn role_of(&self, key: &str) -> Option<KeyRole> {
        if self.metric_index.contains_key(key) {
            Some(KeyRole::Metric)
        } else if self.properties.iter().any(|(k, _)| k == key) {
            Some(KeyRole::Property)
        } else if self.default_dimensions.get(key).is_some()
            || self
                .custom_dimensions
                .iter()
                .any(|set| set.get(key).is_some())
        {
            Some(KeyRole::Dimension)
        } else {
            None
        }
    }

    /// Checks a new dimension configuration and installs it only if it is valid.
    fn apply_dimensions(
        &mut self,
        defaults: DimensionSet,
        custom: Vec<DimensionSet>,
        use_default: bool,
    ) -> Result<(), EmfError> {
        for set in std::iter::once(&defaults).chain(&custom) {
            for (name, _) in set.iter() {
                if self.metric_index.contains_key(name) {
                    return Err(collision(name, KeyRole::Metric));
                }
                if self.properties.iter().any(|(k, _)| k == name) {
                    return Err(collision(name, KeyRole::Property));
                }
            }
        }
        check_value_conflicts(&effective_sets(&defaults, &custom, use_default)?)?;
        self.default_dimensions = defaults;
        self.custom_dimensions = custom;
        self.use_default_dimensions = use_default;
        Ok(())
    }
}

/// A collision error for dimension `name` against an existing `existing` role.
fn collision(name: &str, existing: KeyRole) -> EmfError {
    EmfError::KeyCollision {
        key: name.to_owned(),
        existing,
        new: KeyRole::Dimension,
    }
}

/// Fails on an invalid namespace.
fn check_namespace(namespace: &str) -> Result<(), EmfError> {
    match namespace_problems(namespace).into_iter().next() {
        Some(problem) => Err(EmfError::InvalidNamespace {
            namespace: namespace.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Fails when two sets give the same dimension name different values (hard case 15).
fn check_value_conflicts<'a>(
    sets: impl IntoIterator<Item = &'a DimensionSet>,
) -> Result<(), EmfError> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (name, value) in sets.into_iter().flat_map(DimensionSet::iter) {
        match seen.iter().find(|(n, _)| *n == name) {
            Some((_, existing)) if *existing != value => {
                return Err(EmfError::DimensionValueConflict {
                    name: name.to_owned(),
                    existing: (*existing).to_owned(),
                    new: value.to_owned(),
                });
            }
            Some(_) => {}
            None => seen.push((name, value)),
        }
    }
    Ok(())
}

/// The sets a document declares: custom sets with the defaults merged in (or the
/// defaults alone), deduped by names (hard case 13); empty means `[[]]`.
fn effective_sets(
    defaults: &DimensionSet,
    custom: &[DimensionSet],
    use_default: bool,
) -> Result<Vec<DimensionSet>, EmfError> {
    let candidates: Vec<DimensionSet> = if !use_default || defaults.is_empty() {
        custom.to_vec()
    } else if custom.is_empty() {
        vec![defaults.clone()]
    } else {
        custom
            .iter()
            .map(|set| DimensionSet::merged(defaults, set))
            .collect::<Result<_, _>>()?
    };
    let mut sets: Vec<DimensionSet> = Vec::with_capacity(candidates.len());
    for set in candidates {
        if !sets.iter().any(|existing| existing.same_names(&set)) {
            sets.push(set);
        }
    }
    Ok(sets)
}
