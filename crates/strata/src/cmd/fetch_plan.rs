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
//! Format: one line of JSON ([`CachedPlan`]), then the generated files' bytes, back to back.
//! Anything unreadable is a miss; a plan is only a shortcut to what the full path computes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_lock::{Algorithm, Digest};
use strata_store::{Hasher, Store};

/// Bumped when the format or the meaning of a plan changes.
const FORMAT: &str = "strata-fetch-plan-1";

/// What a fetch writes into its output directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPlan {
    /// Lockfile artifacts (the summary's count; several may share a digest).
    pub artifacts: usize,
    /// Directories to create, relative to the output directory, parents first.
    pub dirs: Vec<String>,
    /// Each store digest, its size and the output paths it is linked to.
    pub links: Vec<CachedLink>,
    /// Generated files (bom.json, .build-config.json): path and length; the bytes follow
    /// the JSON line in this order.
    pub generated: Vec<(String, usize)>,
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

/// Serialises a plan and the generated files' bytes (in `plan.generated` order).
pub fn encode(plan: &CachedPlan, generated: &[&[u8]]) -> Vec<u8> {
    let mut out = serde_json::to_vec(plan).expect("a plan serialises");
    out.push(b'\n');
    for bytes in generated {
        out.extend_from_slice(bytes);
    }
    out
}

/// A decoded plan: the plan and its generated files' bytes.
pub type Decoded = (CachedPlan, Vec<(String, Vec<u8>)>);

/// Parses what [`encode`] wrote; `None` if it is damaged in any way.
pub fn decode(bytes: &[u8]) -> Option<Decoded> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let plan: CachedPlan = serde_json::from_slice(&bytes[..newline]).ok()?;
    let mut rest = &bytes[newline + 1..];
    let mut files = Vec::with_capacity(plan.generated.len());
    for (path, len) in &plan.generated {
        if rest.len() < *len || !is_clean_relative(path) {
            return None;
        }
        let (head, tail) = rest.split_at(*len);
        files.push((path.clone(), head.to_vec()));
        rest = tail;
    }
    let paths_clean = plan.dirs.iter().all(|d| is_clean_relative(d))
        && plan
            .links
            .iter()
            .flat_map(|l| &l.paths)
            .all(|p| is_clean_relative(p));
    (rest.is_empty() && paths_clean).then_some((plan, files))
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
pub fn load(store: &Store, key: &str) -> Option<Decoded> {
    decode(&store.read_derived(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (CachedPlan, Vec<Vec<u8>>) {
        let plan = CachedPlan {
            artifacts: 2,
            dirs: vec!["deps".into(), "deps/pip".into()],
            links: vec![CachedLink {
                digest: format!("sha256:{}", "ab".repeat(32)).parse().unwrap(),
                size: 3,
                paths: vec!["deps/pip/a.whl".into(), "deps/pip/b.whl".into()],
            }],
            generated: vec![("bom.json".into(), 4), (".build-config.json".into(), 2)],
            skipped: vec![("x".into(), "pylock.toml".into(), "a directory".into())],
        };
        (plan, vec![b"{\n}\n".to_vec(), b"{}".to_vec()])
    }

    #[test]
    fn round_trip() {
        let (plan, files) = sample();
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let (back, generated) = decode(&encode(&plan, &refs)).unwrap();
        assert_eq!(back, plan);
        assert_eq!(generated[0], ("bom.json".to_string(), b"{\n}\n".to_vec()));
        assert_eq!(
            generated[1],
            (".build-config.json".to_string(), b"{}".to_vec())
        );
    }

    #[test]
    fn damaged_or_escaping_plans_are_misses() {
        let (plan, files) = sample();
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let good = encode(&plan, &refs);
        assert!(decode(&good[..good.len() - 1]).is_none(), "truncated");
        let mut longer = good.clone();
        longer.push(b'x');
        assert!(decode(&longer).is_none(), "trailing bytes");
        assert!(decode(b"not json\n").is_none());
        for bad in ["../etc/passwd", "/etc/passwd", "deps//x", "deps/./x", ""] {
            let mut p = plan.clone();
            p.links[0].paths[0] = bad.into();
            assert!(decode(&encode(&p, &refs)).is_none(), "{bad:?}");
        }
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
