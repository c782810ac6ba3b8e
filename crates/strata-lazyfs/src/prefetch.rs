//! Background prefetch: make artifacts present ahead of the build's demand.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_store::{FetchError, Fetched, Fetcher, NoProgress, Source};
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
    /// Everything, yielding to the build. Up to `jobs` downloads run while no open waits for
    /// one. While any open waits for a download (on demand, in this mount):
    /// - no prefetch download starts;
    /// - at most [`LOWEST_WHILE_DEMAND`] prefetch downloads go on (the ones started first,
    ///   likely the furthest along); the others are cancelled, their partial bytes
    ///   discarded, and put back at the front of the queue, to start again once no open
    ///   waits.
    ///
    /// So an open never shares the link with more than one prefetch transfer, at the price
    /// of re-downloading the cancelled parts.
    Lowest,
}

/// How many [`PrefetchPriority::Lowest`] downloads go on while an open waits for one.
pub const LOWEST_WHILE_DEMAND: usize = 1;

/// How often a waiting [`PrefetchPriority::Lowest`] prefetch looks at the opens again.
const POLL: Duration = Duration::from_millis(10);

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
    /// digest download once), `jobs` at a time, in order, competing with opens as `priority`
    /// says. Failures are logged and counted in [`crate::Summary::failed`]; an open of a
    /// failed file retries it. Only files this prefetch downloaded count in
    /// [`crate::Summary::prefetched`].
    pub async fn prefetch(
        &self,
        fetcher: Fetcher,
        ids: Vec<NodeId>,
        jobs: usize,
        priority: PrefetchPriority,
    ) {
        let jobs = jobs.max(1);
        let indexes = ids
            .into_iter()
            .filter_map(|id| match self.tree().node(id) {
                Some(Node::Artifact(index)) => Some(*index),
                _ => None,
            })
            .collect();
        match priority {
            PrefetchPriority::Profile => self.prefetch_profile(fetcher, indexes, jobs).await,
            PrefetchPriority::Lowest => self.prefetch_lowest(fetcher, indexes, jobs).await,
        }
        let summary = self.summary();
        eprintln!(
            "strata: prefetch finished: {} prefetched, {} failed (opens included) so far",
            summary.prefetched, summary.failed
        );
    }

    /// [`PrefetchPriority::Profile`].
    async fn prefetch_profile(&self, fetcher: Fetcher, indexes: Vec<usize>, jobs: usize) {
        let slots = Arc::new(Semaphore::new(jobs));
        self.set_boost(Some(Boost {
            slots: slots.clone(),
            left: jobs,
        }));
        let mut tasks = JoinSet::new();
        for index in indexes {
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            let (handle, fetcher) = (self.clone(), fetcher.clone());
            tasks.spawn(async move {
                let result = fetcher
                    .ensure(&handle.artifacts()[index], &NoProgress)
                    .await;
                handle.count_prefetch(result);
                drop(permit);
            });
        }
        self.set_boost(None);
        while tasks.join_next().await.is_some() {}
    }

    /// [`PrefetchPriority::Lowest`].
    async fn prefetch_lowest(&self, fetcher: Fetcher, indexes: Vec<usize>, jobs: usize) {
        let mut queue: VecDeque<usize> = indexes.into();
        // The running downloads by start order: the first LOWEST_WHILE_DEMAND go on while
        // an open waits, the others yield.
        let running = Arc::new(Mutex::new(BTreeSet::new()));
        let mut tasks = JoinSet::new();
        let mut next = 0u64;
        let mut yielded = 0u64;
        loop {
            while tasks.len() < jobs && self.stats().demand_in_flight() == 0 {
                let Some(index) = queue.pop_front() else {
                    break;
                };
                let (handle, fetcher, running) = (self.clone(), fetcher.clone(), running.clone());
                let seq = next;
                next += 1;
                lock(&running).insert(seq);
                tasks.spawn(async move {
                    let must_yield = async {
                        loop {
                            tokio::time::sleep(POLL).await;
                            if handle.stats().demand_in_flight() > 0
                                && lock(&running).range(..seq).count() >= LOWEST_WHILE_DEMAND
                            {
                                break;
                            }
                        }
                    };
                    let artifact = &handle.artifacts()[index];
                    let outcome = tokio::select! {
                        result = fetcher.ensure(artifact, &NoProgress) => {
                            handle.count_prefetch(result);
                            None
                        }
                        () = must_yield => Some(index),
                    };
                    lock(&running).remove(&seq);
                    outcome
                });
            }
            if tasks.is_empty() && queue.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = tasks.join_next() => {
                    if let Ok(Some(index)) = done {
                        yielded += 1;
                        tracing::debug!("prefetch: yielded {} to an open", artifact_label(self, index));
                        queue.push_front(index);
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
        if yielded > 0 {
            tracing::info!("prefetch: {yielded} downloads yielded to opens and started again");
        }
    }

    /// Counts a prefetch download's result in the summary.
    fn count_prefetch(&self, result: Result<Fetched, FetchError>) {
        match result {
            Ok(f) => {
                self.stats().fetched(&f);
                // Only what this prefetch downloaded: a file already in the store (or
                // downloaded meanwhile by an open or another process) is not.
                if f.source == Source::Download {
                    self.stats().prefetched();
                }
            }
            Err(e) => {
                self.stats().failed();
                tracing::warn!("prefetch failed (an open will retry): {e}");
            }
        }
    }
}

fn artifact_label(handle: &LazyHandle, index: usize) -> String {
    strata_store::label(&handle.artifacts()[index])
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
