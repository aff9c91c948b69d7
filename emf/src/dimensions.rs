//! [`DimensionSet`]: an ordered set of dimension name/value pairs whose names
//! and values have already been checked against the EMF rules.

use crate::error::EmfError;
use crate::limits::MAX_DIMENSIONS_PER_SET;
use crate::names::{dimension_name_problems, dimension_value_problems};

/// Validated dimension pairs, unique by name, in insertion order (at most 30).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DimensionSet {
    pairs: Vec<(String, String)>,
}

impl DimensionSet {
    /// An empty set (a metric with no dimensions).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from name/value pairs, checking every name and value,
    /// rejecting repeated names and more than 30 pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, EmfError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut set = Self::new();
        for (name, value) in pairs {
            set.insert(name, value)?;
        }
        Ok(set)
    }

    /// Adds one pair; fails on an invalid name or value, a repeated name, or a 31st pair.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), EmfError> {
        let name = name.into();
        let value = value.into();
        if let Some(problem) = dimension_name_problems(&name).into_iter().next() {
            return Err(EmfError::InvalidDimensionName { name, problem });
        }
        if let Some(problem) = dimension_value_problems(&value).into_iter().next() {
            return Err(EmfError::InvalidDimensionValue {
                name,
                value,
                problem,
            });
        }
        if self.get(&name).is_some() {
            return Err(EmfError::DuplicateDimensionKey { name });
        }
        if self.pairs.len() >= MAX_DIMENSIONS_PER_SET {
            return Err(EmfError::TooManyDimensions {
                count: self.pairs.len() + 1,
                max: MAX_DIMENSIONS_PER_SET,
            });
        }
        self.pairs.push((name, value));
        Ok(())
    }

    /// [`DimensionSet::insert`] in builder style.
    pub fn with(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, EmfError> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// The value of dimension `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Number of dimensions in the set.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when the set has no dimensions.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// True when both sets have the same names, in any order (hard case 13).
    pub fn same_names(&self, other: &DimensionSet) -> bool {
        self.len() == other.len() && self.pairs.iter().all(|(n, _)| other.get(n).is_some())
    }

    /// `defaults` followed by `custom`; custom values win for shared names.
    /// Fails when the result would exceed 30 names (hard case 14).
    pub(crate) fn merged(
        defaults: &DimensionSet,
        custom: &DimensionSet,
    ) -> Result<DimensionSet, EmfError> {
        let mut pairs: Vec<(String, String)> = defaults
            .pairs
            .iter()
            .map(|(n, v)| (n.clone(), custom.get(n).unwrap_or(v).to_owned()))
            .collect();
        pairs.extend(
            custom
                .pairs
                .iter()
                .filter(|(n, _)| defaults.get(n).is_none())
                .cloned(),
        );
        if pairs.len() > MAX_DIMENSIONS_PER_SET {
            return Err(EmfError::TooManyDimensions {
                count: pairs.len(),
                max: MAX_DIMENSIONS_PER_SET,
            });
        }
        Ok(DimensionSet { pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_pairs() {
        assert!(matches!(
            DimensionSet::from_pairs([("A", "1"), ("A", "2")]),
            Err(EmfError::DuplicateDimensionKey { .. })
        ));
        assert!(matches!(
            DimensionSet::from_pairs([("A", "")]),
            Err(EmfError::InvalidDimensionValue { .. })
        ));
        assert!(matches!(
            DimensionSet::from_pairs([("_aws", "x")]),
            Err(EmfError::InvalidDimensionName { .. })
        ));
        assert!(matches!(
            DimensionSet::from_pairs([("A", "é")]),
            Err(EmfError::InvalidDimensionValue { .. })
        ));
        let thirty = (0..30).map(|i| (format!("D{i}"), "v"));
        let mut set = DimensionSet::from_pairs(thirty).unwrap();
        assert_eq!(set.len(), 30);
        assert!(matches!(
            set.insert("D30", "v"),
            Err(EmfError::TooManyDimensions { count: 31, max: 30 })
        ));
    }

    #[test]
    fn merge_puts_defaults_first_and_lets_custom_values_win() {
        let defaults = DimensionSet::from_pairs([("Service", "a"), ("Host", "h")]).unwrap();
        let custom = DimensionSet::from_pairs([("Op", "x"), ("Service", "b")]).unwrap();
        let merged = DimensionSet::merged(&defaults, &custom).unwrap();
        assert_eq!(
            merged.iter().collect::<Vec<_>>(),
            vec![("Service", "b"), ("Host", "h"), ("Op", "x")]
        );
        let wide = DimensionSet::from_pairs((0..29).map(|i| (format!("C{i}"), "v"))).unwrap();
        assert!(matches!(
            DimensionSet::merged(&defaults, &wide),
            Err(EmfError::TooManyDimensions { count: 31, .. })
        ));
        assert!(
            custom.same_names(&DimensionSet::from_pairs([("Service", "z"), ("Op", "y")]).unwrap())
        );
    }
}
