//! The document walker: `_aws`, the timestamp window and each directive's
//! namespace; dimensions, metrics and cross-directive rules live in sibling files.

use std::collections::{HashMap, HashSet};

use crate::json::{Json, Member};
use crate::limits::{MAX_FUTURE_MS, MAX_PAST_MS};
use crate::names::{NameProblem, RESERVED_KEY, namespace_problems};
use crate::violation::{Violation, ViolationKind as K};

use super::{case_hint, member, object, pointer};

/// One metric definition, collected for the cross-directive checks.
pub(super) struct MetricUse<'a> {
    pub(super) name: &'a str,
    pub(super) directive: usize,
    pub(super) unit: &'a str,
    pub(super) resolution: Option<i64>,
    pub(super) path: String,
}

/// One directive's identity, for the double-counting check (hard case 22).
pub(super) struct DirectiveUse<'a> {
    pub(super) namespace: Option<&'a str>,
    pub(super) sets: Vec<Vec<&'a str>>,
}

/// Walks one parsed document and collects violations.
pub(super) struct Checker<'a> {
    pub(super) root: &'a [Member<'a>],
    pub(super) root_index: HashMap<&'a str, &'a Json<'a>>,
    pub(super) now_ms: i64,
    pub(super) out: Vec<Violation>,
    pub(super) dimension_keys: Vec<(&'a str, String)>,
    pub(super) checked_dimension_keys: HashSet<&'a str>,
    pub(super) metrics: Vec<MetricUse<'a>>,
    pub(super) metric_names: HashSet<&'a str>,
    pub(super) directives: Vec<DirectiveUse<'a>>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(root: &'a [Member<'a>], now_ms: i64, out: Vec<Violation>) -> Self {
        let mut root_index = HashMap::with_capacity(root.len());
        for (k, v) in root {
            // The last duplicate wins, as in most JSON readers.
            root_index.insert(k.as_ref(), v);
        }
        Self {
            root,
            root_index,
            now_ms,
            out,
            dimension_keys: Vec::new(),
            checked_dimension_keys: HashSet::new(),
            metrics: Vec::new(),
            metric_names: HashSet::new(),
            directives: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, kind: K, path: String, message: String) {
        self.out.push(Violation {
            kind,
            path,
            message,
        });
    }

    pub(super) fn run(mut self) -> Vec<Violation> {
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

    pub(super) fn check_timestamp(&mut self, aws: &'a [Member<'a>]) {
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

    pub(super) fn check_directive(&mut self, index: usize, directive: &'a Json<'a>) {
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

    pub(super) fn check_namespace(
        &mut self,
        base: &str,
        members: &'a [Member<'a>],
    ) -> Option<&'a str> {
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
}
