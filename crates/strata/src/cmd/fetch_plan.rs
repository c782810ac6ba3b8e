//! The plan cache of `strata fetch`: what a fetch of exactly these lockfiles writes (the output
//! directories, each store digest with its paths and size, the generated files, the skipped
//! entries), kept in the store as a derived result keyed by a digest of every input it
//! depends on. A warm fetch of unchanged lockfiles then skips parsing them and generating the
//! SBOM, and costs little more than one link(2) per file.
//!
//! The key covers the strata binary (version, size and mtime, so a rebuilt binary never reads
//! an older one's plan), the download filter, and each lockfile's resolved path and bytes. The
//! output directory and `--for-output-dir` are not in it: only RPM repo files depend on them,
//! and plans with RPMs are never cached (they also need repodata).
//!
//! Format: one JSON document ([`CachedPlan`]). The generated files (bom.json,
//! .build-config.json) are store entries of their own, content-addressed like artifacts, so a
//! warm fetch links them too instead of writing their bytes. Anything unreadable, or an entry
//! gone from the store, is a miss; a plan is only a shortcut to what the full path computes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_lock::{Algorithm, Digest};
use strata_store::{Hasher, Store};

/// Bumped when the format or the meaning of a plan changes.
const FORMAT: &str = "strata-fetch-plan-2";

/// What a fetch writes into its output directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPlan {
    /// Lockfile artifacts (the summary's count; several may share a digest).
    pub artifacts: usize,
    /// Directories to create, relative to the output directory, parents first.
    pub dirs: Vec<String>,
    /// Each store digest, its size and the output paths it is linked to.
    pub links: Vec<CachedLink>,
    /// Generated files (bom.json, .build-config.json): their store entries and paths.
    pub generated: Vec<CachedLink>,
    /// Lockfile entries skipped as unfetchable: name, lockfile, reason.
    pub skipped: Vec<(String, String, String)>,
}

/// One store digest and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLink {
    /// The store digest.
    pub digest: Digest,
    /// The entry's size in bytes.
    pub size: u64,
    /// Output paths (relative), one per artifact with this digest.
    pub paths: Vec<String>,
}

/// The key of a fetch of `lockfiles` with the download filter described by `filter`, or
/// `None` when an input cannot be read (the full path then reports it).
pub fn key(lockfiles: &[PathBuf], filter: &str) -> Option<String> {
    let mut h = Hasher::new(Algorithm::Sha256);
    let field = |h: &mut Hasher, bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&mut h, FORMAT.as_bytes());
    field(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    field(&mut h, binary_identity().as_bytes());
    field(&mut h, filter.as_bytes());
    for lockfile in lockfiles {
        let resolved = std::fs::canonicalize(lockfile).ok()?;
        field(&mut h, resolved.as_os_str().as_encoded_bytes());
        field(&mut h, &std::fs::read(lockfile).ok()?);
    }
    Some(h.finish().hex().to_string())
}

/// Size and modification time of the running binary ("" if unknown).
fn binary_identity() -> String {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            format!("{} {} {}", m.len(), m.mtime(), m.mtime_nsec())
        })
        .unwrap_or_default()
}

/// Serialises a plan.
pub fn encode(plan: &CachedPlan) -> Vec<u8> {
    serde_json::to_vec(plan).expect("a plan serialises")
}

/// Parses what [`encode`] wrote; `None` if it is damaged in any way, or if a path in it is
/// not a clean relative path.
pub fn decode(bytes: &[u8]) -> Option<CachedPlan> {
    let plan: CachedPlan = serde_json::from_slice(bytes).ok()?;
    let paths_clean = plan.dirs.iter().all(|d| is_clean_relative(d))
        && plan
            .links
            .iter()
            .chain(&plan.generated)
            .flat_map(|l| &l.paths)
            .all(|p| is_clean_relative(p));
    paths_clean.then_some(plan)
}

/// Stores a generated file's bytes as a content-addressed store entry (once per content)
/// and returns the link that puts it at `path`.
pub fn store_generated(
    store: &Store,
    path: &str,
    bytes: &[u8],
) -> Result<CachedLink, strata_store::StoreError> {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(bytes);
    let digest = h.finish();
    if !store.contains(&digest) {
        strata_store::insert_bytes(store, &digest, bytes)?;
    }
    Ok(CachedLink {
        digest,
        size: bytes.len() as u64,
        paths: vec![path.to_string()],
    })
}

/// A relative path with no empty, `.` or `..` component: a plan never writes outside the
/// output directory, even a damaged or planted one.
fn is_clean_relative(path: &str) -> bool {
    !path.is_empty()
        && !Path::new(path).is_absolute()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Loads the plan stored under `key`.
pub fn load(store: &Store, key: &str) -> Option<CachedPlan> {
    decode(&store.read_derived(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &str) -> CachedLink {
        CachedLink {
            digest: format!("sha256:{}", "ab".repeat(32)).parse().unwrap(),
            size: 3,
            paths: vec![path.into()],
        }
    }

    fn sample() -> CachedPlan {
        let mut two = link("deps/pip/a.whl");
        two.paths.push("deps/pip/b.whl".into());
        CachedPlan {
            artifacts: 2,
            dirs: vec!["deps".into(), "deps/pip".into()],
            links: vec![two],
            generated: vec![link("bom.json"), link(".build-config.json")],
            skipped: vec![("x".into(), "pylock.toml".into(), "a directory".into())],
        }
    }

    #[test]
    fn round_trip() {
        let plan = sample();
        assert_eq!(decode(&encode(&plan)).unwrap(), plan);
    }

    #[test]
    fn damaged_or_escaping_plans_are_misses() {
        let plan = sample();
        let good = encode(&plan);
        assert!(decode(&good[..good.len() - 1]).is_none(), "truncated");
        let mut longer = good.clone();
        longer.push(b'x');
        assert!(decode(&longer).is_none(), "trailing bytes");
        assert!(decode(b"not json").is_none());
        for bad in ["../etc/passwd", "/etc/passwd", "deps//x", "deps/./x", ""] {
            let mut p = plan.clone();
            p.links[0].paths[0] = bad.into();
            assert!(decode(&encode(&p)).is_none(), "{bad:?}");
            let mut p = plan.clone();
            p.generated[1].paths[0] = bad.into();
            assert!(decode(&encode(&p)).is_none(), "generated {bad:?}");
        }
    }

    #[test]
    fn generated_files_are_stored_once_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let one = store_generated(&store, "bom.json", b"{}").unwrap();
        let again = store_generated(&store, "x/bom.json", b"{}").unwrap();
        assert_eq!(one.digest, again.digest);
        assert_eq!(one.size, 2);
        assert_eq!(again.paths, vec!["x/bom.json".to_string()]);
        assert_eq!(std::fs::read(store.entry_path(&one.digest)).unwrap(), b"{}");
    }

    #[test]
    fn the_key_follows_the_lockfile_bytes_and_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("artifacts.lock.yaml");
        std::fs::write(&lock, "a").unwrap();
        let one = key(std::slice::from_ref(&lock), "f").unwrap();
        assert_eq!(key(std::slice::from_ref(&lock), "f").unwrap(), one);
        assert_ne!(key(std::slice::from_ref(&lock), "g").unwrap(), one);
        std::fs::write(&lock, "b").unwrap();
        assert_ne!(key(std::slice::from_ref(&lock), "f").unwrap(), one);
        assert!(key(&[dir.path().join("missing.lock.yaml")], "f").is_none());
    }
}
