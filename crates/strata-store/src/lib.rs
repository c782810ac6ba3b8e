//! strata-store: the shared, verified, content-addressed store and the downloader that fills it.
//!
//! Every byte strata serves or writes passes through here. This crate owns the on-disk layout
//! of the cache, per-digest locking (single-flight across threads and processes), atomic
//! insertion of verified entries, linking entries out into output trees, maintenance
//! (`verify`, `stats`, `gc`) and the HTTP downloader with retries and deadlines. It knows
//! nothing of lockfile formats or output layouts: it takes [`strata_lock::Artifact`]s and
//! digests.

mod error;
mod fetch;
mod hash;
mod maintenance;
mod netrc;
mod remote;
mod store;

pub use error::StoreError;
pub use fetch::{
    Failure, FetchError, FetchOptions, Fetched, Fetcher, NoProgress, Progress, Source, backoff,
    label, redact,
};
pub use hash::{Hasher, hash_file, hash_reader};
pub use maintenance::{GcPolicy, GcReport, Stats, VerifyReport};
pub use netrc::{Credentials, Netrc};
pub use remote::{BoxFuture, RemoteTier};
pub use store::{
    DigestLock, PendingEntry, Placement, Store, default_root, insert_bytes, write_synced,
};
