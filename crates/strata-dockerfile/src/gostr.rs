//! Go string and character semantics that BuildKit's output depends on.
//!
//! BuildKit is written in Go, and a few of its observable behaviours come straight from Go's
//! standard library: `strconv.Quote` for the AST dump, `unicode.IsSpace`/`IsLetter`/`IsDigit`
//! for word splitting and variable names, `strings.ToLower` for keywords and
//! `path/filepath.Clean` for `.dockerignore` patterns. This module re-states those rules in Rust
//! so the rest of the crate can say exactly what Go would.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Go's `unicode.IsSpace`: the Latin-1 spaces plus every `White_Space` character.
///
/// Rust's `char::is_whitespace` is defined by the same `White_Space` property, which already
/// includes U+0085 and U+00A0.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsLetter`: general category L.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// Go's `unicode.IsDigit`: general category Nd.
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.general_category() == unicode_properties::GeneralCategory::DecimalNumber
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and U+0020.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    )
}

/// Go's `strconv.Quote`: a double-quoted string literal with Go escapes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_quoted_char(&mut out, c);
    }
    out.push('"');
    out
}

fn push_quoted_char(out: &mut String, c: char) {
    if c == '"' || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub(crate) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strings.ToLower`: rune-by-rune simple lower-casing.
pub(crate) fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Go's `path/filepath.Clean` on Unix: the shortest lexically equivalent path.
pub(crate) fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let p = path.as_bytes();
    let n = p.len();
    let rooted = p[0] == b'/';
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let at_sep = |i: usize| i == n || p[i] == b'/';
        if p[r] == b'/' || (p[r] == b'.' && at_sep(r + 1)) {
            r += 1;
        } else if p[r] == b'.' && r + 1 < n && p[r + 1] == b'.' && at_sep(r + 2) {
            r += 2;
            if out.len() > dotdot {
                // Back up to the previous separator and drop it with the element.
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    // Only whole runs between '/' bytes were copied, so the bytes are still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Go's `path/filepath.Dir` on Unix: everything but the last element, cleaned.
pub(crate) fn dir_path(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean_path(&path[..=i]),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\u{0}\u{7f}\n\t"), r#""\x00\x7f\n\t""#);
        assert_eq!(quote("♥ ☃ 안녕"), "\"♥ ☃ 안녕\"");
        assert_eq!(quote("\u{a0}\u{2028}"), r#""\u00a0\u2028""#);
        assert_eq!(quote("\u{e0000}"), r#""\U000e0000""#);
    }

    #[test]
    fn quote_list_matches_go() {
        let v = vec!["--from=a".to_string(), "x y".to_string()];
        assert_eq!(quote_list(&v), r#"["--from=a" "x y"]"#);
    }

    #[test]
    fn clean_matches_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("../../a/../b", "../../b"),
            ("**/", "**"),
            ("!a/./b", "!a/b"),
            ("a/.", "a"),
            ("..", ".."),
        ] {
            assert_eq!(clean_path(i), o, "Clean({i:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        assert_eq!(dir_path("file"), ".");
        assert_eq!(dir_path("file/"), "file");
        assert_eq!(dir_path("/"), "/");
        assert_eq!(dir_path("a/b/c"), "a/b");
    }

    #[test]
    fn unicode_classes() {
        assert!(is_letter('한') && !is_letter('1') && !is_letter('_'));
        assert!(is_digit('٣') && !is_digit('²'));
        assert!(is_space('\u{85}') && is_space('\u{a0}') && !is_space('x'));
    }
}
