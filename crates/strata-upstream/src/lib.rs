//! A real HTTP/1.1 upstream on loopback, with fault injection, for strata's tests,
//! benchmarks and README example.
//!
//! # What this crate owns
//!
//! strata has no network in its tests: every test of the downloader, the store and the
//! CLI talks to an [`Upstream`] on `127.0.0.1` instead. This crate owns that server and
//! the `strata-upstream` binary that runs it out of process (for the benchmark scripts
//! and the README example). It is **test and benchmark infrastructure only**: the
//! `strata` binary never links or runs it at runtime.
//!
//! The server speaks real HTTP/1.1 (hyper): keep-alive, `Content-Length`, `HEAD`, single
//! `Range` requests (`bytes=a-b`, `a-`, `-n` → 206 with `Content-Range`, 416 when
//! unsatisfiable) and 404 for unknown paths. Content comes from memory
//! ([`UpstreamBuilder::file`]) or from a directory tree streamed from disk
//! ([`UpstreamBuilder::dir`]), so multi-gigabyte files are served with flat memory.
//!
//! On top of that it simulates a bad network: per-request latency, a per-connection
//! rate limit, and per-path [`Fault`]s (wrong bytes, error statuses, stalls, resets,
//! truncation, slow links) that can be changed while it runs.
//!
//! It counts what it serves ([`Upstream::stats`]); processes that cannot call the API
//! read the same counters as JSON from `GET /_upstream/stats` and zero them with
//! `POST /_upstream/reset`.
//!
//! ```
//! use std::time::Duration;
//! use strata_upstream::{Fault, UpstreamBuilder};
//!
//! let upstream = UpstreamBuilder::new()
//!     .file("pkgs/a-1.0.tgz", &b"hello"[..])
//!     .fault("pkgs/a-1.0.tgz", Fault::Status { code: 503, times: 1 })
//!     .latency(Duration::from_millis(5))
//!     .start()
//!     .unwrap();
//! let url = upstream.url("pkgs/a-1.0.tgz");
//! assert!(url.starts_with("http://127.0.0.1:"));
//! assert_eq!(upstream.requests("pkgs/a-1.0.tgz"), 0);
//! ```
//!
//! # Counting rules
//!
//! * [`Upstream::requests`] counts `GET` requests for a path, whatever their outcome
//!   (a 503 from a [`Fault::Status`] or a 404 counts too). `HEAD` requests are counted
//!   separately ([`PathStats::head`]) and are never faulted.
//! * Requests to `/_upstream/...` are neither counted nor delayed.

#![warn(missing_docs)]

mod parse;
mod server;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use parse::{FaultParseError, parse_bytes};

/// A misbehaviour injected on one URL path. Set with [`UpstreamBuilder::fault`] or
/// [`Upstream::set_fault`]; one fault per path (setting one replaces the previous one
/// and restarts its `times` count).
///
/// Faults apply to `GET` requests only; `HEAD` always answers normally. Byte offsets
/// (`after_bytes`) count bytes of the response body, so for a range request they are
/// relative to the start of the range. A fault whose `after_bytes` is at or beyond the
/// body length lets the whole body through.
///
/// A `Fault` also parses from and formats to a compact spec (`status:503:2`,
/// `stall:1MiB`, ...); see its [`FromStr`](std::str::FromStr) impl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Same length and status, corrupted content: every byte is flipped (XOR 0xFF), so
    /// any digest of the body differs.
    WrongBytes,
    /// Respond with status `code` (and a short text body) for the first `times` `GET`
    /// requests, then normally. Applies even to paths that do not exist.
    Status {
        /// The HTTP status code to answer with, e.g. 503.
        code: u16,
        /// How many requests get `code` before the path behaves normally.
        times: u32,
    },
    /// Send the headers and the first `after_bytes` body bytes, then hang forever with
    /// the connection open (until the client gives up or the server stops).
    Stall {
        /// Body bytes sent before the stall.
        after_bytes: u64,
    },
    /// Like [`Fault::Stall`], but only for the first `times` requests.
    StallTimes {
        /// Body bytes sent before the stall.
        after_bytes: u64,
        /// How many requests stall before the path behaves normally.
        times: u32,
    },
    /// Abort the connection with a TCP reset after `after_bytes` body bytes, for the
    /// first `times` requests.
    Reset {
        /// Body bytes sent before the reset.
        after_bytes: u64,
        /// How many requests are reset before the path behaves normally.
        times: u32,
    },
    /// Throttle every response body of this path to `bytes_per_sec` (on top of any
    /// connection-wide [`UpstreamBuilder::rate_limit`]).
    Slow {
        /// Body throughput cap, in bytes per second.
        bytes_per_sec: u64,
    },
    /// Declare the full `Content-Length` but close the connection (cleanly, FIN) after
    /// `after_bytes` body bytes, on every request.
    Truncate {
        /// Body bytes sent before the close.
        after_bytes: u64,
    },
    /// Ignore `Range` headers: every `GET` is answered `200` with the whole file, as by a
    /// server without range support.
    NoRanges,
}

/// Counters for one URL path, part of [`Stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    /// `GET` requests received for this path (any outcome).
    pub get: u64,
    /// `HEAD` requests received for this path.
    pub head: u64,
    /// File content bytes sent for this path (the bodies of 200 and 206 responses;
    /// short error texts such as a 404's are not counted).
    pub bytes_sent: u64,
}

/// A snapshot of what the upstream has served since it started or was last reset.
///
/// This is also the JSON body of `GET /_upstream/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// All `GET` and `HEAD` requests, for any path (control endpoints excluded).
    pub total_requests: u64,
    /// File content bytes sent, over all paths (see [`PathStats::bytes_sent`]).
    pub bytes_sent: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// The largest number of connections open at the same time.
    pub max_concurrent_connections: u64,
    /// The largest number of requests in flight at the same time (from receiving the
    /// request until its body was fully sent or dropped).
    pub max_concurrent_requests: u64,
    /// Per-path counters, keyed by the decoded URL path with its leading `/`
    /// (`"/pkgs/a-1.0.tgz"`). Includes paths that answered 404.
    pub paths: BTreeMap<String, PathStats>,
}

impl Stats {
    /// `GET` count for `url_path` (with or without its leading `/`), 0 if never requested.
    pub fn get(&self, url_path: &str) -> u64 {
        self.paths
            .get(&parse::path_key(url_path))
            .map_or(0, |p| p.get)
    }
}

/// Configures and starts an [`Upstream`].
#[derive(Debug, Clone)]
pub struct UpstreamBuilder {
    files: HashMap<String, Bytes>,
    dirs: Vec<PathBuf>,
    latency: Duration,
    rate_limit: Option<u64>,
    faults: HashMap<String, Fault>,
    addr: SocketAddr,
    log_requests: bool,
    basic_auth: Option<String>,
    tls: bool,
}

impl Default for UpstreamBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamBuilder {
    /// An upstream on `127.0.0.1:0` (a free port) serving nothing, with no latency,
    /// no rate limit and no faults.
    pub fn new() -> Self {
        Self {
            files: HashMap::new(),
            dirs: Vec::new(),
            latency: Duration::ZERO,
            rate_limit: None,
            faults: HashMap::new(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            log_requests: false,
            basic_auth: None,
            tls: false,
        }
    }

    /// Serves HTTPS instead of HTTP, with a certificate for `127.0.0.1` and `localhost`
    /// signed by a certificate authority made for this server alone: clients trust it
    /// through [`Upstream::ca_pem`] (e.g. written to a file named by `SSL_CERT_FILE`).
    /// Faults, latency and rate limits work as over HTTP.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Serves `bytes` at `/<url_path>` (a leading `/` in `url_path` is optional).
    /// In-memory files take precedence over [`dir`](Self::dir) trees.
    pub fn file(mut self, url_path: &str, bytes: impl Into<Bytes>) -> Self {
        self.files.insert(parse::path_key(url_path), bytes.into());
        self
    }

    /// Serves the regular files under `root`: `/a/b.whl` is `root/a/b.whl`. Files are
    /// streamed from disk in chunks, never read whole into memory, so files of any size
    /// work. Paths with `..` components are refused (404). May be called several times;
    /// the first tree holding a path wins.
    pub fn dir(mut self, root: &Path) -> Self {
        self.dirs.push(root.to_path_buf());
        self
    }

    /// Delays the response headers of every request by `d` (control endpoints excepted).
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// Caps response body throughput per connection at `bytes_per_sec`, with a smooth
    /// pacer that sends chunks of at most 16 KiB (smaller at low rates, so a chunk is
    /// never more than ~20 ms of budget). Requests that reuse a keep-alive connection
    /// share its budget. `0` means no limit.
    pub fn rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.rate_limit = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// Injects `fault` on `/<url_path>` from the start. See [`Fault`].
    pub fn fault(mut self, url_path: &str, fault: Fault) -> Self {
        self.faults.insert(parse::path_key(url_path), fault);
        self
    }

    /// The address to listen on; default `127.0.0.1:0` (the OS picks a free port,
    /// read it back with [`Upstream::addr`]).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Requires HTTP basic authentication with `user` and `password` on every file
    /// request: others get `401 Unauthorized` (and are counted like any request).
    pub fn require_basic_auth(mut self, user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.basic_auth = Some(format!("Basic {token}"));
        self
    }

    /// Logs one line per request (`GET /path 200 1234 bytes`) to standard error.
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }

    /// Binds the socket and starts serving on a thread of its own with its own tokio
    /// runtime, so it works from synchronous tests and from inside async tests alike.
    /// The socket is listening when this returns.
    ///
    /// # Errors
    /// Binding the address or creating the runtime or thread failed.
    pub fn start(self) -> std::io::Result<Upstream> {
        server::start(self)
    }
}

/// A running upstream. Dropping it stops the server: the listener closes and every
/// open connection (stalled ones included) is dropped.
pub struct Upstream {
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<server::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The address the server listens on (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificate authority (PEM) that signed the server's certificate, when it
    /// serves HTTPS ([`UpstreamBuilder::tls`]).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with [`UpstreamBuilder::tls`].
    pub fn origin(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The URL of `url_path`: [`origin`](Self::origin) then `/<url_path>` (a leading `/`
    /// in `url_path` is optional; it is not percent-encoded).
    pub fn url(&self, url_path: &str) -> String {
        format!("{}{}", self.origin(), parse::path_key(url_path))
    }

    /// `GET` requests received for `url_path` so far, whatever their outcome. `HEAD`
    /// requests are not included (see [`PathStats::head`]).
    pub fn requests(&self, url_path: &str) -> u64 {
        self.shared.stats().get(url_path)
    }

    /// A snapshot of all counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Zeroes all counters, like `POST /_upstream/reset`.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Sets (`Some`) or clears (`None`) the fault of `url_path` while the server runs.
    /// Setting a fault restarts its `times` count. Requests already in flight keep the
    /// behaviour they started with.
    pub fn set_fault(&self, url_path: &str, fault: Option<Fault>) {
        self.shared.set_fault(&parse::path_key(url_path), fault);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
