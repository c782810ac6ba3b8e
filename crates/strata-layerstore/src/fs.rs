//! The FUSE filesystem containers-storage reads as an additional layer store (`:ref` layout):
//!
//! ```text
//! <mount>/<base64(image ref)>/<layer digest>/diff/…   the layer's files (overlay lower dir)
//!                                           /info     digests and compression (JSON)
//!                                           /blob     the layer blob as the registry has it
//! <mount>/.strata-layer-store.json                    what the store has done (not listed)
//! ```
//!
//! Nothing is listed at the top two levels: every name is resolved when looked up. A layer
//! resolves (its image's manifest and config, then its TOC, by range request) at the first
//! lookup of `diff`, `info` or `blob`; a layer that is not zstd:chunked, or an image that
//! cannot be read, answers ENOENT, and containers-storage then pulls that layer the usual
//! way. A file's content is fetched (its compressed range), decompressed and verified against
//! its TOC digest when the file is first opened, into the shared content-addressed store.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
    SessionACL,
};
use strata_store::Store;

use crate::image::{self, Image, ImageRef, LayerDescriptor};
use crate::stats::{Stats, Summary};
use crate::tree::{FileContent, Kind, LayerTree, Node};

/// The file at the root that reports [`Summary`] as JSON (looked up by name, not listed).
pub const STATS_FILE: &str = ".strata-layer-store.json";
/// Layers, files and attributes never change for the life of the mount.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How much of a blob one range request asks for when the whole blob is read.
const BLOB_RANGE: u64 = 16 * 1024 * 1024;
const ROOT: u64 = 1;
const STATS_INO: u64 = 2;
/// The xattrs overlayfs reads to find an opaque directory (as root, then with `userxattr`).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// How the store reaches registries.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Registries (`host[:port]`) to reach over plain HTTP (loopback ones always are).
    pub insecure_registries: Vec<String>,
}

/// The layer store's state, shared by the FUSE worker threads.
pub struct LayerStore {
    store: Store,
    options: StoreOptions,
    state: RwLock<State>,
    images: Mutex<HashMap<String, Arc<ImageSlot>>>,
    stats: Arc<Stats>,
    mounted_at: SystemTime,
}

struct State {
    next_ino: u64,
    specials: HashMap<u64, Special>,
    names: HashMap<(u64, String), u64>,
    /// Each resolved layer's tree occupies the inodes `base..base + tree.len()`.
    trees: BTreeMap<u64, Arc<Layer>>,
}

enum Special {
    RefDir(Arc<ImageSlot>),
    LayerDir(Arc<LayerSlot>),
    Info(Arc<Layer>),
    Blob(Arc<Layer>),
    Stats,
}

/// An image reference and, once resolved, its manifest and config.
struct ImageSlot {
    text: String,
    reference: ImageRef,
    image: OnceLock<Result<Arc<Image>, String>>,
}

/// A layer directory and, once resolved, the layer.
struct LayerSlot {
    ino: u64,
    image: Arc<ImageSlot>,
    digest: String,
    layer: OnceLock<Result<Arc<Layer>, String>>,
}

/// A resolved layer: its descriptor, tree and inodes.
struct Layer {
    dir_ino: u64,
    base: u64,
    info_ino: u64,
    blob_ino: u64,
    descriptor: LayerDescriptor,
    tree: LayerTree,
    info: Vec<u8>,
    image: Arc<Image>,
}

/// `(ino, kind, name)` of a directory entry.
type DirEntry = (u64, FileType, String);

enum Handle {
    Memory(Vec<u8>),
    File(File),
}

/// A node the kernel asked about.
enum Found<'a> {
    Root,
    Special(&'a Special),
    Tree(Arc<Layer>, usize),
}

impl LayerStore {
    /// A store that keeps fetched content in `store`.
    pub fn new(store: Store, options: StoreOptions) -> LayerStore {
        let mut specials = HashMap::new();
        specials.insert(STATS_INO, Special::Stats);
        LayerStore {
            store,
            options,
            state: RwLock::new(State {
                next_ino: STATS_INO + 1,
                specials,
                names: HashMap::new(),
                trees: BTreeMap::new(),
            }),
            images: Mutex::new(HashMap::new()),
            stats: Arc::new(Stats::default()),
            mounted_at: SystemTime::now(),
        }
    }

    /// The counters, shared (they stay readable after the filesystem is unmounted).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn with_found<T>(&self, ino: u64, f: impl FnOnce(Option<Found<'_>>) -> T) -> T {
        if ino == ROOT {
            return f(Some(Found::Root));
        }
        let state = self.read_state();
        if let Some(special) = state.specials.get(&ino) {
            return f(Some(Found::Special(special)));
        }
        let tree = state
            .trees
            .range(..=ino)
            .next_back()
            .filter(|(base, layer)| ino - **base < layer.tree.len() as u64)
            .map(|(base, layer)| Found::Tree(layer.clone(), (ino - base) as usize));
        f(tree)
    }

    /// The inode of `name` under `parent`, made by `make` the first time.
    fn named(&self, parent: u64, name: &str, make: impl FnOnce(u64) -> Special) -> u64 {
        let mut state = self.write_state();
        if let Some(ino) = state.names.get(&(parent, name.to_string())) {
            return *ino;
        }
        let ino = state.next_ino;
        state.next_ino += 1;
        state.specials.insert(ino, make(ino));
        state.names.insert((parent, name.to_string()), ino);
        ino
    }

    fn image_slot(&self, text: &str, reference: ImageRef) -> Arc<ImageSlot> {
        let mut images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        images
            .entry(text.to_string())
            .or_insert_with(|| {
                Arc::new(ImageSlot {
                    text: text.to_string(),
                    reference,
                    image: OnceLock::new(),
                })
            })
            .clone()
    }

    fn lookup_root(&self, name: &str) -> Option<u64> {
        if name == STATS_FILE {
            return Some(STATS_INO);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(name)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let reference = match ImageRef::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("{name}: not an image reference: {e}");
                return None;
            }
        };
        let slot = self.image_slot(&text, reference);
        Some(self.named(ROOT, name, |_| Special::RefDir(slot)))
    }

    fn lookup_layer_dir(&self, parent: u64, image: &Arc<ImageSlot>, name: &str) -> Option<u64> {
        let hex = name.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.named(parent, name, |ino| {
            Special::LayerDir(Arc::new(LayerSlot {
                ino,
                image: image.clone(),
                digest: name.to_string(),
                layer: OnceLock::new(),
            }))
        }))
    }

    /// Resolves a layer once (every later lookup gets the same answer).
    fn layer(&self, slot: &LayerSlot) -> Result<Arc<Layer>, String> {
        slot.layer
            .get_or_init(|| {
                let result = self.resolve_layer(slot);
                match &result {
                    Ok(layer) => {
                        self.stats.layer_served(layer.tree.content_bytes());
                        tracing::info!(
                            "{} {}: {} entries, served lazily",
                            slot.image.text,
                            slot.digest,
                            layer.tree.len()
                        );
                    }
                    Err(e) => {
                        self.stats.layer_refused();
                        tracing::info!(
                            "{} {}: not served ({e}); containers-storage pulls it",
                            slot.image.text,
                            slot.digest
                        );
                    }
                }
                result
            })
            .clone()
    }

    fn image(&self, slot: &ImageSlot) -> Result<Arc<Image>, String> {
        slot.image
            .get_or_init(|| {
                let insecure = self
                    .options
                    .insecure_registries
                    .contains(&slot.reference.repo.host);
                image::resolve(&slot.reference, insecure)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    fn resolve_layer(&self, slot: &LayerSlot) -> Result<Arc<Layer>, String> {
        let image = self.image(&slot.image)?;
        let descriptor = image::find_layer(&image.manifest, &image.diff_ids, &slot.digest)
            .map_err(|e| e.to_string())?;
        let tree = image::load_tree(&image.registry, &descriptor).map_err(|e| e.to_string())?;
        self.stats.toc_fetched();
        let info = image::info_json(&descriptor);
        let mut state = self.write_state();
        let base = state.next_ino;
        state.next_ino += tree.len() as u64 + 2;
        let layer = Arc::new(Layer {
            dir_ino: slot.ino,
            base,
            info_ino: base + tree.len() as u64,
            blob_ino: base + tree.len() as u64 + 1,
            descriptor,
            tree,
            info,
            image,
        });
        state.trees.insert(base, layer.clone());
        state
            .specials
            .insert(layer.info_ino, Special::Info(layer.clone()));
        state
            .specials
            .insert(layer.blob_ino, Special::Blob(layer.clone()));
        Ok(layer)
    }

    fn lookup_in(&self, parent: u64, name: &str) -> Option<FileAttr> {
        enum Next {
            Root,
            Layers(Arc<ImageSlot>),
            Layer(Arc<LayerSlot>),
            Tree(Arc<Layer>, usize),
        }
        let next = self.with_found(parent, |found| match found? {
            Found::Root => Some(Next::Root),
            Found::Special(Special::RefDir(image)) => Some(Next::Layers(image.clone())),
            Found::Special(Special::LayerDir(slot)) => Some(Next::Layer(slot.clone())),
            Found::Special(_) => None,
            Found::Tree(layer, index) => Some(Next::Tree(layer, index)),
        })?;
        let ino = match next {
            Next::Root => self.lookup_root(name)?,
            Next::Layers(image) => self.lookup_layer_dir(parent, &image, name)?,
            Next::Layer(slot) => {
                let layer = match name {
                    "diff" | "info" | "blob" => self.layer(&slot).ok()?,
                    _ => return None,
                };
                match name {
                    "diff" => layer.base,
                    "info" => layer.info_ino,
                    _ => layer.blob_ino,
                }
            }
            Next::Tree(layer, index) => layer.base + layer.tree.lookup(index, name)? as u64,
        };
        self.attr(ino)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        self.with_found(ino, |found| {
            Some(match found? {
                Found::Root => self.plain(ino, FileType::Directory, 0o555, 0),
                Found::Special(Special::RefDir(_) | Special::LayerDir(_)) => {
                    self.plain(ino, FileType::Directory, 0o555, 0)
                }
                Found::Special(Special::Info(layer)) => {
                    self.plain(ino, FileType::RegularFile, 0o444, layer.info.len() as u64)
                }
                Found::Special(Special::Blob(layer)) => {
                    self.plain(ino, FileType::RegularFile, 0o444, layer.descriptor.size)
                }
                Found::Special(Special::Stats) => {
                    // Its size is not known before it is generated: report 0 and let reads
                    // go to the end (direct I/O).
                    self.plain(ino, FileType::RegularFile, 0o444, 0)
                }
                Found::Tree(layer, index) => tree_attr(&layer, index)?,
            })
        })
    }

    fn plain(&self, ino: u64, kind: FileType, perm: u16, size: u64) -> FileAttr {
        attr_with(ino, kind, perm, size, self.mounted_at)
    }

    /// The store entry holding a file's content, fetched and verified if absent.
    fn content(&self, layer: &Layer, content: &FileContent) -> Result<PathBuf, String> {
        let digest: strata_lock::Digest = content.digest.as_deref().unwrap_or_default().parse()?;
        if let Some(path) = self.store.lookup(&digest) {
            self.stats.cache_hit();
            return Ok(path);
        }
        let _lock = self.store.lock(&digest).map_err(|e| e.to_string())?;
        if let Some(path) = self.store.lookup(&digest) {
            self.stats.cache_hit();
            return Ok(path);
        }
        let (start, end) = content.range;
        // Streamed: the response is decompressed into the store entry as it arrives, so a
        // large file costs a buffer's worth of memory, not its size.
        let compressed = layer
            .image
            .registry
            .open_blob_range(&layer.descriptor.digest, start, end - start)
            .map_err(|e| e.to_string())?;
        let mut entry = self
            .store
            .begin(&digest, Some(content.size))
            .map_err(|e| e.to_string())?;
        let mut decoder =
            zstd::stream::read::Decoder::new(compressed).map_err(|e| format!("zstd: {e}"))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            // The registry's read errors carry its URL and cause; zstd's its own message.
            let n = decoder
                .read(&mut buf)
                .map_err(|e| format!("reading and decompressing the file's range: {e}"))?;
            if n == 0 {
                break;
            }
            entry.write(&buf[..n]).map_err(|e| e.to_string())?;
        }
        let path = entry.commit().map_err(|e| e.to_string())?;
        self.stats.file_fetched(end - start);
        Ok(path)
    }

    /// The store entry holding the whole layer blob, fetched in ranges and verified if absent.
    fn blob(&self, layer: &Layer) -> Result<PathBuf, String> {
        let digest: strata_lock::Digest = layer.descriptor.digest.parse()?;
        let _lock = self.store.lock(&digest).map_err(|e| e.to_string())?;
        if let Some(path) = self.store.lookup(&digest) {
            return Ok(path);
        }
        let size = layer.descriptor.size;
        let mut entry = self
            .store
            .begin(&digest, Some(size))
            .map_err(|e| e.to_string())?;
        let mut offset = 0;
        while offset < size {
            let length = BLOB_RANGE.min(size - offset);
            let bytes = layer
                .image
                .registry
                .get_blob_range(&layer.descriptor.digest, offset, length)
                .map_err(|e| e.to_string())?;
            entry.write(&bytes).map_err(|e| e.to_string())?;
            offset += length;
        }
        let path = entry.commit().map_err(|e| e.to_string())?;
        self.stats.blob_fetched(size);
        Ok(path)
    }

    fn open_node(&self, ino: u64) -> Result<Handle, Errno> {
        enum What {
            Bytes(Vec<u8>),
            Content(Arc<Layer>, FileContent),
            Blob(Arc<Layer>),
        }
        let what = self.with_found(ino, |found| match found {
            None => Err(Errno::ENOENT),
            Some(Found::Root) => Err(Errno::EISDIR),
            Some(Found::Special(Special::Info(layer))) => Ok(What::Bytes(layer.info.clone())),
            Some(Found::Special(Special::Blob(layer))) => Ok(What::Blob(layer.clone())),
            Some(Found::Special(Special::Stats)) => Ok(What::Bytes(self.stats.json())),
            Some(Found::Special(_)) => Err(Errno::EISDIR),
            Some(Found::Tree(layer, index)) => match &layer.tree.node(index).map(|n| &n.kind) {
                Some(Kind::File(content)) if content.size == 0 => Ok(What::Bytes(Vec::new())),
                Some(Kind::File(content)) => Ok(What::Content(layer.clone(), content.clone())),
                Some(Kind::Dir(_)) => Err(Errno::EISDIR),
                _ => Err(Errno::EACCES),
            },
        })?;
        let path = match what {
            What::Bytes(bytes) => return Ok(Handle::Memory(bytes)),
            What::Content(layer, content) => self.content(&layer, &content).map_err(|e| {
                self.stats.failed();
                tracing::error!(
                    "{} {}: fetching a file's content failed: {e}",
                    layer.image.registry.repo(),
                    layer.descriptor.digest
                );
                Errno::EIO
            })?,
            What::Blob(layer) => self.blob(&layer).map_err(|e| {
                self.stats.failed();
                tracing::error!("{}: fetching the blob failed: {e}", layer.descriptor.digest);
                Errno::EIO
            })?,
        };
        File::open(&path).map(Handle::File).map_err(|e| {
            tracing::error!("opening {}: {e}", path.display());
            Errno::EIO
        })
    }

    fn xattrs(&self, ino: u64) -> Vec<(String, Vec<u8>)> {
        self.with_found(ino, |found| match found {
            Some(Found::Tree(layer, index)) => layer
                .tree
                .node(index)
                .map(|node| {
                    let opaque = node
                        .opaque
                        .then(|| OPAQUE_XATTRS.map(|k| (k.to_string(), b"y".to_vec())));
                    opaque
                        .into_iter()
                        .flatten()
                        .chain(node.xattrs.iter().cloned())
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    /// A directory's parent and its entries after `.` and `..`.
    fn entries(&self, ino: u64) -> Option<(u64, Vec<DirEntry>)> {
        self.with_found(ino, |found| match found? {
            Found::Root => Some((ROOT, Vec::new())),
            Found::Special(Special::RefDir(_)) => Some((ROOT, Vec::new())),
            Found::Special(Special::LayerDir(slot)) => {
                let listed = match slot.layer.get() {
                    Some(Ok(layer)) => vec![
                        (layer.base, FileType::Directory, "diff".to_string()),
                        (layer.info_ino, FileType::RegularFile, "info".to_string()),
                        (layer.blob_ino, FileType::RegularFile, "blob".to_string()),
                    ],
                    _ => Vec::new(),
                };
                Some((ROOT, listed))
            }
            Found::Special(_) => None,
            Found::Tree(layer, index) => {
                let node = layer.tree.node(index)?;
                let Kind::Dir(children) = &node.kind else {
                    return None;
                };
                let parent = if index == 0 {
                    layer.dir_ino
                } else {
                    layer.base + node.parent as u64
                };
                let listed = children
                    .iter()
                    .filter_map(|(name, child)| {
                        let kind = file_type(layer.tree.node(*child)?);
                        Some((layer.base + *child as u64, kind, name.clone()))
                    })
                    .collect();
                Some((parent, listed))
            }
        })
    }
}

fn attr_with(ino: u64, kind: FileType, perm: u16, size: u64, time: SystemTime) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

fn file_type(node: &Node) -> FileType {
    match node.kind {
        Kind::Dir(_) => FileType::Directory,
        Kind::File(_) => FileType::RegularFile,
        Kind::Symlink(_) => FileType::Symlink,
        Kind::Char(_) => FileType::CharDevice,
        Kind::Block(_) => FileType::BlockDevice,
        Kind::Fifo => FileType::NamedPipe,
    }
}

fn tree_attr(layer: &Layer, index: usize) -> Option<FileAttr> {
    let node = layer.tree.node(index)?;
    let time = UNIX_EPOCH + Duration::from_secs(node.mtime.max(0) as u64);
    let (size, rdev, nlink) = match &node.kind {
        Kind::Dir(children) => {
            let subdirs = children
                .values()
                .filter(|c| matches!(layer.tree.node(**c).map(|n| &n.kind), Some(Kind::Dir(_))))
                .count();
            (0, 0, 2 + subdirs as u32)
        }
        Kind::File(content) => (content.size, 0, node.nlink),
        Kind::Symlink(target) => (target.len() as u64, 0, 1),
        Kind::Char(rdev) | Kind::Block(rdev) => (0, *rdev, 1),
        Kind::Fifo => (0, 0, 1),
    };
    let mut attr = attr_with(
        layer.base + index as u64,
        file_type(node),
        node.perm,
        size,
        time,
    );
    attr.uid = node.uid;
    attr.gid = node.gid;
    attr.rdev = rdev;
    attr.nlink = nlink;
    Some(attr)
}

/// The FUSE side: [`LayerStore`] and its open files.
pub struct LayerStoreFs {
    inner: Arc<LayerStore>,
    handles: RwLock<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
}

impl LayerStoreFs {
    /// Wraps a store for mounting.
    pub fn new(inner: Arc<LayerStore>) -> LayerStoreFs {
        LayerStoreFs {
            inner,
            handles: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }
}

fn reply_xattr(reply: ReplyXattr, bytes: &[u8], size: u32) {
    if size == 0 {
        reply.size(bytes.len() as u32)
    } else if bytes.len() > size as usize {
        reply.error(Errno::ERANGE)
    } else {
        reply.data(bytes)
    }
}

impl Filesystem for LayerStoreFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match name
            .to_str()
            .and_then(|n| self.inner.lookup_in(parent.0, n))
        {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inner.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self.inner.with_found(ino.0, |found| match found {
            Some(Found::Tree(layer, index)) => match &layer.tree.node(index)?.kind {
                Kind::Symlink(target) => Some(target.clone()),
                _ => None,
            },
            _ => None,
        });
        match target {
            Some(t) => reply.data(t.as_bytes()),
            None => reply.error(Errno::EINVAL),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        self.inner.stats.opened();
        match self.inner.open_node(ino.0) {
            Ok(handle) => {
                let stats_file = ino.0 == STATS_INO;
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                self.handles
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(fh, Arc::new(handle));
                let flags = if stats_file {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::FOPEN_KEEP_CACHE
                };
                reply.opened(FileHandle(fh), flags);
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let handle = self
            .handles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh.0)
            .cloned();
        match handle.as_deref() {
            None => reply.error(Errno::EBADF),
            Some(Handle::Memory(bytes)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Some(Handle::File(file)) => {
                let mut buf = vec![0u8; size as usize];
                match read_full_at(file, &mut buf, offset) {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => {
                        tracing::error!("read: {e}");
                        reply.error(Errno::EIO)
                    }
                }
            }
        }
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
        self.handles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
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
        let Some((parent, listed)) = self.inner.entries(ino.0) else {
            return reply.error(Errno::ENOTDIR);
        };
        let all = [
            (ino.0, FileType::Directory, ".".to_string()),
            (parent, FileType::Directory, "..".to_string()),
        ]
        .into_iter()
        .chain(listed);
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    /// containers-storage signals that it uses a layer by creating `use` in its directory:
    /// acknowledged with ENOENT (nothing is created).
    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if name == "use" {
            reply.error(Errno::ENOENT)
        } else {
            reply.error(Errno::EROFS)
        }
    }

    /// containers-storage releases a layer by removing its directory: acknowledged with
    /// ENOENT (the layer stays served; content stays in the store).
    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOENT);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let found = self
            .inner
            .xattrs(ino.0)
            .into_iter()
            .find(|(k, _)| OsStr::new(k) == name);
        match found {
            Some((_, value)) => reply_xattr(reply, &value, size),
            None => reply.error(Errno::ENODATA),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let mut names = Vec::new();
        for (k, _) in self.inner.xattrs(ino.0) {
            names.extend_from_slice(k.as_bytes());
            names.push(0);
        }
        reply_xattr(reply, &names, size);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if self.inner.attr(ino.0).is_none() {
            reply.error(Errno::ENOENT)
        } else if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS)
        } else {
            reply.ok()
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// A mounted layer store, served by [`MountedStore::run`].
pub struct MountedStore {
    session: fuser::Session<LayerStoreFs>,
    stats: Arc<Stats>,
}

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// FUSE worker threads (each blocks while it fetches).
    pub threads: usize,
    /// Let every user in (root's podman/buildah need it when the store runs as another user).
    pub allow_other: bool,
}

impl MountedStore {
    /// Mounts `store` at `mountpoint`. Not read-only: containers-storage's `use` and release
    /// signals (create, rmdir) must reach the store to be acknowledged.
    pub fn mount(
        store: LayerStore,
        mountpoint: &Path,
        options: &MountOptions,
    ) -> io::Result<MountedStore> {
        let store = Arc::new(store);
        let stats = store.stats();
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("strata-layer-store".into()),
            MountOption::Subtype("strata".into()),
            MountOption::NoAtime,
        ];
        config.acl = if options.allow_other {
            SessionACL::All
        } else {
            SessionACL::Owner
        };
        config.n_threads = Some(options.threads.max(1));
        config.clone_fd = true;
        let session = fuser::Session::new(LayerStoreFs::new(store), mountpoint, &config)?;
        Ok(MountedStore { session, stats })
    }

    /// Serves until unmounted; returns what the store did.
    pub fn run(self) -> io::Result<Summary> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            log::set_max_level(log::LevelFilter::Error);
        }
        self.session.run()?;
        Ok(self.stats.summary())
    }
}
