//! Counters of what a mount did, summarised when it is unmounted.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Live counters of one mount. All methods are lock-free.
#[derive(Debug)]
pub struct Stats {
    /// When the counters were made.
    created: Instant,
    /// When the mount was in place (see [`Stats::start_clock`]).
    ready: OnceLock<Instant>,
    opens: AtomicU64,
    opens_waited: AtomicU64,
    downloaded: AtomicU64,
    downloaded_bytes: AtomicU64,
    shared: AtomicU64,
    failed: AtomicU64,
    prefetched: AtomicU64,
    wait_micros: AtomicU64,
    in_flight: AtomicU64,
    reads: AtomicU64,
}

/// A snapshot of [`Stats`], logged when the mount ends.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Successful opens of artifact files.
    pub opens: u64,
    /// Opens that had to wait for a download (here or in another process).
    pub opens_waited: u64,
    /// Artifacts this mount downloaded (on demand or prefetched).
    pub downloaded: u64,
    /// Bytes this mount downloaded.
    pub downloaded_bytes: u64,
    /// Artifacts another process or mount downloaded while this one waited.
    pub shared: u64,
    /// Opens that failed with EIO, plus prefetches whose download failed.
    pub failed: u64,
    /// Artifacts the background prefetch downloaded (not those it found in the store, nor
    /// those another mount or process downloaded while it waited).
    pub prefetched: u64,
    /// Total time callers waited in `open` for downloads.
    pub wait_ms: u64,
    /// Time since the mount was ready.
    pub mounted_ms: u64,
    /// `read` requests served by strata (reads through FUSE passthrough never reach it).
    pub reads: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Zeroed counters; the mount's clock runs from now until [`Stats::start_clock`].
    pub fn new() -> Stats {
        Stats {
            created: Instant::now(),
            ready: OnceLock::new(),
            opens: AtomicU64::new(0),
            opens_waited: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            downloaded_bytes: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            prefetched: AtomicU64::new(0),
            wait_micros: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    /// Time since the mount was ready (since the counters were made, before that).
    pub fn elapsed(&self) -> Duration {
        self.ready.get().unwrap_or(&self.created).elapsed()
    }

    /// Starts the mount's clock (the first call only): [`crate::Mounted::mount`] calls it
    /// once the mount is in place, right before `strata mount` reports it ready.
    pub(crate) fn start_clock(&self) {
        let _ = self.ready.set(Instant::now());
    }

    pub(crate) fn opened(&self, waited: Option<Duration>) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        if let Some(w) = waited {
            self.opens_waited.fetch_add(1, Ordering::Relaxed);
            self.wait_micros
                .fetch_add(w.as_micros() as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn fetched(&self, fetched: &strata_store::Fetched) {
        match fetched.source {
            strata_store::Source::Download => {
                self.downloaded.fetch_add(1, Ordering::Relaxed);
                self.downloaded_bytes
                    .fetch_add(fetched.downloaded, Ordering::Relaxed);
            }
            strata_store::Source::Shared => {
                self.shared.fetch_add(1, Ordering::Relaxed);
            }
            strata_store::Source::Cache => {}
        }
    }

    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn prefetched(&self) {
        self.prefetched.fetch_add(1, Ordering::Relaxed);
    }

    /// Demand downloads in progress (the background prefetch of `all` yields to them).
    pub fn demand_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn demand_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn demand_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A consistent-enough snapshot of the counters.
    pub fn summary(&self) -> Summary {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Summary {
            opens: get(&self.opens),
            opens_waited: get(&self.opens_waited),
            downloaded: get(&self.downloaded),
            downloaded_bytes: get(&self.downloaded_bytes),
            shared: get(&self.shared),
            failed: get(&self.failed),
            prefetched: get(&self.prefetched),
            wait_ms: get(&self.wait_micros) / 1000,
            mounted_ms: self.elapsed().as_millis() as u64,
            reads: get(&self.reads),
        }
    }
}
