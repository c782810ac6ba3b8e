//! The result of reading lockfiles: the artifacts to fetch and what was left out, merged so
//! that no two artifacts claim one output path.

use std::collections::HashMap;

use crate::artifact::{Artifact, Origin};
use crate::error::LockError;

/// Why a lockfile entry produced no artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum SkipReason {
    /// It has no downloadable file (directory, VCS, local path, git/file: URL) and
    /// [`crate::Filter::skip_unfetchable`] was set.
    Unfetchable(String),
    /// The [`crate::Filter`] did not select it (a wheel for another platform, an RPM arch).
    NotSelected(String),
    /// A package none of whose files the [`crate::Filter`] selected (every wheel is for
    /// another platform and there is no sdist): it cannot be installed from the output.
    NoFileSelected(String),
}

/// A lockfile entry that produced no artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Where it was declared.
    pub origin: Origin,
    /// What it is: a package name, a wheel file name, an RPM arch section.
    pub name: String,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Artifacts read from one or more lockfiles, plus the entries left out and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadOutcome {
    /// The artifacts, in lockfile order, at most one per output path.
    pub artifacts: Vec<Artifact>,
    /// Entries that produced no artifact.
    pub skipped: Vec<Skipped>,
}

impl LoadOutcome {
    /// Adds the result of building one artifact: an artifact is kept, an
    /// [`LockError::Unfetchable`] becomes a [`Skipped`] entry when `skip_unfetchable` is set,
    /// and any other error is returned.
    pub(crate) fn take(
        &mut self,
        result: Result<Artifact, LockError>,
        name: &str,
        origin: &Origin,
        skip_unfetchable: bool,
    ) -> Result<(), LockError> {
        match result {
            Ok(artifact) => self.artifacts.push(artifact),
            Err(LockError::Unfetchable { reason, .. }) if skip_unfetchable => {
                self.skipped.push(Skipped {
                    origin: origin.clone(),
                    name: name.to_owned(),
                    reason: SkipReason::Unfetchable(reason),
                })
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Records an entry that the filter did not select.
    pub(crate) fn not_selected(&mut self, name: &str, origin: &Origin, why: String) {
        self.skipped.push(Skipped {
            origin: origin.clone(),
            name: name.to_owned(),
            reason: SkipReason::NotSelected(why),
        });
    }

    /// Appends `other`, then merges artifacts sharing an output path.
    pub(crate) fn extend(&mut self, other: LoadOutcome) -> Result<(), LockError> {
        self.artifacts.extend(other.artifacts);
        self.skipped.extend(other.skipped);
        self.artifacts = merge(std::mem::take(&mut self.artifacts))?;
        Ok(())
    }
}

/// Merges artifacts that claim the same output path: if they agree on content they become one
/// (keeping the first, with the other's extra URLs as mirrors); if not it is a
/// [`LockError::Conflict`].
pub(crate) fn merge(artifacts: Vec<Artifact>) -> Result<Vec<Artifact>, LockError> {
    let mut out: Vec<Artifact> = Vec::with_capacity(artifacts.len());
    let mut by_path: HashMap<String, usize> = HashMap::new();
    for artifact in artifacts {
        match by_path.get(&artifact.path) {
            None => {
                by_path.insert(artifact.path.clone(), out.len());
                out.push(artifact);
            }
            Some(&i) => {
                let first = &mut out[i];
                if !same_content(first, &artifact) {
                    return Err(LockError::Conflict {
                        path: artifact.path.clone(),
                        first: first.origin.clone(),
                        second: artifact.origin.clone(),
                        digests: Box::new((
                            first.store_digest().clone(),
                            artifact.store_digest().clone(),
                        )),
                    });
                }
                for url in artifact.urls {
                    if !first.urls.contains(&url) {
                        first.urls.push(url);
                    }
                }
                for digest in artifact.digests {
                    if !first.digests.contains(&digest) {
                        first.digests.push(digest);
                    }
                }
                first.size = first.size.or(artifact.size);
            }
        }
    }
    Ok(out)
}

/// Two declarations describe the same file when they share at least one hash algorithm, every
/// shared algorithm has the same value, and their sizes (when both known) agree.
fn same_content(a: &Artifact, b: &Artifact) -> bool {
    let mut shared = 0;
    for da in &a.digests {
        for db in b.digests.iter().filter(|db| db.algorithm == da.algorithm) {
            if da != db {
                return false;
            }
            shared += 1;
        }
    }
    let sizes_agree = match (a.size, b.size) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    shared > 0 && sizes_agree
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::artifact::{Algorithm, Details, Digest, Ecosystem};

    fn art(path: &str, hex: &str, url: &str, line: usize) -> Artifact {
        Artifact {
            ecosystem: Ecosystem::Generic,
            name: path.into(),
            version: None,
            filename: path.rsplit('/').next().unwrap().into(),
            urls: vec![url.into()],
            size: Some(3),
            digests: vec![Digest::new(Algorithm::Sha256, &hex.repeat(64)).unwrap()],
            arch: None,
            repo_id: None,
            path: path.into(),
            origin: Origin {
                lockfile: PathBuf::from("artifacts.lock.yaml"),
                line: Some(line),
            },
            details: Details::Generic,
        }
    }

    #[test]
    fn same_path_same_digest_dedupes_and_keeps_mirrors() {
        let merged = merge(vec![
            art("deps/generic/a", "a", "http://127.0.0.1:1/a", 1),
            art("deps/generic/b", "b", "http://127.0.0.1:1/b", 2),
            art("deps/generic/a", "a", "http://127.0.0.1:2/a", 3),
        ])
        .unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].urls,
            ["http://127.0.0.1:1/a", "http://127.0.0.1:2/a"]
        );
        assert_eq!(merged[0].origin.line, Some(1));
    }

    #[test]
    fn same_path_other_digest_is_a_conflict_naming_both_places() {
        let err = merge(vec![
            art("deps/generic/a", "a", "http://127.0.0.1/a", 4),
            art("deps/generic/a", "b", "http://127.0.0.1/a", 9),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LockError::Conflict { .. }));
        assert!(
            msg.starts_with(
                "artifacts.lock.yaml:9: `deps/generic/a` is also declared at artifacts.lock.yaml:4"
            ),
            "{msg}"
        );
    }

    #[test]
    fn no_shared_algorithm_is_a_conflict() {
        let a = art("p", "a", "http://127.0.0.1/a", 1);
        let mut b = a.clone();
        b.digests = vec![Digest::new(Algorithm::Sha512, &"a".repeat(128)).unwrap()];
        assert!(!same_content(&a, &b));
        let mut c = a.clone();
        c.size = Some(4);
        assert!(!same_content(&a, &c));
        assert!(same_content(&a, &a.clone()));
    }
}
