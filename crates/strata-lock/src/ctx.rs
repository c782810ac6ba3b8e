//! What every format parser shares: the file being parsed, locating things in its text, and
//! the checks that turn lockfile strings into URLs, file names and digests.

use std::path::Path;

use url::Url;

use crate::artifact::{Origin, check_file_name};
use crate::error::{Entry, Location, LockError};

/// Byte offsets where each line of a text starts, so that turning an offset into a line is a
/// binary search instead of a scan from the top (which made parsing quadratic in the number of
/// entries: 190 s for a 50,000-entry lockfile).
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let line_start = self.starts[line - 1];
        (line, text[line_start..offset].chars().count() + 1)
    }
}

/// The lockfile being parsed: its path (for messages) and its text (for line numbers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The path as the user gave it.
    pub file: &'a Path,
    /// The whole text.
    pub text: &'a str,
    /// Where its lines start.
    lines: &'a LineIndex,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a Path, text: &'a str, lines: &'a LineIndex) -> Ctx<'a> {
        Ctx { file, text, lines }
    }

    /// The location of byte `offset`.
    pub fn at_offset(&self, offset: usize) -> Location {
        let (line, column) = self.lines.line_col(self.text, offset);
        Location::at(self.file, line, column)
    }

    /// The location of an optional byte offset, or just the file.
    pub fn at_opt(&self, offset: Option<usize>) -> Location {
        offset.map_or_else(|| self.whole(), |o| self.at_offset(o))
    }

    /// The whole file, no line.
    pub fn whole(&self) -> Location {
        Location::file(self.file)
    }

    /// The origin (file and line) of byte `offset`.
    pub fn origin(&self, offset: Option<usize>) -> Origin {
        Origin {
            lockfile: self.file.to_path_buf(),
            line: offset.map(|o| self.lines.line_col(self.text, o).0),
        }
    }

    /// Byte offset of the first occurrence of `needle` at or after `from`, else anywhere.
    /// A best-effort way to give line numbers for formats whose parser has no spans.
    pub fn find(&self, needle: &str, from: usize) -> Option<usize> {
        if needle.is_empty() {
            return None;
        }
        let from = from.min(self.text.len());
        self.text
            .get(from..)
            .and_then(|rest| rest.find(needle))
            .map(|i| i + from)
            .or_else(|| self.text.find(needle))
    }
}

/// Parses `raw` as an absolute http(s) URL, the only kind strata downloads.
pub(crate) fn http_url(raw: &str, at: &Location, entry: &Entry) -> Result<Url, LockError> {
    let url = Url::parse(raw).map_err(|e| LockError::Invalid {
        at: at.clone(),
        entry: entry.clone(),
        message: format!("`{raw}` is not a valid URL ({e}); fix or regenerate the lockfile"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(LockError::Unfetchable {
            at: at.clone(),
            entry: entry.clone(),
            reason: format!("`{raw}` is a {other}: URL, not http(s)"),
        }),
    }
}

/// The last segment of the URL's path, raw (as Hermeto names RPM and generic files).
pub(crate) fn last_segment(url: &Url) -> &str {
    url.path().rsplit('/').next().unwrap_or("")
}

/// The last segment of the URL's path, percent-decoded (as pip names files).
pub(crate) fn last_segment_decoded(url: &Url) -> String {
    percent_encoding::percent_decode_str(last_segment(url))
        .decode_utf8_lossy()
        .into_owned()
}

/// Checks a file name with [`check_file_name`], as a [`LockError::UnsafePath`].
pub(crate) fn safe_file_name(name: &str, at: &Location, entry: &Entry) -> Result<(), LockError> {
    check_file_name(name).map_err(|message| LockError::UnsafePath {
        at: at.clone(),
        entry: entry.clone(),
        message,
    })
}

/// Checks that `rel` is a relative `/`-separated path whose components are all safe file names;
/// returns its components.
pub(crate) fn safe_relative_path<'s>(
    rel: &'s str,
    at: &Location,
    entry: &Entry,
) -> Result<Vec<&'s str>, LockError> {
    if rel.starts_with('/') {
        return Err(LockError::UnsafePath {
            at: at.clone(),
            entry: entry.clone(),
            message: format!("`{rel}` is an absolute path"),
        });
    }
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts {
        check_file_name(part).map_err(|e| LockError::UnsafePath {
            at: at.clone(),
            entry: entry.clone(),
            message: format!("in `{rel}`: {e}"),
        })?;
    }
    Ok(parts)
}

/// Output path `deps/<eco_dir>/<parts...>`.
pub(crate) fn output_path(eco_dir: &str, parts: &[&str]) -> String {
    let mut path = format!("deps/{eco_dir}");
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> (Location, Entry) {
        (Location::file(Path::new("f")), Entry::none())
    }

    #[test]
    fn only_http_urls_are_fetchable() {
        let (at, e) = here();
        assert!(http_url("http://127.0.0.1/a.whl", &at, &e).is_ok());
        assert!(matches!(
            http_url("git+ssh://127.0.0.1/r.git", &at, &e),
            Err(LockError::Unfetchable { .. })
        ));
        assert!(matches!(
            http_url("file:///tmp/x", &at, &e),
            Err(LockError::Unfetchable { .. })
        ));
        assert!(matches!(
            http_url("not a url", &at, &e),
            Err(LockError::Invalid { .. })
        ));
    }

    #[test]
    fn last_segments() {
        let url = Url::parse("http://127.0.0.1/p/foo%2Bbar-1.0.tar.gz?x=1#y").unwrap();
        assert_eq!(last_segment(&url), "foo%2Bbar-1.0.tar.gz");
        assert_eq!(last_segment_decoded(&url), "foo+bar-1.0.tar.gz");
        let dir = Url::parse("http://127.0.0.1/p/").unwrap();
        assert_eq!(last_segment(&dir), "");
    }

    #[test]
    fn relative_paths_must_stay_inside() {
        let (at, e) = here();
        assert_eq!(
            safe_relative_path("a/b.txt", &at, &e).unwrap(),
            vec!["a", "b.txt"]
        );
        for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", "a/./b", ""] {
            assert!(
                matches!(
                    safe_relative_path(bad, &at, &e),
                    Err(LockError::UnsafePath { .. })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn line_index_agrees_with_a_scan() {
        for text in ["", "ab\ncdé\nf", "\n\n", "a\r\nb\n", "é\n日本\nx"] {
            let lines = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    lines.line_col(text, offset),
                    crate::error::line_col(text, offset),
                    "{text:?} @ {offset}"
                );
            }
        }
    }

    #[test]
    fn find_prefers_after_cursor() {
        let text = "x\nneedle\nneedle\n";
        let lines = LineIndex::new(text);
        let ctx = Ctx::new(Path::new("f"), text, &lines);
        assert_eq!(ctx.find("needle", 0), Some(2));
        assert_eq!(ctx.find("needle", 3), Some(9));
        assert_eq!(ctx.find("needle", 100), Some(2));
        assert_eq!(ctx.find("absent", 0), None);
        assert_eq!(ctx.origin(Some(9)).line, Some(3));
    }
}
