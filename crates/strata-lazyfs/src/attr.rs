//! File attributes, computed from memory (and, for files of unknown size, a local `stat` of
//! the store entry; never the network).

use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};
use strata_tree::{Node, NodeId};

/// How long the kernel may cache entries and attributes whose values are final: the tree is
/// immutable for the life of the mount.
pub(crate) const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Attributes of a file whose size is not known yet are not cached at all.
pub(crate) const TTL_UNKNOWN: Duration = Duration::ZERO;
/// `st_blksize`: a large hint makes `cat`, `cp` and stdio read in big chunks.
const BLKSIZE: u32 = 128 * 1024;

/// Who owns the files and when they were "modified" (the mount time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub time: SystemTime,
}

/// A node's attributes and how long they may be cached.
pub(crate) struct Attr {
    pub attr: FileAttr,
    pub ttl: Duration,
}

impl Owner {
    pub(crate) fn dir(&self, id: NodeId, children: usize) -> Attr {
        Attr {
            attr: self.base(id, FileType::Directory, 0o555, 0, 2 + children as u32),
            ttl: TTL,
        }
    }

    /// A regular file; `size` `None` means unknown (reported as 0, not cached).
    pub(crate) fn file(&self, id: NodeId, size: Option<u64>) -> Attr {
        Attr {
            attr: self.base(id, FileType::RegularFile, 0o444, size.unwrap_or(0), 1),
            ttl: if size.is_some() { TTL } else { TTL_UNKNOWN },
        }
    }

    fn base(&self, id: NodeId, kind: FileType, perm: u16, size: u64, nlink: u32) -> FileAttr {
        FileAttr {
            ino: INodeNo(id.0),
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLKSIZE,
            flags: 0,
        }
    }
}

/// The FUSE file type of a node.
pub(crate) fn kind(node: &Node) -> FileType {
    match node {
        Node::Dir => FileType::Directory,
        Node::Artifact(_) | Node::Generated(_) => FileType::RegularFile,
    }
}
