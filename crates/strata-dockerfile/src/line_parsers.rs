//! Turning one logical line into an [`Instruction`]: keyword, flags and the
//! per-instruction argument rules of BuildKit's `line_parsers.go`.
//!
//! Some of these rules scan bytes rather than characters, exactly as BuildKit does; for
//! non-ASCII input that is observable (a flag's non-ASCII bytes come out as Latin-1
//! characters), and it is kept so dumps stay identical.

use crate::ast::{ArgsForm, Instruction};
use crate::gostr;
use crate::json::{self, JsonArray};

/// The argument nodes one instruction's line parser produced.
#[derive(Default)]
struct Parsed {
    values: Vec<String>,
    onbuild: Option<Box<Instruction>>,
    json: bool,
}

impl Parsed {
    fn words(values: Vec<String>) -> Self {
        Parsed {
            values,
            ..Parsed::default()
        }
    }
}

type LineResult = Result<Parsed, String>;

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Parses a logical line (continuations already joined) into an instruction without lines.
pub(crate) fn instruction_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Instruction, String> {
    let (keyword, flags, rest) = split_command(line, escape);
    let keyword = gostr::to_lower(&keyword);
    let parsed = dispatch(&keyword, &rest, escape)?;
    let args = if parsed.json {
        ArgsForm::Json(parsed.values.clone())
    } else {
        ArgsForm::Shell(rest)
    };
    Ok(Instruction {
        keyword,
        flags,
        args,
        values: parsed.values,
        onbuild: parsed.onbuild,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        original: line.to_string(),
        comments,
    })
}

fn dispatch(keyword: &str, rest: &str, escape: char) -> LineResult {
    match keyword {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok(Parsed::words(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" => name_val(rest, "ENV", escape),
        "label" => name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(Parsed::words(split_whitespace_all(rest))),
        "healthcheck" => health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(whole_string(rest)),
        "onbuild" => sub_command(rest, escape),
        // BuildKit's parser keeps unknown instructions, with one empty argument node.
        _ => Ok(Parsed::words(vec![String::new()])),
    }
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+`.
fn is_line_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's `unicode.IsSpace(rune(b))` on a single byte.
fn is_byte_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// `reWhitespace.Split(s, 2)`.
fn split_whitespace_once(s: &str) -> Vec<&str> {
    match s.find(is_line_space) {
        Some(i) => {
            let after = s[i..].trim_start_matches(is_line_space);
            vec![&s[..i], after]
        }
        None => vec![s],
    }
}

/// `reWhitespace.Split(s, -1)`, or nothing for empty input (`parseStringsWhitespaceDelimited`).
fn split_whitespace_all(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = s
        .split(is_line_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    // Go's Split keeps empty fields at the ends; the input is trimmed, so only a trailing
    // run of separators after a non-trimmed character could produce one.
    if s.ends_with(is_line_space) {
        out.push(String::new());
    }
    if s.starts_with(is_line_space) {
        out.insert(0, String::new());
    }
    out
}

/// Splits a logical line into keyword, flags and the remaining argument text.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_whitespace_once(line.trim());
    let cmd = parts[0].to_string();
    if parts.len() < 2 {
        return (cmd, Vec::new(), String::new());
    }
    let (rest, flags) = extract_builder_flags(parts[1], escape);
    (cmd, flags, rest.trim().to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the leading `--flag` words off the argument text (quotes and escapes removed),
/// returning the rest of the text and the flags. A bare `--` ends the flags.
pub(crate) fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let b = line.as_bytes();
    let n = b.len();
    let esc = u8::try_from(u32::from(escape)).unwrap_or(b'\\');
    let rest_from = |pos: usize| String::from_utf8_lossy(&b[pos..]).into_owned();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= n {
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_byte_space(b[pos]) {
                pos += 1;
                continue;
            }
            if b[pos] != b'-' || pos + 1 == n || b[pos + 1] != b'-' {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        let mut ch = b[pos];
        if phase == Phase::Word {
            if is_byte_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
        } else if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == esc {
            if pos + 1 == n {
                if phase == Phase::Quote {
                    phase = Phase::Word;
                }
                pos += 1;
                continue;
            }
            pos += 1;
            ch = b[pos];
        }
        // Go writes each byte as a rune: non-ASCII bytes become Latin-1 characters.
        word.push(char::from(ch));
        pos += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords`: splits on white space outside quotes, keeping quotes and escapes.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= n {
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if gostr::is_space(chars[pos]) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        let mut ch = chars[pos];
        if phase == Phase::Word {
            if gostr::is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                // An unquoted escape keeps itself and the next character, even a quote.
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
        } else {
            if ch == quote {
                phase = Phase::Word;
            }
            // Nothing can be escaped inside single quotes.
            if ch == escape && quote != '\'' {
                if pos + 1 == n {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                pos += 1;
                word.push(ch);
                ch = chars[pos];
            }
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL`: `KEY value` (one pair) or `k1=v1 k2=v2 …`, as `key, value, sep` triples.
fn name_val(rest: &str, key: &str, escape: char) -> LineResult {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        let parts = split_whitespace_once(rest);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(Parsed::words(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]));
    }
    let mut values = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                gostr::quote(word)
            ));
        };
        values.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Parsed::words(values))
}

fn whole_string(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::words(vec![rest.to_string()])
}

/// Exec form when the text is a JSON array of strings.
fn try_json(rest: &str) -> Option<Result<Vec<String>, String>> {
    let trimmed = rest.trim_start();
    if !trimmed.starts_with('[') {
        return None;
    }
    match json::parse_string_array(trimmed) {
        JsonArray::Strings(values) => Some(Ok(values)),
        JsonArray::NotStrings => Some(Err(NOT_STRING_ARRAY.to_string())),
        JsonArray::Invalid => None,
    }
}

fn json_parsed(values: Vec<String>) -> Parsed {
    Parsed {
        values,
        onbuild: None,
        json: true,
    }
}

/// `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`: exec form, or the whole text as one value.
fn maybe_json(rest: &str) -> LineResult {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match try_json(rest) {
        Some(values) => values.map(json_parsed),
        None => Ok(whole_string(rest)),
    }
}

/// `COPY`, `ADD`, `VOLUME`: exec form, or white-space separated words.
fn maybe_json_to_list(rest: &str) -> LineResult {
    match try_json(rest) {
        Some(values) => values.map(json_parsed),
        None => Ok(Parsed::words(split_whitespace_all(rest))),
    }
}

/// `HEALTHCHECK <type> <command>`: the type, then the command like `CMD`.
fn health_config(rest: &str) -> LineResult {
    let b = rest.as_bytes();
    let sep = b.iter().position(|&c| is_byte_space(c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let next = b[sep..]
        .iter()
        .position(|&c| !is_byte_space(c))
        .map_or(b.len(), |i| sep + i);
    let kind = String::from_utf8_lossy(&b[..sep]).into_owned();
    let cmd = maybe_json(&String::from_utf8_lossy(&b[next..]))?;
    let mut values = vec![kind];
    values.extend(cmd.values);
    Ok(Parsed {
        values,
        onbuild: None,
        json: cmd.json,
    })
}

/// `ONBUILD <instruction>`.
fn sub_command(rest: &str, escape: char) -> LineResult {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    let child = instruction_from_line(rest, escape, Vec::new())?;
    Ok(Parsed {
        values: Vec::new(),
        onbuild: Some(Box::new(child)),
        json: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        parse_words(s, '\\')
    }

    #[test]
    fn parse_words_matches_buildkit() {
        assert_eq!(words("foo"), ["foo"]);
        assert_eq!(words("foo bar"), ["foo", "bar"]);
        assert_eq!(words("foo\\ bar"), ["foo\\ bar"]);
        assert_eq!(words("foo bar 'abc xyz'"), ["foo", "bar", "'abc xyz'"]);
        assert_eq!(words("foo bar \"abc xyz\""), ["foo", "bar", "\"abc xyz\""]);
        assert_eq!(words("föo bàr \"âbc xÿz\""), ["föo", "bàr", "\"âbc xÿz\""]);
        assert_eq!(words("a=\"\" b="), ["a=\"\"", "b="]);
    }

    #[test]
    fn flags_stop_at_first_non_flag() {
        let (rest, flags) = extract_builder_flags("--from=a --chown=\"x y\" src dst", '\\');
        assert_eq!(flags, ["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_builder_flags("--a -- --b", '\\');
        assert_eq!(flags, ["--a"]);
        assert_eq!(rest, " --b");
        let (_, flags) = extract_builder_flags("--chown=é x", '\\');
        assert_eq!(flags, ["--chown=Ã©"], "bytes become Latin-1 runes as in Go");
    }

    #[test]
    fn split_command_trims() {
        let (cmd, flags, rest) =
            split_command("  RUN\t --mount=type=cache,target=/x  echo hi  ", '\\');
        assert_eq!(cmd, "RUN");
        assert_eq!(flags, ["--mount=type=cache,target=/x"]);
        assert_eq!(rest, "echo hi");
    }
}
