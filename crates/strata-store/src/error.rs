//! Errors of the store and the downloader.

use std::io;
use std::path::{Path, PathBuf};

use strata_lock::Digest;

/// A failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What strata was doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The disk is full; nothing partial was kept.
    #[error(
        "no space left on the device holding {} (nothing partial was kept); free some space, run `strata cache gc`, or point STRATA_CACHE_DIR at a larger disk",
        path.display()
    )]
    NoSpace {
        /// The file being written.
        path: PathBuf,
    },
    /// The bytes did not hash to the locked digest.
    #[error("checksum mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest from the lockfile.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The byte count differed from the locked size.
    #[error(
        "size mismatch: expected {expected} bytes ({expected_digest}), got {actual} bytes ({})",
        actual_digest.as_ref().map_or_else(|| format!("more than {} bytes over: not hashed further", crate::store::OVERFLOW_HASH_LIMIT), ToString::to_string)
    )]
    SizeMismatch {
        /// The size from the lockfile.
        expected: u64,
        /// The bytes received (so far, when far too many arrived).
        actual: u64,
        /// The digest from the lockfile.
        expected_digest: Digest,
        /// The digest of the whole body received; `None` when it ran more than
        /// [`crate::store::OVERFLOW_HASH_LIMIT`] bytes past the locked size and was cut off.
        actual_digest: Option<Digest>,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done and where.
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps a write error, recognising a full disk.
    pub fn write(path: &Path, source: io::Error) -> StoreError {
        if source.kind() == io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            StoreError::NoSpace {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::io("write", path, source)
        }
    }

    /// Whether the content itself was wrong (retrying the same URL will not help).
    pub fn is_content_mismatch(&self) -> bool {
        matches!(
            self,
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
        )
    }
}
