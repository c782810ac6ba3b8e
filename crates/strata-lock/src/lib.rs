//! strata-lock: parses lockfiles into the one [`Artifact`] model.
//!
//! This crate owns reading `pylock.toml` (PEP 751), `package-lock.json` /
//! `npm-shrinkwrap.json`, `rpms.lock.yaml` and Hermeto's `artifacts.lock.yaml`, detecting the
//! format from the file name, validating every field that later becomes a path or a digest, and
//! reporting malformed input with file, line and column. It does no I/O beyond reading the
//! lockfile and never touches the network: everything downstream works on `Vec<Artifact>`.
//!
//! Output paths follow Hermeto's layout:
//!
//! | lockfile | artifact path |
//! |---|---|
//! | `pylock.toml` | `deps/pip/<file name>` |
//! | `package-lock.json` | `deps/npm/<name>-<version>.tgz` (`@s/n` → `s-n-<version>.tgz`) for registry tarballs; `deps/npm/external-<name>/<name>-external-<alg>-<hex>.tgz` for other https tarballs |
//! | `rpms.lock.yaml` | `deps/rpm/<arch>/<repoid>/<file name>` (binary, source and module metadata alike) |
//! | `artifacts.lock.yaml` | `deps/generic/<filename>` (`filename` may hold a relative subpath) |
//!
//! Use [`load_all`] (or [`load_all_with_skipped`] to also learn what the [`Filter`] left out).

use std::path::Path;

mod artifact;
mod ctx;
mod error;
mod filter;
mod generic;
mod npm;
mod outcome;
mod pylock;
mod rpm;

pub use artifact::{
    Algorithm, Artifact, Details, Digest, Ecosystem, Origin, RpmKind, check_file_name,
    check_path_component,
};
pub use error::{Entry, Location, LockError};
pub use filter::{Filter, KNOWN_ARCHES, WheelName, check_arch, normalize_arch};
pub use outcome::{LoadOutcome, SkipReason, Skipped};

/// The lockfile formats strata reads, told apart by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockfileKind {
    /// `pylock.toml` or `pylock.<name>.toml` (PEP 751).
    Pylock,
    /// `package-lock.json` or `npm-shrinkwrap.json` (lockfileVersion 2 or 3).
    Npm,
    /// `rpms.lock.yaml` (rpm-lockfile-prototype / Hermeto, lockfileVersion 1).
    Rpm,
    /// `artifacts.lock.yaml` (Hermeto's generic fetcher).
    Generic,
}

impl LockfileKind {
    /// The ecosystem (and so the `deps/` directory) its artifacts belong to.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            LockfileKind::Pylock => Ecosystem::Pip,
            LockfileKind::Npm => Ecosystem::Npm,
            LockfileKind::Rpm => Ecosystem::Rpm,
            LockfileKind::Generic => Ecosystem::Generic,
        }
    }
}

/// Tells the lockfile format from the file name (the directory part is ignored).
///
/// Accepts `pylock.toml`, `pylock.<name>.toml` (name without dots, per PEP 751),
/// `package-lock.json`, `npm-shrinkwrap.json`, `rpms.lock.yaml` and `artifacts.lock.yaml`;
/// anything else is [`LockError::UnknownFormat`], whose message lists these.
pub fn detect(path: &Path) -> Result<LockfileKind, LockError> {
    let unknown = || LockError::UnknownFormat {
        file: path.to_path_buf(),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(unknown)?;
    match name {
        "pylock.toml" => Ok(LockfileKind::Pylock),
        "package-lock.json" | "npm-shrinkwrap.json" => Ok(LockfileKind::Npm),
        "rpms.lock.yaml" => Ok(LockfileKind::Rpm),
        "artifacts.lock.yaml" => Ok(LockfileKind::Generic),
        _ => match name
            .strip_prefix("pylock.")
            .and_then(|n| n.strip_suffix(".toml"))
        {
            Some(inner) if !inner.is_empty() && !inner.contains('.') => Ok(LockfileKind::Pylock),
            _ => Err(unknown()),
        },
    }
}

/// Parses lockfile `text`, whose format is detected from `path` (used only for that and for
/// messages). Pure: no I/O. Entries the filter leaves out are dropped silently; use
/// [`parse_with_skipped`] to learn about them.
pub fn parse(path: &Path, text: &str, filter: &Filter) -> Result<Vec<Artifact>, LockError> {
    parse_with_skipped(path, text, filter).map(|o| o.artifacts)
}

/// Like [`parse`], also returning the entries left out and why. Artifacts claiming the same
/// output path are merged (same content) or rejected (different content).
pub fn parse_with_skipped(
    path: &Path,
    text: &str,
    filter: &Filter,
) -> Result<LoadOutcome, LockError> {
    let lines = ctx::LineIndex::new(text);
    let ctx = ctx::Ctx::new(path, text, &lines);
    let parsed = match detect(path)? {
        LockfileKind::Pylock => pylock::parse(ctx, filter),
        LockfileKind::Npm => npm::parse(ctx, filter),
        LockfileKind::Rpm => rpm::parse(ctx, filter),
        LockfileKind::Generic => generic::parse(ctx, filter),
    }?;
    let mut out = LoadOutcome::default();
    out.extend(parsed)?;
    Ok(out)
}

/// Reads and parses one lockfile.
pub fn load(path: &Path, filter: &Filter) -> Result<Vec<Artifact>, LockError> {
    load_with_skipped(path, filter).map(|o| o.artifacts)
}

/// Reads and parses one lockfile, also returning the entries left out.
pub fn load_with_skipped(path: &Path, filter: &Filter) -> Result<LoadOutcome, LockError> {
    detect(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| LockError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_with_skipped(path, &text, filter)
}

/// Reads and parses several lockfiles into one list. Two artifacts claiming the same output
/// `path` are merged when their digests agree and rejected with [`LockError::Conflict`] when
/// they do not.
pub fn load_all<P: AsRef<Path>>(paths: &[P], filter: &Filter) -> Result<Vec<Artifact>, LockError> {
    load_all_with_skipped(paths, filter).map(|o| o.artifacts)
}

/// Like [`load_all`], also returning the entries left out and why.
pub fn load_all_with_skipped<P: AsRef<Path>>(
    paths: &[P],
    filter: &Filter,
) -> Result<LoadOutcome, LockError> {
    let mut out = LoadOutcome::default();
    for path in paths {
        out.extend(load_with_skipped(path.as_ref(), filter)?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_by_file_name() {
        let cases: &[(&str, Option<LockfileKind>)] = &[
            ("pylock.toml", Some(LockfileKind::Pylock)),
            ("dir/pylock.dev.toml", Some(LockfileKind::Pylock)),
            ("/abs/package-lock.json", Some(LockfileKind::Npm)),
            ("npm-shrinkwrap.json", Some(LockfileKind::Npm)),
            ("rpms.lock.yaml", Some(LockfileKind::Rpm)),
            ("x/artifacts.lock.yaml", Some(LockfileKind::Generic)),
            ("pylock..toml", None),
            ("pylock.a.b.toml", None),
            ("poetry.lock", None),
            ("rpms.lock.yml", None),
            ("Package-Lock.json", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(detect(Path::new(name)).ok(), *want, "{name}");
        }
        let msg = detect(Path::new("yarn.lock")).unwrap_err().to_string();
        assert!(
            msg.starts_with("yarn.lock: not a lockfile name strata knows"),
            "{msg}"
        );
        for accepted in [
            "pylock.<name>.toml",
            "package-lock.json",
            "npm-shrinkwrap.json",
            "rpms.lock.yaml",
            "artifacts.lock.yaml",
        ] {
            assert!(msg.contains(accepted), "{msg} lacks {accepted}");
        }
        assert_eq!(LockfileKind::Rpm.ecosystem(), Ecosystem::Rpm);
    }

    #[test]
    fn load_reports_missing_files_as_input_errors() {
        let err = load(
            Path::new("/nonexistent/strata-test/pylock.toml"),
            &Filter::default(),
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Read { .. }));
        assert!(err.is_input_error());
        assert!(
            err.to_string()
                .starts_with("/nonexistent/strata-test/pylock.toml: cannot read the lockfile")
        );
    }
}
