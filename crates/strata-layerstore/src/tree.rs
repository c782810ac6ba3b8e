//! A layer's file tree, built from its TOC, in the form overlayfs expects of a lower layer:
//! whiteouts (`.wh.NAME` tar members) become character devices 0:0 named NAME, and a
//! directory holding `.wh..wh..opq` is marked opaque (served as the `overlay.opaque` xattr).

use std::collections::BTreeMap;

use base64::Engine;

use crate::toc::TocEntry;

/// A node's index in its [`LayerTree`]; the root is 0.
pub type NodeIndex = usize;

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory; children by name.
    Dir(BTreeMap<String, NodeIndex>),
    /// A regular file and where its content is.
    File(FileContent),
    /// A symbolic link and its target.
    Symlink(String),
    /// A character device (`rdev`); a whiteout is `Char(0)`.
    Char(u32),
    /// A block device (`rdev`).
    Block(u32),
    /// A named pipe.
    Fifo,
}

/// Where a regular file's content is in the layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Size in bytes.
    pub size: u64,
    /// `sha256:…` of the content; `None` only for empty files.
    pub digest: Option<String>,
    /// Compressed byte range `[start, end)` of its zstd frames.
    pub range: (u64, u64),
}

/// One file, directory or other node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Permission bits (with setuid, setgid, sticky).
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Hard links to it in this layer.
    pub nlink: u32,
    /// Extended attributes (an opaque directory's `overlay.opaque` is added by the server).
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Whether the directory hides the layers below it.
    pub opaque: bool,
    /// The parent directory (the root is its own parent).
    pub parent: NodeIndex,
}

/// Why a TOC does not give a usable tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// A path leaves the layer (`..`), or goes through something that is not a directory.
    #[error("bad path {0:?} in the layer")]
    BadPath(String),
    /// A hard link names a path that is not an earlier regular file of the layer.
    #[error("hard link {name:?} to {target:?}, which is not an earlier file of the layer")]
    BadHardLink {
        /// The link.
        name: String,
        /// Its target.
        target: String,
    },
    /// A non-empty regular file without a content digest or range.
    #[error("file {0:?} has content but no digest or offsets in the TOC")]
    NoContent(String),
    /// An entry of a type overlay layers cannot hold, or a malformed attribute.
    #[error("entry {name:?}: {message}")]
    BadEntry {
        /// The entry's path.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The whiteout prefix of tar layers.
const WHITEOUT: &str = ".wh.";
/// The tar member marking its directory opaque.
const OPAQUE: &str = ".wh..wh..opq";

/// A layer's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTree {
    nodes: Vec<Node>,
}

impl LayerTree {
    /// Builds the tree from TOC entries in tar order (a later member of the same path wins).
    pub fn from_entries(entries: &[TocEntry]) -> Result<LayerTree, TreeError> {
        let mut tree = LayerTree {
            nodes: vec![dir_node(0, 0o755, 0)],
        };
        for entry in entries.iter().filter(|e| e.kind != "chunk") {
            tree.add(entry)?;
        }
        Ok(tree)
    }

    /// The node at `index`.
    pub fn node(&self, index: NodeIndex) -> Option<&Node> {
        self.nodes.get(index)
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is only its root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The child `name` of directory `dir`.
    pub fn lookup(&self, dir: NodeIndex, name: &str) -> Option<NodeIndex> {
        match &self.nodes.get(dir)?.kind {
            Kind::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// The node a slash-separated path names.
    pub fn resolve(&self, path: &str) -> Option<NodeIndex> {
        components(path)
            .ok()?
            .iter()
            .try_fold(0, |dir, name| self.lookup(dir, name))
    }

    /// Regular files' total size.
    pub fn content_bytes(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.kind {
                Kind::File(c) => c.size,
                _ => 0,
            })
            .sum()
    }

    fn add(&mut self, entry: &TocEntry) -> Result<(), TreeError> {
        let parts = components(&entry.name)?;
        let Some((last, dirs)) = parts.split_last() else {
            // The layer's root directory itself (`./`).
            if entry.kind == "dir" {
                let root = &mut self.nodes[0];
                apply_attrs(root, entry)?;
            }
            return Ok(());
        };
        let parent = self.make_dirs(dirs, &entry.name)?;
        if *last == OPAQUE {
            self.nodes[parent].opaque = true;
            return Ok(());
        }
        if let Some(hidden) = last.strip_prefix(WHITEOUT) {
            if self.lookup(parent, hidden).is_none() {
                let mut node = self.new_node(Kind::Char(0), parent);
                node.mtime = mtime(entry);
                self.insert(parent, hidden, node);
            }
            return Ok(());
        }
        if entry.kind == "hardlink" {
            return self.link(parent, last, entry);
        }
        let kind = kind_of(entry)?;
        if let (Kind::Dir(_), Some(existing)) = (&kind, self.lookup(parent, last))
            && matches!(self.nodes[existing].kind, Kind::Dir(_))
        {
            // A directory listed again (or after its children): new attributes, same children.
            return apply_attrs(&mut self.nodes[existing], entry);
        }
        let mut node = self.new_node(kind, parent);
        apply_attrs(&mut node, entry)?;
        self.insert(parent, last, node);
        Ok(())
    }

    /// The directory `dirs` names, created (mode 0755) where the TOC did not list it.
    fn make_dirs(&mut self, dirs: &[&str], path: &str) -> Result<NodeIndex, TreeError> {
        let mut at = 0;
        for name in dirs {
            at = match self.lookup(at, name) {
                Some(i) if matches!(self.nodes[i].kind, Kind::Dir(_)) => i,
                Some(_) => return Err(TreeError::BadPath(path.to_string())),
                None => {
                    let node = dir_node(at, 0o755, 0);
                    self.insert(at, name, node)
                }
            };
        }
        Ok(at)
    }

    fn link(&mut self, parent: NodeIndex, name: &str, entry: &TocEntry) -> Result<(), TreeError> {
        let bad = || TreeError::BadHardLink {
            name: entry.name.clone(),
            target: entry.link_name.clone(),
        };
        let target = self.resolve(&entry.link_name).ok_or_else(bad)?;
        if !matches!(self.nodes[target].kind, Kind::File(_)) {
            return Err(bad());
        }
        self.nodes[target].nlink += 1;
        self.attach(parent, name, target);
        Ok(())
    }

    fn new_node(&self, kind: Kind, parent: NodeIndex) -> Node {
        Node {
            kind,
            perm: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            nlink: 1,
            xattrs: Vec::new(),
            opaque: false,
            parent,
        }
    }

    fn insert(&mut self, parent: NodeIndex, name: &str, node: Node) -> NodeIndex {
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.attach(parent, name, index);
        index
    }

    fn attach(&mut self, parent: NodeIndex, name: &str, index: NodeIndex) {
        if let Kind::Dir(children) = &mut self.nodes[parent].kind {
            children.insert(name.to_string(), index);
        }
    }
}

fn dir_node(parent: NodeIndex, perm: u16, mtime: i64) -> Node {
    Node {
        kind: Kind::Dir(BTreeMap::new()),
        perm,
        uid: 0,
        gid: 0,
        mtime,
        nlink: 1,
        xattrs: Vec::new(),
        opaque: false,
        parent,
    }
}

/// A member path split into names: `./usr/bin/` → `["usr", "bin"]`. `..` is refused.
fn components(path: &str) -> Result<Vec<&str>, TreeError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(TreeError::BadPath(path.to_string())),
            name => parts.push(name),
        }
    }
    Ok(parts)
}

fn kind_of(entry: &TocEntry) -> Result<Kind, TreeError> {
    Ok(match entry.kind.as_str() {
        "dir" => Kind::Dir(BTreeMap::new()),
        "reg" => Kind::File(content_of(entry)?),
        "symlink" => Kind::Symlink(entry.link_name.clone()),
        "char" => Kind::Char(makedev(entry.dev_major, entry.dev_minor)),
        "block" => Kind::Block(makedev(entry.dev_major, entry.dev_minor)),
        "fifo" => Kind::Fifo,
        other => {
            return Err(TreeError::BadEntry {
                name: entry.name.clone(),
                message: format!("unknown type {other:?}"),
            });
        }
    })
}

fn content_of(entry: &TocEntry) -> Result<FileContent, TreeError> {
    if entry.size > 0 && (entry.digest.is_none() || entry.end_offset <= entry.offset) {
        return Err(TreeError::NoContent(entry.name.clone()));
    }
    Ok(FileContent {
        size: entry.size,
        digest: entry.digest.clone().filter(|_| entry.size > 0),
        range: (entry.offset, entry.end_offset),
    })
}

fn apply_attrs(node: &mut Node, entry: &TocEntry) -> Result<(), TreeError> {
    node.perm = (entry.mode & 0o7777) as u16;
    node.uid = entry.uid;
    node.gid = entry.gid;
    node.mtime = mtime(entry);
    node.xattrs = entry
        .xattrs
        .iter()
        .map(|(k, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map(|bytes| (k.clone(), bytes))
                .map_err(|e| TreeError::BadEntry {
                    name: entry.name.clone(),
                    message: format!("xattr {k}: {e}"),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn mtime(entry: &TocEntry) -> i64 {
    entry
        .modtime
        .as_deref()
        .and_then(strata_registry::client::parse_rfc3339)
        .unwrap_or(0)
}

/// Linux's `makedev` for the device numbers FUSE reports.
fn makedev(major: u32, minor: u32) -> u32 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, name: &str) -> TocEntry {
        TocEntry {
            kind: kind.into(),
            name: name.into(),
            mode: 0o644,
            modtime: Some("2026-12-07T07:28:06Z".into()),
            ..TocEntry::default()
        }
    }

    fn file(name: &str, size: u64) -> TocEntry {
        TocEntry {
            size,
            digest: Some("sha256:aa".into()),
            offset: 100,
            end_offset: 200,
            ..entry("reg", name)
        }
    }

    #[test]
    fn files_land_in_their_directories_with_missing_parents_made() {
        let tree = LayerTree::from_entries(&[
            TocEntry {
                mode: 0o40700,
                uid: 7,
                ..entry("dir", "etc/")
            },
            file("etc/app/config", 3),
            file("./usr/bin/tool", 5),
        ])
        .unwrap();
        let etc = tree.resolve("etc").unwrap();
        assert_eq!(
            (tree.node(etc).unwrap().perm, tree.node(etc).unwrap().uid),
            (0o700, 7)
        );
        let tool = tree.node(tree.resolve("/usr/bin/tool").unwrap()).unwrap();
        assert!(matches!(&tool.kind, Kind::File(c) if c.size == 5 && c.range == (100, 200)));
        assert_eq!(tool.mtime, 1_796_628_486);
        let usr = tree.node(tree.resolve("usr").unwrap()).unwrap();
        assert_eq!(usr.perm, 0o755, "a parent the TOC did not list");
        assert_eq!(tree.content_bytes(), 8);
    }

    #[test]
    fn whiteouts_become_char_devices_and_opaque_markers_flag_the_directory() {
        let tree = LayerTree::from_entries(&[
            entry("dir", "var/"),
            file("var/.wh.gone", 0),
            file("var/cache/.wh..wh..opq", 0),
        ])
        .unwrap();
        let gone = tree.node(tree.resolve("var/gone").unwrap()).unwrap();
        assert_eq!(gone.kind, Kind::Char(0));
        assert!(tree.resolve("var/.wh.gone").is_none());
        let cache = tree.node(tree.resolve("var/cache").unwrap()).unwrap();
        assert!(cache.opaque);
        assert!(tree.resolve("var/cache/.wh..wh..opq").is_none());
    }

    #[test]
    fn a_real_entry_replaces_a_whiteout_of_the_same_name_but_not_the_reverse() {
        let tree = LayerTree::from_entries(&[
            file(".wh.a", 0),
            file("a", 1),
            file("b", 1),
            file(".wh.b", 0),
        ])
        .unwrap();
        for name in ["a", "b"] {
            assert!(matches!(
                tree.node(tree.resolve(name).unwrap()).unwrap().kind,
                Kind::File(_)
            ));
        }
    }

    #[test]
    fn hard_links_share_the_node_and_count_links() {
        let tree = LayerTree::from_entries(&[
            file("bin/busybox", 3),
            TocEntry {
                link_name: "bin/busybox".into(),
                ..entry("hardlink", "bin/sh")
            },
        ])
        .unwrap();
        assert_eq!(tree.resolve("bin/sh"), tree.resolve("bin/busybox"));
        assert_eq!(tree.node(tree.resolve("bin/sh").unwrap()).unwrap().nlink, 2);
        let dangling = LayerTree::from_entries(&[TocEntry {
            link_name: "nowhere".into(),
            ..entry("hardlink", "x")
        }]);
        assert!(matches!(dangling, Err(TreeError::BadHardLink { .. })));
    }

    #[test]
    fn traversal_and_contentless_files_are_refused() {
        assert_eq!(
            LayerTree::from_entries(&[file("../etc/passwd", 1)]),
            Err(TreeError::BadPath("../etc/passwd".into()))
        );
        assert_eq!(
            LayerTree::from_entries(&[file("a", 1), file("a/b", 1)]),
            Err(TreeError::BadPath("a/b".into()))
        );
        let no_digest = TocEntry {
            digest: None,
            ..file("x", 4)
        };
        assert_eq!(
            LayerTree::from_entries(&[no_digest]),
            Err(TreeError::NoContent("x".into()))
        );
    }

    #[test]
    fn symlinks_devices_xattrs_and_a_relisted_directory() {
        let tree = LayerTree::from_entries(&[
            file("d/f", 1),
            TocEntry {
                link_name: "/bin/busybox".into(),
                ..entry("symlink", "bin/sh")
            },
            TocEntry {
                dev_major: 1,
                dev_minor: 3,
                ..entry("char", "dev/null")
            },
            TocEntry {
                mode: 0o1777,
                xattrs: [("user.k".to_string(), "dmFs".to_string())].into(),
                ..entry("dir", "d")
            },
        ])
        .unwrap();
        assert_eq!(
            tree.node(tree.resolve("bin/sh").unwrap()).unwrap().kind,
            Kind::Symlink("/bin/busybox".into())
        );
        assert_eq!(
            tree.node(tree.resolve("dev/null").unwrap()).unwrap().kind,
            Kind::Char(0x103)
        );
        let d = tree.node(tree.resolve("d").unwrap()).unwrap();
        assert_eq!(d.perm, 0o1777);
        assert_eq!(d.xattrs, vec![("user.k".to_string(), b"val".to_vec())]);
        assert!(
            tree.resolve("d/f").is_some(),
            "children kept when a directory is listed again"
        );
        let bad_xattr = TocEntry {
            xattrs: [("user.k".to_string(), "!!".to_string())].into(),
            ..entry("dir", "e")
        };
        assert!(matches!(
            LayerTree::from_entries(&[bad_xattr]),
            Err(TreeError::BadEntry { .. })
        ));
    }
}
