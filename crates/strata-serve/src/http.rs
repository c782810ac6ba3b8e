//! The HTTP transport (hyper 1, HTTP/1.1 with keep-alive): the pip simple index, the npm
//! registry, the static tree with `Range`, and dnf baseurls, all over one [`LazyTree`].
//!
//! Routes (`P` is the tree prefix, `/tree` by default):
//!
//! | path | answers |
//! |---|---|
//! | `/simple/`, `/simple/<project>/` | PEP 503 HTML or PEP 691 JSON (by `Accept`) |
//! | `/npm/<name>`, `/npm/@scope%2fname` | packument with the locked versions |
//! | `/npm/.../<name>/-/<file>.tgz` | the locked tarball |
//! | `P/<path>` | the output tree: files (with `Range`), HTML listings of directories |
//! | `/rpm/<arch>/<repoid>/<path>` | `P/deps/rpm/<arch>/<repoid>/<path>` (a dnf `baseurl`) |
//! | `/_strata/stats` | [`crate::ServeStats`] as JSON |
//!
//! Anything else, and any project, package, version or file the lockfiles do not pin, is a
//! 404 whose body says it is not locked.
//!
//! A cold file (a plain `GET` of an artifact not in the store yet) is streamed to the client
//! while the store downloads it, with the last bytes held back until the store has verified
//! the whole file: a failed verification aborts the response, so a client never receives a
//! complete wrong file (see the `stream` module). Everything else is served from verified
//! store entries; files up to [`SMALL_FILE`] bytes in one read.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use strata_tree::{Node, NodeId};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

use crate::index::{self, Catalog};
use crate::lazy::LazyTree;
use crate::names::{NpmRequest, encode_path, parse_npm_path, percent_decode};
use crate::range::{RangeOutcome, parse_range};
use crate::stream;

type Body = BoxBody<Bytes, io::Error>;

/// Store entries up to this size are read into memory in one go and sent with their
/// length (most wheels and npm tarballs); larger ones are streamed from the file.
pub const SMALL_FILE: u64 = 1 << 20;

/// How the HTTP server lays out its URLs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The path prefix of the static tree, e.g. `/tree` (leading `/`, no trailing `/`).
    pub tree_prefix: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            tree_prefix: "/tree".into(),
        }
    }
}

impl HttpOptions {
    /// Normalises a user-given prefix (`tree`, `/tree/`, `/`) to `/tree` form (`""` for the
    /// root). Rejects prefixes that would shadow `/simple`, `/npm`, `/rpm` or `/_strata`.
    pub fn with_prefix(prefix: &str) -> Result<HttpOptions, String> {
        let trimmed = prefix.trim_matches('/');
        let first = trimmed.split('/').next().unwrap_or("");
        if trimmed.is_empty() || ["simple", "npm", "rpm", "_strata"].contains(&first) {
            return Err(format!(
                "the tree prefix `{prefix}` would hide the /simple, /npm, /rpm or /_strata \
                 routes; pick another, such as /tree"
            ));
        }
        if trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!("the tree prefix `{prefix}` is not a clean path"));
        }
        Ok(HttpOptions {
            tree_prefix: format!("/{trimmed}"),
        })
    }
}

struct State {
    lazy: Arc<LazyTree>,
    catalog: Catalog,
    options: HttpOptions,
    local: SocketAddr,
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve_http(
    listener: TcpListener,
    lazy: Arc<LazyTree>,
    options: HttpOptions,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let catalog = Catalog::new(lazy.artifacts());
    let state = Arc::new(State {
        lazy,
        catalog,
        options,
        local,
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let body: Bytes = body.into();
    let mut r = Response::new(Full::new(body).map_err(|e: Infallible| match e {}).boxed());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", body + "\n")
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = text(StatusCode::MOVED_PERMANENTLY, format!("see {to}"));
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl State {
    fn not_locked(&self, what: &str) -> Response<Body> {
        self.lazy.count_not_locked();
        text(
            StatusCode::NOT_FOUND,
            format!(
                "strata serve: {what} is not locked: this server only serves what the lockfiles it \
                 was started with pin (add it to a lockfile and restart `strata serve`)"
            ),
        )
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "strata serve is read-only: only GET and HEAD".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path().to_owned();
    let mut response = route(state, &req, &path).await;
    if head {
        let (parts, _) = response.into_parts();
        response = Response::from_parts(parts, Empty::new().map_err(|e| match e {}).boxed());
    }
    tracing::debug!("{} {path} {}", req.method(), response.status());
    response
}

async fn route(state: &State, req: &Request<Incoming>, path: &str) -> Response<Body> {
    let prefix = state.options.tree_prefix.as_str();
    if path == "/" {
        return landing(state);
    }
    if path == "/simple" {
        return redirect("/simple/");
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        return simple(state, req, rest);
    }
    if let Some(rest) = path.strip_prefix("/npm/") {
        return npm(state, req, rest).await;
    }
    if path == "/_strata/stats" {
        let body = serde_json::to_string(&state.lazy.stats()).expect("stats serialise");
        return full(StatusCode::OK, "application/json", body);
    }
    if let Some(rest) = path.strip_prefix("/rpm/") {
        return tree(state, req, &format!("deps/rpm/{rest}"), path).await;
    }
    if path == prefix {
        return redirect(&format!("{prefix}/"));
    }
    if let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
        return tree(state, req, rest, path).await;
    }
    state.not_locked(&format!("`{path}`"))
}

fn landing(state: &State) -> Response<Body> {
    let prefix = &state.options.tree_prefix;
    full(
        StatusCode::OK,
        "text/html; charset=utf-8",
        format!(
            "<!DOCTYPE html>\n<html><head><title>strata serve</title></head><body>\n\
             <h1>strata serve</h1>\n<ul>\n\
             <li><a href=\"/simple/\">/simple/</a>: pip/uv index (--index-url http://HOST/simple)</li>\n\
             <li>/npm/: npm registry (--registry http://HOST/npm/)</li>\n\
             <li><a href=\"{prefix}/\">{prefix}/</a>: the output tree</li>\n\
             <li>/rpm/&lt;arch&gt;/&lt;repoid&gt;/: dnf baseurls</li>\n\
             <li><a href=\"/_strata/stats\">/_strata/stats</a></li>\n</ul>\n</body></html>\n"
        ),
    )
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn simple(state: &State, req: &Request<Incoming>, rest: &str) -> Response<Body> {
    let Some(format) = index::negotiate(header_str(req, header::ACCEPT)) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "strata serve offers application/vnd.pypi.simple.v1+json, \
             application/vnd.pypi.simple.v1+html and text/html"
                .into(),
        );
    };
    let artifacts = state.lazy.artifacts();
    let body = if rest.is_empty() {
        index::simple_root(
            state.catalog.pip_projects().map(|p| p.0),
            format,
            "/simple/",
        )
    } else {
        let Some(name) = percent_decode(rest) else {
            return state.not_locked("this project");
        };
        let (name, slash) = match name.strip_suffix('/') {
            Some(n) => (n.to_owned(), true),
            None => (name, false),
        };
        if name.contains('/') {
            return state.not_locked(&format!("`/simple/{rest}`"));
        }
        let Some(files) = state.catalog.pip_project(&name) else {
            return state.not_locked(&format!("the Python project `{name}`"));
        };
        if !slash {
            return redirect(&format!("/simple/{}/", encode_path(&name)));
        }
        let files: Vec<_> = files.iter().map(|&i| &artifacts[i]).collect();
        let normalized = crate::names::normalize_project(&name);
        index::simple_project(
            &normalized,
            &files,
            format,
            &format!("{}/", state.options.tree_prefix),
        )
    };
    let mut r = full(StatusCode::OK, format.content_type(), body);
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// The URL clients reached us at (for absolute tarball URLs): the Host header, else the
/// listening address.
fn base_url(state: &State, req: &Request<Incoming>) -> String {
    let host = header_str(req, header::HOST)
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.local.to_string());
    format!("http://{host}")
}

async fn npm(state: &State, req: &Request<Incoming>, rest: &str) -> Response<Body> {
    let artifacts = state.lazy.artifacts();
    match parse_npm_path(rest) {
        None => state.not_locked(&format!("`/npm/{rest}`")),
        Some(NpmRequest::Packument(name)) => {
            let Some(versions) = state.catalog.npm_package(&name) else {
                return state.not_locked(&format!("the npm package `{name}`"));
            };
            let versions: Vec<_> = versions.iter().map(|&i| &artifacts[i]).collect();
            let registry = format!("{}/npm", base_url(state, req));
            let doc = index::packument(&name, &versions, &registry);
            full(StatusCode::OK, "application/json", doc.to_string())
        }
        Some(NpmRequest::Tarball { name, file }) => {
            let Some(index) = state.catalog.npm_tarball(&name, &file) else {
                return state.not_locked(&format!("the npm tarball `{name}/-/{file}`"));
            };
            let Some(id) = state.lazy.tree().resolve(&artifacts[index].path) else {
                return state.not_locked(&format!("the npm tarball `{name}/-/{file}`"));
            };
            file_response(state, req, id).await
        }
    }
}

async fn tree(state: &State, req: &Request<Incoming>, rel: &str, shown: &str) -> Response<Body> {
    let Some(decoded) = percent_decode(rel) else {
        return state.not_locked(&format!("`{shown}`"));
    };
    let t = state.lazy.tree();
    let Some(id) = t.resolve(&decoded) else {
        return state.not_locked(&format!("`{shown}`"));
    };
    match t.node(id) {
        Some(Node::Dir) => {
            if !shown.ends_with('/') {
                return redirect(&format!("{shown}/"));
            }
            listing(state, id, shown)
        }
        Some(_) => file_response(state, req, id).await,
        None => state.not_locked(&format!("`{shown}`")),
    }
}

/// An HTML listing (pip's `--find-links` reads it too).
fn listing(state: &State, id: NodeId, shown: &str) -> Response<Body> {
    let t = state.lazy.tree();
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><title>Index of {shown}</title></head><body>\n<h1>Index of {shown}</h1>\n<pre>\n"
    );
    if id != NodeId::ROOT {
        out.push_str("<a href=\"../\">../</a>\n");
    }
    for e in t.children(id).into_iter().flatten() {
        let slash = if matches!(e.node, Node::Dir) { "/" } else { "" };
        let size = state
            .lazy
            .known_size(e.id)
            .map(|s| format!("  {s}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "<a href=\"{}{slash}\">{}{slash}</a>{size}\n",
            encode_path(e.name),
            e.name.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    out.push_str("</pre>\n</body></html>\n");
    full(StatusCode::OK, "text/html; charset=utf-8", out)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "json" => "application/json",
        "xml" => "application/xml",
        "repo" | "txt" => "text/plain; charset=utf-8",
        "gz" | "tgz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

async fn file_response(state: &State, req: &Request<Incoming>, id: NodeId) -> Response<Body> {
    let t = state.lazy.tree();
    let name = t.name(id).unwrap_or("").to_owned();
    let range = header_str(req, header::RANGE).map(str::to_owned);
    let (len, source, etag): (u64, FileSource, Option<String>) = match t.node(id) {
        Some(Node::Generated(bytes)) => (
            bytes.len() as u64,
            FileSource::Memory(Bytes::copy_from_slice(bytes)),
            None,
        ),
        Some(Node::Artifact(i)) => {
            let artifact = &state.lazy.artifacts()[*i];
            let etag = Some(format!("\"{}\"", artifact.store_digest()));
            if req.method() == Method::GET && range.is_none() && !state.lazy.is_cached(*i) {
                match stream::open_cold(state.lazy.clone(), *i).await {
                    stream::Cold::Streaming(body) => {
                        let body = StreamBody::new(body.into_stream()).boxed();
                        return file_headers(Response::new(body), &name, artifact.size, None, etag);
                    }
                    stream::Cold::Done(Ok(opened)) => {
                        (opened.len, FileSource::Store(opened.path), etag)
                    }
                    stream::Cold::Done(Err(e)) => {
                        return text(
                            StatusCode::BAD_GATEWAY,
                            format!("strata serve: could not fetch {name}: {e}"),
                        );
                    }
                }
            } else if req.method() == Method::HEAD
                && let Some(size) = state.lazy.artifact_size(*i)
            {
                // HEAD never downloads when the size is known.
                (size, FileSource::Nothing, etag)
            } else {
                match state.lazy.open(*i).await {
                    Ok(opened) => (opened.len, FileSource::Store(opened.path), etag),
                    Err(e) => {
                        return text(
                            StatusCode::BAD_GATEWAY,
                            format!("strata serve: could not fetch {name}: {e}"),
                        );
                    }
                }
            }
        }
        _ => return state.not_locked(&format!("`{name}`")),
    };
    let (status, start, count) = match parse_range(range.as_deref(), len) {
        RangeOutcome::Full => (StatusCode::OK, 0, len),
        RangeOutcome::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            let mut r = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable".into(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body: Body = match source {
        FileSource::Nothing => Empty::new().map_err(|e| match e {}).boxed(),
        FileSource::Memory(bytes) => {
            Full::new(bytes.slice(start as usize..(start + count) as usize))
                .map_err(|e: Infallible| match e {})
                .boxed()
        }
        FileSource::Store(path) if count <= SMALL_FILE => {
            match read_at(path.clone(), start, count).await {
                Ok(bytes) => Full::new(Bytes::from(bytes))
                    .map_err(|e: Infallible| match e {})
                    .boxed(),
                Err(e) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!(
                            "strata serve: could not read the store entry {}: {e}",
                            path.display()
                        ),
                    );
                }
            }
        }
        FileSource::Store(path) => match open_at(&path, start).await {
            Ok(file) => {
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 * 1024);
                StreamBody::new(stream.map_ok(Frame::data)).boxed()
            }
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "strata serve: could not read the store entry {}: {e}",
                        path.display()
                    ),
                );
            }
        },
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let partial = (status == StatusCode::PARTIAL_CONTENT).then_some((start, len));
    file_headers(r, &name, Some(count), partial, etag)
}

/// Sets a file response's headers: type, length (when known: a streamed cold file of
/// unknown size goes chunked), ranges, and for artifacts the digest as `ETag` with
/// immutable caching (the URL of a locked file never changes content).
fn file_headers(
    mut r: Response<Body>,
    name: &str,
    count: Option<u64>,
    partial: Option<(u64, u64)>,
    etag: Option<String>,
) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    if let Some(count) = count {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let (Some((start, len)), Some(count)) = (partial, count)
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert(header::ETAG, etag);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    r
}

enum FileSource {
    Nothing,
    Memory(Bytes),
    Store(std::path::PathBuf),
}

/// `count` bytes of `path` from `start`, in one blocking-pool trip (instead of one per
/// chunk, plus the open's, as a streamed small file would take).
async fn read_at(path: std::path::PathBuf, start: u64, count: u64) -> io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(&path)?;
        let mut buf = vec![0; count as usize];
        file.read_exact_at(&mut buf, start)?;
        Ok(buf)
    })
    .await
    .map_err(io::Error::other)?
}

/// `path` opened and positioned at `start`.
pub(crate) async fn open_at(path: &std::path::Path, start: u64) -> io::Result<tokio::fs::File> {
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await?;
    }
    Ok(file)
}
