//! Showing what a guest produced on a terminal: every guest-made string is
//! untrusted, so it is escaped (control and bidirectional-override
//! characters) and capped before it is printed; differences between what a
//! case expected and what the guest returned are shown as line diffs
//! (`similar`), JSON messages pretty-printed first so one changed field is
//! one changed line.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use crate::guest::RunError;
use crate::untrusted::escape;

/// Longest guest-made text shown in one piece, in bytes of its escaped form.
pub const MAX_SHOWN_BYTES: usize = 2_000;
/// Most diff lines shown for one comparison.
const MAX_DIFF_LINES: usize = 120;

/// `text` on one line, safe for a terminal: control characters, line breaks
/// and bidirectional overrides escaped, cut after `max` bytes (the host's
/// one escaping rule, [`crate::untrusted`]).
pub fn printable(text: &str, max: usize) -> String {
    escape(text, max)
}

/// Multi-line `text` made safe line by line, each prefixed with `indent`;
/// at most `max_lines` lines (the last ones, where the news usually is).
pub fn printable_lines(text: &str, indent: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let skip = lines.len().saturating_sub(max_lines);
    let mut out = String::new();
    if skip > 0 {
        let _ = writeln!(out, "{indent}… ({skip} earlier lines)");
    }
    for line in &lines[skip..] {
        let _ = writeln!(out, "{indent}{}", printable(line, MAX_SHOWN_BYTES));
    }
    out
}

/// A failed guest call, indented: what went wrong, then the guest's stderr.
pub fn failure(error: &RunError) -> String {
    let mut out = format!("    {}\n", error.kind);
    if !error.stderr.is_empty() {
        out.push_str("  guest stderr:\n");
        for line in error.stderr.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
    out
}

/// How an expected message differs from the actual one, indented by four
/// spaces: a line diff of the pretty-printed JSON when both are JSON, else
/// both strings with a caret under the first difference.
pub fn message_diff(expected: &str, actual: &str) -> String {
    if let (Ok(e), Ok(a)) = (
        serde_json::from_str::<serde_json::Value>(expected),
        serde_json::from_str::<serde_json::Value>(actual),
    ) {
        if e == a {
            return format!(
                "    the same JSON value written differently (key order or spacing); the message must match byte for byte\n{}",
                inline_diff(expected, actual)
            );
        }
        let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
        return line_diff(&pretty(&e), &pretty(&a));
    }
    inline_diff(expected, actual)
}

/// A unified line diff (`-` expected, `+` actual) with three lines of context.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let diff = TextDiff::from_lines(expected, actual);
    let mut out = String::from("    --- expected\n    +++ actual\n");
    let mut lines = 0;
    for group in diff.grouped_ops(3) {
        for op in group {
            for change in diff.iter_changes(&op) {
                if lines == MAX_DIFF_LINES {
                    out.push_str("    … (diff cut)\n");
                    return out;
                }
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                let line = change.value().trim_end_matches(['\n', '\r']);
                let _ = writeln!(out, "    {sign} {}", printable(line, MAX_SHOWN_BYTES));
                lines += 1;
            }
        }
    }
    out
}

/// Both strings on their own line, with a caret under the first character
/// that differs; long strings are shown around that point.
fn inline_diff(expected: &str, actual: &str) -> String {
    let first = expected
        .chars()
        .zip(actual.chars())
        .take_while(|(e, a)| e == a)
        .count();
    const BEFORE: usize = 40;
    let start = first.saturating_sub(BEFORE);
    let window = |s: &str| {
        let tail: String = s.chars().skip(start).collect();
        let lead = if start > 0 { "…" } else { "" };
        format!("{lead}{}", printable(&tail, 160))
    };
    let (e, a) = (window(expected), window(actual));
    // The caret sits under the first differing character of the escaped text.
    let prefix: String = expected.chars().skip(start).take(first - start).collect();
    let lead = usize::from(start > 0);
    let caret = lead + printable(&prefix, usize::MAX).chars().count();
    format!(
        "    expected: {e}\n    actual:   {a}\n              {}^ first difference at character {first}\n",
        " ".repeat(caret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_text_capped() {
        assert_eq!(printable("a\u{1b}[31mred\n", 100), "a\\u{1b}[31mred\\n");
        assert_eq!(printable("x\u{202e}y", 100), "x\\u{202e}y");
        assert_eq!(printable("abcdef", 3), "abc… [3 bytes cut]");
        assert_eq!(
            printable_lines("1\n2\n3\n", "  ", 2),
            "  … (1 earlier lines)\n  2\n  3\n"
        );
    }

    #[test]
    fn json_messages_differ_line_by_line() {
        let d = message_diff(r#"{"a":1,"b":"x"}"#, r#"{"a":1,"b":"y"}"#);
        assert!(d.contains("-   \"b\": \"x\""), "{d}");
        assert!(d.contains("+   \"b\": \"y\""), "{d}");
        assert!(d.contains("    \"a\": 1"), "{d}");
    }

    #[test]
    fn same_json_written_differently_is_called_out() {
        let d = message_diff(r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#);
        assert!(d.contains("written differently"), "{d}");
    }

    #[test]
    fn plain_text_gets_a_caret_under_the_first_difference() {
        let d = message_diff("hello world", "hello there");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines[0], "    expected: hello world");
        assert_eq!(lines[1], "    actual:   hello there");
        let caret = lines[2].find('^').expect("caret");
        assert_eq!(&lines[0][caret..caret + 1], "w", "{d}");
    }
}
