//! The I/O edge of this crate: reading npm lockfiles for the tree, and `inject-files`.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use strata_lock::{Artifact, Ecosystem};

use crate::build_config::BuildConfig;
use crate::rpm::{REPO_FILE_NAME, rpm_repo_file};
use crate::tree::{BUILD_CONFIG_JSON, NpmProject};

/// Why `inject-files` failed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// The directory has no `.build-config.json`.
    #[error(
        "no {BUILD_CONFIG_JSON} in {0}; pass a directory written by `strata fetch` (or mounted \
         by `strata mount`)"
    )]
    NoBuildConfig(PathBuf),
    /// A file could not be read, written or listed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `.build-config.json` is not valid.
    #[error("{path} is not a valid build config: {source}")]
    BadBuildConfig {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A path strata must write into a text file is not UTF-8.
    #[error("the path {0} is not UTF-8, so it cannot be written into project files")]
    NonUtf8(PathBuf),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InjectError + 'a {
    move |source| InjectError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// What `inject-files` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InjectReport {
    /// Project files written (npm lockfiles...).
    pub project_files: Vec<PathBuf>,
    /// `.repo` files written under `deps/rpm/<arch>/repos.d/`.
    pub repo_files: Vec<PathBuf>,
    /// Files that already had the right content and were left alone (e.g. on a read-only
    /// mount).
    pub unchanged: Vec<PathBuf>,
}

/// The default `--for-output-dir`: the output directory's own absolute, resolved path (as
/// Hermeto resolves it).
pub fn default_for_output_dir(output_dir: &Path) -> io::Result<PathBuf> {
    fs::canonicalize(output_dir)
}

/// Writes `content` to `path` atomically: a temporary file in the same directory, flushed,
/// given the old file's permissions, then renamed over `path`.
pub fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tmp_name.push(format!(".strata-{}-{n}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        if let Ok(meta) = fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads every npm lockfile named by the artifacts' origins, for [`crate::TreeOptions`].
pub fn load_npm_projects(artifacts: &[Artifact]) -> io::Result<Vec<NpmProject>> {
    let lockfiles: BTreeSet<&Path> = artifacts
        .iter()
        .filter(|a| a.ecosystem == Ecosystem::Npm)
        .map(|a| a.origin.lockfile.as_path())
        .collect();
    lockfiles
        .into_iter()
        .map(|lockfile| {
            let with_path =
                |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", lockfile.display()));
            Ok(NpmProject {
                lockfile: lockfile.to_owned(),
                abspath: fs::canonicalize(lockfile).map_err(with_path)?,
                text: fs::read_to_string(lockfile).map_err(with_path)?,
            })
        })
        .collect()
}

/// `strata inject-files`: reads `output_dir/.build-config.json`, writes each project file with
/// `${output_dir}` replaced by `for_output_dir` (default: the output directory's absolute
/// path), and writes `deps/rpm/<arch>/repos.d/strata.repo` for every arch directory, as
/// Hermeto's `inject-files` does (repodata generation is not done here yet).
pub fn inject_files(
    output_dir: &Path,
    for_output_dir: Option<&Path>,
) -> Result<InjectReport, InjectError> {
    let config_path = output_dir.join(BUILD_CONFIG_JSON);
    let bytes = match fs::read(&config_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(InjectError::NoBuildConfig(output_dir.to_owned()));
        }
        Err(e) => return Err(io_err("cannot read", &config_path)(e)),
    };
    let config = BuildConfig::from_json(&bytes).map_err(|source| InjectError::BadBuildConfig {
        path: config_path.clone(),
        source,
    })?;
    let for_dir = match for_output_dir {
        Some(p) => std::path::absolute(p).map_err(io_err("cannot resolve", p))?,
        None => default_for_output_dir(output_dir).map_err(io_err("cannot resolve", output_dir))?,
    };
    let for_dir = for_dir
        .to_str()
        .ok_or_else(|| InjectError::NonUtf8(for_dir.clone()))?
        .to_owned();

    let mut report = InjectReport::default();
    for pf in &config.project_files {
        let content = pf.resolve_content(&for_dir);
        write_if_changed(&pf.abspath, content.as_bytes(), &mut report)?;
        report.project_files.push(pf.abspath.clone());
    }

    let rpm_dir = output_dir.join("deps/rpm");
    if rpm_dir.is_dir() {
        let mut arches = list_dirs(&rpm_dir)?;
        arches.sort();
        for arch in arches {
            let arch_dir = rpm_dir.join(&arch);
            let repoids = list_dirs(&arch_dir)?;
            let content = rpm_repo_file(&arch, repoids.iter().map(String::as_str), &for_dir);
            if content.is_empty() {
                continue;
            }
            let path = arch_dir.join("repos.d").join(REPO_FILE_NAME);
            write_if_changed(&path, content.as_bytes(), &mut report)?;
            report.repo_files.push(path);
        }
    }
    Ok(report)
}

fn write_if_changed(
    path: &Path,
    content: &[u8],
    report: &mut InjectReport,
) -> Result<(), InjectError> {
    if fs::read(path).is_ok_and(|old| old == content) {
        report.unchanged.push(path.to_owned());
        return Ok(());
    }
    write_atomically(path, content).map_err(io_err("cannot write", path))
}

/// Names of the subdirectories of `dir` (UTF-8 names only; others cannot be repo ids).
fn list_dirs(dir: &Path) -> Result<Vec<String>, InjectError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("cannot list", dir))? {
        let entry = entry.map_err(io_err("cannot list", dir))?;
        if entry.path().is_dir()
            && let Ok(name) = entry.file_name().into_string()
        {
            out.push(name);
        }
    }
    Ok(out)
}
