//! The content-addressed store: layout, locking, atomic insertion and linking out.
//!
//! Layout under the root (`v1` so that a future layout can live beside it):
//!
//! ```text
//! CACHEDIR.TAG
//! v1/objects/<alg>/<hh>/<hex>     verified, read-only entries
//! v1/locks/<alg>/<hh>/<hex>.lock  per-digest flock: single-flight across threads and processes
//! v1/tmp/<random>.part            downloads in progress, each flock-held by its writer
//! v1/derived/<hex>                 regenerable results keyed by a digest of their inputs
//!                                  (e.g. a fetch's parsed plan); `gc` ages them out
//! ```
//!
//! An entry only ever appears under `objects/` by `rename(2)` of a fully written, verified and
//! fsynced temp file, so a reader never sees a partial entry (not even after a crash) and a
//! killed writer leaves only a `.part` file, which the next [`Store::open`] removes once no
//! live process holds its lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strata_lock::{Algorithm, Digest};

use crate::error::StoreError;
use crate::hash::Hasher;

const LAYOUT: &str = "v1";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by strata.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";
/// Entries used more recently than this are not marked used again (see [`Store::lookup`]).
const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);
/// A `.init` temp file older than this is an orphan (its writer died between create and lock).
const ORPHAN_INIT_AGE: Duration = Duration::from_secs(60);

/// A handle on one content-addressed store directory. Cheap to clone; safe to share across
/// threads and with other processes using the same directory.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    objects: PathBuf,
    locks: PathBuf,
    tmp: PathBuf,
}

/// How a store entry was placed at an output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A hard link to the store entry (no bytes copied).
    Linked,
    /// A copy (the output is on another filesystem, or links are not permitted).
    Copied,
    /// The output path already was this very store entry.
    AlreadyThere,
}

/// The cache directory strata uses when none is given:
/// `$STRATA_CACHE_DIR`, else `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
pub fn default_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATA_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("strata");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/".into());
    home.join(".cache").join("strata")
}

impl Store {
    /// Opens (creating if needed) the store at `root` and removes temp files left behind by
    /// writers that died.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        let base = root.join(LAYOUT);
        let inner = Inner {
            objects: base.join("objects"),
            locks: base.join("locks"),
            tmp: base.join("tmp"),
            root,
        };
        for dir in [&inner.objects, &inner.locks, &inner.tmp] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io("create the store directory", dir, e))?;
        }
        let tag = inner.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            // Best effort: a missing tag only affects backup tools.
            let _ = fs::write(&tag, CACHEDIR_TAG);
        }
        let store = Store {
            inner: Arc::new(inner),
        };
        store.clean_stale_temps()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Directory holding verified entries.
    pub(crate) fn objects_dir(&self) -> &Path {
        &self.inner.objects
    }

    /// Directory holding in-progress temp files.
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.inner.tmp
    }

    /// An empty read-write file in the store's temp directory, already unlinked: its bytes
    /// go to the store's disk instead of memory, and it is gone when closed (for generated
    /// files too big to hold in memory, such as a large `bom.json`).
    pub fn scratch_file(&self) -> io::Result<File> {
        let path = self.inner.tmp.join(format!(
            "scratch-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(file)
    }

    /// Where derived results live (see [`Store::read_derived`]).
    pub(crate) fn derived_dir(&self) -> PathBuf {
        self.inner.root.join(LAYOUT).join("derived")
    }

    /// A derived result stored under `key` (a hex digest of everything it was computed
    /// from), if there is one. Derived results are caches: a missing or unreadable one is
    /// simply recomputed, so this never fails.
    pub fn read_derived(&self, key: &str) -> Option<Vec<u8>> {
        if !is_hex_key(key) {
            return None;
        }
        fs::read(self.derived_dir().join(key)).ok()
    }

    /// Stores a derived result under `key`, atomically (a reader sees the old bytes or the
    /// new ones, and after a crash the old ones or the whole new ones: the bytes are flushed
    /// before the rename).
    pub fn write_derived(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if !is_hex_key(key) {
            return Err(StoreError::io(
                "store a derived result under",
                Path::new(key),
                io::Error::new(io::ErrorKind::InvalidInput, "the key is not a hex digest"),
            ));
        }
        let dir = self.derived_dir();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        let tmp = self.tmp_dir().join(format!(
            "{key}.{}.{}.derived",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let dest = dir.join(key);
        let result = write_synced(&tmp, bytes)
            .map_err(|e| StoreError::write(&tmp, e))
            .and_then(|()| fs::rename(&tmp, &dest).map_err(|e| StoreError::io("move", &dest, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Where the entry for `digest` lives (whether or not it exists yet).
    pub fn entry_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.inner
            .objects
            .join(digest.algorithm.name())
            .join(&hex[..2])
            .join(hex)
    }

    /// Whether a verified entry for `digest` exists.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.entry_path(digest).is_file()
    }

    /// Marks an entry as used now (its mtime), which `gc` uses for least-recently-used eviction.
    pub fn touch(&self, digest: &Digest) {
        if let Ok(file) = File::open(self.entry_path(digest)) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// The entry's path if it exists, marking it used unless it was marked in the last hour
    /// (so a warm fetch of thousands of entries costs one `stat` each, not an open and a write).
    pub fn lookup(&self, digest: &Digest) -> Option<PathBuf> {
        self.lookup_sized(digest).map(|(path, _)| path)
    }

    /// [`Store::lookup`], also giving the entry's size from the same `stat`.
    pub fn lookup_sized(&self, digest: &Digest) -> Option<(PathBuf, u64)> {
        let path = self.entry_path(digest);
        let meta = fs::metadata(&path).ok().filter(|m| m.is_file())?;
        let recent = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < TOUCH_INTERVAL);
        if !recent {
            self.touch(digest);
        }
        Some((path, meta.len()))
    }

    /// Takes the per-digest lock, blocking until no other thread or process holds it.
    /// Whoever holds it is the only one downloading that digest.
    pub fn lock(&self, digest: &Digest) -> Result<DigestLock, StoreError> {
        let (file, path) = self.open_lock_file(digest)?;
        file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
        Ok(DigestLock { _file: file })
    }

    /// Takes the per-digest lock if nobody holds it, without blocking.
    pub fn try_lock(&self, digest: &Digest) -> Result<Option<DigestLock>, StoreError> {
        let (file, path) = self.open_lock_file(digest)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DigestLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e)),
        }
    }

    /// The lock file of a digest (created on first use).
    pub(crate) fn lock_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.inner
            .locks
            .join(digest.algorithm.name())
            .join(&hex[..2])
            .join(format!("{hex}.lock"))
    }

    fn open_lock_file(&self, digest: &Digest) -> Result<(File, PathBuf), StoreError> {
        let path = self.lock_path(digest);
        let dir = path.parent().expect("lock paths have a parent");
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create the lock directory", dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open the lock file", &path, e))?;
        Ok((file, path))
    }

    /// Starts writing a new entry that must hash to `expected` (and be `size` bytes, if known).
    pub fn begin(&self, expected: &Digest, size: Option<u64>) -> Result<PendingEntry, StoreError> {
        let (file, path) = self.create_locked_temp()?;
        Ok(PendingEntry {
            store: self.clone(),
            expected: expected.clone(),
            expected_size: size,
            path,
            file,
            hasher: Hasher::new(expected.algorithm),
            written: 0,
            overflow: 0,
            committed: false,
        })
    }

    /// Creates `tmp/<random>.init`, locks it, then renames it to `.part`: every `.part` file is
    /// locked before it has that name, so an unlocked `.part` file always belongs to a dead
    /// writer.
    fn create_locked_temp(&self) -> Result<(File, PathBuf), StoreError> {
        loop {
            let stem = format!("{:016x}", fastrand::u64(..));
            let init = self.inner.tmp.join(format!("{stem}.init"));
            let file = match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .open(&init)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io("create a temp file", &init, e)),
            };
            file.lock().map_err(|e| StoreError::io("lock", &init, e))?;
            let part = self.inner.tmp.join(format!("{stem}.part"));
            fs::rename(&init, &part).map_err(|e| StoreError::io("rename a temp file", &init, e))?;
            return Ok((file, part));
        }
    }

    /// Removes temp files whose writers are gone. Returns how many were removed.
    pub fn clean_stale_temps(&self) -> Result<usize, StoreError> {
        let dir = &self.inner.tmp;
        let entries = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if is_stale_temp(&path) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Links the entry for `digest` to `dest` if the store has it; `Ok(None)` when it does not.
    /// The warm path of `strata fetch`: one link(2) per file and no `stat`. Linking counts as a
    /// use for `gc` (link(2) updates the entry's ctime); a copy or an existing link is marked
    /// used with [`Store::lookup`].
    pub fn link_if_present(
        &self,
        digest: &Digest,
        dest: &Path,
    ) -> Result<Option<Placement>, StoreError> {
        let src = self.entry_path(digest);
        match fs::hard_link(&src, dest) {
            Ok(()) => return Ok(Some(Placement::Linked)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !src.is_file() => return Ok(None),
            Err(_) => {}
        }
        let placement = self.link_into(digest, dest)?;
        if placement != Placement::Linked {
            // No new link changed the entry's ctime: mark it used the usual way.
            self.lookup(digest);
        }
        Ok(Some(placement))
    }

    /// Places the entry for `digest` at `dest` atomically: a hard link where possible, a copy
    /// across filesystems. `dest`'s parent must exist. An existing file at `dest` is replaced.
    pub fn link_into(&self, digest: &Digest, dest: &Path) -> Result<Placement, StoreError> {
        let src = self.entry_path(digest);
        // The common case, a fresh output directory: one link(2), already atomic.
        match fs::hard_link(&src, dest) {
            Ok(()) => return Ok(Placement::Linked),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || link_not_possible(&e) => {}
            Err(e) => return Err(StoreError::io("link the store entry to", dest, e)),
        }
        let src_meta =
            fs::metadata(&src).map_err(|e| StoreError::io("read the store entry", &src, e))?;
        if let Ok(dest_meta) = fs::symlink_metadata(dest)
            && dest_meta.ino() == src_meta.ino()
            && dest_meta.dev() == src_meta.dev()
        {
            return Ok(Placement::AlreadyThere);
        }
        let tmp = sibling_temp_path(dest);
        let placement = match fs::hard_link(&src, &tmp) {
            Ok(()) => Placement::Linked,
            Err(e) if link_not_possible(&e) => {
                fs::copy(&src, &tmp).map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    StoreError::io("copy the store entry to", &tmp, e)
                })?;
                Placement::Copied
            }
            Err(e) => return Err(StoreError::io("link the store entry to", &tmp, e)),
        };
        fs::rename(&tmp, dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io("move into place", dest, e)
        })?;
        Ok(placement)
    }
}

/// Writes `bytes` to a new file at `path` and flushes them to the disk (so a rename that
/// follows never publishes a name over unwritten data).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Distinguishes the temp files of derived results written by one process.
static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A derived-result key: 16 to 128 lowercase hex digits (never a path).
fn is_hex_key(key: &str) -> bool {
    (16..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `path` is a temp file no live writer owns.
fn is_stale_temp(path: &Path) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    match ext {
        "part" => File::open(path)
            .map(|f| f.try_lock().is_ok())
            .unwrap_or(false),
        "init" | "derived" => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_INIT_AGE),
        _ => false,
    }
}

fn link_not_possible(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == libc_errno::EXDEV || code == libc_errno::EPERM || code == libc_errno::EMLINK
    )
}

/// The errno values the link fallback needs, spelled out to avoid a libc dependency.
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EXDEV: i32 = 18;
    pub const EMLINK: i32 = 31;
}

/// A temp name next to `dest`, hidden, unique, in the same directory (so rename is atomic).
pub(crate) fn sibling_temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.strata-{:08x}", fastrand::u32(..)))
}

/// Held while downloading a digest; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct DigestLock {
    _file: File,
}

/// An entry being written. Bytes are hashed as they arrive; [`PendingEntry::commit`] verifies
/// size and digest and renames the file into place. Dropped without commit, the temp file is
/// removed.
#[derive(Debug)]
pub struct PendingEntry {
    store: Store,
    expected: Digest,
    expected_size: Option<u64>,
    path: PathBuf,
    file: File,
    hasher: Hasher,
    written: u64,
    /// Bytes received past the locked size: hashed (so a mismatch can name the digest of
    /// what the server sent), never written.
    overflow: u64,
    committed: bool,
}

/// How far past its locked size a body is still hashed (not stored) so that the size
/// mismatch can name its digest; beyond this the download is cut off.
pub const OVERFLOW_HASH_LIMIT: u64 = 64 * 1024 * 1024;

impl PendingEntry {
    /// Appends bytes. Bytes past the locked size are hashed but never written, and the
    /// commit then fails with a size mismatch naming both digests; a body running more than
    /// [`OVERFLOW_HASH_LIMIT`] past it fails at once.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let room = self
            .expected_size
            .map_or(u64::MAX, |size| size.saturating_sub(self.written));
        let (kept, over) =
            bytes.split_at(usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len()));
        if !kept.is_empty() {
            self.file
                .write_all(kept)
                .map_err(|e| StoreError::write(&self.path, e))?;
            self.written += kept.len() as u64;
        }
        self.hasher.update(bytes);
        self.overflow += over.len() as u64;
        if self.overflow > OVERFLOW_HASH_LIMIT {
            return Err(self.size_mismatch(None));
        }
        Ok(())
    }

    /// Bytes received so far (those past the locked size included).
    pub fn written(&self) -> u64 {
        self.written + self.overflow
    }

    fn size_mismatch(&self, actual_digest: Option<Digest>) -> StoreError {
        StoreError::SizeMismatch {
            expected: self.expected_size.unwrap_or_default(),
            actual: self.written + self.overflow,
            expected_digest: self.expected.clone(),
            actual_digest,
        }
    }

    /// A second handle on the temp file, for writing parts at their offsets
    /// (`FileExt::write_all_at`) from several tasks at once. Nothing written through it is
    /// hashed or counted until [`PendingEntry::adopt_written`].
    pub fn part_writer(&self) -> Result<File, StoreError> {
        self.file
            .try_clone()
            .map_err(|e| StoreError::write(&self.path, e))
    }

    /// Takes the first `len` bytes of the temp file, written through [`PendingEntry::part_writer`]
    /// in any order, as the entry's content: they are read back and hashed from the start,
    /// so [`PendingEntry::commit`] verifies them like streamed bytes.
    pub fn adopt_written(&mut self, len: u64) -> Result<(), StoreError> {
        use std::io::{Read, Seek};
        let mut file = self.part_writer()?;
        file.seek(io::SeekFrom::Start(0))
            .map_err(|e| StoreError::write(&self.path, e))?;
        let mut hasher = Hasher::new(self.expected.algorithm);
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file
                .read(&mut buf[..want])
                .map_err(|e| StoreError::write(&self.path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        self.file
            .set_len(len - left)
            .map_err(|e| StoreError::write(&self.path, e))?;
        self.file
            .seek(io::SeekFrom::Start(len - left))
            .map_err(|e| StoreError::write(&self.path, e))?;
        self.hasher = hasher;
        self.written = len - left;
        self.overflow = 0;
        Ok(())
    }

    /// Discards what was written, to start the download over from byte 0.
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .map_err(|e| StoreError::write(&self.path, e))?;
        use std::io::Seek;
        self.file
            .seek(io::SeekFrom::Start(0))
            .map_err(|e| StoreError::write(&self.path, e))?;
        self.hasher = Hasher::new(self.expected.algorithm);
        self.written = 0;
        self.overflow = 0;
        Ok(())
    }

    /// Verifies size and digest, then renames the file into the store. On a mismatch nothing is
    /// kept.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let hasher = std::mem::replace(&mut self.hasher, Hasher::new(Algorithm::Sha256));
        let actual = hasher.finish();
        if self
            .expected_size
            .is_some_and(|size| self.written() != size)
        {
            return Err(self.size_mismatch(Some(actual)));
        }
        if actual != self.expected {
            return Err(StoreError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        // The data reaches the disk before the name does: after a crash an entry is either
        // absent or whole, never a verified name over unwritten blocks.
        self.file
            .sync_data()
            .map_err(|e| StoreError::write(&self.path, e))?;
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| StoreError::write(&self.path, e))?;
        let dest = self.store.entry_path(&self.expected);
        let parent = dest.parent().expect("entry paths have a parent");
        fs::create_dir_all(parent).map_err(|e| StoreError::io("create", parent, e))?;
        fs::rename(&self.path, &dest)
            .map_err(|e| StoreError::io("move into the store", &dest, e))?;
        self.committed = true;
        Ok(dest)
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Inserts bytes already in memory (used by tests and small generated entries).
pub fn insert_bytes(store: &Store, digest: &Digest, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    let mut entry = store.begin(digest, Some(bytes.len() as u64))?;
    entry.write(bytes)?;
    entry.commit()
}
