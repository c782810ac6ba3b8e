//! `.dockerignore` reading and matching with moby's exact semantics.
//!
//! - [`parse`] reads an ignore file as moby's `ignorefile.ReadAll` does: a UTF-8 BOM is
//!   dropped, lines starting with `#` are comments, each line is trimmed, `!` marks an
//!   exclusion (re-inclusion), the rest is `filepath.Clean`ed and a leading `/` is dropped.
//! - [`Matcher`] matches slash-separated paths relative to the context root as
//!   `patternmatcher.MatchesOrParentMatches` does: `**` crosses directories, `*` and `?` do not,
//!   `[...]` classes and `\` escapes work, a path is matched when it or any parent directory
//!   matches, and the last matching pattern wins.
//! - [`dockerignore_for`] picks the file BuildKit would use: `<Dockerfile>.dockerignore` next
//!   to the Dockerfile wins over `<context>/.dockerignore`.

use std::fmt;
use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};

use crate::gostr;

/// One line of a `.dockerignore` file after moby's normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern, without the leading `!`.
    pub pattern: String,
    /// `true` for a `!pattern` line, which re-includes what earlier lines excluded.
    pub exclusion: bool,
    /// The 1-based line of the ignore file it came from (0 when built in code).
    pub line: usize,
}

impl fmt::Display for Pattern {
    /// The pattern as moby passes it on: `!` first for an exclusion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.pattern)
    }
}

/// Reads the patterns of a `.dockerignore` file (moby's `ignorefile.ReadAll`).
pub fn parse(text: &str) -> Vec<Pattern> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| parse_line(line, i + 1))
        .collect()
}

fn parse_line(line: &str, number: usize) -> Option<Pattern> {
    if line.starts_with('#') {
        return None;
    }
    let mut pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let exclusion = pattern.starts_with('!');
    if exclusion {
        pattern = pattern[1..].trim();
    }
    let mut cleaned = String::new();
    if !pattern.is_empty() {
        cleaned = gostr::clean_path(pattern);
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
    }
    Some(Pattern {
        pattern: cleaned,
        exclusion,
        line: number,
    })
}

/// A pattern that moby would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclusion,
    /// Malformed glob syntax (unclosed `[`, trailing `\`, bad range...), or a pattern that
    /// cannot be turned into a regex (e.g. an escaped non-ASCII character).
    #[error("syntax error in pattern: {0}")]
    BadPattern(String),
}

/// How one compiled pattern is tested (patternmatcher's fast paths, then a regex).
#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
    /// Valid glob syntax whose regex does not compile; like moby, this is only an error once
    /// the pattern is actually evaluated.
    Broken(String),
}

#[derive(Debug, Clone)]
struct Compiled {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

/// Decides whether context paths are excluded by a list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Compiled>,
}

impl Matcher {
    /// Compiles patterns read by [`parse`].
    pub fn new(patterns: &[Pattern]) -> Result<Matcher, PatternError> {
        Matcher::from_globs(patterns.iter().map(|p| p.to_string()))
    }

    /// Compiles raw pattern strings as moby's `patternmatcher.New` does: each is trimmed,
    /// empty ones are skipped, it is `filepath.Clean`ed and a leading `!` makes an exclusion.
    pub fn from_globs<I, S>(patterns: I) -> Result<Matcher, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            compiled.push(compile(&gostr::clean_path(p))?);
        }
        Ok(Matcher { patterns: compiled })
    }

    /// Whether any pattern excludes something (`!` lines present).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (slash-separated, relative to the context root) is excluded: it or one
    /// of its parent directories matches a pattern, and the last matching pattern is not a
    /// `!` exclusion. A pattern that cannot be evaluated counts as "not excluded"; use
    /// [`Matcher::try_matches`] to see that error.
    pub fn matches(&self, path: &str) -> bool {
        self.try_matches(path).unwrap_or(false)
    }

    /// Like [`Matcher::matches`], but reports a pattern whose regex does not compile when it
    /// is evaluated for this path (moby's `MatchesOrParentMatches` error).
    pub fn try_matches(&self, path: &str) -> Result<bool, PatternError> {
        let parent = gostr::dir_path(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // An inclusion cannot change an already-matched path, nor an exclusion an
            // unmatched one.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(path)?;
            if !hit && parent != "." {
                // Parent directories: a broken pattern already failed above.
                hit = (1..=parent_dirs.len())
                    .any(|i| p.matches(&parent_dirs[..i].join("/")).unwrap_or(false));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        Ok(matched)
    }
}

impl Compiled {
    fn matches(&self, path: &str) -> Result<bool, PatternError> {
        Ok(match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Regex(re) => re.is_match(path),
            Kind::Broken(why) => return Err(PatternError::BadPattern(why.clone())),
        })
    }
}

/// Compiles one cleaned pattern (with its optional leading `!`).
fn compile(cleaned: &str) -> Result<Compiled, PatternError> {
    let (exclusion, body) = match cleaned.strip_prefix('!') {
        Some("") => return Err(PatternError::LoneExclusion),
        Some(rest) => (true, rest),
        None => (false, cleaned),
    };
    validate_glob(body).map_err(|()| PatternError::BadPattern(body.to_string()))?;
    let (kind, go_regex) = classify(body);
    let kind = match kind {
        KindTag::Exact => Kind::Exact,
        KindTag::Prefix => Kind::Prefix(body[..body.len() - 2].to_string()),
        KindTag::Suffix => Kind::Suffix(body[2..].to_string()),
        KindTag::Regex => match go_regex_to_rust(&go_regex).and_then(|re| {
            RegexBuilder::new(&re)
                .octal(true)
                .build()
                .map_err(|e| e.to_string())
        }) {
            Ok(re) => Kind::Regex(re),
            Err(e) => Kind::Broken(format!("{body}: {e}")),
        },
    };
    Ok(Compiled {
        cleaned: body.to_string(),
        exclusion,
        kind,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindTag {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Characters escaped in the regex because they mean nothing special in a glob.
fn regex_only_meta(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

/// patternmatcher's `compile`: the match kind and the (Go syntax) regex for a pattern.
fn classify(pattern: &str) -> (KindTag, String) {
    let mut re = String::from("^");
    let mut kind = KindTag::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == KindTag::Exact {
                        kind = KindTag::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = KindTag::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = KindTag::Regex;
                }
                if first {
                    kind = KindTag::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = KindTag::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = KindTag::Regex;
            }
            c if regex_only_meta(c) => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.next() {
                Some(e) => {
                    re.push('\\');
                    re.push(e);
                    kind = KindTag::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(c);
                kind = KindTag::Regex;
            }
            c => re.push(c),
        }
        first = false;
    }
    re.push('$');
    (kind, re)
}

/// Checks glob syntax as Go's `filepath.Match(pattern, ".")` does for its error.
fn validate_glob(pattern: &str) -> Result<(), ()> {
    let mut rest = pattern;
    while !rest.is_empty() {
        let (chunk, after) = scan_chunk(rest.trim_start_matches('*'));
        validate_chunk(chunk)?;
        rest = after;
    }
    Ok(())
}

/// Splits off the next run up to an unbracketed `*` (Go's `scanChunk`).
fn scan_chunk(pattern: &str) -> (&str, &str) {
    let bytes = pattern.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    pattern.split_at(i)
}

/// The syntax half of Go's `matchChunk`.
fn validate_chunk(chunk: &str) -> Result<(), ()> {
    let mut chars = chunk.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut ranges = 0;
                loop {
                    if chars.peek() == Some(&']') && ranges > 0 {
                        chars.next();
                        break;
                    }
                    class_char(&mut chars)?;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        class_char(&mut chars)?;
                    }
                    ranges += 1;
                }
            }
            '\\' => {
                chars.next().ok_or(())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) class character that must be followed by more.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<(), ()> {
    match chars.next() {
        None | Some('-' | ']') => return Err(()),
        Some('\\') => {
            chars.next().ok_or(())?;
        }
        Some(_) => {}
    }
    if chars.peek().is_none() {
        return Err(());
    }
    Ok(())
}

/// Rewrites a Go (RE2) regex, as built by [`classify`], into the `regex` crate's dialect.
///
/// The two agree on everything the pattern translation produces except a few details of
/// escapes and bracket classes: Go's `\d \s \w \b` are ASCII-only, `[` inside a class is a
/// literal in Go but opens a nested class here, and `&&`, `--`, `~~` are set operators here.
fn go_regex_to_rust(go: &str) -> Result<String, String> {
    let mut out = String::with_capacity(go.len() + 8);
    let mut chars = go.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_start = std::mem::replace(&mut class_start, false);
        match c {
            '\\' => match chars.next() {
                Some(e) if in_class && is_perl_class(e) => {
                    // Go rejects a Perl class as the end of a range (`[a-\d]`); after one
                    // (`[\d-z]`) a dash is a literal.
                    if ends_with_bare_dash(&out) && !at_start && !out.ends_with("[-") {
                        return Err(format!("invalid character class range near \\{e}"));
                    }
                    out.push_str(&rust_escape(e));
                }
                Some(e) => out.push_str(&rust_escape(e)),
                None => out.push_str("\\\\"),
            },
            '[' if !in_class => {
                out.push('[');
                in_class = true;
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                class_start = true;
            }
            '[' if chars.peek() == Some(&':') => copy_posix_class(&mut out, &mut chars),
            ']' if in_class && !at_start => {
                out.push(']');
                in_class = false;
            }
            // A dash right after a dash would be a set difference here; in Go it is a range end.
            '-' if in_class && !ends_with_bare_dash(&out) && !ends_with_nested_class(&out) => {
                out.push('-')
            }
            '[' | ']' | '&' | '~' | '-' | '^' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' => out.push_str("\\]"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Go's Perl character classes `\d \D \s \S \w \W`.
fn is_perl_class(e: char) -> bool {
    matches!(e, 'd' | 'D' | 's' | 'S' | 'w' | 'W')
}

/// Whether the regex so far ends with an unescaped `-`.
fn ends_with_bare_dash(out: &str) -> bool {
    out.ends_with('-') && !out.ends_with("\\-")
}

/// Whether the regex so far ends with a nested class (`[0-9]` from `\d`, or `[:alpha:]`),
/// after which Go reads a dash as a literal.
fn ends_with_nested_class(out: &str) -> bool {
    out.ends_with(']') && !out.ends_with("\\]")
}

/// Copies a POSIX class such as `[:alpha:]` through to its closing `:]`.
fn copy_posix_class(out: &mut String, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    out.push('[');
    let mut prev = '[';
    for d in chars.by_ref() {
        out.push(d);
        if prev == ':' && d == ']' {
            break;
        }
        prev = d;
    }
}

/// A Go regex escape `\e` in the `regex` crate's dialect.
fn rust_escape(e: char) -> String {
    match e {
        'd' => "[0-9]".into(),
        'D' => "[^0-9]".into(),
        'w' => "[0-9A-Za-z_]".into(),
        'W' => "[^0-9A-Za-z_]".into(),
        's' => "[\\t\\n\\f\\r ]".into(),
        'S' => "[^\\t\\n\\f\\r ]".into(),
        'b' => "(?-u:\\b)".into(),
        'B' => "(?-u:\\B)".into(),
        e if e.is_ascii_punctuation() => {
            if regex_syntax_meta(e) {
                format!("\\{e}")
            } else {
                e.to_string()
            }
        }
        e => format!("\\{e}"),
    }
}

/// Characters the `regex` crate treats as meta and accepts escaped.
fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// The ignore file BuildKit uses for a build: `<dockerfile>.dockerignore` (next to the
/// Dockerfile, same file name plus `.dockerignore`) when it is a file, otherwise
/// `<context>/.dockerignore` when that is a file, otherwise none.
pub fn dockerignore_for(dockerfile: &Path, context: &Path) -> Option<PathBuf> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    let specific = PathBuf::from(specific);
    if specific.is_file() {
        return Some(specific);
    }
    let general = context.join(".dockerignore");
    general.is_file().then_some(general)
}

/// Reads the patterns that apply to a build (see [`dockerignore_for`]); no file means no
/// patterns. Invalid UTF-8 is replaced rather than rejected.
pub fn read_dockerignore(
    dockerfile: &Path,
    context: &Path,
) -> std::io::Result<(Option<PathBuf>, Vec<Pattern>)> {
    let Some(path) = dockerignore_for(dockerfile, context) else {
        return Ok((None, Vec::new()));
    };
    let bytes = std::fs::read(&path)?;
    let patterns = parse(&String::from_utf8_lossy(&bytes));
    Ok((Some(path), patterns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        Matcher::from_globs(patterns).unwrap().matches(path)
    }

    #[test]
    fn parse_normalises_lines() {
        let p = parse("\u{feff}# comment\n\n  /a/b/../c/  \n!  /d\n #x\n!\n");
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["a/c", "!d", "#x", "!"]);
        assert_eq!(p[1].line, 4);
        assert!(Matcher::new(&p).is_err(), "a lone ! is rejected");
    }

    #[test]
    fn matching_basics() {
        assert!(m(&["docs", "!docs/README.md"], "docs/x"));
        assert!(!m(&["docs", "!docs/README.md"], "docs/README.md"));
        assert!(m(&["*.go"], "main.go"));
        assert!(!m(&["*.go"], "a/main.go"));
        assert!(m(&["**/*.go"], "a/b/main.go"));
        assert!(
            m(&["a[!x]c"], "a!c"),
            "Go classes are regex classes: ! is literal"
        );
        assert!(m(&["[[]x"], "[x"));
        assert!(m(&["a\\dc"], "a1c"));
        assert!(m(&["[\\d-x]"], "-") && m(&["[\\d-x]"], "x") && !m(&["[\\d-x]"], "y"));
        assert!(m(&["[\\]-a]"], "_"), "an escaped ] still starts a range");
        let range_to_class = Matcher::from_globs(["[a-\\d]"]).unwrap();
        assert!(range_to_class.try_matches("a").is_err());
        assert!(!m(&["a\\dc"], "a٣c"), "\\d is ASCII-only as in Go");
        // A regex error surfaces only when the pattern is evaluated, as in moby.
        let broken = Matcher::from_globs(["x", "!a\\é"]).unwrap();
        assert_eq!(broken.try_matches("y"), Ok(false));
        assert!(
            Matcher::from_globs(["a\\é"])
                .unwrap()
                .try_matches("y")
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_globs() {
        for bad in ["[", "a[", "a\\", "[]", "[]a]", "[a-]", "x*[", "[^]"] {
            assert!(
                Matcher::from_globs([bad]).is_err(),
                "{bad:?} should be rejected"
            );
        }
        for good in ["[a-c]", "[\\]]", "*", "**", "a*b?c"] {
            assert!(
                Matcher::from_globs([good]).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let df_dir = dir.path().join("build");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::create_dir_all(&df_dir).unwrap();
        let dockerfile = df_dir.join("app.Dockerfile");
        assert_eq!(dockerignore_for(&dockerfile, &ctx), None);
        assert_eq!(read_dockerignore(&dockerfile, &ctx).unwrap().1, vec![]);

        std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
        assert_eq!(
            dockerignore_for(&dockerfile, &ctx),
            Some(ctx.join(".dockerignore"))
        );

        let specific = df_dir.join("app.Dockerfile.dockerignore");
        std::fs::write(&specific, "").unwrap();
        assert_eq!(dockerignore_for(&dockerfile, &ctx), Some(specific.clone()));
        let (path, patterns) = read_dockerignore(&dockerfile, &ctx).unwrap();
        assert_eq!(path, Some(specific));
        assert!(patterns.is_empty(), "an empty specific file still wins");
    }
}
