//! strata-rpm: RPM repository metadata and per-repository cache epochs.
//!
//! This crate owns
//!
//! - reading an RPM's lead, signature and header ([`header`]), from a store entry or from
//!   the first kilobytes of the package fetched with an HTTP `Range` request;
//! - generating the repodata dnf needs (`repodata/repomd.xml`, `primary`, `filelists`,
//!   `other`, plus module metadata from the lockfile) natively, deterministically and
//!   without downloading whole packages ([`repodata`]);
//! - caching generated repodata in the store, keyed by a hash of the repository's lockfile
//!   entries ([`RepodataCache`], [`repo_key`]);
//! - per-repo cache epochs for `strata epochs`, from a lockfile or from a live repository's
//!   `repomd.xml` and primary metadata ([`epoch`], [`live`]).
//!
//! It does not lay out output trees (that is `strata-tree`) and does all HTTP through
//! [`strata_store::Fetcher`]. Everything except [`source`] and [`RepodataCache`] is pure.
//!
//! # For `strata fetch` and `strata mount`
//!
//! ```no_run
//! # async fn demo(fetcher: strata_store::Fetcher, artifacts: Vec<strata_lock::Artifact>) {
//! use strata_rpm::{HeaderStats, RepodataCache, ensure_repodata, group_repos};
//! let cache = RepodataCache::new(fetcher.store().clone());
//! for repo in group_repos(&artifacts) {
//!     // A hit costs one small file read; a miss reads only package headers.
//!     if let Some(hit) = cache.lookup(&repo.key()) { /* show hit.files at once */ }
//!     let (repodata, _how) = ensure_repodata(&fetcher, &cache, &repo, 16, &HeaderStats::default())
//!         .await
//!         .unwrap();
//!     for file in &repodata.files {
//!         // `<repo.dir()>/<file.path>` has the bytes of store entry `file.digest`
//!         let _path = cache.file_path(file);
//!     }
//! }
//! # }
//! ```

mod cache;
pub mod epoch;
pub mod header;
pub mod live;
pub mod repodata;
mod source;

pub use cache::{CachedFile, CachedRepodata, RepodataCache, repo_key};
pub use epoch::{Epoch, EpochFormat, epoch_var, format_epochs, lockfile_epochs};
pub use header::{HeaderError, PackageHeader};
pub use repodata::{RepodataFile, generate};
pub use source::{
    HeaderStats, Obtained, RepoArtifacts, RepodataError, ensure_repodata, group_repos,
    live_primary, read_header,
};
