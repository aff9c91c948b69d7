//! [`EmfError`]: why the builder refused an input or could not finish a flush.

use std::fmt;

use crate::names::{NameProblem, ValueProblem};
use crate::unit::{StorageResolution, Unit};

/// What a root key is used for in a document, for collision messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The key holds a metric value.
    Metric,
    /// The key holds a dimension value.
    Dimension,
    /// The key holds a property.
    Property,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Metric => "metric",
            KeyRole::Dimension => "dimension",
            KeyRole::Property => "property",
        })
    }
}

/// A builder error; every variant names the offending key or value.
#[derive(Debug, Clone, PartialEq)]
pub enum EmfError {
    /// The namespace breaks a rule.
    InvalidNamespace {
        /// The rejected namespace.
        namespace: String,
        /// The first broken rule.
        problem: NameProblem,
    },
    /// A metric name breaks a rule.
    InvalidMetricName {
        /// The rejected name.
        name: String,
        /// The first broken rule.
        problem: NameProblem,
    },
    /// A metric value is NaN, infinite or out of range.
    InvalidValue {
        /// The metric.
        name: String,
        /// The rejected value.
        value: f64,
        /// What is wrong with it.
        problem: ValueProblem,
    },
    /// A metric was put again with a different unit (hard case 34).
    UnitConflict {
        /// The metric.
        name: String,
        /// The unit it already has.
        existing: Unit,
        /// The unit of the rejected put.
        new: Unit,
    },
    /// A metric was put again with a different storage resolution (hard case 35).
    ResolutionConflict {
        /// The metric.
        name: String,
        /// The resolution it already has.
        existing: StorageResolution,
        /// The resolution of the rejected put.
        new: StorageResolution,
    },
    /// A dimension name breaks a rule.
    InvalidDimensionName {
        /// The rejected name.
        name: String,
        /// The first broken rule.
        problem: NameProblem,
    },
    /// A dimension value breaks a rule.
    InvalidDimensionValue {
        /// The dimension.
        name: String,
        /// The rejected value.
        value: String,
        /// The first broken rule.
        problem: NameProblem,
    },
    /// A dimension set names the same key twice (hard case 13).
    DuplicateDimensionKey {
        /// The repeated key.
        name: String,
    },
    /// A dimension set (default dimensions included) has more than 30 keys (hard case 14).
    TooManyDimensions {
        /// Keys in the set.
        count: usize,
        /// The limit, 30.
        max: usize,
    },
    /// Two dimension sets of one document give one key different values (hard case 15).
    DimensionValueConflict {
        /// The dimension.
        name: String,
        /// The value already in use.
        existing: String,
        /// The conflicting value.
        new: String,
    },
    /// A property used the reserved `_aws` key (hard case 2).
    ReservedKey {
        /// Always `_aws`.
        key: String,
    },
    /// One root key would be used twice, e.g. as metric and dimension (hard case 4).
    KeyCollision {
        /// The key.
        key: String,
        /// What the key is already used for.
        existing: KeyRole,
        /// What the rejected call wanted to use it for.
        new: KeyRole,
    },
    /// The timestamp is negative.
    InvalidTimestamp {
        /// The rejected timestamp in ms.
        timestamp_ms: i64,
    },
    /// A single-metric, single-value document would still exceed the event size
    /// limit, because of large properties or dimensions (hard case 11).
    DocumentTooLarge {
        /// Size of the smallest document that could be built.
        bytes: usize,
        /// The configured limit.
        max: usize,
    },
}

impl fmt::Display for EmfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmfError::InvalidNamespace { namespace, problem } => {
                write!(f, "namespace {namespace:?} {problem}")
            }
            EmfError::InvalidMetricName { name, problem } => {
                write!(f, "metric name {name:?} {problem}")
            }
            EmfError::InvalidValue {
                name,
                value,
                problem,
            } => write!(f, "value {value} of metric {name:?} {problem}"),
            EmfError::UnitConflict {
                name,
                existing,
                new,
            } => write!(
                f,
                "metric {name:?} already has unit {existing}; it cannot also be recorded in {new} in the same document"
            ),
            EmfError::ResolutionConflict {
                name,
                existing,
                new,
            } => write!(
                f,
                "metric {name:?} already has storage resolution {}; it cannot also use {}",
                existing.seconds(),
                new.seconds()
            ),
            EmfError::InvalidDimensionName { name, problem } => {
                write!(f, "dimension name {name:?} {problem}")
            }
            EmfError::InvalidDimensionValue {
                name,
                value,
                problem,
            } => {
                write!(f, "value {value:?} of dimension {name:?} {problem}")
            }
            EmfError::DuplicateDimensionKey { name } => {
                write!(f, "dimension {name:?} appears twice in one dimension set")
            }
            EmfError::TooManyDimensions { count, max } => write!(
                f,
                "a dimension set would have {count} keys (default dimensions included); at most {max} are allowed"
            ),
            EmfError::DimensionValueConflict {
                name,
                existing,
                new,
            } => write!(
                f,
                "dimension {name:?} is already {existing:?} in this document and cannot also be {new:?}; \
                 one document holds one value per key"
            ),
            EmfError::ReservedKey { key } => write!(f, "{key:?} is reserved for EMF metadata"),
            EmfError::KeyCollision { key, existing, new } => write!(
                f,
                "{key:?} is already a {existing} and cannot also be a {new}; a document has one root member per key"
            ),
            EmfError::InvalidTimestamp { timestamp_ms } => {
                write!(
                    f,
                    "timestamp {timestamp_ms} is negative; use milliseconds since the Unix epoch"
                )
            }
            EmfError::DocumentTooLarge { bytes, max } => write!(
                f,
                "a document with a single metric value is already {bytes} bytes (limit {max}); \
                 shrink the properties or dimensions"
            ),
        }
    }
}

impl std::error::Error for EmfError {}
