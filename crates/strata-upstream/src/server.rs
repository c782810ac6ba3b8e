//! The hyper server: accept loop, request handling, paced and faulty bodies.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, RANGE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::{TcpListener, TcpStream};

use crate::parse::{RangeOutcome, parse_range, path_key, percent_decode};
use crate::{Fault, Stats, Upstream, UpstreamBuilder};

type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Chunk size for bodies that are not rate limited.
const FAST_CHUNK: u64 = 256 * 1024;
/// Largest chunk a paced body sends at once.
const PACED_CHUNK_MAX: u64 = 16 * 1024;

/// State shared by the server thread and the [`Upstream`] handle.
pub(crate) struct Shared {
    files: HashMap<String, Bytes>,
    dirs: Vec<PathBuf>,
    latency: Duration,
    rate_limit: Option<u64>,
    log_requests: bool,
    basic_auth: Option<String>,
    faults: Mutex<HashMap<String, FaultState>>,
    counters: Mutex<Counters>,
}

struct FaultState {
    fault: Fault,
    /// Requests that have had the fault so far (for the `times` variants).
    hits: u32,
}

#[derive(Default)]
struct Counters {
    stats: Stats,
    open_connections: u64,
    open_requests: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data inconsistent
    // (only counters and maps), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        lock(&self.counters).stats.clone()
    }

    pub(crate) fn reset_stats(&self) {
        let mut c = lock(&self.counters);
        c.stats = Stats {
            max_concurrent_connections: c.open_connections,
            max_concurrent_requests: c.open_requests,
            ..Stats::default()
        };
    }

    pub(crate) fn set_fault(&self, key: &str, fault: Option<Fault>) {
        let mut faults = lock(&self.faults);
        match fault {
            Some(fault) => {
                faults.insert(key.to_owned(), FaultState { fault, hits: 0 });
            }
            None => {
                faults.remove(key);
            }
        }
    }

    fn count_request(&self, key: &str, head: bool) {
        let mut c = lock(&self.counters);
        c.stats.total_requests += 1;
        let path = c.stats.paths.entry(key.to_owned()).or_default();
        if head {
            path.head += 1;
        } else {
            path.get += 1;
        }
    }

    fn count_bytes(&self, key: &str, n: u64) {
        let mut c = lock(&self.counters);
        c.stats.bytes_sent += n;
        c.stats.paths.entry(key.to_owned()).or_default().bytes_sent += n;
    }

    /// Decides which fault (if any) this GET gets, consuming one of its `times`.
    fn take_fault(&self, key: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let state = faults.get_mut(key)?;
        let limited = match state.fault {
            Fault::Status { times, .. }
            | Fault::StallTimes { times, .. }
            | Fault::Reset { times, .. } => Some(times),
            _ => None,
        };
        match limited {
            Some(times) if state.hits >= times => None,
            Some(_) => {
                state.hits += 1;
                Some(state.fault.clone())
            }
            None => Some(state.fault.clone()),
        }
    }

    /// Whether the path ignores `Range` headers ([`Fault::NoRanges`]).
    fn ignores_ranges(&self, key: &str) -> bool {
        lock(&self.faults)
            .get(key)
            .is_some_and(|s| matches!(s.fault, Fault::NoRanges))
    }

    /// Peeks whether the path has a `Status` fault left, without consuming it.
    fn has_status_fault(&self, key: &str) -> bool {
        lock(&self.faults)
            .get(key)
            .is_some_and(|s| matches!(s.fault, Fault::Status { times, .. } if s.hits < times))
    }
}

/// Counts a connection as open until dropped.
struct ConnectionGuard(Arc<Shared>);

impl ConnectionGuard {
    fn new(shared: Arc<Shared>) -> Self {
        let mut c = lock(&shared.counters);
        c.open_connections += 1;
        c.stats.connections += 1;
        c.stats.max_concurrent_connections =
            c.stats.max_concurrent_connections.max(c.open_connections);
        drop(c);
        Self(shared)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        lock(&self.0.counters).open_connections -= 1;
    }
}

/// Counts a request as in flight until dropped (it lives in the body stream).
struct RequestGuard(Arc<Shared>);

impl RequestGuard {
    fn new(shared: Arc<Shared>) -> Self {
        let mut c = lock(&shared.counters);
        c.open_requests += 1;
        c.stats.max_concurrent_requests = c.stats.max_concurrent_requests.max(c.open_requests);
        drop(c);
        Self(shared)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        lock(&self.0.counters).open_requests -= 1;
    }
}

/// A smooth pacer: each chunk is sent no earlier than the previous one plus the
/// chunk's share of the rate. Idle time does not accumulate into a burst.
struct Pacer {
    bytes_per_sec: u64,
    next: Instant,
}

impl Pacer {
    fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec,
            next: Instant::now(),
        }
    }

    /// Reserves `n` bytes of budget; returns when they may be sent.
    fn reserve(&mut self, n: u64) -> Instant {
        let start = self.next.max(Instant::now());
        self.next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
        start
    }

    fn chunk(bytes_per_sec: u64) -> u64 {
        (bytes_per_sec / 50).clamp(1, PACED_CHUNK_MAX)
    }
}

/// Per-connection state handed to every request on the connection.
struct ConnectionCtx {
    pacer: Option<Arc<Mutex<Pacer>>>,
    signals: Arc<IoSignals>,
}

/// How a body talks to the socket under it (both live in the connection's task).
struct IoSignals {
    /// Set by a body that injects a reset: the socket is then closed with SO_LINGER 0.
    reset: AtomicBool,
    /// Set by a body that wants to know when everything before it reached the socket.
    flush_wanted: AtomicBool,
    /// Bumped when a flush completes while `flush_wanted` was set. hyper flushes the
    /// socket only once its own buffer is empty, so then every byte the body handed
    /// to hyper (and the headers) has been written.
    flushed: tokio::sync::watch::Sender<u64>,
}

impl IoSignals {
    fn new() -> Self {
        Self {
            reset: AtomicBool::new(false),
            flush_wanted: AtomicBool::new(false),
            flushed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Waits until hyper has written everything handed to it so far. Must be awaited
    /// from the body, whose `Pending` makes hyper flush.
    async fn wait_flushed(&self) {
        let mut rx = self.flushed.subscribe();
        self.flush_wanted.store(true, Ordering::SeqCst);
        let _ = rx.changed().await;
    }
}

/// A connection's byte stream: plain TCP, or TLS over TCP.
trait Socket: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket underneath (for the RST of an injected reset).
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// The connection's socket: reports flushes to [`IoSignals`] and is closed with a TCP
/// RST instead of a FIN once a reset was injected.
struct ConnIo<S: Socket> {
    inner: TokioIo<S>,
    signals: Arc<IoSignals>,
}

impl<S: Socket> hyper::rt::Read for ConnIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Socket> hyper::rt::Write for ConnIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(())))
            && self.signals.flush_wanted.swap(false, Ordering::SeqCst)
        {
            self.signals.flushed.send_modify(|n| *n += 1);
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.signals.reset.load(Ordering::SeqCst) {
            // No FIN: the drop below aborts the connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl<S: Socket> Drop for ConnIo<S> {
    fn drop(&mut self) {
        if self.signals.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0: close() sends RST and discards unsent data.
            let _ = self.inner.inner().tcp().set_zero_linger();
        }
    }
}

pub(crate) fn start(builder: UpstreamBuilder) -> io::Result<Upstream> {
    let UpstreamBuilder {
        files,
        dirs,
        latency,
        rate_limit,
        faults,
        addr,
        log_requests,
        basic_auth,
        tls,
    } = builder;
    let tls = if tls {
        Some(crate::tls::identity()?)
    } else {
        None
    };
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let shared = Arc::new(Shared {
        files,
        dirs,
        latency,
        rate_limit,
        log_requests,
        basic_auth,
        faults: Mutex::new(
            faults
                .into_iter()
                .map(|(k, fault)| (k, FaultState { fault, hits: 0 }))
                .collect(),
        ),
        counters: Mutex::new(Counters::default()),
    });

    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("strata-upstream")
        .enable_all()
        .build()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name(format!("strata-upstream {addr}"))
        .spawn(move || {
            runtime.block_on(accept_loop(listener, acceptor, server_shared, rx));
            // Drops every connection task, stalled ones included.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
    Ok(Upstream {
        addr,
        ca_pem,
        shared,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("strata-upstream: cannot register the listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    match acceptor.clone() {
                        None => {
                            tokio::spawn(serve_connection(stream, shared));
                        }
                        Some(acceptor) => {
                            tokio::spawn(async move {
                                // A failed handshake (an untrusting client) ends here.
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    serve_connection(tls, shared).await;
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // E.g. EMFILE under a flood of connections: back off, keep serving.
                    eprintln!("strata-upstream: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

async fn serve_connection(stream: impl Socket, shared: Arc<Shared>) {
    let _guard = ConnectionGuard::new(shared.clone());
    let signals = Arc::new(IoSignals::new());
    let ctx = Arc::new(ConnectionCtx {
        pacer: shared
            .rate_limit
            .map(|r| Arc::new(Mutex::new(Pacer::new(r)))),
        signals: signals.clone(),
    });
    let io = ConnIo {
        inner: TokioIo::new(stream),
        signals,
    };
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(req, shared, ctx).await) }
    });
    // Errors here are client disconnects or injected faults; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service)
        .await;
}

fn simple(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::copy_from_slice(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    ctx: Arc<ConnectionCtx>,
) -> Response<Body> {
    let raw_path = req.uri().path().to_owned();
    if let Some(control) = raw_path.strip_prefix("/_upstream/") {
        return control_endpoint(req.method(), control, &shared);
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut resp = simple(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
    };
    let Some(decoded) = percent_decode(&raw_path) else {
        return simple(StatusCode::BAD_REQUEST, "bad percent-encoding in path\n");
    };
    let key = path_key(&decoded);
    shared.count_request(&key, head);
    let guard = RequestGuard::new(shared.clone());
    if let Some(expected) = &shared.basic_auth {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let mut resp = simple(StatusCode::UNAUTHORIZED, "authentication required\n");
            resp.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"strata-upstream\""),
            );
            return resp;
        }
    }

    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }

    let resp = respond(&req, head, &key, &shared, &ctx, guard).await;
    if shared.log_requests {
        let len = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        eprintln!(
            "strata-upstream: {} {raw_path} {} {len} bytes",
            req.method(),
            resp.status().as_u16()
        );
    }
    resp
}

fn control_endpoint(method: &Method, what: &str, shared: &Shared) -> Response<Body> {
    match (method, what) {
        (&Method::GET, "stats") => {
            let json = serde_json::to_vec_pretty(&shared.stats()).unwrap_or_default();
            let mut resp = Response::new(
                Full::new(Bytes::from(json))
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            );
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        (&Method::POST, "reset") => {
            shared.reset_stats();
            simple(StatusCode::OK, "counters reset\n")
        }
        (_, "stats" | "reset") => simple(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /_upstream/stats or POST /_upstream/reset\n",
        ),
        _ => simple(StatusCode::NOT_FOUND, "unknown control endpoint\n"),
    }
}

/// Where a body comes from.
enum Source {
    Memory(Bytes),
    /// A file positioned at the first byte to send, and what was read ahead of it
    /// (reads are `FAST_CHUNK` sized even when paced chunks are smaller).
    File(tokio::fs::File, Bytes),
}

async fn respond(
    req: &Request<Incoming>,
    head: bool,
    key: &str,
    shared: &Arc<Shared>,
    ctx: &ConnectionCtx,
    guard: RequestGuard,
) -> Response<Body> {
    let fault = if head {
        None
    } else if shared.has_status_fault(key) {
        shared.take_fault(key)
    } else {
        None
    };
    if let Some(Fault::Status { code, .. }) = fault {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return simple(status, "strata-upstream: injected status\n");
    }

    let (source, len) = match lookup(shared, key).await {
        Ok(Some(found)) => found,
        Ok(None) => return simple(StatusCode::NOT_FOUND, "not found\n"),
        Err(e) => {
            return simple(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read {key}: {e}\n"),
            );
        }
    };

    let range = req
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !shared.ignores_ranges(key))
        .map_or(RangeOutcome::Full, |h| parse_range(h, len));
    let (status, start, body_len) = match range {
        RangeOutcome::Full => (StatusCode::OK, 0, len),
        RangeOutcome::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            let mut resp = simple(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            resp.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii header"),
            );
            return resp;
        }
    };

    let mut resp = Response::new(empty_body());
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body_len));
    if !shared.ignores_ranges(key) {
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + body_len - 1;
        headers.insert(
            CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii header"),
        );
    }
    if head {
        return resp;
    }

    let source = match source {
        Source::Memory(bytes) => {
            Source::Memory(bytes.slice(start as usize..(start + body_len) as usize))
        }
        Source::File(mut file, _) => {
            if let Err(e) = file.seek(io::SeekFrom::Start(start)).await {
                return simple(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot seek {key}: {e}\n"),
                );
            }
            Source::File(file, Bytes::new())
        }
    };

    let fault = shared.take_fault(key);
    let mut body = BodyState {
        source,
        sent: 0,
        len: body_len,
        wrong_bytes: false,
        cut: None,
        path_pacer: None,
        conn_pacer: ctx.pacer.clone(),
        signals: ctx.signals.clone(),
        shared: shared.clone(),
        key: key.to_owned(),
        _guard: guard,
    };
    match fault {
        None | Some(Fault::Status { .. } | Fault::NoRanges) => {}
        Some(Fault::WrongBytes) => body.wrong_bytes = true,
        Some(Fault::Slow { bytes_per_sec }) => {
            body.path_pacer = Some(Pacer::new(bytes_per_sec.max(1)));
        }
        Some(Fault::Stall { after_bytes } | Fault::StallTimes { after_bytes, .. }) => {
            body.cut = Some((after_bytes, Cut::Stall));
        }
        Some(Fault::Reset { after_bytes, .. }) => body.cut = Some((after_bytes, Cut::Reset)),
        Some(Fault::Truncate { after_bytes }) => body.cut = Some((after_bytes, Cut::Truncate)),
    }
    if body.cut.is_some_and(|(at, _)| at >= body_len) {
        body.cut = None;
    }
    let stream = futures_util::stream::unfold(body, BodyState::next_frame);
    *resp.body_mut() = BodyExt::boxed_unsync(StreamBody::new(stream));
    resp
}

/// Finds the content of `key`: in-memory files first, then the directory trees.
async fn lookup(shared: &Shared, key: &str) -> io::Result<Option<(Source, u64)>> {
    if let Some(bytes) = shared.files.get(key) {
        return Ok(Some((Source::Memory(bytes.clone()), bytes.len() as u64)));
    }
    let Some(relative) = safe_relative(key) else {
        return Ok(None);
    };
    for root in &shared.dirs {
        let path = root.join(&relative);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        let file = tokio::fs::File::open(&path).await?;
        return Ok(Some((Source::File(file, Bytes::new()), meta.len())));
    }
    Ok(None)
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `/a/b` → `a/b`, refusing anything that could leave the root (`..`, absolute parts).
fn safe_relative(key: &str) -> Option<PathBuf> {
    let relative = Path::new(key.trim_start_matches('/'));
    let mut out = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty() && !key.contains('\0')).then_some(out)
}

/// What happens when a body reaches its fault's byte offset.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Stall,
    Reset,
    Truncate,
}

/// One response body being sent: the state of the `unfold` stream.
struct BodyState {
    source: Source,
    sent: u64,
    len: u64,
    wrong_bytes: bool,
    cut: Option<(u64, Cut)>,
    path_pacer: Option<Pacer>,
    conn_pacer: Option<Arc<Mutex<Pacer>>>,
    signals: Arc<IoSignals>,
    shared: Arc<Shared>,
    key: String,
    _guard: RequestGuard,
}

type Step = Option<(Result<Frame<Bytes>, io::Error>, BodyState)>;

impl BodyState {
    async fn next_frame(mut self) -> Step {
        if let Some((at, cut)) = self.cut
            && self.sent >= at
        {
            if let Cut::Stall = cut {
                // hyper flushes what it has while the body is pending.
                std::future::pending::<()>().await;
            }
            // Let the bytes sent so far (and the headers) reach the socket first: an
            // error makes hyper drop its buffer along with the connection.
            self.signals.wait_flushed().await;
            if let Cut::Reset = cut {
                self.signals.reset.store(true, Ordering::SeqCst);
            }
            // An error makes hyper drop the connection mid-body; `len` is not reached.
            self.len = self.sent;
            self.cut = None;
            let err = io::Error::new(io::ErrorKind::ConnectionAborted, "injected fault");
            return Some((Err(err), self));
        }
        if self.sent >= self.len {
            return None;
        }

        let mut n = self.len - self.sent;
        if let Some((at, _)) = self.cut {
            n = n.min(at - self.sent);
        }
        let conn_rate = self.conn_pacer.as_ref().map(|p| lock(p).bytes_per_sec);
        let path_rate = self.path_pacer.as_ref().map(|p| p.bytes_per_sec);
        let chunk = [conn_rate, path_rate]
            .into_iter()
            .flatten()
            .map(Pacer::chunk)
            .min()
            .unwrap_or(FAST_CHUNK);
        n = n.min(chunk);

        let mut send_at: Option<Instant> = None;
        if let Some(pacer) = &self.conn_pacer {
            send_at = Some(lock(pacer).reserve(n));
        }
        if let Some(pacer) = &mut self.path_pacer {
            let t = pacer.reserve(n);
            send_at = Some(send_at.map_or(t, |s| s.max(t)));
        }
        if let Some(t) = send_at
            && t > Instant::now()
        {
            tokio::time::sleep_until(t.into()).await;
        }

        let data = match &mut self.source {
            Source::Memory(bytes) => {
                let from = self.sent as usize;
                bytes.slice(from..from + n as usize)
            }
            Source::File(file, ahead) => {
                if ahead.is_empty() {
                    let want = (self.len - self.sent).min(FAST_CHUNK.max(n));
                    match read_chunk(file, want as usize).await {
                        Ok(data) => *ahead = data,
                        Err(e) => {
                            self.len = self.sent;
                            return Some((Err(e), self));
                        }
                    }
                }
                ahead.split_to((n as usize).min(ahead.len()))
            }
        };
        let data = if self.wrong_bytes {
            data.iter().map(|b| b ^ 0xFF).collect::<Vec<u8>>().into()
        } else {
            data
        };
        self.sent += n;
        self.shared.count_bytes(&self.key, n);
        Some((Ok(Frame::data(data)), self))
    }
}

/// Reads exactly `n` bytes (the file shrinking under us is an error).
async fn read_chunk(file: &mut tokio::fs::File, n: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(n);
    while buf.len() < n {
        let mut limited = (&mut *file).take((n - buf.len()) as u64);
        if limited.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being served",
            ));
        }
    }
    Ok(buf.freeze())
}
