//! Dimension checks: `Dimensions` shape, set size, duplicate keys and sets,
//! dimension names, and each dimension's root value (hard cases 12–19).

use crate::json::{Json, Member};
use crate::limits::MAX_DIMENSIONS_PER_SET;
use crate::names::{NameProblem, dimension_name_problems, dimension_value_problems};
use crate::violation::ViolationKind as K;

use super::checker::Checker;
use super::{case_hint, member, pointer};

impl<'a> Checker<'a> {
    /// Checks `Dimensions`; returns the valid sets as sorted key lists.
    pub(super) fn check_dimensions(
        &mut self,
        base: &str,
        members: &'a [Member<'a>],
    ) -> Vec<Vec<&'a str>> {
        let path = pointer(base, "Dimensions");
        let sets = match member(members, "Dimensions") {
            None => {
                let hint = case_hint(members, "Dimensions");
                self.push(
                    K::MissingDimensions,
                    path,
                    format!(
                        "the directive has no \"Dimensions\"{hint}; use [[]] for no dimensions"
                    ),
                );
                return Vec::new();
            }
            Some(Json::Array(sets)) => sets,
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidDimensions,
                    path,
                    format!("\"Dimensions\" is {found}, not an array of arrays"),
                );
                return Vec::new();
            }
        };
        if sets.is_empty() {
            self.push(
                K::EmptyDimensions,
                path.clone(),
                "\"Dimensions\" is []; write [[]] for metrics without dimensions".into(),
            );
        }
        let mut seen_sets: Vec<Vec<&'a str>> = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            let set_path = format!("{path}/{i}");
            let Json::Array(keys) = set else {
                let found = set.type_name();
                self.push(
                    K::InvalidDimensions,
                    set_path,
                    format!("dimension set {i} is {found}, not an array of strings"),
                );
                continue;
            };
            if keys.len() > MAX_DIMENSIONS_PER_SET {
                self.push(
                    K::TooManyDimensions,
                    set_path.clone(),
                    format!("dimension set {i} has {} keys; at most {MAX_DIMENSIONS_PER_SET} are allowed", keys.len()),
                );
            }
            let mut names: Vec<&'a str> = Vec::with_capacity(keys.len());
            for (j, key) in keys.iter().enumerate() {
                let key_path = format!("{set_path}/{j}");
                let Json::String(name) = key else {
                    let found = key.type_name();
                    self.push(
                        K::InvalidDimensions,
                        key_path,
                        format!("dimension key {j} of set {i} is {found}, not a string"),
                    );
                    continue;
                };
                if names.contains(&name.as_ref()) {
                    self.push(
                        K::DuplicateDimensionKey,
                        key_path,
                        format!("dimension {name:?} appears twice in dimension set {i}"),
                    );
                    continue;
                }
                names.push(name);
                self.check_dimension_key(name, key_path);
            }
            let mut sorted = names.clone();
            sorted.sort_unstable();
            if seen_sets.contains(&sorted) {
                self.push(
                    K::DuplicateDimensionSet,
                    set_path,
                    format!("dimension set {i} {names:?} repeats an earlier set; each set is a separate billed metric"),
                );
            } else {
                seen_sets.push(sorted);
            }
        }
        seen_sets
    }

    /// Checks a dimension name and, once per document, its root value.
    pub(super) fn check_dimension_key(&mut self, name: &'a str, key_path: String) {
        self.dimension_keys.push((name, key_path.clone()));
        if !self.checked_dimension_keys.insert(name) {
            return;
        }
        let problems = dimension_name_problems(name);
        let reserved = problems.contains(&NameProblem::ReservedKey);
        for problem in problems {
            let kind = match problem {
                NameProblem::TooLong { .. } => K::DimensionNameTooLong,
                NameProblem::ReservedKey => K::ReservedKey,
                _ => K::InvalidDimensionName,
            };
            self.push(
                kind,
                key_path.clone(),
                format!("dimension name {name:?} {problem}"),
            );
        }
        if reserved {
            return;
        }
        let value_path = pointer("", name);
        match self.root_index.get(name).copied() {
            None => self.push(
                K::MissingDimensionValue,
                value_path,
                format!("dimension {name:?} is referenced but the root has no {name:?} member"),
            ),
            Some(Json::String(value)) => {
                for problem in dimension_value_problems(value) {
                    let kind = if problem.is_too_long() {
                        K::DimensionValueTooLong
                    } else {
                        K::InvalidDimensionValue
                    };
                    self.push(
                        kind,
                        value_path.clone(),
                        format!("value of dimension {name:?} {problem}"),
                    );
                }
            }
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::DimensionValueNotString,
                    value_path,
                    format!("dimension {name:?} is {found} at the root; dimension values must be strings"),
                );
            }
        }
    }
}
