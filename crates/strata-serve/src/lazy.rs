//! The lazy tree both transports serve: the output [`Tree`] answered from memory, artifact
//! bytes made present in the store on first use through [`Fetcher::ensure`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use strata_lock::Artifact;
use strata_store::{FetchError, Fetcher, NoProgress, Progress, Source};
use strata_tree::{Node, NodeId, Tree};

/// The output tree over the store, shared (in an `Arc`) by the HTTP and NFS servers.
///
/// Concurrent first uses of one artifact download it once: [`Fetcher::ensure`] takes the
/// digest's lock, so the second caller waits and then finds the entry (across processes too).
pub struct LazyTree {
    tree: Tree,
    artifacts: Vec<Artifact>,
    fetcher: Fetcher,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    opens: AtomicU64,
    cache: AtomicU64,
    downloaded: AtomicU64,
    shared: AtomicU64,
    failed: AtomicU64,
    downloaded_bytes: AtomicU64,
    not_locked: AtomicU64,
}

/// What [`LazyTree`] did so far (served at `/_strata/stats` by the HTTP server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ServeStats {
    /// Artifact opens (HTTP file responses, first NFS reads of a file).
    pub opens: u64,
    /// Opens answered from the store at once.
    pub cache: u64,
    /// Opens that downloaded (from the remote tier or the upstream).
    pub downloaded: u64,
    /// Opens that waited for another request's (or process's) download of the same file.
    pub shared: u64,
    /// Opens whose download failed.
    pub failed: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Requests refused because what they asked for is not locked.
    pub not_locked: u64,
}

/// An artifact present in the store.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The store entry (read-only).
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Where the bytes came from.
    pub source: Source,
}

impl LazyTree {
    /// The tree built from `artifacts`, fetching through `fetcher`.
    pub fn new(tree: Tree, artifacts: Vec<Artifact>, fetcher: Fetcher) -> Arc<LazyTree> {
        Arc::new(LazyTree {
            tree,
            artifacts,
            fetcher,
            counters: Counters::default(),
        })
    }

    /// The tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The artifacts, indexed as in [`Node::Artifact`].
    pub fn artifacts(&self) -> &[Artifact] {
        &self.artifacts
    }

    /// The fetcher (and through it, the store).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The size of a file node without touching the network: generated content's length,
    /// the lockfile's size, else the store entry's if cached; `None` when unknown (npm
    /// tarballs not fetched yet) or for directories.
    pub fn known_size(&self, id: NodeId) -> Option<u64> {
        match self.tree.node(id)? {
            Node::Dir => None,
            Node::Generated(bytes) => Some(bytes.len() as u64),
            Node::Artifact(i) => self.artifact_size(*i),
        }
    }

    /// An artifact's size from the lockfile, else from its store entry if cached.
    pub fn artifact_size(&self, index: usize) -> Option<u64> {
        let a = self.artifacts.get(index)?;
        a.size.or_else(|| {
            std::fs::metadata(self.fetcher.store().entry_path(a.store_digest()))
                .ok()
                .map(|m| m.len())
        })
    }

    /// Makes artifact `index` present in the store (downloading it once, whoever asks) and
    /// returns its entry.
    pub async fn open(&self, index: usize) -> Result<Opened, FetchError> {
        self.open_with(index, &NoProgress).await
    }

    /// Whether artifact `index` is in the store already (no download needed).
    pub fn is_cached(&self, index: usize) -> bool {
        self.artifacts
            .get(index)
            .is_some_and(|a| self.fetcher.store().contains(a.store_digest()))
    }

    /// [`LazyTree::open`], with `progress` told of the bytes as they arrive (see
    /// [`Progress::received`]).
    pub async fn open_with(
        &self,
        index: usize,
        progress: &dyn Progress,
    ) -> Result<Opened, FetchError> {
        let artifact = &self.artifacts[index];
        let c = &self.counters;
        c.opens.fetch_add(1, Ordering::Relaxed);
        match self.fetcher.ensure(artifact, progress).await {
            Ok(fetched) => {
                match fetched.source {
                    Source::Cache => &c.cache,
                    Source::Shared => &c.shared,
                    Source::Download => &c.downloaded,
                }
                .fetch_add(1, Ordering::Relaxed);
                c.downloaded_bytes
                    .fetch_add(fetched.downloaded, Ordering::Relaxed);
                let len = std::fs::metadata(&fetched.path)
                    .map(|m| m.len())
                    .unwrap_or(0);
                if fetched.source != Source::Cache {
                    tracing::info!(
                        artifact = %strata_store::label(artifact),
                        source = ?fetched.source,
                        "fetched into the store"
                    );
                }
                Ok(Opened {
                    path: fetched.path,
                    len,
                    source: fetched.source,
                })
            }
            Err(e) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{e}");
                Err(e)
            }
        }
    }

    /// Counts a request refused as not locked.
    pub fn count_not_locked(&self) {
        self.counters.not_locked.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ServeStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServeStats {
            opens: l(&c.opens),
            cache: l(&c.cache),
            downloaded: l(&c.downloaded),
            shared: l(&c.shared),
            failed: l(&c.failed),
            downloaded_bytes: l(&c.downloaded_bytes),
            not_locked: l(&c.not_locked),
        }
    }
}
