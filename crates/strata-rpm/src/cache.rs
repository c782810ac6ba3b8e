//! Repodata cached in the store, keyed by a hash of the repository's lockfile entries.
//!
//! Each generated file is an ordinary store entry (by its sha256). A small JSON index per key
//! lists them:
//!
//! ```text
//! <store root>/repodata/v1/<hh>/<key>.json   {"key": ..., "files": [{"path", "digest", "size"}]}
//! ```
//!
//! The index is written atomically (temp file + rename) after all its entries are in the
//! store, so a reader sees either no index or a complete one. Concurrent writers produce the
//! same bytes (generation is deterministic), so the last rename wins harmlessly. A lookup
//! whose entries were garbage-collected from the store is a miss.

use std::fs;
use std::io;
use std::path::PathBuf;

use strata_lock::{Algorithm, Artifact, Digest};
use strata_store::{Store, insert_bytes};

use crate::epoch::{entry_line, hash_lines};
use crate::repodata::{GENERATOR_VERSION, RepodataFile};

/// One cached repodata file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedFile {
    /// Path relative to the repository root (`repodata/repomd.xml`).
    pub path: String,
    /// The store entry holding its bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// A repository's cached repodata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedRepodata {
    /// The key (see [`repo_key`]).
    pub key: String,
    /// The files, `repodata/repomd.xml` last.
    pub files: Vec<CachedFile>,
}

/// The cache key of a repository: a hash of the generator version and each entry's arch,
/// kind, file name and digests (order-independent; URLs excluded).
pub fn repo_key<'a>(artifacts: impl IntoIterator<Item = &'a Artifact>) -> String {
    hash_lines(GENERATOR_VERSION, artifacts.into_iter().map(entry_line))
}

/// The repodata index over a store.
#[derive(Debug, Clone)]
pub struct RepodataCache {
    store: Store,
    dir: PathBuf,
}

impl RepodataCache {
    /// The cache inside `store` (its index lives under `<root>/repodata/v1`).
    pub fn new(store: Store) -> RepodataCache {
        let dir = store.root().join("repodata").join("v1");
        RepodataCache { store, dir }
    }

    /// The store holding the files.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn index_path(&self, key: &str) -> PathBuf {
        self.dir
            .join(&key[..2.min(key.len())])
            .join(format!("{key}.json"))
    }

    /// The cached repodata for `key`, if its index and every file are present.
    pub fn lookup(&self, key: &str) -> Option<CachedRepodata> {
        let text = fs::read(self.index_path(key)).ok()?;
        let cached: CachedRepodata = serde_json::from_slice(&text).ok()?;
        if cached.key != key || !cached.files.iter().all(|f| self.store.contains(&f.digest)) {
            return None;
        }
        for f in &cached.files {
            self.store.touch(&f.digest);
        }
        Some(cached)
    }

    /// Stores generated files and their index under `key`.
    pub fn insert(&self, key: &str, files: &[RepodataFile]) -> io::Result<CachedRepodata> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let hex = crate::repodata::sha256_hex(&f.bytes);
            let digest = Digest::new(Algorithm::Sha256, &hex).expect("sha256 hex is a digest");
            if !self.store.contains(&digest) {
                insert_bytes(&self.store, &digest, &f.bytes).map_err(io::Error::other)?;
            }
            out.push(CachedFile {
                path: f.path.clone(),
                digest,
                size: f.bytes.len() as u64,
            });
        }
        let cached = CachedRepodata {
            key: key.to_owned(),
            files: out,
        };
        let path = self.index_path(key);
        let dir = path.parent().expect("index paths have a parent");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{key}.{:08x}.tmp", std::process::id()));
        strata_store::write_synced(
            &tmp,
            &serde_json::to_vec_pretty(&cached).expect("serialises"),
        )?;
        fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        Ok(cached)
    }

    /// Where a cached file's bytes are (a read-only store entry).
    pub fn file_path(&self, file: &CachedFile) -> PathBuf {
        self.store.entry_path(&file.digest)
    }

    /// A cached file's bytes.
    pub fn read(&self, file: &CachedFile) -> io::Result<Vec<u8>> {
        fs::read(self.file_path(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_then_lookup_and_gc_means_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = RepodataCache::new(store.clone());
        assert!(cache.lookup("abcd").is_none());
        let files = vec![
            RepodataFile {
                path: "repodata/x.xml.gz".into(),
                bytes: b"x".to_vec(),
            },
            RepodataFile {
                path: "repodata/repomd.xml".into(),
                bytes: b"<repomd/>".to_vec(),
            },
        ];
        let stored = cache.insert("abcd", &files).unwrap();
        let found = cache.lookup("abcd").unwrap();
        assert_eq!(found, stored);
        assert_eq!(cache.read(&found.files[1]).unwrap(), b"<repomd/>");
        let entry = store.entry_path(&found.files[0].digest);
        let mut perms = fs::metadata(&entry).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&entry, perms).unwrap();
        fs::remove_file(entry).unwrap();
        assert!(cache.lookup("abcd").is_none(), "a missing entry is a miss");
    }
}
