//! Rules across directives: dimension/metric key collisions, conflicting units
//! and resolutions, and double counting (hard cases 4, 22, 34, 35).

use std::collections::{HashMap, HashSet};

use crate::names::RESERVED_KEY;
use crate::violation::ViolationKind as K;

use super::checker::Checker;

impl<'a> Checker<'a> {
    /// Collisions, conflicting units/resolutions and double counting across the document.
    pub(super) fn check_cross_directive(&mut self) {
        let mut reported: HashSet<&str> = HashSet::new();
        let dimension_keys = std::mem::take(&mut self.dimension_keys);
        for (key, path) in &dimension_keys {
            if *key != RESERVED_KEY && self.metric_names.contains(key) && reported.insert(key) {
                self.push(
                    K::KeyCollision,
                    path.clone(),
                    format!("{key:?} is used both as a metric and as a dimension; the root holds one value per key"),
                );
            }
        }
        let metrics = std::mem::take(&mut self.metrics);
        // Uses of each name, in order of first appearance; only repeated names matter.
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (i, m) in metrics.iter().enumerate() {
            let uses = groups.entry(m.name).or_default();
            if uses.is_empty() {
                order.push(m.name);
            }
            uses.push(i);
        }
        for name in order {
            let uses = &groups[name];
            if uses.len() < 2 {
                continue;
            }
            let first = &metrics[uses[0]];
            let later = || uses[1..].iter().map(|&i| &metrics[i]);
            if let Some(other) = later().find(|m| m.unit != first.unit) {
                self.push(
                    K::ConflictingUnit,
                    other.path.clone(),
                    format!(
                        "metric {:?} has unit {:?} here but {:?} at {}",
                        first.name, other.unit, first.unit, first.path
                    ),
                );
            }
            if let Some(other) = later().find(|m| {
                m.resolution.is_some()
                    && first.resolution.is_some()
                    && m.resolution != first.resolution
            }) {
                self.push(
                    K::ConflictingStorageResolution,
                    other.path.clone(),
                    format!(
                        "metric {:?} has storage resolution {:?} here but {:?} at {}",
                        first.name,
                        other.resolution.unwrap_or_default(),
                        first.resolution.unwrap_or_default(),
                        first.path
                    ),
                );
            }
            for other in later().filter(|m| m.directive != first.directive) {
                let (a, b) = (
                    &self.directives.get(first.directive),
                    &self.directives.get(other.directive),
                );
                let (Some(a), Some(b)) = (a, b) else { continue };
                if a.namespace.is_some()
                    && a.namespace == b.namespace
                    && a.sets.iter().any(|s| b.sets.contains(s))
                {
                    self.push(
                        K::DoubleCountedMetric,
                        other.path.clone(),
                        format!(
                            "metric {:?} is published twice to namespace {:?} with the same dimension set (also at {})",
                            first.name,
                            a.namespace.unwrap_or_default(),
                            first.path
                        ),
                    );
                    break;
                }
            }
        }
    }
}
