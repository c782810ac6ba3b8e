//! Background prefetch: make artifacts present ahead of the build's demand.

use std::sync::Arc;
use std::time::Duration;

use strata_store::{Fetcher, NoProgress, Source};
use strata_tree::{Node, NodeId};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fs::{Boost, LazyHandle};

/// How a prefetch competes with the build's own opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefetchPriority {
    /// A recorded profile: fetch in the recorded order, as fast as `jobs` allows; every open
    /// that has to wait for a download meanwhile adds one slot (up to `jobs` more), so that
    /// the prefetch gets further ahead where the build catches up with it.
    Profile,
    /// Everything: start a download only while no open is waiting for one.
    Lowest,
}

impl LazyHandle {
    /// The artifact file at `path` (relative to the mount root), if there is one.
    pub fn resolve_artifact(&self, path: &str) -> Option<NodeId> {
        let id = self.tree().resolve(path)?;
        matches!(self.tree().node(id), Some(Node::Artifact(_))).then_some(id)
    }

    /// Every artifact file of the tree, in tree order.
    pub fn all_artifacts(&self) -> Vec<NodeId> {
        self.tree()
            .iter()
            .filter(|e| matches!(e.node, Node::Artifact(_)))
            .map(|e| e.id)
            .collect()
    }

    /// Fetches `ids` through `fetcher` (give it its own download slots so that prefetching
    /// never holds the slots of demand opens; the store's per-digest lock still makes each
    /// digest download once), `jobs` at a time, in order. Failures are logged and counted in
    /// [`crate::Summary::failed`]; an open of a failed file retries it. Only files this
    /// prefetch downloaded count in [`crate::Summary::prefetched`].
    pub async fn prefetch(
        &self,
        fetcher: Fetcher,
        ids: Vec<NodeId>,
        jobs: usize,
        priority: PrefetchPriority,
    ) {
        let slots = Arc::new(Semaphore::new(jobs.max(1)));
        if priority == PrefetchPriority::Profile {
            self.set_boost(Some(Boost {
                slots: slots.clone(),
                left: jobs.max(1),
            }));
        }
        let mut tasks = JoinSet::new();
        for id in ids {
            let Some(Node::Artifact(index)) = self.tree().node(id).cloned() else {
                continue;
            };
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            if priority == PrefetchPriority::Lowest {
                while self.stats().demand_in_flight() > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let (handle, fetcher) = (self.clone(), fetcher.clone());
            tasks.spawn(async move {
                let artifact = &handle.artifacts()[index];
                match fetcher.ensure(artifact, &NoProgress).await {
                    Ok(f) => {
                        handle.stats().fetched(&f);
                        // Only what this prefetch downloaded: a file already in the store
                        // (or downloaded meanwhile by an open or another process) is not.
                        if f.source == Source::Download {
                            handle.stats().prefetched();
                        }
                    }
                    Err(e) => {
                        handle.stats().failed();
                        tracing::warn!("prefetch failed (an open will retry): {e}");
                    }
                }
                drop(permit);
            });
        }
        self.set_boost(None);
        while tasks.join_next().await.is_some() {}
        let summary = self.summary();
        eprintln!(
            "strata: prefetch finished: {} prefetched, {} failed (opens included) so far",
            summary.prefetched, summary.failed
        );
    }
}
