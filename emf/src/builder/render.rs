//! Rendering for [`MetricsLogger::flush`]: plans the split into documents of at
//! most 100 metrics and 100 values per metric, writes each document as one
//! compact JSON line, and halves any document above the size limit.

use super::MetricsLogger;
use crate::dimensions::DimensionSet;
use crate::error::EmfError;
use crate::limits::{MAX_METRICS_PER_DIRECTIVE, MAX_VALUES_PER_METRIC};
use crate::unit::StorageResolution;
use crate::write::{push_json_number, push_json_string};

/// A slice of one metric's values that goes into one document.
#[derive(Debug, Clone, Copy)]
struct Piece {
    metric: usize,
    start: usize,
    end: usize,
}

impl MetricsLogger {
    /// Every document for the current metrics, declaring `sets`.
    pub(super) fn render_documents(&self, sets: &[DimensionSet]) -> Result<Vec<String>, EmfError> {
        let head = self.render_head(sets);
        let tail = self.render_tail(sets);
        let mut documents = Vec::new();
        for group in self.plan() {
            self.render_fitting(&head, &tail, &group, &mut documents)?;
        }
        Ok(documents)
    }

    /// Splits the metrics into groups of at most 100 pieces of at most 100 values.
    fn plan(&self) -> Vec<Vec<Piece>> {
        let mut groups = Vec::new();
        let mut round = 0;
        loop {
            let start = round * MAX_VALUES_PER_METRIC;
            let pieces: Vec<Piece> = self
                .metrics
                .iter()
                .enumerate()
                .filter(|(_, m)| m.values.len() > start)
                .map(|(i, m)| Piece {
                    metric: i,
                    start,
                    end: (start + MAX_VALUES_PER_METRIC).min(m.values.len()),
                })
                .collect();
            if pieces.is_empty() {
                return groups;
            }
            groups.extend(
                pieces
                    .chunks(MAX_METRICS_PER_DIRECTIVE)
                    .map(<[Piece]>::to_vec),
            );
            round += 1;
        }
    }

    /// Renders `group`, halving it (by metrics, then by values) until each
    /// document fits the size limit.
    fn render_fitting(
        &self,
        head: &str,
        tail: &str,
        group: &[Piece],
        out: &mut Vec<String>,
    ) -> Result<(), EmfError> {
        let document = self.render(head, tail, group);
        if document.len() <= self.max_event_bytes {
            out.push(document);
            return Ok(());
        }
        if group.len() > 1 {
            let (left, right) = group.split_at(group.len() / 2);
            self.render_fitting(head, tail, left, out)?;
            return self.render_fitting(head, tail, right, out);
        }
        let piece = group[0];
        if piece.end - piece.start > 1 {
            let middle = piece.start + (piece.end - piece.start) / 2;
            self.render_fitting(
                head,
                tail,
                &[Piece {
                    end: middle,
                    ..piece
                }],
                out,
            )?;
            return self.render_fitting(
                head,
                tail,
                &[Piece {
                    start: middle,
                    ..piece
                }],
                out,
            );
        }
        Err(EmfError::DocumentTooLarge {
            bytes: document.len(),
            max: self.max_event_bytes,
        })
    }

    /// `{"_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":…,"Metrics":[`
    fn render_head(&self, sets: &[DimensionSet]) -> String {
        let mut s = String::with_capacity(128);
        s.push_str("{\"_aws\":{\"Timestamp\":");
        s.push_str(&self.timestamp_ms.to_string());
        s.push_str(",\"CloudWatchMetrics\":[{\"Namespace\":");
        push_json_string(&mut s, &self.namespace);
        s.push_str(",\"Dimensions\":[");
        if sets.is_empty() {
            // Hard case 12: `[[]]`, never `[]`.
            s.push_str("[]");
        }
        for (i, set) in sets.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('[');
            for (j, (name, _)) in set.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                push_json_string(&mut s, name);
            }
            s.push(']');
        }
        s.push_str("],\"Metrics\":[");
        s
    }

    /// `]}]}` followed by the dimension values and properties (each a `,"key":value`).
    fn render_tail(&self, sets: &[DimensionSet]) -> String {
        let mut s = String::from("]}]}");
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in sets.iter().flat_map(DimensionSet::iter) {
            if !seen.contains(&name) {
                seen.push(name);
                s.push(',');
                push_json_string(&mut s, name);
                s.push(':');
                push_json_string(&mut s, value);
            }
        }
        for (key, value) in &self.properties {
            s.push(',');
            push_json_string(&mut s, key);
            s.push(':');
            s.push_str(&value.to_string());
        }
        s
    }

    /// One complete document holding `group`.
    fn render(&self, head: &str, tail: &str, group: &[Piece]) -> String {
        let mut s = String::with_capacity(head.len() + tail.len() + group.len() * 64);
        s.push_str(head);
        for (i, piece) in group.iter().enumerate() {
            let metric = &self.metrics[piece.metric];
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"Name\":");
            push_json_string(&mut s, &metric.name);
            s.push_str(",\"Unit\":\"");
            s.push_str(metric.unit.as_str());
            s.push('"');
            if metric.resolution != StorageResolution::Standard {
                // Hard case 36: the default 60 is omitted.
                s.push_str(",\"StorageResolution\":");
                s.push_str(&metric.resolution.seconds().to_string());
            }
            s.push('}');
        }
        s.push_str(tail);
        for piece in group {
            let metric = &self.metrics[piece.metric];
            s.push(',');
            push_json_string(&mut s, &metric.name);
            s.push(':');
            let values = &metric.values[piece.start..piece.end];
            if let [single] = values {
                // Hard case 32: a single sample is always written as a scalar.
                push_json_number(&mut s, *single);
            } else {
                s.push('[');
                for (j, value) in values.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    push_json_number(&mut s, *value);
                }
                s.push(']');
            }
        }
        s.push('}');
        s
    }
}
