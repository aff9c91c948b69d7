//! Destinations that are not CloudWatch Logs, each in its own folder.

pub mod datadog;
