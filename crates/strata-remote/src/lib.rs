//! strata-remote: the remote tier of the store, kept in an OCI registry.
//!
//! A registry is a content-addressed blob store that teams already run. With
//! `--remote oci://HOST[:PORT]/REPO` (or `STRATA_REMOTE`), a store miss first asks the
//! registry for the artifact's blob by digest (`GET /v2/<REPO>/blobs/sha256:<hex>`), then the
//! upstream; what comes from the upstream is pushed as a blob (monolithic upload, or chunked
//! for large files), so a fleet of machines downloads each artifact from the internet once.
//!
//! # Digest mapping (npm's sha512 and other non-sha256 digests)
//!
//! Registries address blobs by sha256 only. An artifact whose lockfile gives no sha256 (npm's
//! `integrity` is sha512) is mapped through a **tag per mapping** in the same repository whose
//! *name* carries the mapping: `sha512-<first 56 hex digits>-<sha256 hex>` (tags are at most
//! 128 characters; `sha1-<40>-<64>`). The tag names a small OCI image manifest whose single
//! layer is the artifact's blob and whose annotation `dev.strata.digest` holds the full
//! `alg:hex` digest (its config is the OCI empty descriptor), so registry garbage collection
//! keeps the blob alive. A reader lists the repository's tags **once** (`tags/list`,
//! paginated; listed again at most every [`LISTING_REFRESH`] when an artifact is not in it)
//! and fetches blobs directly: one request per artifact, as for sha256 artifacts, instead of
//! a manifest GET plus a blob GET. The store verifies the bytes against the lockfile's full
//! digest in any case, so a wrong or colliding mapping can cost a download but never corrupt
//! a build. A tag per mapping needs no read-modify-write of a shared index, so concurrent
//! writers never lose each other's entries.
//!
//! # Failure handling
//!
//! Every registry error degrades to the upstream with a warning. After a connection-level
//! failure (registry down, refused, timed out) the tier marks itself down and stays silent
//! for the rest of the process, so a dead registry costs one warning and one connect
//! timeout, not one per artifact.
//!
//! This crate never verifies or places bytes itself: it implements
//! [`strata_store::RemoteTier`] and the store does the rest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use serde::Serialize;
use strata_lock::{Algorithm, Artifact, Digest};
use strata_store::{BoxFuture, PendingEntry, RemoteTier};
use tokio::sync::{Mutex, OnceCell, Semaphore};

/// Media type of the mapping manifests.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The annotation holding the full lockfile digest in a mapping manifest.
pub const DIGEST_ANNOTATION: &str = "dev.strata.digest";
/// The OCI empty descriptor's content (`{}`), used as the mapping manifests' config.
pub const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// How long a tag listing is trusted before an artifact missing from it makes the tier list
/// again (a long-running `strata serve` sees what other machines pushed since).
pub const LISTING_REFRESH: Duration = Duration::from_secs(30);
/// Tags asked for per `tags/list` page.
const LISTING_PAGE: usize = 1000;
/// Pages read at most: a repository with more mappings than this is listed partially (the
/// rest are misses, costing upstream downloads, never failures).
const LISTING_MAX_PAGES: usize = 200;

/// A parsed `--remote` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// `http://HOST:PORT` or `https://HOST[:PORT]` (no trailing `/`).
    pub base: String,
    /// The repository, e.g. `strata/cache`.
    pub repo: String,
}

impl RemoteSpec {
    /// Parses `oci://HOST[:PORT]/REPO`. Plain HTTP is used for loopback hosts (`127.0.0.1`,
    /// `localhost`, `[::1]`) and with the `oci+http://` scheme; HTTPS otherwise
    /// (`oci+https://` forces it).
    pub fn parse(spec: &str) -> Result<RemoteSpec, String> {
        let bad = |why: &str| {
            format!("`{spec}` is not a remote tier: {why}; expected oci://HOST[:PORT]/REPO")
        };
        let (scheme, rest) = spec.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let forced = match scheme {
            "oci" => None,
            "oci+http" => Some("http"),
            "oci+https" => Some("https"),
            _ => return Err(bad(&format!("unknown scheme `{scheme}`"))),
        };
        let (host, repo) = rest.split_once('/').ok_or_else(|| bad("no repository"))?;
        let repo = repo.trim_end_matches('/');
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host (credentials in the URL are not supported)"));
        }
        let repo_ok = !repo.is_empty()
            && repo.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
                    && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            });
        if !repo_ok {
            return Err(bad(&format!(
                "`{repo}` is not a repository name (lower-case letters, digits, `._-`, `/`)"
            )));
        }
        let hostname = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let loopback =
            matches!(hostname, "127.0.0.1" | "localhost" | "[::1]") || hostname.starts_with("127.");
        let scheme = forced.unwrap_or(if loopback { "http" } else { "https" });
        Ok(RemoteSpec {
            base: format!("{scheme}://{host}"),
            repo: repo.to_owned(),
        })
    }

    /// The spec as the user would write it (for messages).
    pub fn display(&self) -> String {
        let host = self.base.split_once("://").map_or("", |(_, h)| h);
        format!("oci://{host}/{}", self.repo)
    }
}

/// The sha256 under which the registry holds an artifact, when the lockfile gives one.
pub fn blob_digest(artifact: &Artifact) -> Option<&Digest> {
    artifact
        .digests
        .iter()
        .find(|d| d.algorithm == Algorithm::Sha256)
}

/// The key under which a non-sha256 digest's mapping is listed: `<alg>-<leading hex>`, the
/// part of its tag before the sha256 (`None` for sha256: no mapping needed).
pub fn mapping_key(digest: &Digest) -> Option<String> {
    if digest.algorithm == Algorithm::Sha256 {
        return None;
    }
    // Tags are at most 128 characters: `<alg>-`, the key's hex, `-` and 64 hex digits.
    let alg = digest.algorithm.to_string();
    let room = 128 - alg.len() - 2 - 64;
    let hex = digest.hex();
    Some(format!("{alg}-{}", &hex[..hex.len().min(room)]))
}

/// The tag of the mapping of a non-sha256 `digest` to the blob `sha256`:
/// `<alg>-<leading hex of digest>-<sha256 hex>` (`None` for sha256: no mapping needed).
pub fn mapping_tag(digest: &Digest, sha256: &Digest) -> Option<String> {
    Some(format!("{}-{}", mapping_key(digest)?, sha256.hex()))
}

/// Splits a mapping tag into its key and blob digest (`None` for any other tag).
pub fn parse_mapping_tag(tag: &str) -> Option<(&str, Digest)> {
    let (key, hex) = tag.rsplit_once('-')?;
    if !key.contains('-') || hex.len() != 64 {
        return None;
    }
    let blob = Digest::new(Algorithm::Sha256, hex).ok()?;
    Some((key, blob))
}

/// The mapping manifest for `digest` pointing at the blob `sha256` of `size` bytes.
pub fn mapping_manifest(digest: &Digest, sha256: &Digest, size: u64) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": 2 },
        "layers": [ { "mediaType": "application/octet-stream", "digest": sha256.to_string(), "size": size } ],
        "annotations": { DIGEST_ANNOTATION: digest.to_string() }
    })
}

/// Reads a mapping manifest: the blob digest it maps `digest` to, if the manifest is one of
/// strata's and its annotation is exactly `digest`.
pub fn read_mapping(manifest: &serde_json::Value, digest: &Digest) -> Option<Digest> {
    let annotated = manifest
        .get("annotations")?
        .get(DIGEST_ANNOTATION)?
        .as_str()?;
    if annotated != digest.to_string() {
        return None;
    }
    let layer = manifest.get("layers")?.as_array()?.first()?;
    let blob: Digest = layer.get("digest")?.as_str()?.parse().ok()?;
    (blob.algorithm == Algorithm::Sha256).then_some(blob)
}

/// Resolves an upload `Location` (absolute, or relative to the registry) and adds `query`.
pub fn upload_url(base: &str, location: &str, query: &str) -> String {
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}/{}", location.trim_start_matches('/'))
    };
    if query.is_empty() {
        absolute
    } else if absolute.contains('?') {
        format!("{absolute}&{query}")
    } else {
        format!("{absolute}?{query}")
    }
}

/// How the tier behaves.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Push artifacts downloaded from the upstream.
    pub push: bool,
    /// Upload blobs larger than this in chunks of this size (`PATCH` per chunk); smaller
    /// blobs, or all when `None`, go in one `PUT`.
    pub chunk_size: Option<u64>,
    /// Deadline for connecting to the registry.
    pub connect_timeout: Duration,
    /// Deadline for silence while reading from or writing to the registry.
    pub read_timeout: Duration,
    /// Registry requests in flight at once, over all artifacts.
    pub max_requests: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            push: true,
            chunk_size: Some(64 << 20),
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(30),
            max_requests: 16,
        }
    }
}

/// What the tier did (for summaries and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoteStats {
    /// Artifacts found in the registry.
    pub hits: u64,
    /// Artifacts the registry did not have.
    pub misses: u64,
    /// Blobs (and mappings) pushed.
    pub pushed: u64,
    /// Pushes skipped because the registry had the blob already.
    pub already_there: u64,
    /// Requests that failed (each degraded to the upstream or a skipped push).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    pushed: AtomicU64,
    already_there: AtomicU64,
    errors: AtomicU64,
}

/// The remote tier over an OCI registry (distribution spec v1.1 pull and push).
pub struct OciRemote {
    spec: RemoteSpec,
    options: RemoteOptions,
    client: reqwest::Client,
    down: AtomicBool,
    counters: Counters,
    empty_config: OnceCell<()>,
    /// The mapping keys listed from the registry's tags, and when they were listed.
    listing: Mutex<Option<Listing>>,
    /// Bounds the registry requests in flight (a registry spends CPU per request; past a
    /// few in flight, more only queue).
    requests: Semaphore,
}

/// A snapshot of the repository's mapping tags.
struct Listing {
    at: Instant,
    mappings: Arc<HashMap<String, Digest>>,
}

impl std::fmt::Debug for OciRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciRemote")
            .field("spec", &self.spec.display())
            .finish_non_exhaustive()
    }
}

/// A registry failure: whether the registry is unreachable (then the tier goes quiet).
struct Failure {
    unreachable: bool,
    message: String,
}

impl Failure {
    fn status(what: &str, status: StatusCode) -> Failure {
        Failure {
            unreachable: false,
            message: format!("{what}: HTTP {status}"),
        }
    }
    fn transport(what: &str, e: reqwest::Error) -> Failure {
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Failure {
            unreachable: e.is_connect() || e.is_timeout(),
            message,
        }
    }
}

impl OciRemote {
    /// A tier for `spec`.
    pub fn new(spec: RemoteSpec, options: RemoteOptions) -> Result<OciRemote, String> {
        static CRYPTO: std::sync::Once = std::sync::Once::new();
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .build()
            .map_err(|e| format!("could not set up the HTTP client for the remote tier: {e}"))?;
        let requests = Semaphore::new(options.max_requests.max(1));
        Ok(OciRemote {
            spec,
            options,
            client,
            down: AtomicBool::new(false),
            counters: Counters::default(),
            empty_config: OnceCell::new(),
            listing: Mutex::new(None),
            requests,
        })
    }

    /// The registry and repository.
    pub fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RemoteStats {
            hits: l(&c.hits),
            misses: l(&c.misses),
            pushed: l(&c.pushed),
            already_there: l(&c.already_there),
            errors: l(&c.errors),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.spec.base, self.spec.repo)
    }

    /// Records a failure; returns the message to warn with, or `None` when the tier was
    /// already down (stay quiet).
    fn failed(&self, f: Failure) -> Option<String> {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        if f.unreachable {
            if self.down.swap(true, Ordering::Relaxed) {
                return None;
            }
            return Some(format!(
                "the remote tier {} is unreachable ({}); using the upstream for the rest of this run",
                self.spec.display(),
                f.message
            ));
        }
        Some(format!(
            "the remote tier {}: {}; using the upstream",
            self.spec.display(),
            f.message
        ))
    }

    /// The blob digest holding `artifact`: its sha256, else through the listed mapping tags.
    async fn resolve(&self, artifact: &Artifact) -> Result<Option<Digest>, Failure> {
        if let Some(d) = blob_digest(artifact) {
            return Ok(Some(d.clone()));
        }
        let Some(key) = mapping_key(artifact.store_digest()) else {
            return Ok(None);
        };
        let mut listing = self.listing.lock().await;
        if let Some(l) = listing.as_ref() {
            if let Some(blob) = l.mappings.get(&key) {
                return Ok(Some(blob.clone()));
            }
            if l.at.elapsed() < LISTING_REFRESH {
                return Ok(None);
            }
        }
        let mappings = Arc::new(self.list_mappings().await?);
        let found = mappings.get(&key).cloned();
        *listing = Some(Listing {
            at: Instant::now(),
            mappings,
        });
        Ok(found)
    }

    /// Reads the repository's mapping tags (`tags/list`, following `Link` pages).
    async fn list_mappings(&self) -> Result<HashMap<String, Digest>, Failure> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = "tag listing";
        let mut mappings = HashMap::new();
        let mut url = self.url(&format!("tags/list?n={LISTING_PAGE}"));
        for _ in 0..LISTING_MAX_PAGES {
            let _permit = self.requests.acquire().await.expect("never closed");
            let response = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| Failure::transport(what, e))?;
            match response.status() {
                // A repository nobody pushed to yet.
                StatusCode::NOT_FOUND => return Ok(mappings),
                s if !s.is_success() => return Err(Failure::status(what, s)),
                _ => {}
            }
            let next = next_link(&response).map(|l| upload_url(&self.spec.base, &l, ""));
            let body = response
                .bytes()
                .await
                .map_err(|e| Failure::transport(what, e))?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| Failure {
                unreachable: false,
                message: format!("{what} is not JSON: {e}"),
            })?;
            for tag in page.tags.unwrap_or_default() {
                if let Some((key, blob)) = parse_mapping_tag(&tag) {
                    mappings.insert(key.to_owned(), blob);
                }
            }
            match next {
                Some(next) => url = next,
                None => return Ok(mappings),
            }
        }
        tracing::warn!(
            "the remote tier {} has more than {} tags; only those listed are used",
            self.spec.display(),
            LISTING_PAGE * LISTING_MAX_PAGES
        );
        Ok(mappings)
    }

    async fn pull(&self, artifact: &Artifact, entry: &mut PendingEntry) -> Result<bool, Failure> {
        let Some(blob) = self.resolve(artifact).await? else {
            return Ok(false);
        };
        let what = format!("blob {blob}");
        let _permit = self.requests.acquire().await.expect("never closed");
        let response = self
            .client
            .get(self.url(&format!("blobs/{blob}")))
            .send()
            .await
            .map_err(|e| Failure::transport(&what, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(false),
            s if !s.is_success() => return Err(Failure::status(&what, s)),
            _ => {}
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Failure::transport(&what, e))?;
            entry.write(&chunk).map_err(|e| Failure {
                unreachable: false,
                message: format!("{what}: {e}"),
            })?;
        }
        Ok(true)
    }

    async fn blob_exists(&self, blob: &Digest) -> Result<bool, Failure> {
        let what = format!("HEAD blob {blob}");
        let response = self
            .client
            .head(self.url(&format!("blobs/{blob}")))
            .send()
            .await
            .map_err(|e| Failure::transport(&what, e))?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(Failure::status(&what, s)),
        }
    }

    /// Uploads `len` bytes of `path` as `blob`: one PUT, or PATCH chunks then a PUT.
    async fn upload(&self, blob: &Digest, path: &Path, len: u64) -> Result<(), Failure> {
        let what = format!("upload of {blob}");
        let started = self
            .client
            .post(self.url("blobs/uploads/"))
            .header(CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|e| Failure::transport(&what, e))?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(Failure::status(&what, started.status()));
        }
        let mut location = location(&started, &what)?;
        let digest_query = format!("digest={blob}");
        let chunked = self.options.chunk_size.filter(|&c| c > 0 && len > c);
        let put_body = if let Some(chunk) = chunked {
            let mut offset = 0;
            while offset < len {
                let n = chunk.min(len - offset);
                let body = file_body(path, offset, n)
                    .await
                    .map_err(|e| io_failure(&what, e))?;
                let response = self
                    .client
                    .patch(upload_url(&self.spec.base, &location, ""))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{offset}-{}", offset + n - 1))
                    .header(CONTENT_LENGTH, n)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Failure::transport(&what, e))?;
                if response.status() != StatusCode::ACCEPTED {
                    return Err(Failure::status(&what, response.status()));
                }
                location = self::location(&response, &what)?;
                offset += n;
            }
            reqwest::Body::from(Vec::new())
        } else {
            file_body(path, 0, len)
                .await
                .map_err(|e| io_failure(&what, e))?
        };
        let put_len = if chunked.is_some() { 0 } else { len };
        let response = self
            .client
            .put(upload_url(&self.spec.base, &location, &digest_query))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, put_len)
            .body(put_body)
            .send()
            .await
            .map_err(|e| Failure::transport(&what, e))?;
        if response.status() != StatusCode::CREATED {
            return Err(Failure::status(&what, response.status()));
        }
        Ok(())
    }

    async fn ensure_empty_config(&self) -> Result<(), Failure> {
        self.empty_config
            .get_or_try_init(|| async {
                let blob: Digest = EMPTY_CONFIG_DIGEST.parse().expect("a valid digest");
                if !self.blob_exists(&blob).await? {
                    let tmp = std::env::temp_dir()
                        .join(format!("strata-empty-config-{}.json", std::process::id()));
                    std::fs::write(&tmp, EMPTY_CONFIG).map_err(|e| io_failure("config", e))?;
                    let result = self.upload(&blob, &tmp, 2).await;
                    let _ = std::fs::remove_file(&tmp);
                    result?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    async fn push(&self, artifact: &Artifact, path: &Path) -> Result<(), Failure> {
        let len = std::fs::metadata(path)
            .map_err(|e| io_failure("push", e))?
            .len();
        let blob = match blob_digest(artifact) {
            Some(d) => d.clone(),
            None => {
                let path = path.to_path_buf();
                tokio::task::spawn_blocking(move || {
                    strata_store::hash_file(Algorithm::Sha256, &path).map(|(d, _)| d)
                })
                .await
                .map_err(|e| io_failure("hash", std::io::Error::other(e)))?
                .map_err(|e| io_failure("hash", e))?
            }
        };
        if self.blob_exists(&blob).await? {
            self.counters.already_there.fetch_add(1, Ordering::Relaxed);
        } else {
            self.upload(&blob, path, len).await?;
            self.counters.pushed.fetch_add(1, Ordering::Relaxed);
        }
        let digest = artifact.store_digest();
        if let Some(tag) = mapping_tag(digest, &blob) {
            self.ensure_empty_config().await?;
            let manifest = mapping_manifest(digest, &blob, len);
            let what = format!("manifest {tag}");
            let response = self
                .client
                .put(self.url(&format!("manifests/{tag}")))
                .header(CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                .body(manifest.to_string())
                .send()
                .await
                .map_err(|e| Failure::transport(&what, e))?;
            if response.status() != StatusCode::CREATED {
                return Err(Failure::status(&what, response.status()));
            }
        }
        Ok(())
    }
}

/// The `rel="next"` target of a paginated listing's `Link` header.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn location(response: &reqwest::Response, what: &str) -> Result<String, Failure> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Failure {
            unreachable: false,
            message: format!("{what}: the registry gave no upload Location"),
        })
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure {
        unreachable: false,
        message: format!("{what}: {e}"),
    }
}

/// A streaming body of `len` bytes of `path` from `offset`.
async fn file_body(path: &Path, offset: u64, len: u64) -> std::io::Result<reqwest::Body> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    Ok(reqwest::Body::wrap_stream(stream))
}

impl RemoteTier for OciRemote {
    fn fetch<'a>(
        &'a self,
        artifact: &'a Artifact,
        entry: &'a mut PendingEntry,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            if self.down.load(Ordering::Relaxed) {
                return Ok(false);
            }
            match self.pull(artifact, entry).await {
                Ok(true) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    Ok(true)
                }
                Ok(false) => {
                    self.counters.misses.fetch_add(1, Ordering::Relaxed);
                    Ok(false)
                }
                Err(f) => match self.failed(f) {
                    Some(message) => Err(message),
                    None => Ok(false),
                },
            }
        })
    }

    fn publish<'a>(
        &'a self,
        artifact: &'a Artifact,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.options.push || self.down.load(Ordering::Relaxed) {
                return Ok(());
            }
            match self.push(artifact, path).await {
                Ok(()) => Ok(()),
                Err(f) => match self.failed(f) {
                    Some(message) => Err(message.replace("using the upstream", "not pushed")),
                    None => Ok(()),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let ok = |base: &str, repo: &str| {
            Ok(RemoteSpec {
                base: base.into(),
                repo: repo.into(),
            })
        };
        let cases: &[(&str, Result<RemoteSpec, ()>)] = &[
            (
                "oci://127.0.0.1:5000/strata",
                ok("http://127.0.0.1:5000", "strata"),
            ),
            (
                "oci://localhost:5000/team/cache/",
                ok("http://localhost:5000", "team/cache"),
            ),
            ("oci://[::1]:5000/c", ok("http://[::1]:5000", "c")),
            (
                "oci://registry.example:5000/c",
                ok("https://registry.example:5000", "c"),
            ),
            (
                "oci+http://10.0.0.2:5000/c",
                ok("http://10.0.0.2:5000", "c"),
            ),
            ("oci+https://127.0.0.1/c", ok("https://127.0.0.1", "c")),
            ("http://127.0.0.1:5000/c", Err(())),
            ("oci://127.0.0.1:5000", Err(())),
            ("oci://127.0.0.1:5000/", Err(())),
            ("oci://127.0.0.1:5000/Upper", Err(())),
            ("oci://u:p@127.0.0.1/c", Err(())),
            ("oci:///c", Err(())),
        ];
        for (spec, want) in cases {
            let got = RemoteSpec::parse(spec).map_err(|_| ());
            assert_eq!(&got, want, "{spec}");
        }
        assert_eq!(
            RemoteSpec::parse("oci://127.0.0.1:5000/a/b")
                .unwrap()
                .display(),
            "oci://127.0.0.1:5000/a/b"
        );
        let msg = RemoteSpec::parse("s3://x/y").unwrap_err();
        assert!(msg.contains("expected oci://HOST[:PORT]/REPO"), "{msg}");
    }

    #[test]
    fn mapping_tags_fit_and_round_trip() {
        let sha512 = Digest::new(Algorithm::Sha512, &"ab".repeat(64)).unwrap();
        let sha256 = Digest::new(Algorithm::Sha256, &"cd".repeat(32)).unwrap();
        let sha1 = Digest::new(Algorithm::Sha1, &"ef".repeat(20)).unwrap();
        let tag = mapping_tag(&sha512, &sha256).unwrap();
        assert_eq!(tag.len(), 128);
        assert!(tag.starts_with("sha512-abab"));
        assert!(tag.ends_with(&"cd".repeat(32)));
        assert_eq!(
            parse_mapping_tag(&tag),
            Some((mapping_key(&sha512).unwrap().as_str(), sha256.clone()))
        );
        assert_eq!(
            mapping_tag(&sha1, &sha256).unwrap(),
            format!("sha1-{}-{}", "ef".repeat(20), "cd".repeat(32))
        );
        assert_eq!(mapping_tag(&sha256, &sha256), None);
        assert_eq!(parse_mapping_tag("latest"), None);
        assert_eq!(parse_mapping_tag(&format!("v1-{}", "zz".repeat(32))), None);
        let manifest = mapping_manifest(&sha512, &sha256, 42);
        assert_eq!(read_mapping(&manifest, &sha512), Some(sha256.clone()));
        let other = Digest::new(Algorithm::Sha512, &"ac".repeat(64)).unwrap();
        assert_eq!(
            read_mapping(&manifest, &other),
            None,
            "annotation must match"
        );
        assert_eq!(manifest["layers"][0]["size"], 42);
        assert_eq!(read_mapping(&serde_json::json!({}), &sha512), None);
    }

    #[test]
    fn upload_urls() {
        let base = "http://127.0.0.1:5000";
        for (location, query, want) in [
            (
                "/v2/r/blobs/uploads/u1?_state=x",
                "digest=sha256:1",
                "http://127.0.0.1:5000/v2/r/blobs/uploads/u1?_state=x&digest=sha256:1",
            ),
            (
                "http://127.0.0.1:5000/v2/r/blobs/uploads/u1",
                "digest=sha256:1",
                "http://127.0.0.1:5000/v2/r/blobs/uploads/u1?digest=sha256:1",
            ),
            (
                "v2/r/blobs/uploads/u1",
                "",
                "http://127.0.0.1:5000/v2/r/blobs/uploads/u1",
            ),
        ] {
            assert_eq!(upload_url(base, location, query), want);
        }
    }

    #[test]
    fn empty_config_digest_is_right() {
        let (d, n) = strata_store::hash_reader(Algorithm::Sha256, EMPTY_CONFIG).unwrap();
        assert_eq!(d.to_string(), EMPTY_CONFIG_DIGEST);
        assert_eq!(n, 2);
    }
}
