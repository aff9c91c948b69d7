//! Untrusted text, stored capped and rendered escaped.
//!
//! The rendering makes visible every character that a log viewer, a terminal
//! or a line-oriented log shipper would interpret rather than show: C0 and C1
//! control characters (`\n`, `\r`, ESC, NEL, CSI, …), DEL, the Unicode line
//! and paragraph separators (U+2028, U+2029) and the bidirectional formatting
//! characters used to make text read differently from what it is (U+061C,
//! U+200E/F, U+202A–U+202E, U+2066–U+2069). They are written the way Rust
//! writes them in a string literal (`\n`, `\u{1b}`), so the rendering of any
//! text is one line with no control character in it. Everything else,
//! backslashes included, is shown as it is, so ordinary messages (JSON
//! included) read unchanged.

use std::fmt;

/// Longest rendering of one untrusted string, in bytes, before the cut marker.
pub const MAX_RENDERED_BYTES: usize = 4096;

/// Which end of an over-long text is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// The beginning: for messages, whose start says what went wrong.
    #[default]
    Head,
    /// The end: for captured output, whose last lines come just before a failure.
    Tail,
}

/// Text from a party the host does not trust. It keeps at most
/// [`MAX_RENDERED_BYTES`] of the original and can only be shown through its
/// `Display` (escaped and capped, see the module docs); there is no way to
/// print it raw.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct GuestText {
    /// The part of the original that can be shown (rendering never shrinks text).
    kept: Box<str>,
    /// Bytes of the original left out at the `keep` end.
    dropped: usize,
    keep: Keep,
}

impl GuestText {
    /// Untrusted `text`, keeping its beginning if it is too long.
    pub fn new(text: &str) -> Self {
        Self::keeping(text, Keep::Head)
    }

    /// Untrusted `text`, keeping its end if it is too long (captured output).
    pub fn tail(text: &str) -> Self {
        Self::keeping(text, Keep::Tail)
    }

    /// Untrusted `text`, keeping the `keep` end if it is too long.
    pub fn keeping(text: &str, keep: Keep) -> Self {
        let kept = match keep {
            Keep::Head => &text[..text.floor_char_boundary(MAX_RENDERED_BYTES)],
            Keep::Tail => {
                &text[text.ceil_char_boundary(text.len().saturating_sub(MAX_RENDERED_BYTES))..]
            }
        };
        GuestText {
            kept: kept.into(),
            dropped: text.len() - kept.len(),
            keep,
        }
    }

    /// True when the original text was empty.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.dropped == 0
    }

    /// Length of the original text, in bytes.
    pub fn original_len(&self) -> usize {
        self.kept.len() + self.dropped
    }

    /// The kept text split at `\n`, one piece per line, for showing
    /// multi-line output as one record per line; the cut marker (if any)
    /// goes with the first line when keeping the tail, the last otherwise.
    pub fn lines(&self) -> Vec<GuestText> {
        let pieces: Vec<&str> = self.kept.split('\n').collect();
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let marked = match self.keep {
                    Keep::Head => i == last,
                    Keep::Tail => i == 0,
                };
                GuestText {
                    kept: (*piece).into(),
                    dropped: if marked { self.dropped } else { 0 },
                    keep: self.keep,
                }
            })
            .collect()
    }
}

/// `text` escaped like a [`GuestText`] but cut at `max_bytes` instead of
/// [`MAX_RENDERED_BYTES`]: for presentations that need a shorter piece (a
/// list on a terminal) or a longer one (a line for an author to paste back).
/// Logs and error messages hold [`GuestText`].
pub fn escape(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes) + 24);
    // Writing to a String cannot fail.
    let _ = render(text, Keep::Head, 0, max_bytes, &mut out);
    out
}

impl From<&str> for GuestText {
    fn from(text: &str) -> Self {
        GuestText::new(text)
    }
}

impl From<String> for GuestText {
    fn from(text: String) -> Self {
        GuestText::new(&text)
    }
}

impl fmt::Display for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(&self.kept, self.keep, self.dropped, MAX_RENDERED_BYTES, f)
    }
}

impl fmt::Debug for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestText(\"{self}\")")
    }
}

/// The one escaping function: writes `text` with every control character
/// made visible, cut to at most `max` bytes at the end opposite `keep`,
/// followed (or, keeping the tail, preceded) by a marker counting the bytes
/// cut, `dropped` (already left out at that end) included.
fn render(
    text: &str,
    keep: Keep,
    dropped: usize,
    max: usize,
    out: &mut dyn fmt::Write,
) -> fmt::Result {
    match keep {
        Keep::Head => {
            let mut used = 0;
            let mut end = text.len();
            for (i, c) in text.char_indices() {
                let width = escaped_len(c);
                if used + width > max {
                    end = i;
                    break;
                }
                used += width;
            }
            write_escaped(&text[..end], out)?;
            let cut = text.len() - end + dropped;
            if cut > 0 {
                write!(out, "… [{cut} bytes cut]")?;
            }
        }
        Keep::Tail => {
            let mut used = 0;
            let mut start = 0;
            for (i, c) in text.char_indices().rev() {
                let width = escaped_len(c);
                if used + width > max {
                    start = i + c.len_utf8();
                    break;
                }
                used += width;
            }
            let cut = start + dropped;
            if cut > 0 {
                write!(out, "[{cut} bytes cut] …")?;
            }
            write_escaped(&text[start..], out)?;
        }
    }
    Ok(())
}

/// Writes `text` with every character that [`needs_escape`] escaped.
fn write_escaped(text: &str, out: &mut dyn fmt::Write) -> fmt::Result {
    let mut plain_from = 0;
    for (i, c) in text.char_indices() {
        if needs_escape(c) {
            out.write_str(&text[plain_from..i])?;
            match c {
                '\n' => out.write_str("\\n")?,
                '\r' => out.write_str("\\r")?,
                '\t' => out.write_str("\\t")?,
                _ => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            }
            plain_from = i + c.len_utf8();
        }
    }
    out.write_str(&text[plain_from..])
}

/// Bytes `c` takes once rendered.
fn escaped_len(c: char) -> usize {
    match c {
        '\n' | '\r' | '\t' => 2,
        c if needs_escape(c) => {
            let digits = (32 - u32::from(c).leading_zeros()).div_ceil(4).max(1) as usize;
            "\\u{}".len() + digits
        }
        c => c.len_utf8(),
    }
}

/// Characters that a terminal or a log viewer would interpret instead of show.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        let forged = "ok\n2026-11-30T00:00:00.000000Z ERROR cwpub::daemon: forged\r\x1b[31mred\x1b[0m\u{85}nel\u{2028}ls\u{2029}ps\u{202E}rlo\u{2066}iso\u{9b}csi\x7fdel\0nul\ttab";
        let shown = GuestText::new(forged).to_string();
        assert_eq!(
            shown,
            "ok\\n2026-11-30T00:00:00.000000Z ERROR cwpub::daemon: forged\\r\\u{1b}[31mred\\u{1b}[0m\\u{85}nel\\u{2028}ls\\u{2029}ps\\u{202e}rlo\\u{2066}iso\\u{9b}csi\\u{7f}del\\u{0}nul\\ttab"
        );
        assert!(!shown.chars().any(needs_escape));
    }

    #[test]
    fn ordinary_text_and_json_read_unchanged() {
        for text in [
            "plain words",
            r#"{"a":"b\"c\\n"}"#,
            "naïve café — ünïcödé 🎉",
        ] {
            assert_eq!(GuestText::new(text).to_string(), text);
        }
        assert!(GuestText::new("").is_empty());
        assert!(!GuestText::new("x").is_empty());
    }

    #[test]
    fn long_text_is_cut_with_a_marker_counting_the_cut() {
        let text = "é".repeat(10_000); // 20,000 bytes
        let head = GuestText::new(&text);
        assert_eq!(head.original_len(), 20_000);
        let shown = head.to_string();
        assert_eq!(shown, format!("{}… [15904 bytes cut]", "é".repeat(2048)));

        let tail = GuestText::tail(&format!("start{}end", "x".repeat(10_000))).to_string();
        assert!(tail.starts_with("[5912 bytes cut] …xxx"), "{tail}");
        assert!(tail.ends_with("xxxend"));
        assert_eq!(tail.len() - "[5912 bytes cut] …".len(), MAX_RENDERED_BYTES);
    }

    #[test]
    fn the_cap_applies_to_the_rendering_not_the_raw_bytes() {
        let text = "\n".repeat(3_000);
        let shown = GuestText::new(&text).to_string();
        assert_eq!(shown, format!("{}… [952 bytes cut]", "\\n".repeat(2048)));
        let wide = "\u{2028}".repeat(2_000);
        let shown = GuestText::tail(&wide).to_string();
        assert!(shown.starts_with("[4464 bytes cut] …\\u{2028}"), "{shown}");
        assert_eq!(shown.len(), "[4464 bytes cut] …".len() + 512 * 8);
    }

    #[test]
    fn lines_split_the_kept_text_and_keep_the_marker_at_the_cut() {
        let text = GuestText::tail(&format!("{}\nsecond\r\nthird", "x".repeat(5000)));
        let lines: Vec<String> = text.lines().iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("[918 bytes cut] …xxx"), "{}", lines[0]);
        assert_eq!(lines[1..], ["second\\r", "third"]);
        assert_eq!(GuestText::new("").lines().len(), 1);
    }

    #[test]
    fn escape_takes_its_own_cap() {
        assert_eq!(escape("a\u{1b}[31mred\n", 100), "a\\u{1b}[31mred\\n");
        assert_eq!(escape("abcdef", 3), "abc… [3 bytes cut]");
        let long = "z".repeat(10_000);
        assert_eq!(escape(&long, usize::MAX), long);
    }

    #[test]
    fn text_at_the_cap_is_not_marked() {
        let text = "y".repeat(MAX_RENDERED_BYTES);
        assert_eq!(GuestText::new(&text).to_string(), text);
        assert_eq!(GuestText::tail(&text).to_string(), text);
    }

    #[test]
    fn escaped_len_matches_what_is_written() {
        for c in [
            'a', 'é', '\n', '\u{0}', '\u{1b}', '\u{85}', '\u{2028}', '\u{202e}', '🎉',
        ] {
            let mut out = String::new();
            write_escaped(&c.to_string(), &mut out).unwrap();
            assert_eq!(out.len(), escaped_len(c), "{c:?} rendered as {out}");
        }
    }
}
