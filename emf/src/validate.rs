//! The EMF validator: [`validate`] returns every rule a log message breaks.
//!
//! It checks the message as CloudWatch will see it (emf.md §1 and hard cases):
//! transport shape (non-empty, size, one single-line JSON object), the `_aws`
//! metadata, the timestamp window relative to a caller-supplied `now`, every
//! directive's namespace, dimension sets and metric definitions, and every
//! referenced root member. It never panics and never stops at the first
//! problem; only a message that is not JSON at all yields a single violation.

use std::collections::{HashMap, HashSet};

use crate::json::{Json, Number, ParseErrorKind, parse};
use crate::limits::{
    MAX_DIMENSIONS_PER_SET, MAX_EVENT_BYTES, MAX_FUTURE_MS, MAX_METRICS_PER_DIRECTIVE, MAX_PAST_MS,
    MAX_VALUES_PER_METRIC,
};
use crate::names::{
    NameProblem, RESERVED_KEY, ValueProblem, dimension_name_problems, dimension_value_problems,
    metric_name_problems, namespace_problems, value_problem,
};
use crate::unit::Unit;
use crate::violation::{Violation, ViolationKind as K};

/// Tunable limits of the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Largest accepted message in bytes (default [`MAX_EVENT_BYTES`]; the host may configure less).
    pub max_event_bytes: usize,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

/// Every violation in `message`, checked against the default limits; `now_ms`
/// is the current time in ms since the Unix epoch (capture it once per batch).
pub fn validate(message: &str, now_ms: i64) -> Vec<Violation> {
    validate_with(message, now_ms, &ValidateOptions::default())
}

/// [`validate`] with explicit options.
pub fn validate_with(message: &str, now_ms: i64, options: &ValidateOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    if message.is_empty() {
        push(
            &mut out,
            K::EmptyMessage,
            String::new(),
            "the message is empty".into(),
        );
        return out;
    }
    if message.len() > options.max_event_bytes {
        push(
            &mut out,
            K::EventTooLarge,
            String::new(),
            format!(
                "the message is {} bytes; at most {} are allowed",
                message.len(),
                options.max_event_bytes
            ),
        );
    }
    let trimmed = message.trim_matches(is_json_ws);
    if trimmed.len() != message.len() {
        push(
            &mut out,
            K::SurroundingWhitespace,
            String::new(),
            "the message starts or ends with whitespace; EMF must be the entire message".into(),
        );
    }
    if trimmed.contains(['\n', '\r']) {
        push(
            &mut out,
            K::MultilineDocument,
            String::new(),
            "the message spans several lines; write the document as one compact line".into(),
        );
    }
    let root = match parse(message) {
        Ok(root) => root,
        Err(error) => {
            let (kind, text) = match error.kind {
                ParseErrorKind::NonFinite(token) => (
                    K::NonFiniteValue,
                    format!(
                        "{token} at byte {} is not a JSON number; non-finite values cannot be published",
                        error.offset
                    ),
                ),
                ParseErrorKind::Syntax(reason) => (
                    K::InvalidJson,
                    format!("invalid JSON at byte {}: {reason}", error.offset),
                ),
            };
            push(&mut out, kind, String::new(), text);
            return out;
        }
    };
    check_duplicate_keys(&root, &mut String::new(), &mut out);
    let Json::Object(members) = &root else {
        push(
            &mut out,
            K::NotAnObject,
            String::new(),
            format!("the document is {}, not a JSON object", root.type_name()),
        );
        return out;
    };
    Checker::new(members, now_ms, out).run()
}

/// JSON insignificant whitespace (RFC 8259 `ws`).
fn is_json_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Appends one violation.
fn push(out: &mut Vec<Violation>, kind: K, path: String, message: String) {
    out.push(Violation {
        kind,
        path,
        message,
    });
}

/// Appends `segment` to a JSON Pointer, escaping `~` and `/` (RFC 6901).
fn pointer(base: &str, segment: &str) -> String {
    let mut p = String::with_capacity(base.len() + segment.len() + 1);
    p.push_str(base);
    p.push('/');
    for c in segment.chars() {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
    p
}

/// Reports every object member name that appears twice, anywhere (hard cases 4–5).
fn check_duplicate_keys(value: &Json, path: &mut String, out: &mut Vec<Violation>) {
    match value {
        Json::Object(members) => {
            let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
            let mut reported: HashSet<&str> = HashSet::new();
            for (key, _) in members {
                if !seen.insert(key) && reported.insert(key) {
                    push(
                        out,
                        K::DuplicateKey,
                        pointer(path, key),
                        format!(
                            "member {key:?} appears more than once; JSON readers keep an arbitrary one"
                        ),
                    );
                }
            }
            for (key, child) in members {
                if matches!(child, Json::Object(_) | Json::Array(_)) {
                    let len = path.len();
                    *path = pointer(path, key);
                    check_duplicate_keys(child, path, out);
                    path.truncate(len);
                }
            }
        }
        Json::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                if matches!(child, Json::Object(_) | Json::Array(_)) {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    check_duplicate_keys(child, path, out);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// A hint when `members` has `wanted` in a different letter case (hard case 3).
fn case_hint(members: &[(String, Json)], wanted: &str) -> String {
    match members
        .iter()
        .find(|(k, _)| k != wanted && k.eq_ignore_ascii_case(wanted))
    {
        Some((k, _)) => format!(" (found {k:?}; member names are case-sensitive)"),
        None => String::new(),
    }
}

/// The members of `value` when it is an object.
fn object(value: &Json) -> Option<&[(String, Json)]> {
    match value {
        Json::Object(members) => Some(members),
        _ => None,
    }
}

/// The member `key` of `members`; the last one wins, as in most JSON readers
/// (duplicates are reported separately).
fn member<'a>(members: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// One metric definition, collected for the cross-directive checks.
struct MetricUse<'a> {
    name: &'a str,
    directive: usize,
    unit: &'a str,
    resolution: Option<i64>,
    path: String,
}

/// One directive's identity, for the double-counting check (hard case 22).
struct DirectiveUse<'a> {
    namespace: Option<&'a str>,
    sets: Vec<Vec<&'a str>>,
}

/// Walks one parsed document and collects violations.
struct Checker<'a> {
    root: &'a [(String, Json)],
    root_index: HashMap<&'a str, &'a Json>,
    now_ms: i64,
    out: Vec<Violation>,
    dimension_keys: Vec<(&'a str, String)>,
    checked_dimension_keys: HashSet<&'a str>,
    metrics: Vec<MetricUse<'a>>,
    directives: Vec<DirectiveUse<'a>>,
}

impl<'a> Checker<'a> {
    fn new(root: &'a [(String, Json)], now_ms: i64, out: Vec<Violation>) -> Self {
        let mut root_index = HashMap::with_capacity(root.len());
        for (k, v) in root {
            // The last duplicate wins, as in most JSON readers.
            root_index.insert(k.as_str(), v);
        }
        Self {
            root,
            root_index,
            now_ms,
            out,
            dimension_keys: Vec::new(),
            checked_dimension_keys: HashSet::new(),
            metrics: Vec::new(),
            directives: Vec::new(),
        }
    }

    fn push(&mut self, kind: K, path: String, message: String) {
        self.out.push(Violation {
            kind,
            path,
            message,
        });
    }

    fn run(mut self) -> Vec<Violation> {
        let Some(aws) = self.root_index.get(RESERVED_KEY).copied() else {
            let hint = case_hint(self.root, RESERVED_KEY);
            self.push(
                K::MissingAws,
                "/_aws".into(),
                format!("the root has no \"_aws\" member{hint}; it is not EMF"),
            );
            return self.out;
        };
        let Some(aws) = object(aws) else {
            let found = aws.type_name();
            self.push(
                K::InvalidAws,
                "/_aws".into(),
                format!("\"_aws\" is {found}, not an object"),
            );
            return self.out;
        };
        for agent_key in ["LogGroupName", "LogStreamName"] {
            if member(aws, agent_key).is_some() {
                self.push(
                    K::AgentRoutingMember,
                    pointer("/_aws", agent_key),
                    format!("\"_aws.{agent_key}\" is a CloudWatch agent routing member; the host decides where events go"),
                );
            }
        }
        self.check_timestamp(aws);
        match member(aws, "CloudWatchMetrics") {
            None => {
                let hint = case_hint(aws, "CloudWatchMetrics");
                self.push(
                    K::MissingCloudWatchMetrics,
                    "/_aws/CloudWatchMetrics".into(),
                    format!("\"_aws\" has no \"CloudWatchMetrics\" array{hint}"),
                );
            }
            Some(Json::Array(directives)) => {
                if directives.is_empty() {
                    self.push(
                        K::NoMetrics,
                        "/_aws/CloudWatchMetrics".into(),
                        "\"CloudWatchMetrics\" is empty; a document without metrics should not be sent".into(),
                    );
                }
                for (i, directive) in directives.iter().enumerate() {
                    self.check_directive(i, directive);
                }
            }
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidCloudWatchMetrics,
                    "/_aws/CloudWatchMetrics".into(),
                    format!("\"CloudWatchMetrics\" is {found}, not an array"),
                );
            }
        }
        self.check_cross_directive();
        self.out
    }

    fn check_timestamp(&mut self, aws: &'a [(String, Json)]) {
        let path = "/_aws/Timestamp".to_string();
        let number = match member(aws, "Timestamp") {
            None => {
                let hint = case_hint(aws, "Timestamp");
                self.push(
                    K::MissingTimestamp,
                    path,
                    format!("\"_aws\" has no \"Timestamp\"{hint}"),
                );
                return;
            }
            Some(Json::Number(n)) => *n,
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidTimestamp,
                    path,
                    format!("\"Timestamp\" is {found}; it must be an integer number of milliseconds since the Unix epoch"),
                );
                return;
            }
        };
        if !number.integer_literal {
            self.push(
                K::InvalidTimestamp,
                path.clone(),
                format!(
                    "\"Timestamp\" {} has a fraction or exponent; write integer milliseconds",
                    number.value
                ),
            );
        }
        let ts = match number.integer {
            Some(ts) => i128::from(ts),
            None if number.value.is_nan() => return,
            // Integers beyond i64 (or non-integers): compare the float, clamped.
            None => number.value.clamp(-1e30, 1e30) as i128,
        };
        let now = i128::from(self.now_ms);
        let unit_hint = if ts.abs() < 100_000_000_000 {
            " (it looks like seconds; EMF timestamps are milliseconds)"
        } else if ts > now.saturating_mul(100) && now > 0 {
            " (it looks like microseconds or nanoseconds; EMF timestamps are milliseconds)"
        } else {
            ""
        };
        if ts < now - i128::from(MAX_PAST_MS) {
            self.push(
                K::TimestampTooOld,
                path,
                format!(
                    "\"Timestamp\" {ts} is {} ms before now ({}); at most 14 days in the past are accepted{unit_hint}",
                    now - ts,
                    self.now_ms
                ),
            );
        } else if ts > now + i128::from(MAX_FUTURE_MS) {
            self.push(
                K::TimestampInFuture,
                path,
                format!(
                    "\"Timestamp\" {ts} is {} ms after now ({}); at most 2 hours in the future are accepted{unit_hint}",
                    ts - now,
                    self.now_ms
                ),
            );
        }
    }

    fn check_directive(&mut self, index: usize, directive: &'a Json) {
        let base = format!("/_aws/CloudWatchMetrics/{index}");
        let Some(members) = object(directive) else {
            self.directives.push(DirectiveUse {
                namespace: None,
                sets: Vec::new(),
            });
            let found = directive.type_name();
            self.push(
                K::InvalidDirective,
                base,
                format!("directive {index} is {found}, not an object"),
            );
            return;
        };
        let namespace = self.check_namespace(&base, members);
        let sets = self.check_dimensions(&base, members);
        self.directives.push(DirectiveUse { namespace, sets });
        self.check_metrics(index, &base, members);
    }

    fn check_namespace(&mut self, base: &str, members: &'a [(String, Json)]) -> Option<&'a str> {
        let path = pointer(base, "Namespace");
        match member(members, "Namespace") {
            None => {
                let hint = case_hint(members, "Namespace");
                self.push(
                    K::MissingNamespace,
                    path,
                    format!("the directive has no \"Namespace\"{hint}"),
                );
                None
            }
            Some(Json::String(namespace)) => {
                for problem in namespace_problems(namespace) {
                    let kind = match problem {
                        NameProblem::TooLong { .. } => K::NamespaceTooLong,
                        NameProblem::ReservedNamespace => K::ReservedNamespace,
                        _ => K::InvalidNamespace,
                    };
                    self.push(
                        kind,
                        path.clone(),
                        format!("namespace {namespace:?} {problem}"),
                    );
                }
                Some(namespace)
            }
            Some(other) => {
                let found = other.type_name();
                self.push(
                    K::InvalidNamespace,
                    path,
                    format!("\"Namespace\" is {found}, not a string"),
                );
                None
            }
        }
    }

    /// Checks `Dimensions`; returns the valid sets as sorted key lists.
    fn check_dimensions(&mut self, base: &str, members: &'a [(String, Json)]) -> Vec<Vec<&'a str>> {
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
                if names.contains(&name.as_str()) {
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
    fn check_dimension_key(&mut self, name: &'a str, key_path: String) {
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

    fn check_metrics(&mut self, index: usize, base: &str, members: &'a [(String, Json)]) {
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
        let mut names_here: Vec<&'a str> = Vec::with_capacity(definitions.len());
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
                Some(Json::String(name)) => name.as_str(),
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
            if names_here.contains(&name) {
                self.push(
                    K::DuplicateMetricDefinition,
                    pointer(&def_path, "Name"),
                    format!("metric {name:?} is defined twice in this directive; merge its values into one array"),
                );
            } else {
                names_here.push(name);
            }
            let first_use = !self.metrics.iter().any(|m| m.name == name);
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

    fn check_unit(&mut self, name: &str, def_path: &str, fields: &'a [(String, Json)]) -> &'a str {
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

    fn check_resolution(
        &mut self,
        name: &str,
        def_path: &str,
        fields: &[(String, Json)],
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
    fn check_metric_name_and_value(&mut self, name: &'a str, def_path: &str) {
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
            Json::Number(n) => self.check_number(name, &path, *n),
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

    fn check_number(&mut self, name: &str, path: &str, n: Number) {
        if n.value.is_infinite() || value_problem(n.value) == Some(ValueProblem::OutOfRange) {
            self.push(
                K::ValueOutOfRange,
                path.to_owned(),
                if n.value.is_infinite() {
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
                },
            );
        }
    }

    fn check_value_array(&mut self, name: &str, path: &str, items: &[Json]) {
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
                Json::Number(n) => self.check_number(name, &format!("{path}/{i}"), *n),
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
    fn check_histogram(&mut self, name: &str, path: &str, fields: &[(String, Json)]) {
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
                        Json::Number(n) => self.check_number(name, &format!("{field_path}/{i}"), *n),
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
                    self.check_number(name, &pointer(path, field), *n);
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

    /// Collisions, conflicting units/resolutions and double counting across the document.
    fn check_cross_directive(&mut self) {
        let mut reported: HashSet<&str> = HashSet::new();
        let dimension_keys = std::mem::take(&mut self.dimension_keys);
        for (key, path) in &dimension_keys {
            if *key != RESERVED_KEY
                && self.metrics.iter().any(|m| m.name == *key)
                && reported.insert(key)
            {
                self.push(
                    K::KeyCollision,
                    path.clone(),
                    format!("{key:?} is used both as a metric and as a dimension; the root holds one value per key"),
                );
            }
        }
        let metrics = std::mem::take(&mut self.metrics);
        let mut seen_names: HashSet<&str> = HashSet::new();
        for (i, first) in metrics.iter().enumerate() {
            if !seen_names.insert(first.name) {
                continue;
            }
            let later = || metrics[i + 1..].iter().filter(|m| m.name == first.name);
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
