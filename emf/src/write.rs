//! Low-level JSON writing for the builder: string escaping and deterministic
//! number formatting (hard cases 51 and 52).
//!
//! Numbers: integral values with magnitude below 2^53 are written as plain
//! integers (`1`, never `1.0`); `-0` becomes `0`; every other finite value uses
//! the shortest representation that parses back to the same `f64` (Rust's
//! `Display`/`LowerExp`, which are exact and stable), e.g. `0.1`, `1e300`,
//! `1.5e-7`.

use std::fmt::Write as _;

/// 2^53: integers below this magnitude are exact in an `f64`.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Appends `s` as a JSON string literal, escaping quotes, backslashes and every
/// control character (so `\u0000` and raw newlines never reach the output).
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a finite `value` as a JSON number (callers reject non-finite values first).
pub(crate) fn push_json_number(out: &mut String, value: f64) {
    debug_assert!(value.is_finite());
    let magnitude = value.abs();
    if value.fract() == 0.0 && magnitude < EXACT_INTEGER_LIMIT {
        // Also turns -0.0 into "0".
        let _ = write!(out, "{}", value as i64);
    } else if (1e-6..1e16).contains(&magnitude) {
        // std's shortest round-trip form, plain notation: "0.1", "123456.789".
        let _ = write!(out, "{value}");
    } else {
        // Shortest round-trip form, exponent notation: "1e300", "-1.5e-7".
        let _ = write!(out, "{value:e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(v: f64) -> String {
        let mut s = String::new();
        push_json_number(&mut s, v);
        s
    }

    fn string(v: &str) -> String {
        let mut s = String::new();
        push_json_string(&mut s, v);
        s
    }

    #[test]
    fn numbers_are_deterministic_and_round_trip() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(-42.0), "-42");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(-1.5e-7), "-1.5e-7");
        assert_eq!(number(1e20), "1e20");
        for v in [
            0.1,
            1.0 / 3.0,
            1e-100,
            -2.5e200,
            9_007_199_254_740_992.0,
            123_456.789,
        ] {
            assert_eq!(number(v).parse::<f64>().unwrap(), v, "{}", number(v));
        }
    }

    #[test]
    fn strings_escape_controls_and_quotes() {
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            string("x\ny\u{0}z\u{1f}\u{7f}"),
            r#""x\ny\u0000z\u001f\u007f""#
        );
        assert_eq!(string("héllo ✓"), "\"héllo ✓\"");
        let parsed: String = serde_json::from_str(&string("\u{0}\t\u{8}\u{c}\r\"")).unwrap();
        assert_eq!(parsed, "\u{0}\t\u{8}\u{c}\r\"");
    }
}
