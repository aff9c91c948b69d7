//! A small strict JSON (RFC 8259) parser for the validator.
//!
//! Unlike `serde_json::Value` it keeps object members in order *with*
//! duplicates (hard cases 4–5), keeps whether a number was written as an
//! integer (hard case 37), reads numbers too large for `f64` as infinities so
//! the validator can call them out of range (hard case 27), and names `NaN` and
//! `Infinity` tokens precisely (hard case 26). Nesting is capped at
//! [`MAX_JSON_DEPTH`] so hostile input cannot exhaust the stack.

use std::borrow::Cow;

use crate::limits::MAX_JSON_DEPTH;

/// One object member: name and value.
pub(crate) type Member<'a> = (Cow<'a, str>, Json<'a>);

/// A parsed JSON value; strings borrow from the input unless they had escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: members in document order, duplicates kept.
    Object(Vec<Member<'a>>),
}

impl<'a> Json<'a> {
    /// A short name of the value's JSON type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The last member named `key`, if this is an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A JSON number as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Number {
    /// The value; ±infinity when the literal is too large for `f64`.
    pub(crate) value: f64,
    /// The exact value when written without fraction or exponent and within `i64`.
    pub(crate) integer: Option<i64>,
    /// True when written without fraction or exponent (`12`, `-3`).
    pub(crate) integer_literal: bool,
}

/// Why parsing stopped, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Byte offset of the problem.
    pub(crate) offset: usize,
    /// What went wrong.
    pub(crate) kind: ParseErrorKind,
}

/// The class of a parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseErrorKind {
    /// A `NaN`, `Infinity` or `-Infinity` token, which JSON cannot represent.
    NonFinite(&'static str),
    /// Any other syntax error, described.
    Syntax(&'static str),
}

/// Parses `text` as exactly one JSON value (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Json<'_>, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error(
            "trailing characters after the JSON value (several documents in one message?)",
        ));
    }
    Ok(value)
}

/// Cursor over the input.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            kind: ParseErrorKind::Syntax(message),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(
        &mut self,
        literal: &'static str,
        value: Json<'a>,
    ) -> Result<Json<'a>, ParseError> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal (expected true, false or null)"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, ParseError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.expect_literal("true", Json::Bool(true)),
            Some(b'f') => self.expect_literal("false", Json::Bool(false)),
            Some(b'n') => self.expect_literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                let rest = &self.bytes[self.pos..];
                for token in ["NaN", "Infinity", "+Infinity", "-Infinity", "-NaN"] {
                    if rest.starts_with(token.as_bytes()) {
                        return Err(ParseError {
                            offset: self.pos,
                            kind: ParseErrorKind::NonFinite(token),
                        });
                    }
                }
                Err(self.error("expected a JSON value"))
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json<'a>, ParseError> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.error("nesting is too deep"));
        }
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string member name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after a member name"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json<'a>, ParseError> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.error("nesting is too deep"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        self.pos += 1; // opening quote
        let text: &'a str = self.text;
        let first = self.pos;
        let mut owned: Option<String> = None;
        let mut start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    let tail = &text[start..self.pos];
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(&text[first..self.pos - 1]),
                        Some(mut out) => {
                            out.push_str(tail);
                            Cow::Owned(out)
                        }
                    });
                }
                Some(b'\\') => {
                    let out = owned.get_or_insert_with(String::new);
                    out.push_str(&text[start..self.pos]);
                    self.pos += 1;
                    self.escape(out)?;
                    start = self.pos;
                }
                Some(0x00..=0x1f) => {
                    return Err(self.error("unescaped control character in a string"));
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), ParseError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4()?;
                let c = match high {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos) != Some(&b'\\')
                            || self.bytes.get(self.pos + 1) != Some(&b'u')
                        {
                            return Err(self.error("lone surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error("lone surrogate in a \\u escape"));
                        }
                        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                    }
                    0xDC00..=0xDFFF => return Err(self.error("lone surrogate in a \\u escape")),
                    _ => char::from_u32(high),
                };
                out.push(c.ok_or_else(|| self.error("invalid \\u escape"))?);
                return Ok(());
            }
            _ => return Err(self.error("invalid escape sequence")),
        };
        out.push(c);
        self.pos += 1;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut value = 0;
        for &d in digits {
            let nibble = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            value = value * 16 + nibble;
        }
        self.pos += 4;
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json<'a>, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            let rest = &self.bytes[self.pos..];
            if rest.starts_with(b"Infinity") || rest.starts_with(b"NaN") {
                let token = if rest.starts_with(b"I") {
                    "-Infinity"
                } else {
                    "-NaN"
                };
                return Err(ParseError {
                    offset: start,
                    kind: ParseErrorKind::NonFinite(token),
                });
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer_literal = true;
        if self.peek() == Some(b'.') {
            integer_literal = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number: digits expected after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer_literal = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number: digits expected in the exponent"));
            }
        }
        let literal = &self.text[start..self.pos];
        let value: f64 = literal.parse().map_err(|_| self.error("invalid number"))?;
        let integer = if integer_literal {
            literal.parse::<i64>().ok()
        } else {
            None
        };
        Ok(Json::Number(Number {
            value,
            integer,
            integer_literal,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Number {
        match parse(text).unwrap() {
            Json::Number(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_structures_in_order_with_duplicates() {
        let v = parse(r#" {"b":1,"a":[true,false,null,"x\u00e9\ud83d\ude00\n"],"b":{}} "#).unwrap();
        let Json::Object(members) = v else { panic!() };
        assert_eq!(
            members.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>(),
            ["b", "a", "b"]
        );
        assert_eq!(
            members[1].1,
            Json::Array(vec![
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::String("xé😀\n".into())
            ])
        );
    }

    #[test]
    fn numbers_keep_their_form() {
        assert_eq!(
            num("12"),
            Number {
                value: 12.0,
                integer: Some(12),
                integer_literal: true
            }
        );
        assert_eq!(
            num("-0"),
            Number {
                value: -0.0,
                integer: Some(0),
                integer_literal: true
            }
        );
        assert_eq!(num("1.5e3").integer, None);
        assert!(!num("1.0").integer_literal);
        assert!(num("1e400").value.is_infinite());
        assert_eq!(num("99999999999999999999").integer, None);
        assert!(num("99999999999999999999").integer_literal);
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "{",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            ".5",
            "+1",
            "{'a':1}",
            "{\"a\" 1}",
            "\"\\x\"",
            "\"\u{1}\"",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "{}{}",
            "{} x",
            "tru",
            "nul",
            "\"abc",
            "[1 2]",
            "-",
            "1e",
            "1e+",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse("[1,NaN]").unwrap_err().kind,
            ParseErrorKind::NonFinite("NaN")
        );
        assert_eq!(
            parse("[-Infinity]").unwrap_err().kind,
            ParseErrorKind::NonFinite("-Infinity")
        );
        assert_eq!(
            parse("{\"a\": Infinity}").unwrap_err(),
            ParseError {
                offset: 6,
                kind: ParseErrorKind::NonFinite("Infinity")
            }
        );
    }

    #[test]
    fn depth_is_capped() {
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
