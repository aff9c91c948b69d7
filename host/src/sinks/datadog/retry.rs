//! What a DataDog answer (or a failure to get one) means for the batch.
//!
//! | answer | [`Class`] | delivery policy | what the operator sees |
//! |---|---|---|---|
//! | 2xx | `Accepted` | done | — |
//! | 400 | `BadRequest` | drop the batch, counted under the reason DataDog gave | the reason, escaped and capped |
//! | 401, 403 | `Credentials` | `Credentials`: hold the data, long backoff, alert; a key file is re-read first | "the API key was refused", where it came from |
//! | 413 | `TooLarge` | `InvalidParameter`: split the batch and send the halves | — (the encoder's limits should make it rare) |
//! | 429 | `Throttled` | `Throttled`: rate feedback, back off, never a breaker trip | — |
//! | 408, 5xx | `Transient` | `Transient`: back off and retry | the status |
//! | timeout, connection refused or reset, unreadable answer | `Transient` | `Transient` | the cause |
//! | other 4xx (404 from a wrong `endpoint_url`, 405, 415, …), 1xx/3xx | `Permanent` | `Permanent`: a few tries, then drop | the status and reason |
//!
//! Remote text only leaves this module through [`crate::untrusted::escape`],
//! capped at [`MAX_REASON_BYTES`]: short enough to count 400s per reason.

use std::time::Duration;

use hyper::header::HeaderMap;

use crate::http::HttpError;

/// Longest reason kept from an answer's body, once escaped.
pub const MAX_REASON_BYTES: usize = 200;
/// Longest wait a `Retry-After` / `X-RateLimit-Reset` header can ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What an answer means (table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// 2xx.
    Accepted,
    /// 429: the intake asks for a lower rate.
    Throttled,
    /// 408, 5xx, timeouts and connection failures.
    Transient,
    /// 413: split and resend.
    TooLarge,
    /// 400: the payload is refused; drop with the reason.
    BadRequest,
    /// 401/403: the API key is missing or refused.
    Credentials,
    /// Any other refusal.
    Permanent,
}

impl Class {
    /// A stable label for metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Class::Accepted => "accepted",
            Class::Throttled => "throttled",
            Class::Transient => "transient",
            Class::TooLarge => "too_large",
            Class::BadRequest => "bad_request",
            Class::Credentials => "credentials",
            Class::Permanent => "permanent",
        }
    }

    /// True for classes a plain backoff-and-retry can fix.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Class::Throttled | Class::Transient)
    }
}

/// The class of an answer with status `status`.
pub const fn classify_status(status: u16) -> Class {
    match status {
        200..=299 => Class::Accepted,
        400 => Class::BadRequest,
        401 | 403 => Class::Credentials,
        413 => Class::TooLarge,
        429 => Class::Throttled,
        408 | 500..=599 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// The class of a failed exchange.
pub const fn classify_error(error: &HttpError) -> Class {
    match error {
        HttpError::Timeout(_) | HttpError::Connect { .. } | HttpError::Io { .. } => {
            Class::Transient
        }
        HttpError::BodyTooLarge { status, .. } => classify_status(*status),
        // Local faults: nothing a resend fixes.
        HttpError::InvalidUrl { .. } | HttpError::Request(_) | HttpError::Tls(_) => {
            Class::Permanent
        }
    }
}

/// The reason an answer's body gives, escaped and capped: the entries of
/// DataDog's `{"errors": [...]}` joined by `; `, or the text itself.
pub fn reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let joined = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(root)) => match root.get("errors") {
            Some(serde_json::Value::Array(errors)) if !errors.is_empty() => errors
                .iter()
                .map(|e| match e {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => text.to_string(),
        },
        _ => text.to_string(),
    };
    crate::untrusted::escape(&joined, MAX_REASON_BYTES)
}

/// How long the intake asks to wait: `Retry-After` (seconds) or
/// `X-RateLimit-Reset` (seconds until the limit resets), at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-ratelimit-reset"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::header::HeaderValue;

    #[test]
    fn statuses_map_to_classes() {
        let table = [
            (200, Class::Accepted),
            (202, Class::Accepted),
            (400, Class::BadRequest),
            (401, Class::Credentials),
            (403, Class::Credentials),
            (404, Class::Permanent),
            (405, Class::Permanent),
            (408, Class::Transient),
            (413, Class::TooLarge),
            (415, Class::Permanent),
            (429, Class::Throttled),
            (500, Class::Transient),
            (502, Class::Transient),
            (503, Class::Transient),
            (504, Class::Transient),
            (599, Class::Transient),
            (301, Class::Permanent),
            (100, Class::Permanent),
            (600, Class::Permanent),
        ];
        for (status, class) in table {
            assert_eq!(classify_status(status), class, "{status}");
        }
        assert!(Class::Throttled.is_retryable() && Class::Transient.is_retryable());
        for class in [
            Class::Accepted,
            Class::TooLarge,
            Class::BadRequest,
            Class::Credentials,
            Class::Permanent,
        ] {
            assert!(!class.is_retryable(), "{class:?}");
        }
    }

    #[test]
    fn transport_failures_are_transient_and_big_bodies_keep_their_status() {
        let host = "h".to_string();
        assert_eq!(
            classify_error(&HttpError::Timeout(Duration::from_secs(1))),
            Class::Transient
        );
        assert_eq!(
            classify_error(&HttpError::Connect {
                host: host.clone(),
                message: "refused".into()
            }),
            Class::Transient
        );
        assert_eq!(
            classify_error(&HttpError::Io {
                host,
                message: "reset".into()
            }),
            Class::Transient
        );
        for (status, class) in [
            (202, Class::Accepted),
            (400, Class::BadRequest),
            (503, Class::Transient),
        ] {
            assert_eq!(
                classify_error(&HttpError::BodyTooLarge { status, limit: 1 }),
                class
            );
        }
        assert_eq!(
            classify_error(&HttpError::Request("bad header".into())),
            Class::Permanent
        );
    }

    #[test]
    fn reasons_come_from_datadogs_errors_escaped_and_capped() {
        assert_eq!(
            reason(br#"{"errors":["Payload is not a valid JSON","Bad metric"]}"#),
            "Payload is not a valid JSON; Bad metric"
        );
        assert_eq!(
            reason(br#"{"errors":[{"detail":"x"}]}"#),
            r#"{"detail":"x"}"#
        );
        assert_eq!(reason(b"  plain text\n"), "plain text");
        assert_eq!(reason(br#"{"status":"error"}"#), r#"{"status":"error"}"#);
        assert_eq!(
            reason(b"{\"errors\":[\"forged\\nERROR line \\u001b[31m\"]}"),
            "forged\\nERROR line \\u{1b}[31m"
        );
        let long = reason(&[b'x'; 10_000]);
        assert!(long.starts_with(&"x".repeat(MAX_REASON_BYTES)), "{long}");
        assert!(long.ends_with("… [9800 bytes cut]"), "{long}");
        assert_eq!(reason(&[0xff, 0xfe, b'a']), "\u{fffd}\u{fffd}a");
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after", HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
