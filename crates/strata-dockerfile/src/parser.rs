//! The line-level parser: directives, comments, continuations and heredoc bodies.

use std::collections::BTreeSet;

use crate::ast::{Directive, Dockerfile, Instruction, Warning};
use crate::error::ParseError;
use crate::heredoc::{can_contain_heredoc, heredocs_from_line};
use crate::line_parsers::instruction_from_line;

/// The longest physical line BuildKit's scanner accepts, newline included.
const MAX_LINE: usize = 64 * 1024;

/// Parses a Dockerfile with BuildKit's rules.
///
/// Parser directives (`# syntax=`, `# escape=`, `# check=`) are honoured only at the top,
/// before any other line; the escape token also marks line continuations; comment and empty
/// lines inside a continuation are skipped (the latter with a warning); heredoc bodies are read
/// after `RUN`, `COPY` and `ADD`. Argument text is not expanded: see [`crate::shell`].
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (lines, too_long) = split_lines(text);
    let mut parser = Parser {
        lines: lines.into_iter(),
        current_line: 0,
        escape: '\\',
        directives: DirectiveParser::default(),
        found: Vec::new(),
    };
    let (instructions, warnings) = parser.run()?;
    if instructions.is_empty() {
        return Err(ParseError::new(
            parser.current_line.max(1),
            0,
            "file with no instructions",
        ));
    }
    if too_long {
        return Err(ParseError::new(
            parser.current_line + 1,
            0,
            format!(
                "dockerfile line greater than max allowed size of {}",
                MAX_LINE - 1
            ),
        ));
    }
    Ok(Dockerfile {
        directives: parser.found,
        instructions,
        escape: parser.escape,
        warnings,
    })
}

/// Splits into physical lines, each keeping its `\n`. Lines past one that BuildKit's
/// scanner cannot hold are dropped and reported by the flag.
fn split_lines(text: &str) -> (Vec<&str>, bool) {
    let mut lines = Vec::new();
    for line in text.split_inclusive('\n') {
        let limit = if line.ends_with('\n') {
            MAX_LINE
        } else {
            MAX_LINE - 1
        };
        if line.len() > limit {
            return (lines, true);
        }
        lines.push(line);
    }
    (lines, false)
}

/// Go's `bytes.TrimRight(line, "\r\n")`.
fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The text of a comment line as BuildKit records it (`TrimSpace(line[1:])`).
fn comment_text(line: &str) -> String {
    String::from_utf8_lossy(&line.as_bytes()[1..])
        .trim()
        .to_string()
}

/// If `line` ends with the escape token (plus blanks) that is not itself escaped, the line
/// without it and `false` (more follows); otherwise the line and `true`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

struct Parser<'a, I: Iterator<Item = &'a str>> {
    lines: I,
    /// The number of physical lines consumed so far (the 1-based number of the last one).
    current_line: usize,
    escape: char,
    directives: DirectiveParser,
    found: Vec<Directive>,
}

impl<'a, I: Iterator<Item = &'a str>> Parser<'a, I> {
    fn next_line(&mut self) -> Option<&'a str> {
        self.lines.next()
    }

    fn run(&mut self) -> Result<(Vec<Instruction>, Vec<Warning>), ParseError> {
        let mut instructions = Vec::new();
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        while let Some(mut raw) = self.next_line() {
            if self.current_line == 0 {
                raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
            }
            if is_comment(raw) {
                match comment_text(raw) {
                    c if c.is_empty() => comments.clear(),
                    c => comments.push(c),
                }
            }
            let (text, is_directive) = self.process_line(raw, true)?;
            if is_directive {
                comments.pop();
            }
            self.current_line += 1;
            let start_line = self.current_line;
            let (text, mut end) = trim_continuation(text, self.escape);
            if end && text.is_empty() {
                continue;
            }
            let mut logical = text.to_string();
            let mut empty_continuation = false;
            while !end {
                let Some(next) = self.next_line() else { break };
                let (text, _) = self.process_line(next, false)?;
                self.current_line += 1;
                if is_comment(next) {
                    continue;
                }
                if trim_newline(text).trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (text, done) = trim_continuation(text, self.escape);
                logical.push_str(text);
                end = done;
            }
            if empty_continuation {
                warnings.push(Warning {
                    message: format!("Empty continuation line found in: {logical}"),
                    line: self.current_line,
                });
            }
            let mut inst = instruction_from_line(&logical, self.escape, comments.clone())
                .map_err(|m| ParseError::new(start_line, self.current_line, m))?;
            if can_contain_heredoc(&inst) && logical.contains("<<") {
                self.read_heredocs(&mut inst, &logical, start_line)?;
            }
            set_lines(&mut inst, start_line, self.current_line);
            instructions.push(inst);
            comments.clear();
        }
        Ok((instructions, warnings))
    }

    /// Reads the body of every heredoc the line opens, in order.
    fn read_heredocs(
        &mut self,
        inst: &mut Instruction,
        logical: &str,
        start_line: usize,
    ) -> Result<(), ParseError> {
        let docs = heredocs_from_line(logical)
            .map_err(|m| ParseError::new(start_line, self.current_line, m))?;
        for mut doc in docs {
            let mut terminated = false;
            while let Some(line) = self.next_line() {
                self.current_line += 1;
                let mut candidate = trim_newline(line);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(line);
            }
            if !terminated {
                return Err(ParseError::new(
                    start_line,
                    self.current_line,
                    format!(
                        "unterminated heredoc: no line reads {:?} before the end of the file",
                        doc.name
                    ),
                ));
            }
            inst.heredocs.push(doc);
        }
        Ok(())
    }

    /// Strips the line ending (and, for a first line, leading blanks), checks for a parser
    /// directive, and blanks out comments. Returns the text and whether it was a directive.
    fn process_line(&mut self, raw: &'a str, first: bool) -> Result<(&'a str, bool), ParseError> {
        let mut text = trim_newline(raw);
        if first {
            text = text.trim_start();
        }
        let line = self.current_line + 1;
        let directive = self
            .directives
            .parse_line(text)
            .map_err(|m| ParseError::new(line, 0, m))?;
        let is_directive = directive.is_some();
        if let Some((name, value)) = directive {
            if name == "escape" {
                self.escape = escape_token(&value).map_err(|m| {
                    let column = text.rfind(value.as_str()).map_or(1, |i| i + 1);
                    ParseError::new(line, 0, m).at_column(column)
                })?;
            }
            self.found.push(Directive { name, value, line });
        }
        Ok((if is_comment(text) { "" } else { text }, is_directive))
    }
}

fn set_lines(inst: &mut Instruction, start: usize, end: usize) {
    inst.start_line = start;
    inst.end_line = end;
    if let Some(child) = inst.onbuild.as_deref_mut() {
        set_lines(child, start, end);
    }
}

fn escape_token(value: &str) -> Result<char, String> {
    match value {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        _ => Err(format!(
            "invalid escape token '{value}' does not match ` or \\"
        )),
    }
}

/// Recognises parser directives: only on the leading run of `#` lines, each name at most once.
#[derive(Default)]
struct DirectiveParser {
    done: bool,
    seen: BTreeSet<String>,
}

/// Go's regexp `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

impl DirectiveParser {
    /// `Some((name, value))` for a directive line; any other line ends the directives.
    fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        if self.done {
            return Ok(None);
        }
        let parsed = line
            .strip_prefix('#')
            .and_then(|rest| split_directive(rest.trim_start()))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .filter(|(name, _)| matches!(name.as_str(), "syntax" | "escape" | "check"));
        let Some((name, value)) = parsed else {
            self.done = true;
            return Ok(None);
        };
        if !self.seen.insert(name.clone()) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        Ok(Some((name, value)))
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_len = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(name_len);
    let after_eq = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = after_eq.trim_matches(is_re_space);
    if !value.is_empty() {
        return Some((name, value));
    }
    // Only blanks follow: the lazy value takes the last one.
    let last = after_eq.chars().last()?;
    Some((name, &after_eq[after_eq.len() - last.len_utf8()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_detection() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }

    #[test]
    fn directive_syntax() {
        assert_eq!(split_directive("escape=`"), Some(("escape", "`")));
        assert_eq!(split_directive("syntax = a b  "), Some(("syntax", "a b")));
        assert_eq!(split_directive("escape= "), Some(("escape", " ")));
        assert_eq!(split_directive("escape="), None);
        assert_eq!(split_directive("TORUN -v x"), None);
        assert_eq!(split_directive("1x=y"), None);
    }

    #[test]
    fn long_lines() {
        let ok = format!("RUN {}\n", "a".repeat(MAX_LINE - 5));
        assert_eq!(ok.len(), MAX_LINE);
        assert!(parse(&ok).is_ok());
        let long = format!("FROM a\nLABEL a={}\n", "a".repeat(MAX_LINE));
        let err = parse(&long).unwrap_err();
        assert_eq!(
            err.message,
            "dockerfile line greater than max allowed size of 65535"
        );
    }
}
