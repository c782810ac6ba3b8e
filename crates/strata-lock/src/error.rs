//! Errors: every one names the lockfile, a line and column where the format lets us know them,
//! the entry involved, and what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::artifact::{Digest, Origin};

/// A place in a lockfile: the file as the user gave it, plus 1-based line and column when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The lockfile path as the user gave it.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known (only ever set together with `line`).
    pub column: Option<u32>,
}

impl Location {
    /// A location naming only the file.
    pub fn file(file: &Path) -> Location {
        Location {
            file: file.to_path_buf(),
            line: None,
            column: None,
        }
    }

    /// A location at a line and column of `file`.
    pub fn at(file: &Path, line: usize, column: usize) -> Location {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Location {
            file: file.to_path_buf(),
            line: Some(narrow(line)),
            column: Some(narrow(column)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// The lockfile entry an error is about, e.g. ``package `foo` ``; empty for whole-file errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry(pub Option<String>);

impl Entry {
    /// No particular entry: the error is about the whole file.
    pub fn none() -> Entry {
        Entry(None)
    }

    /// An entry described as `what` (e.g. ``package `foo` ``).
    pub fn new(what: impl Into<String>) -> Entry {
        Entry(Some(what.into()))
    }
}

impl fmt::Display for Entry {
    /// Prints `what: ` so it can sit between the location and the message, or nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(what) => write!(f, "{what}: "),
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong reading a lockfile. All of them are input errors (exit code 2):
/// the user has to fix or regenerate the lockfile, or pick other options.
///
/// `Display` reads like a compiler diagnostic:
/// ``pylock.toml:12:5: package `foo`: wheel has neither `url` nor `path` ...``.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lockfile could not be read.
    #[error("{}: cannot read the lockfile: {source} (check the path and its permissions)", .file.display())]
    Read {
        /// The path as given.
        file: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The file name does not say which lockfile format it is.
    #[error(
        "{}: not a lockfile name strata knows; rename it to one of: pylock.toml, pylock.<name>.toml, \
         package-lock.json, npm-shrinkwrap.json, rpms.lock.yaml, artifacts.lock.yaml",
        .file.display()
    )]
    UnknownFormat {
        /// The path as given.
        file: PathBuf,
    },

    /// The text is not valid TOML/JSON/YAML, or a value has the wrong type or a required field
    /// is missing at the syntax level.
    #[error("{at}: {entry}{message}")]
    Malformed {
        /// Where.
        at: Location,
        /// Which entry, if known.
        entry: Entry,
        /// What the parser said, plus what to do.
        message: String,
    },

    /// A field strata needs is absent.
    #[error("{at}: {entry}`{field}` is missing; {hint}")]
    MissingField {
        /// Where.
        at: Location,
        /// Which entry.
        entry: Entry,
        /// The missing field.
        field: String,
        /// What to do.
        hint: String,
    },

    /// A digest is malformed, uses no algorithm strata can verify, or is absent.
    #[error("{at}: {entry}{message}")]
    BadDigest {
        /// Where.
        at: Location,
        /// Which entry.
        entry: Entry,
        /// What is wrong and what to do.
        message: String,
    },

    /// The lockfile declares a format version strata does not read.
    #[error("{at}: {message}")]
    UnsupportedVersion {
        /// Where.
        at: Location,
        /// What was found, what is supported and what to do.
        message: String,
    },

    /// A file name, repo id, arch or other path component would escape its directory.
    #[error(
        "{at}: {entry}{message}; refusing to write outside the output directory; fix this name in the lockfile"
    )]
    UnsafePath {
        /// Where.
        at: Location,
        /// Which entry.
        entry: Entry,
        /// What is wrong.
        message: String,
    },

    /// An entry has no file strata can download (directory, VCS, local path, git/file: URL).
    #[error(
        "{at}: {entry}{reason}; strata can only prefetch files with an http(s) URL and a hash \
         (pass --skip-unfetchable to leave such entries out)"
    )]
    Unfetchable {
        /// Where.
        at: Location,
        /// Which entry.
        entry: Entry,
        /// Why it cannot be fetched.
        reason: String,
    },

    /// Any other invalid value (a bad URL, conflicting fields...).
    #[error("{at}: {entry}{message}")]
    Invalid {
        /// Where.
        at: Location,
        /// Which entry.
        entry: Entry,
        /// What is wrong and what to do.
        message: String,
    },

    /// Two entries claim the same output path with different content.
    #[error(
        "{second}: `{path}` is also declared at {first} with a different digest ({} vs {}); two \
         different files cannot share one output path, remove or fix one entry",
        .digests.0,
        .digests.1
    )]
    Conflict {
        /// The output path both claim.
        path: String,
        /// The first declaration.
        first: Origin,
        /// The second declaration.
        second: Origin,
        /// The strongest digest of the first and of the second declaration.
        digests: Box<(Digest, Digest)>,
    },
}

impl LockError {
    /// Whether the error is the user's input (bad file, bad options) rather than a failure of
    /// the work. Every lockfile error is: the CLI maps them to exit code 2.
    pub fn is_input_error(&self) -> bool {
        true
    }
}

/// 1-based line and column of byte `offset` in `text` (column counted in characters).
#[cfg(test)]
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Removes the ` at line L column C` that serde_json and serde YAML put in their messages,
/// since the location is printed in front.
pub(crate) fn strip_position_suffix(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(" at line ") {
        let after = &rest[i + " at line ".len()..];
        let line_len = after.bytes().take_while(u8::is_ascii_digit).count();
        let col = after[line_len..]
            .strip_prefix(" column ")
            .filter(|_| line_len > 0);
        let col_len = col.map_or(0, |c| c.bytes().take_while(u8::is_ascii_digit).count());
        match col {
            Some(c) if col_len > 0 => {
                out.push_str(&rest[..i]);
                rest = &c[col_len..];
            }
            _ => {
                out.push_str(&rest[..i + 1]);
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 7), (2, 4));
        assert_eq!(line_col(text, 8), (3, 1));
        assert_eq!(line_col(text, 100), (3, 2));
    }

    #[test]
    fn position_suffix_is_stripped_only_when_it_is_one() {
        assert_eq!(
            strip_position_suffix("missing field `x` at line 3 column 5"),
            "missing field `x`"
        );
        assert_eq!(
            strip_position_suffix("look at line noise"),
            "look at line noise"
        );
        assert_eq!(
            strip_position_suffix("bad at line 2 column 1, while x"),
            "bad, while x"
        );
        assert_eq!(
            strip_position_suffix("at line 2 column"),
            "at line 2 column"
        );
    }

    #[test]
    fn display_puts_location_entry_and_message_in_order() {
        let e = LockError::MissingField {
            at: Location::at(Path::new("pylock.toml"), 12, 5),
            entry: Entry::new("package `foo`"),
            field: "hashes".into(),
            hint: "regenerate the lock".into(),
        };
        assert_eq!(
            e.to_string(),
            "pylock.toml:12:5: package `foo`: `hashes` is missing; regenerate the lock"
        );
        assert!(e.is_input_error());
        let whole = LockError::UnsupportedVersion {
            at: Location::file(Path::new("x.json")),
            message: "m".into(),
        };
        assert_eq!(whole.to_string(), "x.json: m");
    }
}
