//! The edge that reads the build context: a parallel walk that honours `.dockerignore` and
//! only descends where some `COPY`/`ADD` source can select something, then parallel sha256
//! of the selected files with a persistent stat cache, so a second run re-reads only files
//! whose size, mtime, ctime or inode changed.
//!
//! The stat cache lives in `<cache dir>/plan/stat-<hash of the context path>.v2`. It is a
//! small hand-rolled binary format, read with one `read(2)` and parsed without a single
//! allocation per entry (every record borrows its path from the buffer):
//!
//! ```text
//! "strata-statcache\0v2\n"                      20-byte magic
//! u64 LE                                         number of records
//! records, sorted by path bytes:
//!   u32 LE path length, path bytes (context-relative, `/`-separated)
//!   u64 size, i64 mtime ns, i64 ctime ns, u64 inode (all LE), 32-byte sha256
//! ```
//!
//! Because both the records and the walk's results are sorted by path, looking files up is a
//! merge of two sorted lists (no hash map), and writing keeps the order. The text format of
//! v1 (one line per file, parsed into a `HashMap<String, _>` with two `String`s per entry)
//! cost more CPU than the stats it saved at 100,000 files; `mmap` would save only the copy of
//! a few MB and needs `unsafe`, and a serde format (bincode) would allocate per entry again.
//! A v1 file is ignored, and removed when the v2 file is written.
//!
//! An entry is saved only when the file's mtime and ctime are older than the start of the
//! scan that hashed it (git's "racily clean" rule), so a file modified while or just after it
//! was read is always read again.
//!
//! Directories that a source selects are part of the index too, by path only: BuildKit's
//! content hash of a copied directory changes when an (even empty) directory appears in it,
//! but not when a directory's mode or mtime changes (checked against BuildKit by
//! `crates/strata/tests/buildkit_agreement.rs`).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use strata_dockerfile::dockerignore::{Matcher, Pattern};

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
    /// Worker threads (0: one per CPU, at most 8).
    pub threads: usize,
}

/// What hashing did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HashStats {
    /// Files (and symlinks) looked at that are not ignored and could be selected.
    pub files_selected: usize,
    /// Directories a source selects (keyed by path only).
    pub dirs_selected: usize,
    /// Files read and hashed this run.
    pub files_hashed: usize,
    /// Bytes read.
    pub bytes_hashed: u64,
    /// Files whose digest came from the stat cache.
    pub stat_cache_hits: usize,
    /// Entries skipped because `.dockerignore` excludes them.
    pub ignored: usize,
}

/// `.dockerignore` rules for the walk: the matcher, plus which path depths some pattern can
/// match by itself, so that entries at other depths skip matching altogether.
///
/// Without `!` exclusions an ignored directory is pruned, so every entry the walk sees has
/// parents that are not ignored; it is then ignored only if a pattern matches its own path.
/// A pattern without `**`, `[`, `\` or `..` has a fixed number of `/`-separated components
/// (`*` and `?` never match `/` in moby's matcher) and can only match paths with that many.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    matcher: Matcher,
    /// `None`: match every path (exclusions present, or a pattern of any depth).
    depths: Option<Vec<bool>>,
}

impl IgnoreRules {
    /// Rules that match every path against `matcher` (no shortcut).
    pub fn from_matcher(matcher: Matcher) -> IgnoreRules {
        IgnoreRules {
            matcher,
            depths: None,
        }
    }

    /// Rules from the patterns `matcher` was compiled from.
    pub fn new(matcher: Matcher, patterns: &[Pattern]) -> IgnoreRules {
        let mut depths = Vec::new();
        let mut any_depth = matcher.has_exclusions();
        for p in patterns.iter().filter(|p| !p.pattern.trim().is_empty()) {
            let text = p.pattern.trim();
            if p.exclusion || text.contains("**") || text.contains(['[', '\\']) {
                any_depth = true;
                break;
            }
            let parts: Vec<&str> = text
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            if parts.is_empty() || parts.contains(&"..") {
                any_depth = true;
                break;
            }
            let d = parts.len();
            if depths.len() <= d {
                depths.resize(d + 1, false);
            }
            depths[d] = true;
        }
        IgnoreRules {
            matcher,
            depths: (!any_depth).then_some(depths),
        }
    }

    /// The matcher.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Whether `rel` (with `depth` components, parents known not to be ignored when there
    /// are no exclusions) is ignored.
    fn ignored(&self, rel: &str, depth: usize) -> bool {
        match &self.depths {
            Some(d) if !d.get(depth).copied().unwrap_or(false) => false,
            _ => self.matcher.matches(rel),
        }
    }
}

/// One entry found by the walk.
#[derive(Debug, Clone)]
struct Found {
    rel: String,
    kind: FileKind,
    mode: u32,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Found {
    fn same_stat(&self, c: &Record<'_>) -> bool {
        c.size == self.size
            && c.mtime_ns == self.mtime_ns
            && c.ino == self.ino
            && c.ctime_ns == self.ctime_ns
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Whether a directory (context-relative, `""` for the root) can contain a selected file.
fn dir_may_hold(dir: &str, prefixes: &[String]) -> bool {
    if dir.is_empty() {
        return true;
    }
    prefixes.iter().any(|p| {
        p.is_empty()
            || p == dir
            || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
            || (dir.starts_with(p.as_str()) && dir.as_bytes().get(p.len()) == Some(&b'/'))
    })
}

/// The literal directory prefix under which each source can select something.
fn source_prefixes(sources: &[String]) -> Vec<String> {
    sources
        .iter()
        .map(|s| {
            if has_wildcard(s) {
                glob_prefix(s)
            } else if s == "." {
                String::new()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// What the walk hands back.
struct Walked {
    found: Vec<Found>,
    ignored: usize,
}

/// Walks `context` in parallel (a shared stack of directories, `threads` workers) and returns
/// the entries that are not ignored and that some source selects, sorted by path.
fn walk(
    context: &Path,
    ignore: &IgnoreRules,
    sources: &[String],
    threads: usize,
) -> Result<Walked, ContextError> {
    let w = Walker {
        context,
        ignore,
        selectors: sources.iter().map(|s| SourceSelector::new(s)).collect(),
        all: sources.iter().any(|s| s == "."),
        prefixes: source_prefixes(sources),
        prune_ignored: !ignore.matcher.has_exclusions(),
        ignored: AtomicUsize::new(0),
    };
    let queue: Mutex<(Vec<(String, usize)>, usize)> = Mutex::new((vec![(String::new(), 0)], 0));
    let wake = Condvar::new();
    let results: Mutex<Vec<Found>> = Mutex::new(Vec::new());
    let error: Mutex<Option<ContextError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut found = Vec::new();
                let mut subdirs = Vec::new();
                loop {
                    let next = {
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
                    let Some((dir, depth)) = next else { break };
                    if let Err(e) = w.read_dir(&dir, depth, &mut found, &mut subdirs) {
                        error.lock().unwrap().get_or_insert(e);
                    }
                    let mut q = queue.lock().unwrap();
                    q.0.append(&mut subdirs);
                    q.1 -= 1;
                    wake.notify_all();
                }
                results.lock().unwrap().append(&mut found);
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    let mut found = results.into_inner().unwrap();
    found.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Walked {
        found,
        ignored: w.ignored.into_inner(),
    })
}

struct Walker<'a> {
    context: &'a Path,
    ignore: &'a IgnoreRules,
    selectors: Vec<SourceSelector>,
    /// Some source is the whole context (every entry is selected).
    all: bool,
    prefixes: Vec<String>,
    prune_ignored: bool,
    ignored: AtomicUsize,
}

impl Walker<'_> {
    fn selects(&self, rel: &str) -> bool {
        self.all || self.selectors.iter().any(|s| s.selects(rel))
    }

    /// Reads one directory: selected entries go to `found`, directories to descend into to
    /// `subdirs`. Stats use the directory's descriptor (`DirEntry::metadata` is an
    /// `fstatat`/`statx` relative to it), so no path is resolved from the root per file.
    fn read_dir(
        &self,
        dir: &str,
        depth: usize,
        found: &mut Vec<Found>,
        subdirs: &mut Vec<(String, usize)>,
    ) -> Result<(), ContextError> {
        let abs = self.context.join(dir);
        let depth = depth + 1;
        for entry in fs::read_dir(&abs).map_err(io_err(&abs))? {
            let entry = entry.map_err(io_err(&abs))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let mut rel = String::with_capacity(dir.len() + 1 + name.len());
            if !dir.is_empty() {
                rel.push_str(dir);
                rel.push('/');
            }
            rel.push_str(name);
            let ft = entry.file_type().map_err(io_err(&entry.path()))?;
            let is_ignored = self.ignore.ignored(&rel, depth);
            if ft.is_dir() {
                if is_ignored {
                    self.ignored.fetch_add(1, Ordering::Relaxed);
                    if self.prune_ignored {
                        continue;
                    }
                } else if self.selects(&rel) {
                    found.push(Found {
                        rel: rel.clone(),
                        kind: FileKind::Dir,
                        mode: 0,
                        size: 0,
                        mtime_ns: 0,
                        ctime_ns: 0,
                        ino: 0,
                    });
                }
                if dir_may_hold(&rel, &self.prefixes) {
                    subdirs.push((rel, depth));
                }
                continue;
            }
            if is_ignored {
                self.ignored.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !self.selects(&rel) {
                continue;
            }
            let kind = if ft.is_symlink() {
                FileKind::Symlink
            } else if ft.is_file() {
                FileKind::File
            } else {
                continue; // sockets, fifos, devices: BuildKit skips or fails on them
            };
            let md = entry.metadata().map_err(io_err(&entry.path()))?;
            found.push(Found {
                rel,
                kind,
                mode: md.mode() & 0o7777,
                size: md.size(),
                mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
                ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
                ino: md.ino(),
            });
        }
        Ok(())
    }
}

/// The stat cache file for a context.
pub fn stat_cache_path(cache_dir: &Path, context: &Path) -> PathBuf {
    let canonical = fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
    let digest = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    cache_dir
        .join("plan")
        .join(format!("stat-{}.v2", &digest[..32]))
}

const MAGIC: &[u8; 20] = b"strata-statcache\0v2\n";
/// Fixed bytes of a record after its path.
const FIXED: usize = 8 * 4 + 32;

/// A stat-cache record, borrowing its path from the loaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record<'a> {
    path: &'a [u8],
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    digest: [u8; 32],
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]))
}

/// Parses a whole cache file; `None` when it is not a well-formed v2 file (then it is
/// ignored and rewritten).
fn parse_cache(buf: &[u8]) -> Option<Vec<Record<'_>>> {
    let rest = buf.strip_prefix(MAGIC.as_slice())?;
    let count = usize::try_from(le_u64(rest.get(..8)?)).ok()?;
    let mut rest = &rest[8..];
    // Each record takes at least 4 + FIXED bytes: a corrupt count cannot over-allocate.
    let mut out = Vec::with_capacity(count.min(rest.len() / (4 + FIXED)));
    for _ in 0..count {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let path = rest.get(4..4 + len)?;
        let f = rest.get(4 + len..4 + len + FIXED)?;
        out.push(Record {
            path,
            size: le_u64(&f[0..]),
            mtime_ns: le_u64(&f[8..]) as i64,
            ctime_ns: le_u64(&f[16..]) as i64,
            ino: le_u64(&f[24..]),
            digest: f[32..64].try_into().ok()?,
        });
        rest = &rest[4 + len + FIXED..];
    }
    if !out.is_sorted_by(|a, b| a.path < b.path) {
        out.sort_unstable_by(|a, b| a.path.cmp(b.path));
        out.dedup_by(|a, b| a.path == b.path);
    }
    Some(out)
}

fn save_cache(path: &Path, records: &[Record<'_>]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut buf = Vec::with_capacity(
        MAGIC.len()
            + 8
            + records
                .iter()
                .map(|r| 4 + r.path.len() + FIXED)
                .sum::<usize>(),
    );
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for r in records {
        buf.extend_from_slice(&(r.path.len() as u32).to_le_bytes());
        buf.extend_from_slice(r.path);
        for v in [r.size, r.mtime_ns as u64, r.ctime_ns as u64, r.ino] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&r.digest);
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("stat"),
        std::process::id()
    ));
    fs::File::create(&tmp)?.write_all(&buf)?;
    fs::rename(&tmp, path)
}

/// Lower-case hex of a digest (a table lookup per byte; `hex::encode` goes through a char
/// iterator, which showed in profiles at 100,000 files).
pub(crate) fn hex32(d: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(64);
    for b in d {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    String::from_utf8(out).unwrap_or_default()
}

fn sha256_file(path: &Path, buf: &mut [u8]) -> std::io::Result<([u8; 32], u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = f.read(buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((h.finalize().into(), total))
}

/// Whether an entry hashed during a scan that started at `scan_start` may be trusted later:
/// its mtime and ctime must be older than the scan start (2 s older on file systems whose
/// timestamps have no sub-second part).
fn trustworthy(f: &Found, scan_start: i64) -> bool {
    let coarse = f.mtime_ns % 1_000_000_000 == 0 && f.ctime_ns % 1_000_000_000 == 0;
    let margin = if coarse { 2_000_000_000 } else { 0 };
    f.mtime_ns.max(f.ctime_ns) < scan_start - margin
}

/// For each of `found` (sorted), the matching record of `cache` (sorted), by a merge.
fn lookup<'c>(found: &[Found], cache: &'c [Record<'c>]) -> Vec<Option<&'c Record<'c>>> {
    let mut out = Vec::with_capacity(found.len());
    let mut j = 0;
    for f in found {
        let key = f.rel.as_bytes();
        while j < cache.len() && cache[j].path < key {
            j += 1;
        }
        out.push(cache.get(j).filter(|c| c.path == key));
    }
    out
}

/// Hashes the files of `context` that `sources` select and `ignore` does not exclude.
pub fn hash_context(
    context: &Path,
    ignore: &IgnoreRules,
    sources: &[String],
    opts: &HashOptions,
) -> Result<(ContextIndex, HashStats), ContextError> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
    } else {
        opts.threads
    };
    let mut stats = HashStats::default();
    if sources.is_empty() {
        return Ok((ContextIndex::default(), stats));
    }
    let scan_start = now_ns();
    let walked = walk(context, ignore, sources, threads)?;
    let found = walked.found;
    stats.ignored = walked.ignored;
    stats.dirs_selected = found.iter().filter(|f| f.kind == FileKind::Dir).count();
    stats.files_selected = found.len() - stats.dirs_selected;
    let cache_path = opts.cache_dir.as_ref().map(|d| stat_cache_path(d, context));
    let cache_buf = cache_path
        .as_deref()
        .and_then(|p| fs::read(p).ok())
        .unwrap_or_default();
    let cache = parse_cache(&cache_buf).unwrap_or_default();
    let cached = lookup(&found, &cache);

    // Digests from the stat cache; the rest is read in parallel.
    let mut digests: Vec<Option<[u8; 32]>> = found
        .iter()
        .zip(&cached)
        .map(|(f, c)| match f.kind {
            FileKind::File => c.filter(|c| f.same_stat(c)).map(|c| c.digest),
            FileKind::Symlink | FileKind::Dir => Some([0; 32]),
        })
        .collect();
    stats.stat_cache_hits = found
        .iter()
        .zip(&digests)
        .filter(|(f, d)| f.kind == FileKind::File && d.is_some())
        .count();
    let todo: Vec<usize> = (0..found.len()).filter(|&i| digests[i].is_none()).collect();
    if !todo.is_empty() {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, [u8; 32], u64)>> =
            Mutex::new(Vec::with_capacity(todo.len()));
        let error: Mutex<Option<ContextError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads.min(todo.len()) {
                scope.spawn(|| {
                    let mut local = Vec::new();
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(n) else { break };
                        let path = context.join(&found[i].rel);
                        match sha256_file(&path, &mut buf) {
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
                    results.lock().unwrap().append(&mut local);
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
    }

    // The records to keep: every file whose entry is trustworthy (or unchanged).
    let mut fresh: Vec<Record<'_>> = Vec::new();
    let mut unchanged = 0usize;
    for ((f, d), c) in found.iter().zip(&digests).zip(&cached) {
        if f.kind != FileKind::File {
            continue;
        }
        let digest = d.unwrap_or_default();
        let same = c.is_some_and(|c| c.digest == digest && f.same_stat(c));
        if same || trustworthy(f, scan_start) {
            unchanged += usize::from(same);
            fresh.push(Record {
                path: f.rel.as_bytes(),
                size: f.size,
                mtime_ns: f.mtime_ns,
                ctime_ns: f.ctime_ns,
                ino: f.ino,
                digest,
            });
        }
    }
    if let Some(path) = &cache_path {
        let looked_at = cached.iter().filter(|c| c.is_some()).count();
        // Rewrite only when something changed: a new, dropped or different record.
        if fresh.len() != unchanged || looked_at != unchanged {
            // Keep records of files this run did not look at (other Dockerfiles share the
            // cache): a merge of two sorted lists.
            let mut all = Vec::with_capacity(cache.len() + fresh.len());
            let (mut i, mut k) = (0, 0);
            for f in &found {
                let key = f.rel.as_bytes();
                while i < cache.len() && cache[i].path < key {
                    all.push(cache[i]);
                    i += 1;
                }
                if i < cache.len() && cache[i].path == key {
                    i += 1;
                }
                if k < fresh.len() && fresh[k].path == key {
                    all.push(fresh[k]);
                    k += 1;
                }
            }
            all.extend_from_slice(&cache[i..]);
            // A cache that cannot be written only costs speed next time.
            if save_cache(path, &all).is_ok() {
                // The v1 text cache of the same context, if an older strata left one.
                let _ = fs::remove_file(path.with_extension("v1"));
            }
        }
    }

    // `found` is sorted: collecting builds the map in bulk instead of inserting one by one.
    let files = found
        .into_iter()
        .zip(digests)
        .map(|(f, d)| {
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
            let content = match f.kind {
                FileKind::File => hex32(&d.unwrap_or_default()),
                FileKind::Symlink | FileKind::Dir => String::new(),
            };
            let entry = FileEntry {
                kind: f.kind,
                mode: f.mode,
                content,
                link_target,
            };
            Ok((f.rel, entry))
        })
        .collect::<Result<_, ContextError>>()?;
    let index = ContextIndex { files };
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
