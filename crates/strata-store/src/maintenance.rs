//! Store maintenance: `stats`, `verify` and `gc`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use strata_lock::{Algorithm, Digest};

use crate::error::StoreError;
use crate::hash::hash_file;
use crate::store::Store;

/// One entry found under `objects/`.
#[derive(Debug, Clone)]
struct Entry {
    digest: Digest,
    path: PathBuf,
    size: u64,
    last_used: SystemTime,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// The store root.
    pub root: PathBuf,
    /// Number of verified entries.
    pub entries: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Entries and bytes per hash algorithm.
    pub by_algorithm: BTreeMap<String, (u64, u64)>,
    /// Temp files present (downloads in progress, or leftovers of dead writers).
    pub temp_files: u64,
    /// Files under `objects/` whose names are not digests (should be none).
    pub foreign_files: Vec<PathBuf>,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Entries hashed.
    pub checked: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Entries whose content does not match their name: `(path, problem)`.
    pub corrupt: Vec<(PathBuf, String)>,
    /// Files under `objects/` whose names are not digests.
    pub foreign_files: Vec<PathBuf>,
    /// Corrupt entries that were removed (with `repair`).
    pub removed: u64,
}

impl VerifyReport {
    /// Whether the store is sound.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.foreign_files.is_empty()
    }
}

/// What `gc` should remove.
#[derive(Debug, Clone, Default)]
pub struct GcPolicy {
    /// Remove entries not used for longer than this.
    pub max_age: Option<Duration>,
    /// Then remove least recently used entries until the store is at most this many bytes.
    pub max_size: Option<u64>,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// What `gc` removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Entries removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed: u64,
    /// Entries kept.
    pub kept: u64,
    /// Bytes kept.
    pub kept_bytes: u64,
    /// Temp files of dead writers removed.
    pub temps_removed: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl Store {
    fn entries(&self) -> Result<(Vec<Entry>, Vec<PathBuf>), StoreError> {
        let mut entries = Vec::new();
        let mut foreign = Vec::new();
        for alg_dir in read_dir(self.objects_dir())? {
            let algorithm = alg_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Algorithm>().ok());
            for shard in read_dir(&alg_dir)? {
                for path in read_dir(&shard)? {
                    let digest = algorithm.and_then(|alg| {
                        let name = path.file_name()?.to_str()?;
                        Digest::new(alg, name).ok().filter(|d| d.hex() == name)
                    });
                    let meta = fs::symlink_metadata(&path)
                        .map_err(|e| StoreError::io("stat", &path, e))?;
                    match digest {
                        Some(digest) if meta.is_file() => entries.push(Entry {
                            digest,
                            size: meta.len(),
                            last_used: last_used(&meta),
                            path,
                        }),
                        _ => foreign.push(path),
                    }
                }
            }
        }
        Ok((entries, foreign))
    }

    /// Counts entries and bytes.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let (entries, foreign_files) = self.entries()?;
        let mut stats = Stats {
            root: self.root().to_path_buf(),
            foreign_files,
            ..Stats::default()
        };
        for e in &entries {
            stats.entries += 1;
            stats.bytes += e.size;
            let slot = stats
                .by_algorithm
                .entry(e.digest.algorithm.name().to_string())
                .or_default();
            slot.0 += 1;
            slot.1 += e.size;
        }
        stats.temp_files = read_dir(self.tmp_dir())?.len() as u64;
        Ok(stats)
    }

    /// Re-hashes every entry with `threads` workers; with `repair`, removes corrupt entries so
    /// the next fetch downloads them again.
    pub fn verify(&self, threads: usize, repair: bool) -> Result<VerifyReport, StoreError> {
        let (entries, foreign_files) = self.entries()?;
        let next = AtomicUsize::new(0);
        let report = Mutex::new(VerifyReport {
            foreign_files,
            ..VerifyReport::default()
        });
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    while let Some(entry) = entries.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let problem = match hash_file(entry.digest.algorithm, &entry.path) {
                            Ok((actual, _)) if actual == entry.digest => None,
                            Ok((actual, _)) => Some(format!("content hashes to {actual}")),
                            Err(e) => Some(format!("unreadable: {e}")),
                        };
                        let removed =
                            problem.is_some() && repair && fs::remove_file(&entry.path).is_ok();
                        let mut r = report
                            .lock()
                            .expect("no worker panics while holding the report");
                        r.checked += 1;
                        r.bytes += entry.size;
                        r.removed += u64::from(removed);
                        if let Some(p) = problem {
                            r.corrupt.push((entry.path.clone(), p));
                        }
                    }
                });
            }
        });
        let mut report = report.into_inner().expect("workers are done");
        report.corrupt.sort();
        Ok(report)
    }

    /// Removes stale temp files, then entries by age and size per `policy`. Entries locked by a
    /// download in progress are never removed.
    pub fn gc(&self, policy: &GcPolicy) -> Result<GcReport, StoreError> {
        let mut report = GcReport {
            dry_run: policy.dry_run,
            ..GcReport::default()
        };
        if !policy.dry_run {
            report.temps_removed = self.clean_stale_temps()? as u64;
        }
        let now = SystemTime::now();
        self.gc_derived(policy, now, &mut report);
        let (mut entries, _) = self.entries()?;
        entries.sort_by_key(|e| e.last_used);
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        for entry in entries {
            let too_old = policy
                .max_age
                .is_some_and(|max| now.duration_since(entry.last_used).unwrap_or_default() > max);
            let too_big = policy.max_size.is_some_and(|max| total > max);
            if (too_old || too_big)
                && (policy.dry_run || self.remove_entry(&entry.digest, &entry.path))
            {
                report.removed += 1;
                report.freed += entry.size;
                total -= entry.size;
            } else {
                report.kept += 1;
                report.kept_bytes += entry.size;
            }
        }
        Ok(report)
    }

    /// Derived results (cached plans) are recomputed at will: all of them go when a size
    /// limit is set, and those older than the age limit otherwise. They are counted in
    /// `removed`/`freed` like entries.
    fn gc_derived(&self, policy: &GcPolicy, now: SystemTime, report: &mut GcReport) {
        let Ok(paths) = read_dir(&self.derived_dir()) else {
            return;
        };
        for path in paths {
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let too_old = policy
                .max_age
                .is_some_and(|max| now.duration_since(last_used(&meta)).unwrap_or_default() > max);
            if (too_old || policy.max_size.is_some())
                && (policy.dry_run || fs::remove_file(&path).is_ok())
            {
                report.removed += 1;
                report.freed += meta.len();
            }
        }
    }

    /// Removes one entry unless a download of it holds its lock right now.
    fn remove_entry(&self, digest: &Digest, path: &Path) -> bool {
        let lock = fs::File::open(self.lock_path(digest)).ok();
        if let Some(file) = &lock
            && file.try_lock().is_err()
        {
            return false;
        }
        fs::remove_file(path).is_ok()
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io("list", dir, e)),
    }
}

/// When an entry was last used: its mtime (bumped by [`Store::touch`]) or its ctime, whichever
/// is later. Linking an entry into an output tree changes its ctime (link(2) updates the inode's
/// link count), so a warm fetch marks what it uses without any extra system call.
fn last_used(meta: &fs::Metadata) -> SystemTime {
    use std::os::unix::fs::MetadataExt as _;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let changed = u64::try_from(meta.ctime())
        .ok()
        .map(|secs| {
            SystemTime::UNIX_EPOCH
                + Duration::new(secs, u32::try_from(meta.ctime_nsec()).unwrap_or(0))
        })
        .unwrap_or(SystemTime::UNIX_EPOCH);
    modified.max(changed)
}
