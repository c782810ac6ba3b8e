//! Shell word expansion as BuildKit performs it on instruction arguments.
//!
//! [`Lexer`] follows BuildKit's `frontend/dockerfile/shell` package: quotes (`'…'`, `"…"`),
//! the escape token (`\` or `` ` ``), `$VAR`, `${VAR}` and the modifiers `:-` `-` `:+` `+`
//! `:?` `?` `#` `##` `%` `%%` `/` `//`. It is not a shell: there is no command substitution,
//! globbing or arithmetic, and positional or special parameters (`$1`, `$@`, …) are simply unset.
//!
//! Every expansion also reports which variable names it looked up and whether they were set
//! ([`Expansion::matched`], [`Expansion::unmatched`]): a build argument affects a cache key from
//! its first use, so callers need to know which words used which arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

use crate::gostr;

/// A source of variable values for expansion.
pub trait Env {
    /// The value of `name`, or `None` when it is unset (an empty value is set).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// `KEY=value` pairs in order; a later pair for the same key wins (BuildKit's `EnvsFromSlice`).
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// An environment with no variables set.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A word that could not be expanded, e.g. an unterminated quote or `${VAR:?msg}` with `VAR`
/// unset. The message reads like BuildKit's: `failed to process "<word>": <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {reason}", gostr::quote(word))]
pub struct ShellError {
    /// The word being expanded.
    pub word: String,
    /// Why expansion failed.
    pub reason: String,
}

/// The full result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text with quotes removed and inner spacing kept (`ProcessWord`).
    pub result: String,
    /// The expansion split into fields on unquoted white space (`ProcessWords`).
    pub words: Vec<String>,
    /// Variable names that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Variable names that were looked up and unset.
    pub unmatched: BTreeSet<String>,
}

impl Expansion {
    /// Every variable name the word referred to, set or not.
    pub fn used(&self) -> BTreeSet<String> {
        self.matched.union(&self.unmatched).cloned().collect()
    }
}

/// Shell-like word expansion with BuildKit's exact rules.
///
/// The public flags mirror BuildKit's `Lex` options and default to off.
#[derive(Debug, Clone)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output instead of removing them.
    pub raw_quotes: bool,
    /// Keep escape tokens in the output instead of removing them.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written (`$X`, `${X:-y}`) instead of expanding.
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

type Step<T> = Result<T, String>;

impl Lexer {
    /// A lexer that uses `escape` (`\` or `` ` ``, from the `# escape=` directive).
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape token this lexer uses.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string (BuildKit's `ProcessWord`).
    pub fn process_word<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<String, ShellError> {
        self.expand(word, env).map(|e| e.result)
    }

    /// Expands `word` and splits it into fields on unquoted white space (`ProcessWords`).
    pub fn process_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ShellError> {
        self.expand(word, env).map(|e| e.words)
    }

    /// Expands `word`, returning the string, the fields and the variables it used.
    pub fn expand<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<Expansion, ShellError> {
        let mut state = WordState {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            words_buf: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (result, words) = state
            .process_stop_on(None, self.raw_escapes)
            .map_err(|reason| ShellError {
                word: word.to_string(),
                reason,
            })?;
        Ok(Expansion {
            result,
            words,
            matched: state.matched,
            unmatched: state.unmatched,
        })
    }
}

/// Field splitting state. The in-progress field lives in [`WordState::words_buf`], which is
/// shared by nested `${…}` words exactly as in BuildKit (a nested word clears it).
#[derive(Default)]
struct Fields {
    words: Vec<String>,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, buf: &mut String, c: char) {
        if gostr::is_space(c) {
            if self.in_word && !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(buf, c);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, c: char) {
        buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for c in s.chars() {
            self.add_char(buf, c);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

struct WordState<'a, E: Env + ?Sized> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a E,
    raw_escapes: bool,
    words_buf: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<E: Env + ?Sized> WordState<'_, E> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Processes characters until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        self.words_buf.clear();
        let mut fields = Fields::default();
        let quotes = !self.lex.skip_process_quotes;
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.next();
                return Ok((result, fields.finish(&mut self.words_buf)));
            }
            match c {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    fields.add_string(&mut self.words_buf, &tmp);
                }
                '<' | '\'' | '"' if c == '<' || quotes => {
                    let tmp = match c {
                        '<' => self.process_possible_heredoc(),
                        '\'' => self.process_single_quote()?,
                        _ => self.process_double_quote()?,
                    };
                    result.push_str(&tmp);
                    fields.add_raw_string(&mut self.words_buf, &tmp);
                }
                _ => {
                    self.next();
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            fields.add_raw_char(&mut self.words_buf, c);
                            result.push(c);
                        }
                        let Some(escaped) = self.next() else { break };
                        fields.add_raw_char(&mut self.words_buf, escaped);
                        result.push(escaped);
                    } else {
                        fields.add_char(&mut self.words_buf, c);
                        result.push(c);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, fields.finish(&mut self.words_buf)))
    }

    fn process_single_quote(&mut self) -> Step<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Step<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(mut c) => {
                    self.next();
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                self.next();
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && gostr::is_digit(c) {
                while let Some(d) = self.peek().filter(|d| gostr::is_digit(*d)) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next();
                return c.to_string();
            }
            if !gostr::is_letter(c) && !gostr::is_digit(c) && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Step<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.process_name();
        match self.next() {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                self.modifier(&name, op, true)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, Some(op), false),
            Some('/') => self.substitute(&name),
            other => Err(unsupported(&display_op(other, false))),
        }
    }

    /// `${name<op>word}` and `${name:<op>word}` for `-`, `+`, `?`, `#`, `%`.
    fn modifier(&mut self, name: &str, op: Option<char>, null_is_unset: bool) -> Step<String> {
        let shown = display_op(op, null_is_unset);
        let pattern_op = matches!(op, Some('#' | '%'));
        if null_is_unset && pattern_op {
            return Err(unsupported(&shown));
        }
        let word = self.stop_on_or_missing('}', pattern_op, "syntax error: missing '}'")?;
        let value = self.get_env(name);
        if value.is_none() && self.lex.skip_unset_env {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let null = !set || (null_is_unset && value.is_empty());
        match op {
            Some('-') => Ok(if null { word } else { value }),
            Some('+') => Ok(if null { String::new() } else { word }),
            Some('?') if !set => Err(required_message(name, &word, "is not allowed to be unset")),
            Some('?') if null => Err(required_message(name, &word, "is not allowed to be empty")),
            Some('?') => Ok(value),
            Some(c @ ('#' | '%')) => {
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                if c == '%' {
                    trim_suffix(&pattern, &value, greedy)
                } else {
                    trim_prefix(&pattern, &value, greedy)
                }
            }
            _ => Err(unsupported(&shown)),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn substitute(&mut self, name: &str) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = self.stop_on_or_missing('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.stop_on_or_missing('}', true, "syntax error: missing '}'")?;
        let value = self.get_env(name);
        if value.is_none() && self.lex.skip_unset_env {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        // An unset variable is matched as the empty string, as BuildKit does.
        let value = value.unwrap_or_default();
        let re = shell_pattern_regex(&pattern, true, false)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        if all {
            return Ok(replace_all_go(&re, &value, &replacement));
        }
        Ok(match re.find(&value) {
            Some(m) => format!(
                "{}{}{}",
                &value[..m.start()],
                replacement,
                &value[m.end()..]
            ),
            None => value,
        })
    }

    /// A nested word up to `stop`; running out of input reports `missing`.
    fn stop_on_or_missing(&mut self, stop: char, raw: bool, missing: &str) -> Step<String> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(missing.to_string()),
            Err(e) => Err(e),
        }
    }
}

fn required_message(name: &str, word: &str, default: &str) -> String {
    let message = if word.is_empty() { default } else { word };
    format!("{name}: {message}")
}

fn unsupported(shown: &str) -> String {
    format!("unsupported modifier ({shown}) in substitution")
}

/// The modifier as BuildKit prints it; the end of input shows as U+FFFD like Go's `string(EOF)`.
fn display_op(op: Option<char>, colon: bool) -> String {
    let c = op.unwrap_or('\u{FFFD}');
    if colon {
        format!(":{c}")
    } else {
        c.to_string()
    }
}

/// POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`).
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Turns a shell pattern (`*`, `?`, `\` escapes; no bracket expressions) into a regex.
fn shell_pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` only escape the ${} syntax; they are not part of the pattern.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(e);
                    }
                    Some(e) => return Err(format!("invalid escape '\\{e}'")),
                    None => return Err("invalid escape '\\'".into()),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let re = shell_pattern_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Shortest/longest suffix removal, done as a prefix removal on the reversed value and pattern.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern while keeping each `\x` escape pair in order (`a\*c` → `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<String> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            units.push(chars[i..i + 2].iter().collect());
            i += 2;
        } else {
            units.push(chars[i].to_string());
            i += 1;
        }
    }
    units.into_iter().rev().collect()
}

/// Go's `Regexp.ReplaceAllString`: every match replaced, with `$0`/`${0}` expanded to the
/// match, `$$` to `$`, and any other `$name` to nothing (shell patterns have no groups).
fn replace_all_go(re: &Regex, value: &str, template: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for m in re.find_iter(value) {
        out.push_str(&value[last..m.start()]);
        out.push_str(&expand_template(template, m.as_str()));
        last = m.end();
    }
    out.push_str(&value[last..]);
    out
}

fn expand_template(template: &str, whole: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match template_name(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
    out
}

/// The `name` or `{name}` at the start of `s` (Go's `regexp.extract`) and the text after it.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| gostr::is_letter(c) || gostr::is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if brace {
        return after.strip_prefix('}').map(|a| (name, a));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(input: &str, e: &[(&str, &str)]) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(input, &env(e))
    }

    #[test]
    fn pattern_modifiers() {
        let e = [("X", "abcabc"), ("P", "/usr/local/bin")];
        assert_eq!(word("${X#a*}", &e).unwrap(), "bcabc");
        assert_eq!(word("${X##a*}", &e).unwrap(), "");
        assert_eq!(word("${X%b*}", &e).unwrap(), "abca");
        assert_eq!(word("${X%%b*}", &e).unwrap(), "a");
        assert_eq!(word("${P##*/}", &e).unwrap(), "bin");
        assert_eq!(word("${P%/*}", &e).unwrap(), "/usr/local");
        assert_eq!(word("${X/b/Z}", &e).unwrap(), "aZcabc");
        assert_eq!(word("${X//b/Z}", &e).unwrap(), "aZcaZc");
        assert_eq!(word("${X//b?/[$0]}", &e).unwrap(), "a[]a[]");
        assert_eq!(word("${X//b?/[\\$0]}", &e).unwrap(), "a[\\bc]a[\\bc]");
        assert_eq!(word("${P/\\/usr/}", &e).unwrap(), "/local/bin");
        assert_eq!(word("${UNSET#x}", &e).unwrap(), "");
        assert!(word("${X:#a}", &e).is_err());
        assert!(word("${X/a", &e).is_err());
    }

    #[test]
    fn required_messages() {
        let e = [("VAR", ""), ("ARG", "x")];
        let err = word("${VAR:?message here$ARG}", &e).unwrap_err();
        assert!(err.to_string().contains("VAR: message herex"), "{err}");
        assert_eq!(word("${VAR?message}", &e).unwrap(), "");
        let err = word("${NOPE?}", &e).unwrap_err();
        assert!(err.to_string().contains("NOPE: is not allowed to be unset"));
    }

    #[test]
    fn reports_used_variables() {
        let lex = Lexer::new('\\');
        let e = env(&[("A", "1")]);
        let x = lex.expand("$A ${B:-$C} '$D'", &e).unwrap();
        assert_eq!(x.result, "1  $D");
        assert_eq!(x.matched, BTreeSet::from(["A".to_string()]));
        assert_eq!(
            x.unmatched,
            BTreeSet::from(["B".to_string(), "C".to_string()])
        );
        assert_eq!(x.used().len(), 3);
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(
            lex.process_word("a`$b c\\d", &EmptyEnv).unwrap(),
            "a$b c\\d"
        );
    }

    #[test]
    fn skip_unset_keeps_references() {
        let mut lex = Lexer::new('\\');
        lex.skip_unset_env = true;
        let e = env(&[("A", "1")]);
        assert_eq!(
            lex.process_word("$A $B ${C} ${D:-x} ${E/a/b}", &e).unwrap(),
            "1 $B ${C} ${D:-x} ${E/a/b}"
        );
    }

    #[test]
    fn nested_braces_reset_the_field_buffer_like_buildkit() {
        // BuildKit shares one field buffer with nested ${...} words, so text before a
        // modifier in the same field is dropped by ProcessWords (ProcessWord is unaffected).
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_words("a${X:-b}", &EmptyEnv).unwrap(), vec!["b"]);
        assert_eq!(lex.process_word("a${X:-b}", &EmptyEnv).unwrap(), "ab");
    }

    #[test]
    fn reverse_pattern_keeps_escapes() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
    }

    #[test]
    fn template_expansion() {
        // `$0y` names the group "0y", which does not exist.
        assert_eq!(expand_template("x$0y${0}z$$ $1 ${a $", "M"), "xMz$  ${a $");
        assert_eq!(expand_template("<$0>", "M"), "<M>");
    }
}
