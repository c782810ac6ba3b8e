//! The FUSE filesystem: lookups, attributes and listings from memory; opens through the store.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BackingId, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request, SessionACL,
};
use strata_lock::Artifact;
use strata_store::{FetchError, Fetched, Fetcher, NoProgress, Source};
use strata_tree::{BOM_JSON, Node, NodeId, SbomOptions, Tree};

use crate::attr::{Attr, Owner, TTL, kind};
use crate::record::{ProfileEntry, Recorder};
use crate::stats::{Stats, Summary};

/// How the filesystem behaves (independent of how it is mounted).
#[derive(Debug, Default)]
pub struct FsOptions {
    /// Try FUSE passthrough (Linux ≥ 6.9 and CAP_SYS_ADMIN): reads of artifact files go from
    /// the kernel straight to the store file. Falls back to userspace reads when unavailable.
    pub passthrough: bool,
    /// Where to record the files opened (`--record`).
    pub recorder: Option<Recorder>,
    /// Set when the tree was built with [`Tree::build_without_bom`]: `bom.json` is then
    /// generated with these options when it is first opened (its size is unknown until
    /// then, like an artifact's without a lockfile size), not held in memory from the start.
    pub lazy_bom: Option<SbomOptions>,
    /// How many of the artifacts, at the end of the slice, are files strata made itself and
    /// put in the store (RPM repodata), not lockfile entries: they are left out of
    /// `bom.json`.
    pub made_artifacts: usize,
    /// How long an open waits for a download before it fails with EIO (`None`: as long as
    /// the download takes). The download goes on, for the store and later opens.
    pub open_timeout: Option<Duration>,
}

/// How the filesystem is mounted.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let users other than the mounting one (e.g. build containers in user namespaces) in.
    pub allow_other: bool,
    /// Threads reading FUSE requests. Uncached opens never hold one while downloading.
    pub threads: usize,
    /// The mount's source name, shown in `/proc/self/mountinfo` (see [`crate::mounts`]).
    pub fsname: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            threads: 4,
            fsname: crate::mounts::fsname(std::process::id()),
        }
    }
}

/// An open file handle.
enum Handle {
    /// A generated file, served from memory.
    Memory(Arc<[u8]>),
    /// A generated file, served from a scratch file with `pread`.
    Scratch(Arc<File>),
    /// A store file, read with `pread` (or by the kernel, with passthrough).
    File {
        file: File,
        _backing: Option<Arc<BackingId>>,
    },
}

/// State shared by the FUSE threads, the download tasks and the prefetcher.
struct Inner {
    tree: Tree,
    artifacts: Vec<Artifact>,
    fetcher: Fetcher,
    runtime: tokio::runtime::Handle,
    owner: Owner,
    total_bytes: u64,
    stats: Stats,
    recorder: Option<Recorder>,
    /// See [`FsOptions::open_timeout`].
    open_timeout: Option<Duration>,
    /// Per node: [`OPENED`] once an open succeeded (recorded and touched), [`FAILED`] once
    /// an open failed (recorded as failed).
    opened: Vec<AtomicU8>,
    /// Per artifact without a lockfile size: the store entry's size once seen
    /// ([`UNKNOWN`] until then), so that later lookups and opens need no `stat`.
    sizes: Vec<AtomicU64>,
    handles: RwLock<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    passthrough: AtomicBool,
    backing: Mutex<HashMap<u64, Weak<BackingId>>>,
    /// `bom.json` when generated on first open (see [`FsOptions::lazy_bom`]).
    bom: Option<LazyBom>,
    /// The slots of a running profile prefetch, widened when an open has to wait.
    boost: Mutex<Option<Boost>>,
}

/// Extra prefetch slots: an open that waits for a download means the prefetch is not far
/// enough ahead, so each such open lets one more profile download start at once, up to
/// `left` more in all.
pub(crate) struct Boost {
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    pub(crate) left: usize,
}

/// A generated file made on first use.
struct LazyBom {
    id: NodeId,
    options: SbomOptions,
    /// The lockfile artifacts: the first this many.
    artifacts: usize,
    /// Once made: an unlinked scratch file in the store holding it (a large SBOM is tens of
    /// MB: on disk, not in the daemon's memory), and its size.
    made: Mutex<Option<(Arc<File>, u64)>>,
    /// The size once made ([`UNKNOWN`] before), for `getattr` without the lock.
    size: AtomicU64,
}

impl LazyBom {
    /// The file, made on the first call (a failed attempt is retried by the next open).
    fn file(&self, artifacts: &[Artifact], store: &strata_store::Store) -> io::Result<Arc<File>> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((file, _)) = &*made {
            return Ok(file.clone());
        }
        let started = Instant::now();
        let mut file = store.scratch_file()?;
        strata_tree::write_bom_json(&artifacts[..self.artifacts], &self.options, &mut file)?;
        let size = file.metadata()?.len();
        tracing::info!(
            "generated {BOM_JSON} ({size} bytes) in {} ms",
            started.elapsed().as_millis()
        );
        let file = Arc::new(file);
        *made = Some((file.clone(), size));
        self.size.store(size, Ordering::Release);
        Ok(file)
    }

    /// The size, once made.
    fn size(&self) -> Option<u64> {
        let size = self.size.load(Ordering::Acquire);
        (size != UNKNOWN).then_some(size)
    }
}

/// The lazy filesystem over a [`Tree`] and a [`Fetcher`]. Mount it with [`Mounted::mount`].
pub struct LazyFs {
    inner: Arc<Inner>,
    want_passthrough: bool,
}

/// A cheap, clonable handle on a filesystem's state: statistics, path resolution, prefetch.
#[derive(Clone)]
pub struct LazyHandle {
    inner: Arc<Inner>,
}

impl LazyFs {
    /// Answers a read from `file` (a store entry or a scratch file) with `pread`.
    fn read_file(&self, file: &File, ino: INodeNo, offset: u64, size: u32, reply: ReplyData) {
        READ_BUF.with_borrow_mut(|buf| {
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            let buf = &mut buf[..size as usize];
            match pread_full(file, buf, offset) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => {
                    let path = self.inner.tree.path(NodeId(ino.0)).unwrap_or_default();
                    tracing::error!("reading {path} from the store failed: {e}");
                    reply.error(Errno::EIO);
                }
            }
        })
    }

    /// A filesystem serving `tree` (built from `artifacts`), downloading through `fetcher`
    /// on tasks of `runtime`.
    pub fn new(
        tree: Tree,
        artifacts: Vec<Artifact>,
        fetcher: Fetcher,
        runtime: tokio::runtime::Handle,
        options: FsOptions,
    ) -> LazyFs {
        let total_bytes = tree
            .iter()
            .filter_map(|e| tree.file_size(e.id, &artifacts))
            .sum();
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let opened = (0..=tree.len()).map(|_| AtomicU8::new(0)).collect();
        let sizes = (0..artifacts.len())
            .map(|_| AtomicU64::new(UNKNOWN))
            .collect();
        let options_made = options.made_artifacts;
        let bom = options.lazy_bom.and_then(|options| {
            let id = tree.resolve(BOM_JSON)?;
            Some(LazyBom {
                id,
                options,
                artifacts: artifacts.len().saturating_sub(options_made),
                made: Mutex::new(None),
                size: AtomicU64::new(UNKNOWN),
            })
        });
        let inner = Inner {
            bom,
            boost: Mutex::new(None),
            tree,
            artifacts,
            fetcher,
            runtime,
            owner: Owner {
                uid,
                gid,
                time: SystemTime::now(),
            },
            total_bytes,
            stats: Stats::new(),
            recorder: options.recorder,
            open_timeout: options.open_timeout,
            opened,
            sizes,
            handles: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            passthrough: AtomicBool::new(false),
            backing: Mutex::new(HashMap::new()),
        };
        LazyFs {
            inner: Arc::new(inner),
            want_passthrough: options.passthrough,
        }
    }

    /// A handle on this filesystem's state that outlives the mount.
    pub fn handle(&self) -> LazyHandle {
        LazyHandle {
            inner: self.inner.clone(),
        }
    }
}

impl LazyHandle {
    /// The counters of this mount.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// A snapshot of the counters.
    pub fn summary(&self) -> Summary {
        self.inner.stats.summary()
    }

    /// Whether FUSE passthrough is in use (negotiated with the kernel and not yet failed).
    pub fn passthrough(&self) -> bool {
        self.inner.passthrough.load(Ordering::Relaxed)
    }

    /// The tree being served.
    pub fn tree(&self) -> &Tree {
        &self.inner.tree
    }

    /// The artifacts the tree was built from.
    pub fn artifacts(&self) -> &[Artifact] {
        &self.inner.artifacts
    }

    /// Sets (or, with `None`, clears) the slots that waiting opens widen.
    pub(crate) fn set_boost(&self, boost: Option<Boost>) {
        *self.inner.boost.lock().unwrap_or_else(|e| e.into_inner()) = boost;
    }
}

impl Inner {
    fn attr_of(&self, id: NodeId) -> Option<Attr> {
        Some(match self.tree.node(id)? {
            Node::Dir => {
                let subdirs = self.tree.children(id)?.filter(|e| e.node == &Node::Dir);
                self.owner.dir(id, subdirs.count())
            }
            Node::Generated(_) if self.bom.as_ref().is_some_and(|b| b.id == id) => {
                let bom = self.bom.as_ref().expect("checked");
                self.owner.file(id, bom.size())
            }
            Node::Generated(bytes) => self.owner.file(id, Some(bytes.len() as u64)),
            Node::Artifact(i) => self.owner.file(id, self.artifact_size(*i)),
        })
    }

    /// The lockfile's size, else the store entry's once seen (remembered; the first time a
    /// local stat), else unknown.
    fn artifact_size(&self, index: usize) -> Option<u64> {
        let artifact = self.artifacts.get(index)?;
        if artifact.size.is_some() {
            return artifact.size;
        }
        let known = self.sizes[index].load(Ordering::Relaxed);
        if known != UNKNOWN {
            return Some(known);
        }
        let path = self.fetcher.store().entry_path(artifact.store_digest());
        let size = std::fs::metadata(path).ok()?.len();
        self.sizes[index].store(size, Ordering::Relaxed);
        Some(size)
    }

    fn insert_handle(&self, handle: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.write_handles().insert(fh, Arc::new(handle));
        FileHandle(fh)
    }

    fn handle(&self, fh: FileHandle) -> Option<Arc<Handle>> {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        handles.get(&fh.0).cloned()
    }

    fn write_handles(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<Handle>>> {
        self.handles.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens an artifact: at once when cached, else on a download task.
    fn open_artifact(self: &Arc<Self>, id: NodeId, index: usize, reply: ReplyOpen) {
        let asked = Asked {
            t_ms: self.stats.elapsed().as_millis() as u64,
            at: Instant::now(),
        };
        let artifact = &self.artifacts[index];
        let store = self.fetcher.store();
        if let Ok(meta) = std::fs::metadata(store.entry_path(artifact.store_digest()))
            && meta.is_file()
        {
            let fetched = Fetched {
                path: store.entry_path(artifact.store_digest()),
                source: Source::Cache,
                downloaded: 0,
                size: meta.len(),
            };
            self.finish_open(id, index, Ok(fetched), asked, reply);
            return;
        }
        let inner = self.clone();
        self.boost_prefetch();
        self.runtime.spawn(async move {
            let result = inner.wait_for_download(index).await;
            inner.finish_open(id, index, result, asked, reply);
        });
    }

    /// Downloads an artifact on its own task and waits for it, at most the open timeout;
    /// a download that outlasts the wait goes on.
    async fn wait_for_download(self: &Arc<Self>, index: usize) -> Result<Fetched, OpenFailure> {
        let inner = self.clone();
        self.stats.demand_started();
        let download = self.runtime.spawn(async move {
            let result = inner
                .fetcher
                .ensure(&inner.artifacts[index], &NoProgress)
                .await;
            inner.stats.demand_finished();
            if let Ok(fetched) = &result {
                inner.stats.fetched(fetched);
            }
            result
        });
        let joined =
            match self.open_timeout {
                Some(limit) => tokio::time::timeout(limit, download).await.map_err(|_| {
                    OpenFailure::TimedOut {
                        artifact: strata_store::label(&self.artifacts[index]),
                        after: limit,
                    }
                })?,
                None => download.await,
            };
        joined
            .expect("the download task does not panic")
            .map_err(OpenFailure::Fetch)
    }

    /// Lets a running profile prefetch start one more download (see [`Boost`]).
    fn boost_prefetch(&self) {
        let mut boost = self.boost.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = boost.as_mut().filter(|b| b.left > 0) {
            b.left -= 1;
            b.slots.add_permits(1);
            tracing::debug!("an open waits: one more prefetch slot ({} left)", b.left);
        }
    }

    /// Sets `flag` ([`OPENED`] or [`FAILED`]) on a node; true the first time.
    fn first(&self, id: NodeId, flag: u8) -> bool {
        self.opened
            .get(id.0 as usize)
            .is_some_and(|f| f.fetch_or(flag, Ordering::Relaxed) & flag == 0)
    }

    /// Answers an open once the store entry is there (or failed to be): records the first
    /// successful open of the file, and its first failed open, in the profile.
    fn finish_open(
        &self,
        id: NodeId,
        index: usize,
        result: Result<Fetched, OpenFailure>,
        asked: Asked,
        reply: ReplyOpen,
    ) {
        match self.open_fetched(id, index, result) {
            Some((file, fetched)) => self.opened(id, index, file, &fetched, asked, reply),
            None => {
                self.stats.failed();
                if self.first(id, FAILED) {
                    self.record(id, None, "failed", asked);
                }
                reply.error(Errno::EIO);
            }
        }
    }

    /// The open store entry, or `None` (logged) when the download or the open failed.
    fn open_fetched(
        &self,
        id: NodeId,
        index: usize,
        result: Result<Fetched, OpenFailure>,
    ) -> Option<(File, Fetched)> {
        let artifact = &self.artifacts[index];
        let fetched = match result {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(
                    path = %self.tree.path(id).unwrap_or_default(),
                    urls = %artifact.urls.iter().map(|u| strata_store::redact(u)).collect::<Vec<_>>().join(" "),
                    "open failed with EIO: {e}"
                );
                return None;
            }
        };
        match File::open(&fetched.path) {
            Ok(file) => Some((file, fetched)),
            Err(e) => {
                tracing::error!(artifact = %strata_store::label(artifact),
                    "could not open the store entry {}: {e}", fetched.path.display());
                None
            }
        }
    }

    /// Answers a successful open with `file`, the artifact's store entry.
    fn opened(
        &self,
        id: NodeId,
        index: usize,
        file: File,
        fetched: &Fetched,
        asked: Asked,
        reply: ReplyOpen,
    ) {
        let artifact = &self.artifacts[index];
        let waited = (fetched.source != Source::Cache).then(|| asked.at.elapsed());
        self.stats.opened(waited);
        // The store entry is complete and immutable: its size is final. Remember it, so
        // that the kernel's refresh of the (uncached) attributes gets it and caches it.
        let size = artifact
            .size
            .or_else(|| file.metadata().ok().map(|m| m.len()));
        if artifact.size.is_none()
            && let Some(n) = size
        {
            self.sizes[index].store(n, Ordering::Relaxed);
        }
        if self.first(id, OPENED) {
            if fetched.source == Source::Cache {
                self.fetcher.store().touch(artifact.store_digest());
            }
            let source = match fetched.source {
                Source::Cache => "cache",
                Source::Shared => "shared",
                Source::Download => "download",
            };
            self.record(id, size, source, asked);
        }
        self.reply_file(id, file, size.is_none(), reply);
    }

    /// Writes a profile entry, when recording.
    fn record(&self, id: NodeId, size: Option<u64>, source: &str, asked: Asked) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        recorder.record(&ProfileEntry {
            path: self.tree.path(id).unwrap_or_default(),
            t_ms: asked.t_ms,
            wait_ms: asked.at.elapsed().as_millis() as u64,
            size,
            source: source.into(),
        });
    }

    fn reply_file(&self, id: NodeId, file: File, unknown_size: bool, reply: ReplyOpen) {
        if self.passthrough.load(Ordering::Relaxed) {
            match self.backing_for(id, &file, &reply) {
                Ok(backing) => {
                    let fh = self.insert_handle(Handle::File {
                        file,
                        _backing: Some(backing.clone()),
                    });
                    return reply.opened_passthrough(fh, FopenFlags::empty(), &backing);
                }
                Err(e) => {
                    if self.passthrough.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            "FUSE passthrough is not available ({e}); reads go through strata"
                        );
                    }
                }
            }
        }
        // With the size known, reads go through the page cache even where the kernel still
        // holds the size 0 of an earlier lookup: a cached read past its idea of EOF refreshes
        // the attributes (TTL zero until now) and gets the real size.
        let flags = if unknown_size {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::FOPEN_KEEP_CACHE
        };
        let fh = self.insert_handle(Handle::File {
            file,
            _backing: None,
        });
        reply.opened(fh, flags);
    }

    /// The passthrough backing id of a node, shared by all its open handles.
    fn backing_for(
        &self,
        id: NodeId,
        file: &File,
        reply: &ReplyOpen,
    ) -> io::Result<Arc<BackingId>> {
        let mut map = self.backing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get(&id.0).and_then(Weak::upgrade) {
            return Ok(b);
        }
        let backing = Arc::new(reply.open_backing(file)?);
        map.insert(id.0, Arc::downgrade(&backing));
        Ok(backing)
    }
}

/// `sizes` value of an artifact whose size is not known yet.
const UNKNOWN: u64 = u64::MAX;

/// `opened` flag: an open of the node succeeded.
const OPENED: u8 = 1;
/// `opened` flag: an open of the node failed.
const FAILED: u8 = 2;

/// Why an open that waited for a download fails.
#[derive(Debug, thiserror::Error)]
enum OpenFailure {
    /// The download failed (after its retries).
    #[error(transparent)]
    Fetch(FetchError),
    /// The download took longer than the open may wait.
    #[error(
        "{artifact}: not downloaded within the open timeout of {}s (the download goes on for the store and later opens)",
        after.as_secs_f64()
    )]
    TimedOut {
        /// The artifact (`name version (file name)`).
        artifact: String,
        /// The open timeout.
        after: Duration,
    },
}

/// When an open was asked for: on the mount's clock (for the profile), and as an instant
/// (for how long it waited).
#[derive(Debug, Clone, Copy)]
struct Asked {
    t_ms: u64,
    at: Instant,
}

std::thread_local! {
    /// Each FUSE thread's read buffer, reused from read to read.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads up to `buf.len()` bytes at `offset`, short only at end of file.
fn pread_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Filesystem for LazyFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS;
        let _ = config.add_capabilities(wanted & config.capabilities());
        if self.want_passthrough {
            let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            self.inner.passthrough.store(ok, Ordering::Relaxed);
            if !ok {
                tracing::info!(
                    "the kernel does not offer FUSE passthrough; reads go through strata"
                );
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = name
            .to_str()
            .and_then(|n| self.inner.tree.lookup(NodeId(parent.0), n))
            .and_then(|id| self.inner.attr_of(id));
        match found {
            Some(a) => reply.entry_with_ttls(&a.ttl, &TTL, &a.attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inner.attr_of(NodeId(ino.0)) {
            Some(a) => reply.attr(&a.ttl, &a.attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let id = NodeId(ino.0);
        match self.inner.tree.node(id) {
            None => reply.error(Errno::ENOENT),
            Some(Node::Dir) => reply.error(Errno::EISDIR),
            Some(Node::Generated(bytes)) => {
                let handle = match &self.inner.bom {
                    Some(bom) if bom.id == id => {
                        match bom.file(&self.inner.artifacts, self.inner.fetcher.store()) {
                            Ok(file) => Handle::Scratch(file),
                            Err(e) => {
                                tracing::error!("generating {BOM_JSON} failed: {e}");
                                return reply.error(Errno::EIO);
                            }
                        }
                    }
                    _ => Handle::Memory(bytes.clone()),
                };
                let fh = self.inner.insert_handle(handle);
                reply.opened(fh, FopenFlags::FOPEN_KEEP_CACHE);
            }
            Some(Node::Artifact(i)) => self.inner.open_artifact(id, *i, reply),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(handle) = self.inner.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        self.inner.stats.read();
        match &*handle {
            Handle::Memory(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Handle::File { file, .. } => self.read_file(file, ino, offset, size, reply),
            Handle::Scratch(file) => self.read_file(file, ino, offset, size, reply),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.inner.write_handles().remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let id = NodeId(ino.0);
        let tree = &self.inner.tree;
        let (Some(children), Some(parent)) = (tree.children(id), tree.parent(id)) else {
            return reply.error(Errno::ENOTDIR);
        };
        for i in offset as usize..2 + children.len() {
            let next = i as u64 + 1;
            let full = match i {
                0 => reply.add(ino, next, fuser::FileType::Directory, "."),
                1 => reply.add(INodeNo(parent.0), next, fuser::FileType::Directory, ".."),
                n => {
                    let e = children.get(n - 2).expect("index within the directory");
                    reply.add(INodeNo(e.id.0), next, kind(e.node), e.name)
                }
            };
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let id = NodeId(ino.0);
        let inner = &self.inner;
        let (Some(children), Some(parent)) = (inner.tree.children(id), inner.tree.parent(id))
        else {
            return reply.error(Errno::ENOTDIR);
        };
        for i in offset as usize..2 + children.len() {
            let (node, name) = match i {
                0 => (id, "."),
                1 => (parent, ".."),
                n => {
                    let e = children.get(n - 2).expect("index within the directory");
                    (e.id, e.name)
                }
            };
            let Some(a) = inner.attr_of(node) else {
                continue;
            };
            if reply.add(
                INodeNo(node.0),
                i as u64 + 1,
                name,
                &a.ttl,
                &a.attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = self.inner.total_bytes.div_ceil(4096);
        let files = self.inner.tree.len() as u64;
        reply.statfs(blocks, 0, 0, files, 0, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if self.inner.tree.node(NodeId(ino.0)).is_none() {
            reply.error(Errno::ENOENT)
        } else if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS)
        } else {
            reply.ok()
        }
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }
}

/// Unmounts a mount from another thread (e.g. a signal handler task).
#[derive(Debug, Clone)]
pub struct Unmounter {
    mountpoint: PathBuf,
}

impl Unmounter {
    /// Unmounts; a busy mount is detached lazily (it goes once the last user closes it).
    pub fn unmount(&self) -> io::Result<()> {
        crate::mounts::unmount(&self.mountpoint)
    }
}

/// A mounted filesystem whose kernel handshake is done: accesses to the mountpoint are
/// served as soon as [`Mounted::run`] is called (until then they wait, they do not fail).
pub struct Mounted {
    session: fuser::Session<LazyFs>,
    handle: LazyHandle,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Mounts `fs` at `mountpoint`.
    pub fn mount(fs: LazyFs, mountpoint: &Path, options: &MountOptions) -> io::Result<Mounted> {
        let handle = fs.handle();
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName(options.fsname.clone()),
            MountOption::Subtype("strata".into()),
            MountOption::RO,
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoAtime,
        ];
        config.acl = if options.allow_other {
            SessionACL::All
        } else {
            SessionACL::Owner
        };
        config.n_threads = Some(options.threads.max(1));
        config.clone_fd = true;
        let session = fuser::Session::new(fs, mountpoint, &config)?;
        handle.stats().start_clock();
        Ok(Mounted {
            session,
            handle,
            mountpoint: crate::mounts::canonical(mountpoint)?,
        })
    }

    /// A handle on the filesystem's state.
    pub fn handle(&self) -> LazyHandle {
        self.handle.clone()
    }

    /// Something that unmounts this mount from another thread.
    pub fn unmounter(&self) -> Unmounter {
        Unmounter {
            mountpoint: self.mountpoint.clone(),
        }
    }

    /// Serves requests until the filesystem is unmounted, then returns what it did.
    pub fn run(self) -> io::Result<Summary> {
        let handle = self.handle;
        // fuser logs (through `log`) a warning when it finds the mount already gone at the
        // end, which is the normal end after `strata umount`; keep its log to errors unless
        // debugging.
        if !tracing::enabled!(tracing::Level::DEBUG) {
            log::set_max_level(log::LevelFilter::Error);
        }
        self.session.run()?;
        Ok(handle.summary())
    }
}
