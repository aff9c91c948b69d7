//! The EMF validator: [`validate`] returns every rule a log message breaks.
//!
//! It checks the message as CloudWatch will see it (the EMF specification and
//! the hard cases of `emf/HARD_CASES.md`): transport shape (non-empty, size,
//! one single-line JSON object), the `_aws` metadata, the timestamp window
//! relative to a caller-supplied `now`, every directive's namespace, dimension
//! sets and metric definitions, and every referenced root member. It never panics and never stops at the first
//! problem; only a message that is not JSON at all yields a single violation.

use std::collections::HashSet;

use crate::json::{Json, Member, ParseErrorKind, parse};
use crate::limits::MAX_EVENT_BYTES;
use crate::violation::{Violation, ViolationKind as K};

mod checker;
mod cross;
mod dimensions;
mod metrics;
mod values;

use checker::Checker;

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
fn check_duplicate_keys(value: &Json<'_>, path: &mut String, out: &mut Vec<Violation>) {
    match value {
        Json::Object(members) => {
            for key in duplicate_names(members) {
                push(
                    out,
                    K::DuplicateKey,
                    pointer(path, key),
                    format!(
                        "member {key:?} appears more than once; JSON readers keep an arbitrary one"
                    ),
                );
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

/// Names that appear more than once in `members`, each reported once, in order.
/// Small objects are compared pairwise, which is faster than hashing.
fn duplicate_names<'a>(members: &'a [Member<'_>]) -> Vec<&'a str> {
    let mut duplicates: Vec<&str> = Vec::new();
    if members.len() <= 32 {
        for (i, (key, _)) in members.iter().enumerate() {
            let key: &str = key;
            if members[..i].iter().any(|(k, _)| k == key) && !duplicates.contains(&key) {
                duplicates.push(key);
            }
        }
    } else {
        let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
        for (key, _) in members {
            if !seen.insert(key) && !duplicates.contains(&key.as_ref()) {
                duplicates.push(key);
            }
        }
    }
    duplicates
}

/// A hint when `members` has `wanted` in a different letter case (hard case 3).
fn case_hint(members: &[Member<'_>], wanted: &str) -> String {
    match members
        .iter()
        .find(|(k, _)| k != wanted && k.eq_ignore_ascii_case(wanted))
    {
        Some((k, _)) => format!(" (found {k:?}; member names are case-sensitive)"),
        None => String::new(),
    }
}

/// The members of `value` when it is an object.
fn object<'a>(value: &'a Json<'a>) -> Option<&'a [Member<'a>]> {
    match value {
        Json::Object(members) => Some(members),
        _ => None,
    }
}

/// The member `key` of `members`; the last one wins, as in most JSON readers
/// (duplicates are reported separately).
fn member<'a>(members: &'a [Member<'a>], key: &str) -> Option<&'a Json<'a>> {
    members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}
