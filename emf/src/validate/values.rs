//! Metric value checks: numbers, value arrays and the histogram object forms
//! (hard cases 10, 26–31).

use crate::json::{Json, Member, Number};
use crate::limits::MAX_VALUES_PER_METRIC;
use crate::names::{ValueProblem, value_problem};
use crate::violation::ViolationKind as K;

use super::checker::Checker;
use super::{member, pointer};

impl<'a> Checker<'a> {
    /// Checks one number; `path` is only built when there is a violation.
    pub(super) fn check_number(&mut self, name: &str, n: Number, path: impl FnOnce() -> String) {
        if n.value.is_infinite() || value_problem(n.value) == Some(ValueProblem::OutOfRange) {
            let message = if n.value.is_infinite() {
                format!(
                    "a value of metric {name:?} is too large for a 64-bit float and {}",
                    ValueProblem::OutOfRange
                )
            } else {
                format!(
                    "value {} of metric {name:?} {}",
                    n.value,
                    ValueProblem::OutOfRange
                )
            };
            self.push(K::ValueOutOfRange, path(), message);
        }
    }

    pub(super) fn check_value_array(&mut self, name: &str, path: &str, items: &[Json<'_>]) {
        if items.is_empty() {
            self.push(
                K::EmptyValueArray,
                path.to_owned(),
                format!("metric {name:?} has an empty value array"),
            );
        }
        if items.len() > MAX_VALUES_PER_METRIC {
            self.push(
                K::TooManyValues,
                path.to_owned(),
                format!(
                    "metric {name:?} has {} values; at most {MAX_VALUES_PER_METRIC} are allowed",
                    items.len()
                ),
            );
        }
        for (i, item) in items.iter().enumerate() {
            match item {
                Json::Number(n) => self.check_number(name, *n, || format!("{path}/{i}")),
                other => {
                    let found = other.type_name();
                    self.push(
                        K::InvalidMetricValue,
                        format!("{path}/{i}"),
                        format!("element {i} of metric {name:?} is {found}, not a number"),
                    );
                }
            }
        }
    }

    /// Checks the histogram forms `{Values,Counts}` and `{Min,Max,Sum,Count}` (hard case 30).
    pub(super) fn check_histogram(&mut self, name: &str, path: &str, fields: &[Member<'_>]) {
        let values = member(fields, "Values");
        let counts = member(fields, "Counts");
        if values.is_some() || counts.is_some() {
            let mut lengths = [0usize; 2];
            for (slot, (field, value)) in [("Values", values), ("Counts", counts)]
                .into_iter()
                .enumerate()
            {
                let field_path = pointer(path, field);
                let Some(Json::Array(items)) = value else {
                    self.push(
                        K::InvalidHistogram,
                        field_path,
                        format!(
                            "histogram metric {name:?} needs \"{field}\" as an array of numbers"
                        ),
                    );
                    continue;
                };
                lengths[slot] = items.len();
                if items.is_empty() {
                    self.push(
                        K::EmptyValueArray,
                        field_path.clone(),
                        format!("histogram metric {name:?} has an empty \"{field}\""),
                    );
                }
                if items.len() > MAX_VALUES_PER_METRIC {
                    self.push(
                        K::TooManyValues,
                        field_path.clone(),
                        format!("histogram metric {name:?} has {} {field}; at most {MAX_VALUES_PER_METRIC} are allowed", items.len()),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Json::Number(n) if field == "Counts" && (n.value < 0.0 || n.value.is_infinite()) => self.push(
                            K::InvalidHistogram,
                            format!("{field_path}/{i}"),
                            format!("count {} of histogram metric {name:?} must be finite and non-negative", n.value),
                        ),
                        Json::Number(n) => self.check_number(name, *n, || format!("{field_path}/{i}")),
                        other => {
                            let found = other.type_name();
                            self.push(
                                K::InvalidHistogram,
                                format!("{field_path}/{i}"),
                                format!("element {i} of \"{field}\" of metric {name:?} is {found}, not a number"),
                            );
                        }
                    }
                }
            }
            if matches!(
                (values, counts),
                (Some(Json::Array(_)), Some(Json::Array(_)))
            ) && lengths[0] != lengths[1]
            {
                self.push(
                    K::InvalidHistogram,
                    path.to_owned(),
                    format!(
                        "histogram metric {name:?} has {} Values but {} Counts; they must have equal lengths",
                        lengths[0], lengths[1]
                    ),
                );
            }
            return;
        }
        let stats = ["Max", "Min", "Sum", "Count"];
        if !stats.iter().any(|f| member(fields, f).is_some()) {
            self.push(
                K::InvalidMetricValue,
                path.to_owned(),
                format!("metric {name:?} is an object that is neither {{Values,Counts}} nor {{Min,Max,Sum,Count}}"),
            );
            return;
        }
        let mut numbers = [0f64; 4];
        for (slot, field) in stats.into_iter().enumerate() {
            match member(fields, field) {
                Some(Json::Number(n)) => {
                    numbers[slot] = n.value;
                    self.check_number(name, *n, || pointer(path, field));
                }
                _ => self.push(
                    K::InvalidHistogram,
                    pointer(path, field),
                    format!("statistic set metric {name:?} needs a numeric \"{field}\""),
                ),
            }
        }
        let [max, min, _, count] = numbers;
        if min > max {
            self.push(
                K::InvalidHistogram,
                path.to_owned(),
                format!("statistic set metric {name:?} has Min {min} > Max {max}"),
            );
        }
        if count < 0.0 {
            self.push(
                K::InvalidHistogram,
                pointer(path, "Count"),
                format!("statistic set metric {name:?} has a negative Count"),
            );
        }
    }
}
