//! The hook for a remote tier: a shared cache (an OCI registry, see the `strata-remote`
//! crate) that [`crate::Fetcher::ensure`] asks on a store miss before the upstream, and fills
//! after an upstream download.
//!
//! The tier only supplies bytes: they go into a [`PendingEntry`], and the store verifies them
//! against the lockfile's digest and renames them into place exactly as for a download. A
//! tier that fails, or hands over wrong bytes, costs a warning and an upstream download,
//! never a failed fetch.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use strata_lock::Artifact;

use crate::store::PendingEntry;

/// A boxed, sendable future (the trait is object-safe so commands can pick a tier at run time).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A second-level, shared artifact cache behind the local store.
pub trait RemoteTier: Send + Sync + fmt::Debug {
    /// Writes `artifact`'s bytes into `entry` if the tier has them: `Ok(true)` when written
    /// (the store then verifies and commits), `Ok(false)` on a miss. An `Err` is logged as a
    /// warning and the upstream is used.
    fn fetch<'a>(
        &'a self,
        artifact: &'a Artifact,
        entry: &'a mut PendingEntry,
    ) -> BoxFuture<'a, Result<bool, String>>;

    /// Called after `artifact` was downloaded from the upstream, verified and committed at
    /// `path`: the tier may keep a copy. An `Err` is logged as a warning.
    fn publish<'a>(
        &'a self,
        artifact: &'a Artifact,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<(), String>>;
}
