//! `json-log` events as items of DataDog's Logs intake v2 (`POST /api/v2/logs`).
//!
//! One event is one item:
//!
//! * A message that is a JSON object whose documented item fields
//!   (`message`, `ddsource`, `ddtags`, `hostname`, `service`) are strings
//!   where present is sent as the guest composed it, byte for byte; fields
//!   are only ever added in front of the guest's own.
//! * Any other message (plain text, an array, a number, an object whose
//!   `service` is a number, an object with a repeated documented field) is
//!   sent as `{"message": "<the message>"}`.
//!
//! What is added, only where the item does not have it already:
//!
//! | field | value | why |
//! |---|---|---|
//! | `message` | `""` | DataDog's `HTTPLogItem` requires it; an object without one is otherwise unchanged |
//! | `timestamp` | the event's time, ms since the epoch | added when the item has none of the attributes DataDog reads a log's date from (`timestamp`, `date`, `_timestamp`, `Timestamp`, `eventTime`, `published_date`); without one DataDog dates a log when it *receives* it, which would be wrong for every event that waited in the buffer, the spool or a retry |
//! | `service`, `ddsource`, `ddtags` | the sink's defaults, when configured | — |
//! | `hostname` | the host's identity | skipped when the item names a `host` itself (the reserved attribute `hostname` feeds) |
//!
//! Limits ([`MAX_ITEM_BYTES`], [`MAX_ITEMS_PER_REQUEST`],
//! [`MAX_REQUEST_BYTES`]): DataDog documents them as "1MB" and "5MB"
//! without saying which megabyte, and *truncates* an item over 1 MB while
//! answering 2xx. cwpub never truncates, so it takes the decimal reading
//! (the smaller): an item over 1,000,000 bytes, counted as encoded, is not
//! sent — [`encode_item`] says so and the caller drops and counts it — and a
//! request holds at most 5,000,000 bytes uncompressed. Events more than 18 h
//! old or 2 h ahead are not accepted by DataDog ([`WINDOW`]).

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::window::Window;
use crate::delivery::Item;
use crate::event::LogEvent;

/// An event as the encoders read it: its time and its message (a guest's
/// [`LogEvent`], or a delivery core's buffered [`Item`], without a copy).
pub trait Dated {
    /// Milliseconds since the Unix epoch.
    fn timestamp_ms(&self) -> i64;
    /// The message, as the guest wrote it.
    fn message(&self) -> &str;
}

impl Dated for LogEvent {
    fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }
    fn message(&self) -> &str {
        &self.message
    }
}

impl Dated for Item {
    fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }
    fn message(&self) -> &str {
        &self.message
    }
}

/// Largest item sent, in bytes as encoded (DataDog: "1MB", truncated above).
pub const MAX_ITEM_BYTES: usize = 1_000_000;
/// Most items per request (DataDog: "1000 entries").
pub const MAX_ITEMS_PER_REQUEST: usize = 1_000;
/// Largest request body before compression (DataDog: "5MB" uncompressed).
pub const MAX_REQUEST_BYTES: usize = 5_000_000;
/// Logs DataDog accepts: "up to 18 hours in the past and two hours in the future".
pub const WINDOW: Window = Window {
    what: "logs",
    max_age_ms: 18 * 3_600_000,
    max_ahead_ms: 2 * 3_600_000,
};

/// Attributes DataDog reads a log's date from, in its documented order.
pub const DATE_ATTRIBUTES: [&str; 6] = [
    "timestamp",
    "date",
    "_timestamp",
    "Timestamp",
    "eventTime",
    "published_date",
];

/// What the sink adds to items that lack it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDefaults {
    /// `service` (sink option).
    pub service: Option<String>,
    /// `ddsource` (sink option).
    pub ddsource: Option<String>,
    /// `ddtags`, comma-separated `key:value` (sink option).
    pub ddtags: Option<String>,
    /// `hostname`: the host's identity.
    pub hostname: Option<String>,
}

/// An item over [`MAX_ITEM_BYTES`]: not sent, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemTooLarge {
    /// Its encoded size.
    pub bytes: usize,
}

impl fmt::Display for ItemTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the log item is {} bytes; DataDog truncates items over {MAX_ITEM_BYTES} bytes, \
             so it is not sent (make the guest's messages smaller)",
            self.bytes
        )
    }
}

/// The documented item fields and the date attributes of a JSON object,
/// as written (a repeated field fails the read, which makes the message
/// plain text: an item with two `service`s has no meaning to keep).
#[derive(Deserialize, Default)]
struct Probe {
    message: Option<Shape>,
    ddsource: Option<Shape>,
    ddtags: Option<Shape>,
    hostname: Option<Shape>,
    service: Option<Shape>,
    host: Option<Shape>,
    timestamp: Option<Shape>,
    date: Option<Shape>,
    #[serde(rename = "_timestamp")]
    underscore_timestamp: Option<Shape>,
    #[serde(rename = "Timestamp")]
    capital_timestamp: Option<Shape>,
    #[serde(rename = "eventTime")]
    event_time: Option<Shape>,
    published_date: Option<Shape>,
}

impl Probe {
    /// True when every documented field present is a string.
    fn documented_fields_are_strings(&self) -> bool {
        [
            self.message,
            self.ddsource,
            self.ddtags,
            self.hostname,
            self.service,
        ]
        .into_iter()
        .flatten()
        .all(|shape| shape == Shape::String)
    }

    fn has_date(&self) -> bool {
        [
            self.timestamp,
            self.date,
            self.underscore_timestamp,
            self.capital_timestamp,
            self.event_time,
            self.published_date,
        ]
        .iter()
        .any(Option::is_some)
    }
}

/// `message` read as a JSON object that can be sent as it is: the probe and
/// the text after the opening `{`.
fn as_item(message: &str) -> Option<(Probe, &str)> {
    let body = message.trim_start().strip_prefix('{')?;
    let probe: Probe = serde_json::from_str(message).ok()?;
    probe
        .documented_fields_are_strings()
        .then_some((probe, body))
}

/// The encoded log item of `event`, with `defaults` filled in (see the
/// module docs), or why it cannot be sent. The time window is not checked
/// here (see [`WINDOW`]).
pub fn encode_item(event: &impl Dated, defaults: &LogDefaults) -> Result<Vec<u8>, ItemTooLarge> {
    let mut out = Vec::with_capacity(event.message().len() + 128);
    out.push(b'{');
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str, value: &dyn erased::Json| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        value.write(out);
    };
    match as_item(event.message()) {
        Some((probe, rest)) => {
            if probe.message.is_none() {
                field(&mut out, "message", &"");
            }
            if !probe.has_date() {
                field(&mut out, "timestamp", &event.timestamp_ms());
            }
            add_defaults(&mut out, &mut field, defaults, &probe);
            let rest = rest.trim_start();
            if !first && !rest.starts_with('}') {
                out.push(b',');
            }
            out.extend_from_slice(rest.as_bytes());
        }
        None => {
            field(&mut out, "message", &event.message());
            field(&mut out, "timestamp", &event.timestamp_ms());
            let none = Probe::default();
            add_defaults(&mut out, &mut field, defaults, &none);
            out.push(b'}');
        }
    }
    if out.len() > MAX_ITEM_BYTES {
        return Err(ItemTooLarge { bytes: out.len() });
    }
    Ok(out)
}

/// Writes the defaults the item (described by `probe`) lacks.
fn add_defaults(
    out: &mut Vec<u8>,
    field: &mut impl FnMut(&mut Vec<u8>, &str, &dyn erased::Json),
    defaults: &LogDefaults,
    probe: &Probe,
) {
    let wanted = [
        ("service", &defaults.service, probe.service.is_none()),
        ("ddsource", &defaults.ddsource, probe.ddsource.is_none()),
        ("ddtags", &defaults.ddtags, probe.ddtags.is_none()),
        (
            "hostname",
            &defaults.hostname,
            probe.hostname.is_none() && probe.host.is_none(),
        ),
    ];
    for (name, value, missing) in wanted {
        if let (Some(value), true) = (value, missing) {
            field(out, name, &value.as_str());
        }
    }
}

/// Whether a member is a string; anything else is read and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    String,
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::String)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

/// The two kinds of value the encoder writes.
mod erased {
    /// A JSON value that writes itself.
    pub(super) trait Json {
        fn write(&self, out: &mut Vec<u8>);
    }

    impl Json for &str {
        fn write(&self, out: &mut Vec<u8>) {
            // Writing a string to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, self);
        }
    }

    impl Json for i64 {
        fn write(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{Value, json};

    const T: i64 = 1_767_225_600_000;

    fn event(message: &str) -> LogEvent {
        LogEvent {
            timestamp_ms: T,
            message: message.to_string(),
        }
    }

    fn item(message: &str, defaults: &LogDefaults) -> String {
        String::from_utf8(encode_item(&event(message), defaults).unwrap()).unwrap()
    }

    fn defaults() -> LogDefaults {
        LogDefaults {
            service: Some("orders".into()),
            ddsource: Some("cwpub".into()),
            ddtags: Some("env:prod,team:pay".into()),
            hostname: Some("ip-10-0-0-7".into()),
        }
    }

    #[test]
    fn a_composed_item_is_sent_as_composed() {
        let composed = r#"{"ddsource":"guest","ddtags":"a:b","hostname":"h1","service":"svc","status":"warn","message":"hi","timestamp":1767225600123,"nested":{"x":[1,2]}}"#;
        assert_eq!(item(composed, &defaults()), composed);
        assert_eq!(item(composed, &LogDefaults::default()), composed);
    }

    #[test]
    fn only_what_the_guest_left_out_is_added_in_front() {
        let composed = r#"{"service":"svc","message":"hi","date":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            item(composed, &defaults()),
            r#"{"ddsource":"cwpub","ddtags":"env:prod,team:pay","hostname":"ip-10-0-0-7","service":"svc","message":"hi","date":"2026-01-01T00:00:00Z"}"#
        );
        // No date attribute: the event's time is added; no message: an empty one.
        assert_eq!(
            item(r#"  {"event":"heartbeat"} "#, &LogDefaults::default()),
            r#"{"message":"","timestamp":1767225600000,"event":"heartbeat"} "#
        );
        // `host` is the reserved attribute `hostname` feeds: no second host.
        assert_eq!(
            item(r#"{"message":"m","Timestamp":5,"host":"h9"}"#, &defaults()),
            r#"{"service":"orders","ddsource":"cwpub","ddtags":"env:prod,team:pay","message":"m","Timestamp":5,"host":"h9"}"#
        );
        for date in DATE_ATTRIBUTES {
            let text = format!(r#"{{"message":"m","{date}":1}}"#);
            assert_eq!(item(&text, &LogDefaults::default()), text, "{date}");
        }
    }

    #[test]
    fn an_empty_object_gets_valid_json() {
        let out = item("{}", &LogDefaults::default());
        assert_eq!(out, r#"{"message":"","timestamp":1767225600000}"#);
        let out = item("{ }", &defaults());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["hostname"], "ip-10-0-0-7");
    }

    #[test]
    fn anything_else_is_wrapped_as_the_message() {
        for message in [
            "plain text line",
            "",
            "[1,2]",
            "42",
            r#""a string""#,
            r#"{"service":5,"message":"x"}"#,
            r#"{"message":{"nested":true}}"#,
            r#"{"service":"a","service":"b","message":"x"}"#,
            r#"{"broken":"#,
            "{\"message\":\"line\"}\u{2028}trailing",
        ] {
            let out = item(message, &defaults());
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(
                v,
                json!({
                    "message": message,
                    "timestamp": T,
                    "service": "orders",
                    "ddsource": "cwpub",
                    "ddtags": "env:prod,team:pay",
                    "hostname": "ip-10-0-0-7",
                }),
                "{message:?}"
            );
        }
    }

    #[test]
    fn control_characters_and_unicode_stay_valid_json() {
        let out = item("a\u{0}b\"c\\d\ne\u{1b}[31m é 🎉", &LogDefaults::default());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["message"], "a\u{0}b\"c\\d\ne\u{1b}[31m é 🎉");
    }

    #[test]
    fn items_over_the_limit_are_refused_at_the_exact_byte() {
        // `{"message":"<n x>","timestamp":1767225600000}` is n + 40 bytes.
        let overhead = item("", &LogDefaults::default()).len();
        assert_eq!(overhead, 40);
        let fits = "x".repeat(MAX_ITEM_BYTES - overhead);
        assert_eq!(
            encode_item(&event(&fits), &LogDefaults::default())
                .unwrap()
                .len(),
            MAX_ITEM_BYTES
        );
        let over = "x".repeat(MAX_ITEM_BYTES - overhead + 1);
        let refusal = encode_item(&event(&over), &LogDefaults::default()).unwrap_err();
        assert_eq!(
            refusal,
            ItemTooLarge {
                bytes: MAX_ITEM_BYTES + 1
            }
        );
        assert!(refusal.to_string().contains("1000001 bytes"), "{refusal}");
        // Escaping counts: 1 control character is 6 bytes encoded.
        let escaped = "\u{1}".repeat((MAX_ITEM_BYTES - overhead) / 6 + 1);
        assert!(encode_item(&event(&escaped), &LogDefaults::default()).is_err());
    }

    #[test]
    fn the_time_window_is_18_hours_back_and_2_ahead() {
        let now = T;
        assert_eq!(WINDOW.check(now - 18 * 3_600_000, now), Ok(()));
        assert!(WINDOW.check(now - 18 * 3_600_000 - 1, now).is_err());
        assert_eq!(WINDOW.check(now + 2 * 3_600_000, now), Ok(()));
        let refusal = WINDOW.check(now + 2 * 3_600_000 + 1, now).unwrap_err();
        assert!(
            refusal
                .to_string()
                .ends_with("DataDog accepts logs up to 2 h ahead (check the host's clock)"),
            "{refusal}"
        );
    }
}
