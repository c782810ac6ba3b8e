//! Access profiles: `--record FILE` writes the files a build opened, `--prefetch FILE` reads
//! them back. One JSON object per line, so a profile survives a killed daemon up to its last
//! complete line and can be concatenated or edited with standard tools.
//!
//! A file gets a line for its first successful open. An open that fails (EIO) gets a line
//! too, with `source: "failed"` and no size, once per file: a file whose first open failed
//! thus has that line and, when a later open succeeds, the line of that open.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One opened file in a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEntry {
    /// Path relative to the mount root, e.g. `deps/pip/numpy-2.0-....whl`.
    pub path: String,
    /// When this open was asked for, in milliseconds since the mount was ready (since
    /// `strata mount` mounted it, right before it reported it ready).
    pub t_ms: u64,
    /// How long that open waited for the file to be present (or to fail), in milliseconds.
    #[serde(default)]
    pub wait_ms: u64,
    /// The file's size in bytes, when known (never for a failed open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where the bytes came from: `cache`, `shared` (another process downloaded them
    /// meanwhile), `download`, or `failed` (the open failed with EIO).
    #[serde(default)]
    pub source: String,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("could not read the prefetch profile {}: {source}", path.display())]
    Io {
        /// The profile.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not a profile entry.
    #[error(
        "{}:{line}: not a profile entry ({source}); profiles are JSON lines written by `strata mount --record`",
        path.display()
    )]
    Syntax {
        /// The profile.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Reads a profile written by [`Recorder`]: entries in the order they were first opened
/// (sorted by `t_ms`, duplicates removed: a file whose first open failed keeps that, its
/// earliest, entry). Blank lines are ignored.
pub fn load_profile(path: &Path) -> Result<Vec<ProfileEntry>, ProfileError> {
    let io = |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut entries = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: ProfileEntry =
            serde_json::from_str(&line).map_err(|source| ProfileError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })?;
        entries.push(entry);
    }
    // `t_ms` is when the open was *asked for* (taken before any wait), so this is already the
    // order of the build's demand; `t_ms - wait_ms` would move a file that waited long ahead
    // of files the build asked for earlier. (A build replayed without waits asks for every
    // file earlier by the waits before it, which shifts all later entries alike for a
    // sequential build and leaves this order unchanged.)
    entries.sort_by_key(|e| e.t_ms);
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.path.clone()));
    Ok(entries)
}

/// Appends profile entries to a file, one line each, flushed as they happen.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: Mutex<File>,
}

impl Recorder {
    /// Creates (truncates) the profile file.
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder {
            path: path.to_path_buf(),
            file: Mutex::new(File::create(path)?),
        })
    }

    /// The profile file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one entry as a line (errors are logged, not fatal: recording is best effort).
    pub fn record(&self, entry: &ProfileEntry) {
        let mut line = serde_json::to_vec(entry).expect("profile entries serialise");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::warn!(
                "could not write to the profile {}: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_in_open_order_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let rec = Recorder::create(&path).unwrap();
        let e = |p: &str, t| ProfileEntry {
            path: p.into(),
            t_ms: t,
            wait_ms: 1,
            size: Some(3),
            source: "download".into(),
        };
        rec.record(&e("b", 20));
        rec.record(&e("a", 10));
        rec.record(&e("b", 30));
        let loaded = load_profile(&path).unwrap();
        assert_eq!(loaded, vec![e("a", 10), e("b", 20)]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, "{\"path\":\"a\",\"t_ms\":1}\n\nnot json\n").unwrap();
        let err = load_profile(&path).unwrap_err().to_string();
        assert!(err.contains("p.jsonl:3"), "{err}");
    }
}
