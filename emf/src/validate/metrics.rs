//! Metric definition checks: `Metrics` shape and count, names, units, storage
//! resolutions and duplicates (hard cases 9, 20–23, 33, 35).

use std::collections::HashSet;

use crate::json::{Json, Member, Number};
use crate::limits::MAX_METRICS_PER_DIRECTIVE;
use crate::names::{NameProblem, metric_name_problems};
use crate::unit::Unit;
use crate::violation::ViolationKind as K;

use super::checker::{Checker, MetricUse};
use super::{case_hint, member, object, pointer};

impl<'a> Checker<'a> {
    pub(super) fn check_metrics(&mut self, index: usize, base: &str, members: &'a [Member<'a>]) {
        let path = pointer(base, "Metrics");
        let definitions = match member(members, "Metrics") {
            None => {
                let hint = case_hint(members, "Metrics");
                self.push(
                    K::MissingMetrics,
                    path,
                    format!("the directive has no \"Metrics\"{hint}"),
                );
                return;
            }
            Some(Json::Array(definitions)) => definitions,
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidMetrics,
                    path,
                    format!("\"Metrics\" is {found}, not an array"),
                );
                return;
            }
        };
        if definitions.is_empty() {
            self.push(K::NoMetrics, path.clone(), "\"Metrics\" is empty".into());
        }
        if definitions.len() > MAX_METRICS_PER_DIRECTIVE {
            self.push(
                K::TooManyMetrics,
                path.clone(),
                format!(
                    "the directive has {} metric definitions; at most {MAX_METRICS_PER_DIRECTIVE} are allowed \
                     (CloudWatch then drops every metric of the event)",
                    definitions.len()
                ),
            );
        }
        let mut names_here: HashSet<&'a str> = HashSet::with_capacity(definitions.len());
        for (j, definition) in definitions.iter().enumerate() {
            let def_path = format!("{path}/{j}");
            let Some(fields) = object(definition) else {
                let found = definition.type_name();
                self.push(
                    K::InvalidMetricDefinition,
                    def_path,
                    format!("metric definition {j} is {found}, not an object"),
                );
                continue;
            };
            let name = match member(fields, "Name") {
                Some(Json::String(name)) => name.as_ref(),
                Some(other) => {
                    let found = other.type_name();
                    self.push(
                        K::InvalidMetricDefinition,
                        pointer(&def_path, "Name"),
                        format!("\"Name\" is {found}, not a string"),
                    );
                    continue;
                }
                None => {
                    let hint = case_hint(fields, "Name");
                    self.push(
                        K::InvalidMetricDefinition,
                        def_path,
                        format!("metric definition {j} has no \"Name\"{hint}"),
                    );
                    continue;
                }
            };
            let unit = self.check_unit(name, &def_path, fields);
            let resolution = self.check_resolution(name, &def_path, fields);
            if !names_here.insert(name) {
                self.push(
                    K::DuplicateMetricDefinition,
                    pointer(&def_path, "Name"),
                    format!("metric {name:?} is defined twice in this directive; merge its values into one array"),
                );
            }
            let first_use = self.metric_names.insert(name);
            self.metrics.push(MetricUse {
                name,
                directive: index,
                unit,
                resolution,
                path: def_path.clone(),
            });
            if first_use {
                self.check_metric_name_and_value(name, &def_path);
            }
        }
    }

    pub(super) fn check_unit(
        &mut self,
        name: &str,
        def_path: &str,
        fields: &'a [Member<'a>],
    ) -> &'a str {
        match member(fields, "Unit") {
            None => Unit::None.as_str(),
            Some(Json::String(unit)) => match unit.parse::<Unit>() {
                Ok(_) => unit,
                Err(error) => {
                    self.push(
                        K::InvalidUnit,
                        pointer(def_path, "Unit"),
                        format!("metric {name:?}: {error}"),
                    );
                    unit
                }
            },
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidUnit,
                    pointer(def_path, "Unit"),
                    format!("metric {name:?}: \"Unit\" is {found}, not a string"),
                );
                ""
            }
        }
    }

    pub(super) fn check_resolution(
        &mut self,
        name: &str,
        def_path: &str,
        fields: &[Member<'_>],
    ) -> Option<i64> {
        match member(fields, "StorageResolution") {
            None => Some(60),
            Some(Json::Number(Number {
                integer: Some(r @ (1 | 60)),
                integer_literal: true,
                ..
            })) => Some(*r),
            Some(other) => {
                let shown = match other {
                    Json::Number(n) => n.value.to_string(),
                    other => other.type_name().to_owned(),
                };
                self.push(
                    K::InvalidStorageResolution,
                    pointer(def_path, "StorageResolution"),
                    format!("metric {name:?}: \"StorageResolution\" is {shown}; it must be the integer 1 or 60"),
                );
                None
            }
        }
    }

    /// Checks a metric name and its root value (once per document).
    pub(super) fn check_metric_name_and_value(&mut self, name: &'a str, def_path: &str) {
        let problems = metric_name_problems(name);
        let reserved = problems.contains(&NameProblem::ReservedKey);
        for problem in problems {
            let kind = match problem {
                NameProblem::TooLong { .. } => K::MetricNameTooLong,
                NameProblem::ReservedKey => K::ReservedKey,
                _ => K::InvalidMetricName,
            };
            self.push(
                kind,
                pointer(def_path, "Name"),
                format!("metric name {name:?} {problem}"),
            );
        }
        if reserved {
            return;
        }
        let path = pointer("", name);
        let Some(value) = self.root_index.get(name).copied() else {
            self.push(
                K::MissingMetricValue,
                path,
                format!("metric {name:?} is defined but the root has no {name:?} member (references are literal root keys)"),
            );
            return;
        };
        match value {
            Json::Number(n) => self.check_number(name, *n, || path),
            Json::Array(items) => self.check_value_array(name, &path, items),
            Json::Object(fields) => self.check_histogram(name, &path, fields),
            Json::String(s) => self.push(
                K::InvalidMetricValue,
                path,
                format!("metric {name:?} is the string {s:?}; metric values must be JSON numbers, not strings"),
            ),
            other => {
                let found = other.type_name();
                self.push(
                    K::InvalidMetricValue,
                    path,
                    format!("metric {name:?} is {found}; metric values must be a number or an array of numbers"),
                );
            }
        }
    }
}
