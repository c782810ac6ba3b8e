//! A blocking client for the OCI Distribution API (Docker Registry HTTP API v2).
//!
//! Plain HTTP is used for loopback hosts (`127.0.0.1`, `localhost`, `[::1]`) and when asked
//! (`insecure`); HTTPS otherwise. Requests start anonymous; a `401` is answered the way its
//! challenge asks: `Basic` with the credentials [`crate::auth`] finds, `Bearer` with a token
//! from the realm it names (fetched with those credentials when there are any).

use std::io::Read;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};

use crate::auth::Credentials;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Every manifest type this client understands, for the `Accept` header.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference is malformed.
    #[error("bad registry reference {0:?}: write HOST[:PORT]/REPOSITORY, e.g. 127.0.0.1:5000/app")]
    BadReference(String),
    /// The HTTP request could not be made or its body read.
    #[error("{method} {url}: {message}")]
    Transport {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body (registries explain errors there).
        body: String,
    },
    /// A response could not be understood.
    #[error("{url}: {message}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl RegistryError {
    /// The HTTP status, for [`RegistryError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `HOST[:PORT]/REPOSITORY`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// `host[:port]`.
    pub host: String,
    /// The repository path (`team/app`).
    pub repository: String,
}

impl RepoRef {
    /// Parses `HOST[:PORT]/REPOSITORY` (no tag or digest).
    pub fn parse(text: &str) -> Result<RepoRef, RegistryError> {
        let bad = || RegistryError::BadReference(text.to_string());
        let (host, repo) = text.split_once('/').ok_or_else(bad)?;
        if host.is_empty()
            || repo.is_empty()
            || !(host.contains('.') || host.contains(':') || host == "localhost")
        {
            return Err(bad());
        }
        if repo.contains('@')
            || repo.rsplit('/').next().is_some_and(|l| l.contains(':'))
            || !repo
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        {
            return Err(bad());
        }
        Ok(RepoRef {
            host: host.to_string(),
            repository: repo.to_string(),
        })
    }

    /// Whether the host is a loopback address (plain HTTP by default).
    pub fn is_loopback(&self) -> bool {
        let h = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    self.host.as_str()
                }
            });
        h == "localhost" || h.starts_with("127.") || h == "[::1]"
    }
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)
    }
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `sha256:…` of the exact bytes.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The bytes.
    pub body: Vec<u8>,
}

impl Manifest {
    /// The parsed JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Whether it is an index / manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX
            || self.media_type == DOCKER_LIST
            || self.json().get("manifests").is_some()
    }
}

/// The sha256 digest of some bytes, `sha256:…`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A client for one repository.
#[derive(Debug)]
pub struct Registry {
    repo: RepoRef,
    base: String,
    http: Client,
    /// The credentials, looked up on the first challenge (anonymous registries never read
    /// the auth files).
    credentials: OnceLock<Option<Credentials>>,
    /// How requests authenticate once a challenge was answered.
    auth: Mutex<Option<Auth>>,
}

/// How a request authenticates.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    /// `Authorization: Bearer` with a token from the challenge's realm.
    Bearer(String),
    /// `Authorization: Basic` with the credentials.
    Basic(Credentials),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic(c) => write!(f, "Basic({c:?})"),
        }
    }
}

/// A reader of exactly `length` bytes after skipping `skip` bytes of `inner`: a body that
/// ends early is an `UnexpectedEof` error naming the URL, never a short read taken for the
/// whole.
pub struct ExactRange<R> {
    inner: R,
    skip: u64,
    remaining: u64,
    length: u64,
    url: String,
    deadline: Option<std::time::Instant>,
}

/// The slowest average rate a streamed range may arrive at (after [`RANGE_GRACE`]): a
/// registry that trickles bytes cannot hold a reader forever (each read alone is bounded
/// by the client's timeout, the whole body by this).
pub const RANGE_MIN_RATE: u64 = 16 * 1024;
/// The time any range gets on top of its length at [`RANGE_MIN_RATE`].
pub const RANGE_GRACE: Duration = Duration::from_secs(120);

impl<R: Read> ExactRange<R> {
    /// Wraps `inner`, with no deadline.
    pub fn new(inner: R, skip: u64, length: u64, url: &str) -> ExactRange<R> {
        ExactRange {
            inner,
            skip,
            remaining: length,
            length,
            url: url.to_string(),
            deadline: None,
        }
    }

    /// Fails every read after `deadline` with `TimedOut`.
    pub fn with_deadline(mut self, deadline: std::time::Instant) -> ExactRange<R> {
        self.deadline = Some(deadline);
        self
    }

    fn short(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "{}: the body ended {} bytes short of the {} asked for",
                self.url, self.remaining, self.length
            ),
        )
    }
}

impl<R: Read> Read for ExactRange<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining > 0 && self.deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{}: {} of {} bytes still to come after the time a range this long \
                     may take (at least {} KiB/s on average after {} s)",
                    self.url,
                    self.remaining,
                    self.length,
                    RANGE_MIN_RATE / 1024,
                    RANGE_GRACE.as_secs()
                ),
            ));
        }
        if self.skip > 0 {
            let skipped =
                std::io::copy(&mut (&mut self.inner).take(self.skip), &mut std::io::sink())?;
            if skipped < self.skip {
                return Err(self.short());
            }
            self.skip = 0;
        }
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        // The kind is kept (an `Interrupted` read is still retried); the message names the URL.
        let n = self.inner.read(&mut buf[..want]).map_err(|e| {
            std::io::Error::new(e.kind(), format!("{}: {}", self.url, error_chain(&e)))
        })?;
        if n == 0 {
            return Err(self.short());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// `scheme://host[:port]` of an absolute URL (the whole text when it has no path).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

impl Registry {
    /// A client for `repo`; `insecure` forces plain HTTP (loopback hosts always use it).
    pub fn new(repo: RepoRef, insecure: bool) -> Result<Registry, RegistryError> {
        Registry::build(repo, insecure, OnceLock::new())
    }

    /// A client for `repo` that authenticates with `credentials` (or stays anonymous with
    /// `None`) instead of looking them up.
    pub fn with_credentials(
        repo: RepoRef,
        insecure: bool,
        credentials: Option<Credentials>,
    ) -> Result<Registry, RegistryError> {
        Registry::build(repo, insecure, OnceLock::from(credentials))
    }

    fn build(
        repo: RepoRef,
        insecure: bool,
        credentials: OnceLock<Option<Credentials>>,
    ) -> Result<Registry, RegistryError> {
        let scheme = if insecure || repo.is_loopback() {
            "http"
        } else {
            "https"
        };
        // reqwest is built without a default provider; ring is the workspace's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| RegistryError::Transport {
                method: "client".into(),
                url: repo.to_string(),
                message: e.to_string(),
            })?;
        Ok(Registry {
            base: format!("{scheme}://{}/v2/{}", repo.host, repo.repository),
            repo,
            http,
            credentials,
            auth: Mutex::new(None),
        })
    }

    /// The repository.
    pub fn repo(&self) -> &RepoRef {
        &self.repo
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        build: &dyn Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let transport = |e: reqwest::Error| RegistryError::Transport {
            method: method.into(),
            url: url.into(),
            message: error_chain(&e),
        };
        // Credentials go only to the registry itself, never to another host a `Location`
        // or `Link` names (a storage backend, say).
        if !origin(url).eq_ignore_ascii_case(origin(&self.base)) {
            return build(&self.http).send().map_err(transport);
        }
        let with_auth = |rb: RequestBuilder, auth: &Option<Auth>| match auth {
            Some(Auth::Bearer(t)) => rb.bearer_auth(t),
            Some(Auth::Basic(c)) => rb.basic_auth(&c.username, Some(&c.password)),
            None => rb,
        };
        let sent = self.auth.lock().unwrap().clone();
        let resp = with_auth(build(&self.http), &sent)
            .send()
            .map_err(transport)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(auth) = self.answer_challenge(resp.headers())? else {
            return Ok(resp);
        };
        // Refused credentials are not sent twice (registries that count failed logins
        // would lock the account twice as fast).
        if sent.as_ref() == Some(&auth) {
            return Ok(resp);
        }
        let answer = Some(auth);
        *self.auth.lock().unwrap() = answer.clone();
        with_auth(build(&self.http), &answer)
            .send()
            .map_err(transport)
    }

    fn credentials(&self) -> Option<&Credentials> {
        self.credentials
            .get_or_init(|| crate::auth::credentials_for(&self.repo.host, &self.repo.repository))
            .as_ref()
    }

    /// How to answer a `401`'s `WWW-Authenticate` challenge, or `None` when it cannot be
    /// answered (no credentials for `Basic`, an unknown scheme).
    fn answer_challenge(&self, headers: &HeaderMap) -> Result<Option<Auth>, RegistryError> {
        let Some(h) = headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        let (scheme, params) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(self.credentials().cloned().map(Auth::Basic));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        Ok(self.fetch_token(params)?.map(Auth::Bearer))
    }

    /// A Bearer token from the realm of a challenge's `params`.
    fn fetch_token(&self, params: &str) -> Result<Option<String>, RegistryError> {
        let mut realm = None;
        let mut query = Vec::new();
        for part in split_params(params) {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim_matches('"').to_string();
                match k.trim() {
                    "realm" => realm = Some(v),
                    k => query.push((k.to_string(), v)),
                }
            }
        }
        let Some(realm) = realm else { return Ok(None) };
        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let token_url = format!("{realm}{sep}{}", qs.join("&"));
        let mut rb = self.http.get(&token_url);
        if let Some(c) = self.credentials() {
            rb = rb.basic_auth(&c.username, Some(&c.password));
        }
        let resp = rb.send().map_err(|e| RegistryError::Transport {
            method: "GET".into(),
            url: realm.clone(),
            message: error_chain(&e),
        })?;
        let resp = check(resp, "GET", &realm)?;
        let v: serde_json::Value = json_body(resp, &realm)?;
        Ok(v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string))
    }

    /// Every tag of the repository (following `Link` pagination). An unknown repository has
    /// no tags.
    pub fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        let mut tags = Vec::new();
        let mut url = format!("{}/tags/list?n=1000", self.base);
        loop {
            let resp = self.send("GET", &url, &|c| c.get(&url))?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            let resp = check(resp, "GET", &url)?;
            let next = resp
                .headers()
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')))
                .map(|(u, _)| u.to_string());
            let v: serde_json::Value = json_body(resp, &url)?;
            if let Some(list) = v.get("tags").and_then(|t| t.as_array()) {
                tags.extend(list.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", origin(&self.base)),
                Some(n) => url = n,
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// The manifest a tag or digest names, or `None` when the registry does not have it.
    pub fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let resp = self.send("GET", &url, &|c| {
            c.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp, "GET", &url)?;
        let media_type = header(resp.headers(), CONTENT_TYPE.as_str());
        let header_digest = header(resp.headers(), "docker-content-digest");
        let body = resp
            .bytes()
            .map_err(|e| RegistryError::Transport {
                method: "GET".into(),
                url: url.clone(),
                message: error_chain(&e),
            })?
            .to_vec();
        let digest = digest_of(&body);
        if !header_digest.is_empty() && header_digest != digest {
            return Err(RegistryError::Invalid {
                url,
                message: format!(
                    "manifest digest {digest} differs from the header's {header_digest}"
                ),
            });
        }
        let media_type = if media_type.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            media_type
        };
        Ok(Some(Manifest {
            digest,
            media_type,
            body,
        }))
    }

    /// The digest a tag points to (HEAD request), or `None`.
    pub fn head_manifest(&self, reference: &str) -> Result<Option<String>, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let resp = self.send("HEAD", &url, &|c| {
            c.head(&url).header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp, "HEAD", &url)?;
        let d = header(resp.headers(), "docker-content-digest");
        if d.is_empty() {
            return Ok(self.get_manifest(reference)?.map(|m| m.digest));
        }
        Ok(Some(d))
    }

    /// Stores a manifest under a tag (or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let resp = self.send("PUT", &url, &|c| {
            c.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.to_vec())
        })?;
        check(resp, "PUT", &url)?;
        Ok(digest_of(body))
    }

    /// Deletes a manifest by digest (every tag pointing to it goes with it).
    pub fn delete_manifest(&self, digest: &str) -> Result<(), RegistryError> {
        let url = format!("{}/manifests/{digest}", self.base);
        let resp = self.send("DELETE", &url, &|c| c.delete(&url))?;
        check(resp, "DELETE", &url)?;
        Ok(())
    }

    /// A blob's bytes (verified against its digest).
    pub fn get_blob(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.send("GET", &url, &|c| c.get(&url))?;
        let resp = check(resp, "GET", &url)?;
        let body = resp
            .bytes()
            .map_err(|e| RegistryError::Transport {
                method: "GET".into(),
                url: url.clone(),
                message: error_chain(&e),
            })?
            .to_vec();
        if digest.starts_with("sha256:") && digest_of(&body) != digest {
            return Err(RegistryError::Invalid {
                url,
                message: "blob content does not match its digest".into(),
            });
        }
        Ok(body)
    }

    /// `length` bytes of a blob from byte `offset` (a `Range` request; a registry that ignores
    /// the range and sends the whole blob is sliced). Not verified: only a whole blob can be.
    pub fn get_blob_range(
        &self,
        digest: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let mut body = Vec::with_capacity(usize::try_from(length.min(1 << 24)).unwrap_or(0));
        self.open_blob_range(digest, offset, length)?
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::Transport {
                method: "GET".into(),
                url,
                message: e.to_string(),
            })?;
        Ok(body)
    }

    /// Like [`Registry::get_blob_range`], but streamed: the bytes are read from the
    /// response as the caller consumes them (constant memory, whatever the length). The
    /// reader fails with `UnexpectedEof` if the body ends before `length` bytes.
    pub fn open_blob_range(
        &self,
        digest: &str,
        offset: u64,
        length: u64,
    ) -> Result<ExactRange<Box<dyn Read + Send>>, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        if length == 0 {
            // An empty range has nothing to fetch: no request.
            return Ok(ExactRange::new(Box::new(std::io::empty()), 0, 0, &url));
        }
        let range = format!("bytes={offset}-{}", offset + length - 1);
        let resp = self.send("GET", &url, &|c| c.get(&url).header("range", &range))?;
        let resp = check(resp, "GET", &url)?;
        // A registry that ignores the range sends the whole blob: skip to `offset`.
        let skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
            0
        } else {
            offset
        };
        let allowed = RANGE_GRACE + Duration::from_secs((skip + length) / RANGE_MIN_RATE);
        let body: Box<dyn Read + Send> = Box::new(resp);
        Ok(ExactRange::new(body, skip, length, &url)
            .with_deadline(std::time::Instant::now() + allowed))
    }
    /// Whether the registry has a blob.
    pub fn has_blob(&self, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.send("HEAD", &url, &|c| c.head(&url))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check(resp, "HEAD", &url)?;
        Ok(true)
    }

    /// Uploads a blob (monolithic POST + PUT) unless present; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = digest_of(bytes);
        if self.has_blob(&digest)? {
            return Ok(digest);
        }
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self.send("POST", &url, &|c| c.post(&url))?;
        let resp = check(resp, "POST", &url)?;
        let loc = header(resp.headers(), LOCATION.as_str());
        if loc.is_empty() {
            return Err(RegistryError::Invalid {
                url,
                message: "upload started without a Location".into(),
            });
        }
        let loc = if loc.starts_with('/') {
            format!("{}{loc}", origin(&self.base))
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={digest}");
        let resp = self.send("PUT", &put, &|c| {
            c.put(&put)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
        })?;
        check(resp, "PUT", &put)?;
        Ok(digest)
    }

    /// The config blob of an image manifest (for an index: of its first manifest).
    pub fn image_config(&self, manifest: &Manifest) -> Result<serde_json::Value, RegistryError> {
        let m = if manifest.is_index() {
            let first = manifest
                .json()
                .get("manifests")
                .and_then(|m| m.as_array())
                .and_then(|a| {
                    // Skip attestation manifests (BuildKit adds them as unknown/unknown).
                    a.iter()
                        .find(|m| {
                            m.pointer("/platform/os").and_then(|o| o.as_str()) != Some("unknown")
                        })
                        .or_else(|| a.first())
                })
                .and_then(|m| m.get("digest")?.as_str().map(str::to_string));
            let Some(d) = first else {
                return Err(RegistryError::Invalid {
                    url: format!("{}/manifests/{}", self.base, manifest.digest),
                    message: "index lists no manifests".into(),
                });
            };
            self.get_manifest(&d)?
                .ok_or_else(|| RegistryError::Invalid {
                    url: format!("{}/manifests/{d}", self.base),
                    message: "index entry is missing".into(),
                })?
        } else {
            manifest.clone()
        };
        let Some(config) = m
            .json()
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .map(str::to_string)
        else {
            return Err(RegistryError::Invalid {
                url: format!("{}/manifests/{}", self.base, m.digest),
                message: "manifest has no config".into(),
            });
        };
        let bytes = self.get_blob(&config)?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            url: format!("{}/blobs/{config}", self.base),
            message: e.to_string(),
        })
    }

    /// The creation time of the image a manifest describes (`created` in its config), as
    /// epoch seconds, if it has one.
    pub fn created(&self, manifest: &Manifest) -> Result<Option<i64>, RegistryError> {
        let config = self.image_config(manifest)?;
        Ok(config
            .get("created")
            .and_then(|c| c.as_str())
            .and_then(parse_rfc3339))
    }
}

fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn json_body(resp: Response, url: &str) -> Result<serde_json::Value, RegistryError> {
    let bytes = resp.bytes().map_err(|e| RegistryError::Transport {
        method: "GET".into(),
        url: url.into(),
        message: error_chain(&e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
        url: url.into(),
        message: format!("not JSON: {e}"),
    })
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn check(resp: Response, method: &str, url: &str) -> Result<Response, RegistryError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let mut body = resp.text().unwrap_or_default();
    body.truncate(400);
    let hint = match status {
        405 if method == "DELETE" => {
            " (the registry does not allow deletes: enable storage.delete.enabled)"
        }
        401 | 403 => {
            " (log in with `docker login`, `buildah login` or `podman login`, whose auth files \
             strata reads, or set STRATA_REGISTRY_USERNAME and STRATA_REGISTRY_PASSWORD)"
        }
        _ => "",
    };
    Err(RegistryError::Status {
        method: method.into(),
        url: url.into(),
        status,
        body: format!("{}{hint}", body.trim()),
    })
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00.123Z`, offsets allowed) to epoch
/// seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let mo: i64 = d.next()?.parse().ok()?;
    let da: i64 = d.next()?.parse().ok()?;
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (rest, 0)
    };
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.split('.').next()?.parse().ok()?;
    Some(days_from_civil(y, mo, da) * 86400 + h * 3600 + mi * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_refs() {
        for (text, ok, loop_) in [
            ("127.0.0.1:5000/app", true, true),
            ("localhost/team/app", true, true),
            ("registry.example.invalid/app", true, false),
            ("app", false, false),
            ("nohost/app", false, false),
            ("127.0.0.1:5000/app:tag", false, false),
            ("127.0.0.1:5000/App", false, false),
        ] {
            let r = RepoRef::parse(text);
            assert_eq!(r.is_ok(), ok, "{text}");
            if let Ok(r) = r {
                assert_eq!(r.is_loopback(), loop_, "{text}");
            }
        }
    }

    #[test]
    fn exact_ranges_skip_stop_and_refuse_short_bodies() {
        let read = |body: &[u8], skip, length| {
            let mut out = Vec::new();
            ExactRange::new(body, skip, length, "u")
                .read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| (e.kind(), e.to_string()))
        };
        assert_eq!(read(b"0123456789", 0, 4), Ok(b"0123".to_vec()));
        // A registry that ignored the range: the whole blob, sliced.
        assert_eq!(read(b"0123456789", 3, 4), Ok(b"3456".to_vec()));
        assert_eq!(read(b"0123456789", 6, 4), Ok(b"6789".to_vec()));
        assert_eq!(read(b"", 0, 0), Ok(Vec::new()));
        for (skip, length) in [(0, 11), (8, 4), (12, 1)] {
            let err = read(b"0123456789", skip, length).unwrap_err();
            assert_eq!(err.0, std::io::ErrorKind::UnexpectedEof, "{skip} {length}");
            assert!(err.1.contains("u: the body ended"), "{}", err.1);
        }
    }

    #[test]
    fn a_range_past_its_deadline_times_out_and_a_finished_one_does_not() {
        let past = std::time::Instant::now() - Duration::from_millis(1);
        let mut late = ExactRange::new(&b"0123"[..], 0, 4, "u").with_deadline(past);
        let err = late.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(
            err.to_string().contains("u: 4 of 4 bytes still to come"),
            "{err}"
        );
        let future = std::time::Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        ExactRange::new(&b"0123"[..], 0, 4, "u")
            .with_deadline(future)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"0123");
        // Once every byte is in, reading on is the end, whatever the clock says.
        let mut done = ExactRange::new(&b""[..], 0, 0, "u").with_deadline(past);
        assert_eq!(done.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn origins() {
        for (url, want) in [
            (
                "http://127.0.0.1:5000/v2/app/blobs/uploads/x?y",
                "http://127.0.0.1:5000",
            ),
            ("https://reg.test/v2/", "https://reg.test"),
            ("https://reg.test", "https://reg.test"),
            (
                "https://storage.test:443/bucket?sig=1",
                "https://storage.test:443",
            ),
        ] {
            assert_eq!(origin(url), want, "{url}");
        }
    }

    #[test]
    fn bearer_tokens_are_not_printed() {
        let a = Auth::Bearer("secret-token".into());
        assert!(!format!("{a:?}").contains("secret-token"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-03-01T12:30:05.123456789Z"),
            Some(1709296205)
        );
        assert_eq!(parse_rfc3339("2024-03-01T14:30:05+02:00"), Some(1709296205));
        assert_eq!(parse_rfc3339("nonsense"), None);
    }
}
