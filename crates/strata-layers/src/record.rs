//! Build records: one JSON file per `strata build` run under `.strata/builds/`, named by
//! its start time, holding what every image did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened to one image in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `built`, `reused`, `failed` or `skipped` (a prerequisite failed).
    pub status: String,
    /// The input key.
    pub input_key: String,
    /// Wall time of this image's step.
    pub duration_ms: u64,
    /// When it started, ms after the run started.
    pub start_ms: u64,
    /// When it ended, ms after the run started.
    pub end_ms: u64,
    /// The pushed manifest digest when pushed, else the local image ID.
    pub digest: Option<String>,
    /// The local image ID.
    pub image_id: Option<String>,
    /// Size in bytes (as the engine reports it).
    pub size: Option<u64>,
    /// Number of layers.
    pub layers: Option<usize>,
    /// Tags applied locally (with a push, see the run's `error` for any not pushed).
    pub tags: Vec<String>,
    /// For a reused image: `local` or `registry`.
    pub reused_from: Option<String>,
    /// Whether it was asked for (not only a prerequisite).
    pub requested: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// One run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `YYYYMMDDhhmmss-<pid>`.
    pub id: String,
    /// Start time, RFC 3339.
    pub started: String,
    /// Start time, ms since the epoch.
    pub started_epoch_ms: u64,
    /// Whole run.
    pub duration_ms: u64,
    /// The engine.
    pub engine: String,
    /// The git commit, if any.
    pub sha: Option<String>,
    /// Whether every image succeeded (and tags were applied).
    pub success: bool,
    /// Parallel jobs allowed.
    pub jobs: usize,
    /// Whether tags were pushed.
    pub pushed: bool,
    /// Why publishing failed after every image succeeded (a tag or a push), naming each tag
    /// that was and was not applied.
    #[serde(default)]
    pub error: Option<String>,
    /// Per image.
    pub images: BTreeMap<String, ImageRecord>,
}

impl Record {
    /// Writes the record to `dir/<id>.json` (atomically); returns the path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.id));
        let tmp = dir.join(format!(".{}.json.tmp", self.id));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// Reads every record in `dir`, oldest first; unreadable files are reported as warnings.
pub fn read_all(dir: &Path) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (records, warnings);
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => records.push(r),
            Err(e) => warnings.push(format!("{}: {e}", p.display())),
        }
    }
    records.sort_by_key(|r| r.started_epoch_ms);
    (records, warnings)
}
