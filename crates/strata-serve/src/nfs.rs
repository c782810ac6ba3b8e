//! The NFSv3 transport (read-only, via `nfsserve`): the same tree as the FUSE mount.
//!
//! File ids are the tree's [`NodeId`]s (the root is 1). Lookups, listings and attributes come
//! from memory; the first read of an artifact makes it present in the store. NFS has no
//! `open`, but clients ask for attributes when they open a file (close-to-open consistency), so
//! `GETATTR` of an npm tarball whose size the lockfile does not give fetches it, and reports
//! its real size; listings (`READDIRPLUS`) never fetch and show such files with size 0 until
//! then.
//!
//! nfsserve answers the MOUNT protocol on the NFS port itself (no portmapper), so clients
//! need both ports given explicitly: `mount -t nfs -o port=N,mountport=N,nfsvers=3,tcp,nolock`
//! or `nfs://127.0.0.1/?port=N&mountport=N&version=3` for libnfs.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nfsserve::nfs::{
    fattr3, fileid3, filename3, ftype3, nfspath3, nfsstat3, nfsstring, nfstime3, sattr3, specdata3,
};
use nfsserve::tcp::{NFSTcp, NFSTcpListener};
use nfsserve::vfs::{DirEntry, NFSFileSystem, ReadDirResult, VFSCapabilities};
use strata_tree::{Node, NodeId};

use crate::lazy::LazyTree;

/// The read-only NFS view of a [`LazyTree`].
pub struct NfsView {
    lazy: Arc<LazyTree>,
    uid: u32,
    gid: u32,
    time: nfstime3,
    /// Store files already opened, by node id: later reads skip the store lookup.
    files: Mutex<HashMap<u64, Arc<File>>>,
}

impl NfsView {
    /// A view of `lazy`, owned by the serving user.
    pub fn new(lazy: Arc<LazyTree>) -> NfsView {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        NfsView {
            lazy,
            uid,
            gid,
            time: nfstime3 {
                seconds: now.as_secs() as u32,
                nseconds: now.subsec_nanos(),
            },
            files: Mutex::new(HashMap::new()),
        }
    }

    fn attr(&self, id: NodeId, size: Option<u64>) -> Result<fattr3, nfsstat3> {
        let node = self.lazy.tree().node(id).ok_or(nfsstat3::NFS3ERR_STALE)?;
        let (ftype, mode, nlink, size) = match node {
            Node::Dir => {
                let subdirs = self
                    .lazy
                    .tree()
                    .children(id)
                    .map(|c| c.filter(|e| matches!(e.node, Node::Dir)).count())
                    .unwrap_or(0);
                (ftype3::NF3DIR, 0o555, 2 + subdirs as u32, 4096)
            }
            _ => (
                ftype3::NF3REG,
                0o444,
                1,
                size.or_else(|| self.lazy.known_size(id)).unwrap_or(0),
            ),
        };
        Ok(fattr3 {
            ftype,
            mode,
            nlink,
            uid: self.uid,
            gid: self.gid,
            size,
            used: size,
            rdev: specdata3::default(),
            fsid: 0x5354_5241, // "STRA"
            fileid: id.0,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
        })
    }

    async fn store_file(&self, id: NodeId, index: usize) -> Result<Arc<File>, nfsstat3> {
        if let Some(f) = self.lock_files().get(&id.0) {
            return Ok(f.clone());
        }
        let opened = self
            .lazy
            .open(index)
            .await
            .map_err(|_| nfsstat3::NFS3ERR_IO)?;
        let file = Arc::new(File::open(&opened.path).map_err(|e| {
            tracing::error!(
                "could not open the store entry {}: {e}",
                opened.path.display()
            );
            nfsstat3::NFS3ERR_IO
        })?);
        self.lock_files().insert(id.0, file.clone());
        Ok(file)
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<File>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl NFSFileSystem for NfsView {
    fn capabilities(&self) -> VFSCapabilities {
        VFSCapabilities::ReadOnly
    }

    fn root_dir(&self) -> fileid3 {
        NodeId::ROOT.0
    }

    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3> {
        let tree = self.lazy.tree();
        let dir = NodeId(dirid);
        match tree.node(dir) {
            None => return Err(nfsstat3::NFS3ERR_STALE),
            Some(Node::Dir) => {}
            Some(_) => return Err(nfsstat3::NFS3ERR_NOTDIR),
        }
        let name = std::str::from_utf8(&filename.0).map_err(|_| nfsstat3::NFS3ERR_NOENT)?;
        match name {
            "." => Ok(dirid),
            ".." => tree.parent(dir).map(|p| p.0).ok_or(nfsstat3::NFS3ERR_STALE),
            _ => tree
                .lookup(dir, name)
                .map(|id| id.0)
                .ok_or(nfsstat3::NFS3ERR_NOENT),
        }
    }

    async fn getattr(&self, id: fileid3) -> Result<fattr3, nfsstat3> {
        let node = NodeId(id);
        if let Some(Node::Artifact(i)) = self.lazy.tree().node(node)
            && self.lazy.known_size(node).is_none()
        {
            // The size is only known once the file is in the store: fetch it now (a client
            // asks for attributes when it opens a file).
            let file = self.store_file(node, *i).await?;
            let len = file
                .metadata()
                .map(|m| m.len())
                .map_err(|_| nfsstat3::NFS3ERR_IO)?;
            return self.attr(node, Some(len));
        }
        self.attr(node, None)
    }

    async fn setattr(&self, _id: fileid3, _setattr: sattr3) -> Result<fattr3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn read(
        &self,
        id: fileid3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        let node = NodeId(id);
        match self.lazy.tree().node(node) {
            None => Err(nfsstat3::NFS3ERR_STALE),
            Some(Node::Dir) => Err(nfsstat3::NFS3ERR_ISDIR),
            Some(Node::Generated(bytes)) => {
                let len = bytes.len() as u64;
                let start = offset.min(len) as usize;
                let end = (offset.saturating_add(u64::from(count))).min(len) as usize;
                Ok((bytes[start..end].to_vec(), end as u64 >= len))
            }
            Some(Node::Artifact(i)) => {
                let file = self.store_file(node, *i).await?;
                tokio::task::spawn_blocking(move || {
                    let len = file.metadata().map_err(|_| nfsstat3::NFS3ERR_IO)?.len();
                    let want = (count as u64).min(len.saturating_sub(offset)) as usize;
                    let mut buf = vec![0u8; want];
                    let mut done = 0;
                    while done < want {
                        match file.read_at(&mut buf[done..], offset + done as u64) {
                            Ok(0) => break,
                            Ok(n) => done += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(_) => return Err(nfsstat3::NFS3ERR_IO),
                        }
                    }
                    buf.truncate(done);
                    Ok((buf, offset + done as u64 >= len))
                })
                .await
                .map_err(|_| nfsstat3::NFS3ERR_IO)?
            }
        }
    }

    async fn write(&self, _id: fileid3, _offset: u64, _data: &[u8]) -> Result<fattr3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn create(
        &self,
        _dirid: fileid3,
        _filename: &filename3,
        _attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn create_exclusive(
        &self,
        _dirid: fileid3,
        _filename: &filename3,
    ) -> Result<fileid3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn mkdir(
        &self,
        _dirid: fileid3,
        _dirname: &filename3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn remove(&self, _dirid: fileid3, _filename: &filename3) -> Result<(), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn rename(
        &self,
        _from_dirid: fileid3,
        _from_filename: &filename3,
        _to_dirid: fileid3,
        _to_filename: &filename3,
    ) -> Result<(), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<ReadDirResult, nfsstat3> {
        let tree = self.lazy.tree();
        let dir = NodeId(dirid);
        let children = match tree.node(dir) {
            None => return Err(nfsstat3::NFS3ERR_STALE),
            Some(Node::Dir) => tree.children(dir).ok_or(nfsstat3::NFS3ERR_NOTDIR)?,
            Some(_) => return Err(nfsstat3::NFS3ERR_NOTDIR),
        };
        // Children have consecutive ascending ids, and the cookie is the last id returned.
        let mut rest = children.skip_while(|e| start_after != 0 && e.id.0 <= start_after);
        let mut entries = Vec::new();
        for e in rest.by_ref().take(max_entries) {
            entries.push(DirEntry {
                fileid: e.id.0,
                name: nfsstring(e.name.as_bytes().to_vec()),
                attr: self.attr(e.id, None)?,
            });
        }
        let end = rest.next().is_none();
        Ok(ReadDirResult { entries, end })
    }

    async fn symlink(
        &self,
        _dirid: fileid3,
        _linkname: &filename3,
        _symlink: &nfspath3,
        _attr: &sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn readlink(&self, _id: fileid3) -> Result<nfspath3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_INVAL)
    }
}

/// Binds the NFS server (NFS and MOUNT on one port) on `addr` (`ip:port`, IPv4) and returns
/// the port and a future that serves until dropped.
pub async fn bind_nfs(
    addr: std::net::SocketAddrV4,
    lazy: Arc<LazyTree>,
) -> std::io::Result<(u16, impl std::future::Future<Output = std::io::Result<()>>)> {
    let listener = NFSTcpListener::bind(&addr.to_string(), NfsView::new(lazy)).await?;
    let port = listener.get_listen_port();
    Ok((port, async move { listener.handle_forever().await }))
}
