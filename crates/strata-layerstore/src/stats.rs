//! What the layer store has done: layers served or refused, files fetched and bytes moved.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters, updated by the FUSE threads.
#[derive(Debug, Default)]
pub struct Stats {
    layers_served: AtomicU64,
    layers_refused: AtomicU64,
    layer_bytes: AtomicU64,
    tocs_fetched: AtomicU64,
    opens: AtomicU64,
    files_fetched: AtomicU64,
    bytes_fetched: AtomicU64,
    cache_hits: AtomicU64,
    blobs_fetched: AtomicU64,
    blob_bytes: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of [`Stats`] (also the JSON of the store's stats file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Layers resolved and served lazily.
    pub layers_served: u64,
    /// Layers looked up but not served (not zstd:chunked, unreadable): pulled the usual way.
    pub layers_refused: u64,
    /// The file content those served layers hold, uncompressed.
    pub layer_bytes: u64,
    /// TOCs read (one range request each).
    pub tocs_fetched: u64,
    /// Opens of any file.
    pub opens: u64,
    /// Files whose content was fetched from a registry.
    pub files_fetched: u64,
    /// Compressed bytes fetched for them.
    pub bytes_fetched: u64,
    /// Files found already in the store.
    pub cache_hits: u64,
    /// Whole layer blobs fetched (for pushes and exports).
    pub blobs_fetched: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Fetches that failed (the open got EIO).
    pub failures: u64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn layer_served(&self, content_bytes: u64) {
        bump(&self.layers_served, 1);
        bump(&self.layer_bytes, content_bytes);
    }
    pub(crate) fn layer_refused(&self) {
        bump(&self.layers_refused, 1);
    }
    pub(crate) fn toc_fetched(&self) {
        bump(&self.tocs_fetched, 1);
    }
    pub(crate) fn opened(&self) {
        bump(&self.opens, 1);
    }
    pub(crate) fn file_fetched(&self, compressed: u64) {
        bump(&self.files_fetched, 1);
        bump(&self.bytes_fetched, compressed);
    }
    pub(crate) fn cache_hit(&self) {
        bump(&self.cache_hits, 1);
    }
    pub(crate) fn blob_fetched(&self, size: u64) {
        bump(&self.blobs_fetched, 1);
        bump(&self.blob_bytes, size);
    }
    pub(crate) fn failed(&self) {
        bump(&self.failures, 1);
    }

    /// The counters now.
    pub fn summary(&self) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            layers_served: get(&self.layers_served),
            layers_refused: get(&self.layers_refused),
            layer_bytes: get(&self.layer_bytes),
            tocs_fetched: get(&self.tocs_fetched),
            opens: get(&self.opens),
            files_fetched: get(&self.files_fetched),
            bytes_fetched: get(&self.bytes_fetched),
            cache_hits: get(&self.cache_hits),
            blobs_fetched: get(&self.blobs_fetched),
            blob_bytes: get(&self.blob_bytes),
            failures: get(&self.failures),
        }
    }

    /// The summary as JSON, newline-terminated.
    pub fn json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(&self.summary()).expect("JSON of integers");
        bytes.push(b'\n');
        bytes
    }
}
