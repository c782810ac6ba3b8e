//! strata-lazyfs: the lazy, read-only FUSE view of an output tree.
//!
//! This crate owns what `strata mount` serves: the [`strata_tree::Tree`] that `strata fetch`
//! would write, mounted with FUSE, where `lookup`, `getattr` and `readdir` are answered from
//! memory and `open` of an artifact makes its bytes present in the shared store first.
//!
//! - [`LazyFs`]: the filesystem (a [`fuser::Filesystem`]). Opens of uncached artifacts are
//!   answered asynchronously from a tokio task, so only the opening caller waits; opens of
//!   cached files, lookups and getattrs never wait behind downloads. Reads are `pread`s of the
//!   store file (one fd per open handle), or FUSE passthrough to it where the kernel and
//!   privileges allow.
//! - [`Mounted`]: a mounted, ready session; [`Mounted::run`] serves until unmounted.
//! - [`Recorder`] / [`load_profile`]: `--record` and `--prefetch FILE` profiles (JSON lines).
//! - [`LazyHandle::prefetch`]: background prefetch with bounded concurrency.
//! - [`mounts`]: finding, cleaning (stale mounts of crashed daemons) and unmounting mounts.
//!
//! This crate never downloads except through [`strata_store::Fetcher`], never writes into the
//! store itself, and never parses lockfiles: it takes the artifacts and tree it is given.
//!
//! Sizes: `getattr` never touches the network. An artifact's size comes from the lockfile;
//! when the lockfile has none (npm), the size of the store entry is used if it is cached,
//! else `0` with an attribute TTL of zero (so the kernel asks again once the file has been
//! opened). Once an open has the store entry, its size is final and remembered: attributes
//! report it (cached like the others) and the file is opened with `FOPEN_KEEP_CACHE` like
//! files of known size; a cached read past the kernel's stale size 0 refreshes the
//! attributes first (`fuse_cache_read_iter`). Zero is what procfs reports for files of
//! unknown size, and clients that read to EOF (pip, npm, tar, cat) handle it.

mod attr;
mod fs;
pub mod mounts;
mod prefetch;
mod record;
mod stats;

pub use fs::{FsOptions, LazyFs, LazyHandle, MountOptions, Mounted, Unmounter};
pub use prefetch::{LOWEST_WHILE_DEMAND, PrefetchPriority};
pub use record::{ProfileEntry, ProfileError, Recorder, load_profile};
pub use stats::{Stats, Summary};
