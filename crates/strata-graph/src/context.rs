//! The edge that reads the build context: a parallel walk that honours `.dockerignore` and
//! only descends where some `COPY`/`ADD` source can select something, then parallel sha256
//! of the selected files with a persistent stat cache, so a second run re-reads only files
//! whose size, mtime, ctime or inode changed.
//!
//! The stat cache lives in `<cache dir>/plan/stat-<hash of the context path>.v1`, one line per
//! file. An entry is saved only when the file's mtime and ctime are older than the start of
//! the scan that hashed it (git's "racily clean" rule), so a file modified while or just
//! after it was read is always read again.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use strata_dockerfile::dockerignore::Matcher;

use crate::keys::{ContextIndex, FileEntry, FileKind, SourceSelector, glob_prefix, has_wildcard};

/// A context file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {cause}", path.display())]
pub struct ContextError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    pub cause: std::io::Error,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |cause| ContextError {
        path: path.to_path_buf(),
        cause,
    }
}

/// How to hash a context.
#[derive(Debug, Clone, Default)]
pub struct HashOptions {
    /// Where the stat cache lives (`None`: no stat cache).
    pub cache_dir: Option<PathBuf>,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
}

/// What hashing did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HashStats {
    /// Files (and symlinks) looked at that are not ignored and could be selected.
    pub files_selected: usize,
    /// Files read and hashed this run.
    pub files_hashed: usize,
    /// Bytes read.
    pub bytes_hashed: u64,
    /// Files whose digest came from the stat cache.
    pub stat_cache_hits: usize,
    /// Entries skipped because `.dockerignore` excludes them.
    pub ignored: usize,
}

/// One file found by the walk.
#[derive(Debug, Clone)]
struct Found {
    rel: String,
    kind: FileKind,
    mode: u32,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

/// A stat-cache entry: the stat fields that must not change, and the content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cached {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    ctime_ns: i128,
    digest: String,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Whether a directory (context-relative, `""` for the root) can contain a selected file.
fn dir_may_hold(dir: &str, sources: &[String]) -> bool {
    if dir.is_empty() {
        return true;
    }
    sources.iter().any(|s| {
        let p = if has_wildcard(s) {
            glob_prefix(s)
        } else if s == "." {
            String::new()
        } else {
            s.clone()
        };
        p.is_empty()
            || p == dir
            || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
            || (dir.starts_with(&p) && dir.as_bytes().get(p.len()) == Some(&b'/'))
    })
}

/// Walks `context` in parallel and returns the files that are not ignored and that some
/// source selects, plus how many entries `.dockerignore` excluded.
fn walk(
    context: &Path,
    ignore: &Matcher,
    sources: &[String],
    threads: usize,
) -> Result<(Vec<Found>, usize), ContextError> {
    let selectors: Vec<SourceSelector> = sources.iter().map(|s| SourceSelector::new(s)).collect();
    let queue: Mutex<(Vec<String>, usize)> = Mutex::new((vec![String::new()], 0));
    let wake = Condvar::new();
    let ignored = AtomicUsize::new(0);
    let prune_ignored = !ignore.has_exclusions();
    let results: Mutex<Vec<Found>> = Mutex::new(Vec::new());
    let error: Mutex<Option<ContextError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut found = Vec::new();
                loop {
                    let dir = {
                        let mut q = queue.lock().unwrap();
                        loop {
                            if let Some(d) = q.0.pop() {
                                q.1 += 1;
                                break Some(d);
                            }
                            if q.1 == 0 {
                                break None;
                            }
                            q = wake.wait(q).unwrap();
                        }
                    };
                    let Some(dir) = dir else { break };
                    let mut subdirs = Vec::new();
                    if let Err(e) = read_dir(
                        context,
                        &dir,
                        ignore,
                        &selectors,
                        sources,
                        prune_ignored,
                        &ignored,
                        &mut found,
                        &mut subdirs,
                    ) {
                        error.lock().unwrap().get_or_insert(e);
                    }
                    let mut q = queue.lock().unwrap();
                    q.0.extend(subdirs);
                    q.1 -= 1;
                    wake.notify_all();
                }
                results.lock().unwrap().extend(found);
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    let mut files = results.into_inner().unwrap();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok((files, ignored.into_inner()))
}

#[allow(clippy::too_many_arguments)]
fn read_dir(
    context: &Path,
    dir: &str,
    ignore: &Matcher,
    selectors: &[SourceSelector],
    sources: &[String],
    prune_ignored: bool,
    ignored: &AtomicUsize,
    found: &mut Vec<Found>,
    subdirs: &mut Vec<String>,
) -> Result<(), ContextError> {
    let abs = context.join(dir);
    for entry in fs::read_dir(&abs).map_err(io_err(&abs))? {
        let entry = entry.map_err(io_err(&abs))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let rel = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let ft = entry.file_type().map_err(io_err(&entry.path()))?;
        let is_ignored = ignore.matches(&rel);
        if ft.is_dir() {
            if is_ignored && prune_ignored {
                ignored.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if dir_may_hold(&rel, sources) {
                subdirs.push(rel);
            }
            continue;
        }
        if is_ignored {
            ignored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if !selectors.iter().any(|s| s.selects(&rel)) {
            continue;
        }
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_file() {
            FileKind::File
        } else {
            continue; // sockets, fifos, devices: BuildKit skips or fails on them
        };
        let path = entry.path();
        let md = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        found.push(Found {
            rel,
            kind,
            mode: md.mode() & 0o7777,
            size: md.size(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
            ino: md.ino(),
        });
    }
    Ok(())
}

/// The stat cache file for a context.
pub fn stat_cache_path(cache_dir: &Path, context: &Path) -> PathBuf {
    let canonical = fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
    let digest = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    cache_dir
        .join("plan")
        .join(format!("stat-{}.v1", &digest[..32]))
}

fn load_cache(path: &Path) -> HashMap<String, Cached> {
    let mut map = HashMap::new();
    let Ok(file) = fs::File::open(path) else {
        return map;
    };
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    if !matches!(lines.next(), Some(Ok(h)) if h == "strata-statcache v1") {
        return map;
    }
    for line in lines.map_while(Result::ok) {
        let mut parts = line.splitn(6, ' ');
        let (Some(size), Some(mtime), Some(ino), Some(ctime), Some(digest), Some(rel)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            continue;
        };
        let (Ok(size), Ok(mtime_ns), Ok(ino), Ok(ctime_ns)) =
            (size.parse(), mtime.parse(), ino.parse(), ctime.parse())
        else {
            continue;
        };
        map.insert(
            rel.to_string(),
            Cached {
                size,
                mtime_ns,
                ino,
                ctime_ns,
                digest: digest.to_string(),
            },
        );
    }
    map
}

fn save_cache(path: &Path, entries: &[(&str, &Cached)]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("stat"),
        std::process::id()
    ));
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        writeln!(w, "strata-statcache v1")?;
        for (rel, c) in entries {
            writeln!(
                w,
                "{} {} {} {} {} {rel}",
                c.size, c.mtime_ns, c.ino, c.ctime_ns, c.digest
            )?;
        }
        w.flush()?;
    }
    fs::rename(&tmp, path)
}

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), total))
}

/// Whether an entry hashed during a scan that started at `scan_start` may be trusted later:
/// its mtime and ctime must be older than the scan start (2 s older on file systems whose
/// timestamps have no sub-second part).
fn trustworthy(f: &Found, scan_start: i128) -> bool {
    let coarse = f.mtime_ns % 1_000_000_000 == 0 && f.ctime_ns % 1_000_000_000 == 0;
    let margin = if coarse { 2_000_000_000 } else { 0 };
    f.mtime_ns.max(f.ctime_ns) < scan_start - margin
}

/// Hashes the files of `context` that `sources` select and `ignore` does not exclude.
pub fn hash_context(
    context: &Path,
    ignore: &Matcher,
    sources: &[String],
    opts: &HashOptions,
) -> Result<(ContextIndex, HashStats), ContextError> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let mut stats = HashStats::default();
    if sources.is_empty() {
        return Ok((ContextIndex::default(), stats));
    }
    let scan_start = now_ns();
    let (found, ignored) = walk(context, ignore, sources, threads)?;
    stats.ignored = ignored;
    stats.files_selected = found.len();
    let cache_path = opts.cache_dir.as_ref().map(|d| stat_cache_path(d, context));
    let cache = cache_path.as_deref().map(load_cache).unwrap_or_default();

    // Look up the stat cache; the rest is read in parallel.
    let mut digests: Vec<Option<String>> = found
        .iter()
        .map(|f| {
            if f.kind == FileKind::Symlink {
                return Some(String::new());
            }
            cache.get(&f.rel).and_then(|c| {
                (c.size == f.size
                    && c.mtime_ns == f.mtime_ns
                    && c.ino == f.ino
                    && c.ctime_ns == f.ctime_ns)
                    .then(|| c.digest.clone())
            })
        })
        .collect();
    stats.stat_cache_hits = found
        .iter()
        .zip(&digests)
        .filter(|(f, d)| f.kind == FileKind::File && d.is_some())
        .count();
    let todo: Vec<usize> = (0..found.len()).filter(|&i| digests[i].is_none()).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, String, u64)>> = Mutex::new(Vec::with_capacity(todo.len()));
    let error: Mutex<Option<ContextError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(todo.len().max(1)) {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = todo.get(n) else { break };
                    let path = context.join(&found[i].rel);
                    match sha256_file(&path) {
                        Ok((d, bytes)) => local.push((i, d, bytes)),
                        Err(e) => {
                            error
                                .lock()
                                .unwrap()
                                .get_or_insert(ContextError { path, cause: e });
                            break;
                        }
                    }
                }
                results.lock().unwrap().extend(local);
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    for (i, d, bytes) in results.into_inner().unwrap() {
        stats.files_hashed += 1;
        stats.bytes_hashed += bytes;
        digests[i] = Some(d);
    }

    let mut index = ContextIndex::default();
    let mut fresh: Vec<(String, Cached)> = Vec::new();
    for (f, d) in found.iter().zip(digests) {
        let digest = d.unwrap_or_default();
        let link_target = if f.kind == FileKind::Symlink {
            let p = context.join(&f.rel);
            Some(
                fs::read_link(&p)
                    .map_err(io_err(&p))?
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            None
        };
        if f.kind == FileKind::File && !f.rel.contains('\n') {
            let keep = cache.get(&f.rel).is_some_and(|c| {
                c.digest == digest
                    && c.size == f.size
                    && c.mtime_ns == f.mtime_ns
                    && c.ino == f.ino
                    && c.ctime_ns == f.ctime_ns
            }) || trustworthy(f, scan_start);
            if keep {
                fresh.push((
                    f.rel.clone(),
                    Cached {
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                        ino: f.ino,
                        ctime_ns: f.ctime_ns,
                        digest: digest.clone(),
                    },
                ));
            }
        }
        index.files.insert(
            f.rel.clone(),
            FileEntry {
                kind: f.kind,
                mode: f.mode,
                content: digest,
                link_target,
            },
        );
    }
    if let Some(path) = cache_path {
        // Keep entries of files this run did not look at (other Dockerfiles share the cache).
        let changed = stats.files_hashed > 0 || fresh.len() != stats.stat_cache_hits;
        if changed {
            let mut all: HashMap<&str, &Cached> =
                cache.iter().map(|(k, v)| (k.as_str(), v)).collect();
            for f in &found {
                all.remove(f.rel.as_str());
            }
            for (k, v) in &fresh {
                all.insert(k.as_str(), v);
            }
            let mut entries: Vec<(&str, &Cached)> = all.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            // A cache that cannot be written only costs speed next time.
            let _ = save_cache(&path, &entries);
        }
    }
    Ok((index, stats))
}

/// Literal sources that exist in the context but that `.dockerignore` excludes (BuildKit
/// will fail those `COPY`s with "not found").
pub fn ignored_sources(context: &Path, ignore: &Matcher, sources: &[String]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| *s != "." && !has_wildcard(s))
        .filter(|s| ignore.matches(s))
        .filter(|s| fs::symlink_metadata(context.join(s)).is_ok())
        .cloned()
        .collect()
}
