//! # cwpub-emf: CloudWatch Embedded Metric Format, to the letter
//!
//! One crate holds every EMF rule cwpub knows, so the guests that compose
//! documents and the host that delivers them agree exactly. It has no host-only
//! dependencies and builds natively and for `wasm32-wasip2`.
//!
//! * [`MetricsLogger`] composes documents with the semantics of the AWS
//!   `aws-embedded-metrics` MetricsLogger and refuses any input that would make
//!   an invalid document; [`MetricsLogger::flush`] splits above 100 metrics per
//!   directive and 100 values per metric.
//! * [`validate`] returns every [`Violation`] in a log message, each with a
//!   stable [`ViolationKind`] label for counters.
//! * [`read_metrics`] reads back what CloudWatch would extract.
//! * [`limits`] holds every numeric limit with its source.
//!
//! ```
//! use cwpub_emf::{DimensionSet, MetricsLogger, Unit, validate};
//!
//! let mut logger = MetricsLogger::new("cwpub")?;
//! logger.set_timestamp(1_700_000_000_000)?;
//! logger.put_dimensions(DimensionSet::from_pairs([("Service", "orders")])?)?;
//! logger.put_metric("Latency", 12.5, Unit::Milliseconds)?;
//! let documents = logger.flush()?;
//! assert_eq!(documents.len(), 1);
//! assert!(validate(&documents[0], 1_700_000_000_000).is_empty());
//! # Ok::<(), cwpub_emf::EmfError>(())
//! ```
//!
//! The decisions on the 53 hard cases of the EMF reference are listed in
//! `HARD_CASES.md` next to this crate's `Cargo.toml`.

#![warn(missing_docs)]

mod builder;
mod dimensions;
mod error;
mod extract;
mod json;
pub mod limits;
pub mod names;
mod unit;
mod validate;
mod violation;
mod write;

pub use builder::MetricsLogger;
pub use dimensions::DimensionSet;
pub use error::{EmfError, KeyRole};
pub use extract::{ExtractedMetric, read_metrics};
pub use unit::{ParseUnitError, StorageResolution, Unit};
pub use validate::{ValidateOptions, validate, validate_with};
pub use violation::{Violation, ViolationKind};
