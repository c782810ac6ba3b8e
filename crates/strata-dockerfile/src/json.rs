//! The JSON ("exec") form of an instruction, decoded as Go's `encoding/json` would.
//!
//! BuildKit unmarshals the argument text into `[]any` and then requires every element to be a
//! string. Three outcomes matter and must be told apart exactly:
//! - the text is not valid JSON for Go (syntax error, trailing garbage, or a number that does not
//!   fit a float64): the instruction silently falls back to shell form;
//! - it is a valid array but some element is not a string: a parse error;
//! - it is an array of strings: exec form.

/// What Go's decoder makes of a candidate JSON array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// Not a JSON array Go accepts; the caller falls back to shell form.
    Invalid,
    /// A valid array with at least one element that is not a string.
    NotStrings,
    /// A valid array of strings.
    Strings(Vec<String>),
}

/// Decodes `text` (already known to start with `[`) the way BuildKit's `parseJSON` does.
pub(crate) fn parse_string_array(text: &str) -> JsonArray {
    let mut p = Decoder {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    let Ok(Value::Array(items)) = p.value() else {
        return JsonArray::Invalid;
    };
    p.skip_ws();
    if p.i != p.s.len() {
        return JsonArray::Invalid;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) => out.push(s),
            Value::Array(_) | Value::Other => return JsonArray::NotStrings,
        }
    }
    JsonArray::Strings(out)
}

/// The parts of a JSON value this decoder needs to keep.
enum Value {
    String(String),
    Array(Vec<Value>),
    Other,
}

struct Decoder<'a> {
    s: &'a [u8],
    i: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), ()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    fn value(&mut self) -> Result<Value, ()> {
        match self.peek().ok_or(())? {
            b'"' => self.string().map(Value::String),
            b'[' => self.array(),
            b'{' => self.object(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<Value, ()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(Value::Other)
        } else {
            Err(())
        }
    }

    fn array(&mut self) -> Result<Value, ()> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']').is_ok() {
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            if self.eat(b',').is_ok() {
                continue;
            }
            self.eat(b']')?;
            return Ok(Value::Array(items));
        }
    }

    fn object(&mut self) -> Result<Value, ()> {
        self.eat(b'{')?;
        self.skip_ws();
        if self.eat(b'}').is_ok() {
            return Ok(Value::Other);
        }
        loop {
            self.skip_ws();
            self.string()?;
            self.skip_ws();
            self.eat(b':')?;
            self.skip_ws();
            self.value()?;
            self.skip_ws();
            if self.eat(b',').is_ok() {
                continue;
            }
            self.eat(b'}')?;
            return Ok(Value::Other);
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    /// A JSON number; Go rejects (as a decode error) one that overflows a float64.
    fn number(&mut self) -> Result<Value, ()> {
        let start = self.i;
        let _ = self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(()),
        }
        if self.eat(b'.').is_ok() && self.digits() == 0 {
            return Err(());
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(());
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| ())?;
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Other),
            _ => Err(()),
        }
    }

    fn hex4(&mut self) -> Result<u32, ()> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(())?;
        let text = std::str::from_utf8(digits).map_err(|_| ())?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        self.i += 4;
        u32::from_str_radix(text, 16).map_err(|_| ())
    }

    /// A `\uXXXX` escape (the `\u` already consumed), pairing surrogates as Go does: a lone
    /// surrogate decodes to U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, ()> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Ok(second) = self.hex4()
                && (0xDC00..0xE000).contains(&second)
            {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.i = save;
        }
        Ok(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }

    fn string(&mut self) -> Result<String, ()> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.peek().ok_or(())?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|_| ()),
                b'\\' => {
                    let e = self.peek().ok_or(())?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => return Err(()),
                b => out.push(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArray {
        JsonArray::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn decodes_like_go() {
        assert_eq!(parse_string_array("[]"), strings(&[]));
        assert_eq!(parse_string_array(r#"[ "a", "b" ] "#), strings(&["a", "b"]));
        assert_eq!(
            parse_string_array(r#"["\" \\ \/ \b \u0000 \ud83d\ude00 \ud800"]"#),
            strings(&["\" \\ / \u{8} \u{0} 😀 \u{FFFD}"])
        );
        assert_eq!(parse_string_array(r#"["a", 1]"#), JsonArray::NotStrings);
        assert_eq!(parse_string_array(r#"[["a"]]"#), JsonArray::NotStrings);
        assert_eq!(parse_string_array(r#"["a", 1e400]"#), JsonArray::Invalid);
        assert_eq!(parse_string_array(r#"['a']"#), JsonArray::Invalid);
        assert_eq!(parse_string_array(r#"["a""#), JsonArray::Invalid);
        assert_eq!(parse_string_array(r#"["a"] x"#), JsonArray::Invalid);
        assert_eq!(parse_string_array(r#"["a",]"#), JsonArray::Invalid);
        assert_eq!(parse_string_array("[\"a\tb\"]"), JsonArray::Invalid);
    }
}
