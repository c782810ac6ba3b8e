//! The downloader: the only code in strata that talks to upstream servers.
//!
//! [`Fetcher::ensure`] makes an artifact's bytes present in the store: a cache hit returns at
//! once; otherwise it takes the digest's lock (so concurrent threads and processes download each
//! digest once), downloads with bounded parallelism, retries transient failures with
//! exponential backoff and full jitter (resuming with `Range` where the server allows), streams
//! to a temp file while hashing, verifies and renames into place.

use std::path::PathBuf;
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use strata_lock::Artifact;
use tokio::sync::Semaphore;

use crate::error::StoreError;
use crate::netrc::Netrc;
use crate::remote::RemoteTier;
use crate::store::{PendingEntry, Store};

/// Tuning of the downloader.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Downloads in flight at once (Hermeto uses 5).
    pub jobs: usize,
    /// Retries of one URL after a transient failure (5xx, 429, connection error, stall).
    pub retries: u32,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Deadline for each read: a connection silent this long counts as stalled.
    pub read_timeout: Duration,
    /// First backoff delay; doubles per attempt, with full jitter.
    pub backoff_base: Duration,
    /// Upper bound of one backoff delay.
    pub backoff_max: Duration,
    /// Credentials for hosts (`.netrc`).
    pub netrc: Netrc,
    /// A shared cache asked before the upstream and filled after it (see [`RemoteTier`]).
    pub remote: Option<Arc<dyn RemoteTier>>,
    /// Parallel `Range` requests (each on its own connection) that one download of an
    /// artifact with a known size is split into; 1 downloads every file in one stream. A
    /// caller blocked on one file (a lazy mount's `open`) waits for the slowest part instead
    /// of the whole transfer, where each connection is limited (long, lossy or shaped
    /// links). Bytes then arrive out of order, so [`Progress::received`] is never called
    /// for a split download.
    pub segments: usize,
    /// The smallest part worth its own request: a file is split into at most
    /// `size / segment_min` parts.
    pub segment_min: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            jobs: 32,
            retries: 5,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            netrc: Netrc::default(),
            remote: None,
            segments: 1,
            segment_min: 128 * 1024,
        }
    }
}

/// Where the bytes of an ensured artifact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Already in the store.
    Cache,
    /// Another thread or process downloaded it while this one waited for the lock.
    Shared,
    /// Downloaded now by this call.
    Download,
}

/// A successfully ensured artifact.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The store entry.
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// Bytes downloaded by this call (0 unless `source` is `Download`).
    pub downloaded: u64,
    /// The entry's size in bytes.
    pub size: u64,
}

/// Why one attempt at one URL failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(StatusCode),
    /// Connecting, sending or receiving failed (including deadlines).
    #[error("{0}")]
    Transport(String),
    /// The server's certificate was not trusted (or the TLS handshake failed): not retried,
    /// since nothing changes by asking again.
    #[error(
        "{0} (a mirror signed by a private CA is trusted with SSL_CERT_FILE=ca.pem or SSL_CERT_DIR)"
    )]
    Tls(String),
    /// The bytes were wrong, or the store could not take them.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `Range` request was answered with the whole file: the server cannot serve parts.
    #[error("the server does not serve byte ranges")]
    NoRanges,
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Status(s) => {
                s.is_server_error()
                    || *s == StatusCode::TOO_MANY_REQUESTS
                    || *s == StatusCode::REQUEST_TIMEOUT
            }
            Failure::Transport(_) => true,
            Failure::Tls(_) | Failure::Store(_) | Failure::NoRanges => false,
        }
    }
}

/// An artifact that could not be fetched from any of its URLs.
#[derive(Debug, thiserror::Error)]
#[error("{artifact}: {}", describe_attempts(.attempts))]
pub struct FetchError {
    /// The artifact (`name version (file name)`).
    pub artifact: String,
    /// The last failure for each URL tried, with the URL (credentials removed).
    pub attempts: Vec<(String, Failure)>,
}

impl FetchError {
    /// Whether the failure was wrong content (a checksum or size mismatch) rather than transport.
    pub fn is_mismatch(&self) -> bool {
        self.attempts
            .iter()
            .any(|(_, f)| matches!(f, Failure::Store(e) if e.is_content_mismatch()))
    }

    /// Whether the failure was a full disk.
    pub fn is_no_space(&self) -> bool {
        self.attempts
            .iter()
            .any(|(_, f)| matches!(f, Failure::Store(StoreError::NoSpace { .. })))
    }
}

fn describe_attempts(attempts: &[(String, Failure)]) -> String {
    if attempts.is_empty() {
        return "no URL to download from".into();
    }
    attempts
        .iter()
        .map(|(url, failure)| format!("{failure} (from {url})"))
        .collect::<Vec<_>>()
        .join("; then ")
}

/// Observes downloads, e.g. to draw progress. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A download of `artifact` starts (`size` from the lockfile or Content-Length).
    fn started(&self, _artifact: &Artifact, _size: Option<u64>) {}
    /// `bytes` more bytes arrived.
    fn advanced(&self, _artifact: &Artifact, _bytes: u64) {}
    /// `bytes` from the upstream were written at `offset` of the download, before any
    /// verification: a consumer that passes them on (`strata serve` streaming a cold file)
    /// must hold some back until [`Fetcher::ensure`] returns `Ok`, and must treat an
    /// `offset` lower than where the previous bytes ended (a restart, or the next URL) as
    /// invalidating what it passed on so far.
    fn received(&self, _artifact: &Artifact, _offset: u64, _bytes: &[u8]) {}
    /// What was received so far was discarded (the server ignored a resume request).
    fn restarted(&self, _artifact: &Artifact, _discarded: u64) {}
    /// An attempt failed and will be retried after `delay`.
    fn retrying(&self, _artifact: &Artifact, _url: &str, _failure: &Failure, _delay: Duration) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Downloads artifacts into a [`Store`]. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Fetcher {
    store: Store,
    /// Built on the first download: loading the system's root certificates costs more than
    /// a whole warm fetch, which never needs them.
    client: Arc<OnceLock<reqwest::Client>>,
    options: Arc<FetchOptions>,
    permits: Arc<Semaphore>,
}

static CRYPTO: Once = Once::new();

impl Fetcher {
    /// A fetcher for `store`. HTTP(S)_PROXY / NO_PROXY are honoured by the HTTP client.
    pub fn new(store: Store, options: FetchOptions) -> Result<Fetcher, String> {
        let jobs = options.jobs.max(1);
        Ok(Fetcher {
            store,
            client: Arc::new(OnceLock::new()),
            permits: Arc::new(Semaphore::new(jobs)),
            options: Arc::new(options),
        })
    }

    /// The store this fetcher fills.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The HTTP client, built on first use.
    fn client(&self) -> Result<&reqwest::Client, Failure> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.read_timeout)
            .pool_max_idle_per_host(self.options.jobs.max(1) * self.options.segments.max(1))
            .build()
            .map_err(|e| Failure::Transport(format!("could not set up the HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }

    /// A GET of `url` with `.netrc` credentials for its host (unless the URL carries its own).
    fn request(&self, url: &str) -> Result<reqwest::RequestBuilder, Failure> {
        let mut request = self.client()?.get(url);
        if let Ok(parsed) = url::Url::parse(url)
            && parsed.username().is_empty()
            && let Some(creds) = parsed.host_str().and_then(|h| self.options.netrc.lookup(h))
        {
            request = request.basic_auth(&creds.login, Some(&creds.password));
        }
        Ok(request)
    }

    /// Makes `artifact`'s verified bytes present in the store and returns where they are.
    pub async fn ensure(
        &self,
        artifact: &Artifact,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let digest = artifact.store_digest();
        if let Some((path, size)) = self.store.lookup_sized(digest) {
            return Ok(Fetched {
                path,
                source: Source::Cache,
                downloaded: 0,
                size,
            });
        }
        let path = self.store.entry_path(digest);
        let fail = |e: StoreError| FetchError {
            artifact: label(artifact),
            attempts: vec![(String::new(), Failure::Store(e))],
        };
        let _lock = match self.store.try_lock(digest).map_err(fail)? {
            Some(lock) => lock,
            None => {
                let store = self.store.clone();
                let lock_digest = digest.clone();
                tokio::task::spawn_blocking(move || store.lock(&lock_digest))
                    .await
                    .expect("the lock task does not panic")
                    .map_err(fail)?
            }
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.is_file()
        {
            return Ok(Fetched {
                path,
                source: Source::Shared,
                downloaded: 0,
                size: meta.len(),
            });
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let Some(remote) = &self.options.remote else {
            return self.download(artifact, progress).await;
        };
        if let Some(fetched) = self.try_remote(remote.as_ref(), artifact).await {
            return Ok(fetched);
        }
        let fetched = self.download(artifact, progress).await?;
        if let Err(e) = remote.publish(artifact, &fetched.path).await {
            tracing::warn!(artifact = %label(artifact), "{e}");
        }
        Ok(fetched)
    }

    /// Asks the remote tier; its bytes are verified and committed like a download's.
    async fn try_remote(&self, remote: &dyn RemoteTier, artifact: &Artifact) -> Option<Fetched> {
        let mut entry = self
            .store
            .begin(artifact.store_digest(), artifact.size)
            .ok()?;
        match remote.fetch(artifact, &mut entry).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(artifact = %label(artifact), "{e}");
                return None;
            }
        }
        match entry.commit() {
            Ok(path) => {
                let downloaded = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                Some(Fetched {
                    path,
                    source: Source::Download,
                    downloaded,
                    size: downloaded,
                })
            }
            Err(e) => {
                tracing::warn!(
                    artifact = %label(artifact),
                    "the remote tier's copy was rejected ({e}); downloading from the upstream"
                );
                None
            }
        }
    }

    async fn download(
        &self,
        artifact: &Artifact,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let digest = artifact.store_digest();
        let mut attempts = Vec::new();
        progress.started(artifact, artifact.size);
        for url in &artifact.urls {
            let shown = redact(url);
            let mut entry = self
                .store
                .begin(digest, artifact.size)
                .map_err(|e| FetchError {
                    artifact: label(artifact),
                    attempts: vec![(shown.clone(), Failure::Store(e))],
                })?;
            let outcome = self
                .download_url(artifact, url, &shown, &mut entry, progress)
                .await;
            let failure = match outcome.and_then(|()| entry.commit().map_err(Failure::Store)) {
                Ok(path) => {
                    let downloaded = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    return Ok(Fetched {
                        path,
                        source: Source::Download,
                        downloaded,
                        size: downloaded,
                    });
                }
                Err(failure) => failure,
            };
            tracing::warn!(artifact = %label(artifact), url = %shown, "download failed: {failure}");
            let fatal = matches!(&failure, Failure::Store(e) if !e.is_content_mismatch());
            attempts.push((shown, failure));
            if fatal {
                break;
            }
        }
        Err(FetchError {
            artifact: label(artifact),
            attempts,
        })
    }

    /// Tries one URL, retrying transient failures and resuming where possible.
    async fn download_url(
        &self,
        artifact: &Artifact,
        url: &str,
        shown: &str,
        entry: &mut PendingEntry,
        progress: &dyn Progress,
    ) -> Result<(), Failure> {
        let parts = segment_count(&self.options, artifact.size);
        if parts > 1 {
            let size = artifact.size.expect("only sized artifacts are split");
            match self.download_segments(url, shown, entry, size, parts).await {
                Err(Failure::NoRanges) => {
                    tracing::debug!(url = %shown, "no Range support: one stream instead");
                    entry.restart()?;
                }
                done => return done,
            }
        }
        let mut attempt = 0;
        loop {
            let (failure, server_delay) = match self.attempt(artifact, url, entry, progress).await {
                Ok(()) => return Ok(()),
                Err((failure, _)) if !failure.is_transient() || attempt >= self.options.retries => {
                    return Err(failure);
                }
                Err(retry) => retry,
            };
            let delay = server_delay.unwrap_or_else(|| backoff(&self.options, attempt));
            progress.retrying(artifact, shown, &failure, delay);
            tracing::info!(url = %shown, attempt = attempt + 1, ?delay, "retrying after {failure}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        artifact: &Artifact,
        url: &str,
        entry: &mut PendingEntry,
        progress: &dyn Progress,
    ) -> Result<(), (Failure, Option<Duration>)> {
        let plain = |f: Failure| (f, None);
        let offset = entry.written();
        let mut request = self.request(url).map_err(plain)?;
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request.send().await.map_err(|e| plain(transport(e)))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(&response, &self.options);
            return Err((Failure::Status(status), retry_after));
        }
        if offset > 0 && !resumes_at(&response, offset) {
            progress.restarted(artifact, offset);
            entry.restart().map_err(|e| plain(e.into()))?;
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| plain(transport(e)))?;
            let at = entry.written();
            entry.write(&chunk).map_err(|e| plain(e.into()))?;
            progress.received(artifact, at, &chunk);
            progress.advanced(artifact, chunk.len() as u64);
        }
        Ok(())
    }
}

/// Whether a response continues a partial download at `offset`.
fn resumes_at(response: &reqwest::Response, offset: u64) -> bool {
    response.status() == StatusCode::PARTIAL_CONTENT
        && response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|start| start.parse::<u64>().ok())
            == Some(offset)
}

fn retry_after(response: &reqwest::Response, options: &FetchOptions) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(options.backoff_max))
}

/// Full-jitter exponential backoff: uniform in [0, min(max, base * 2^attempt)].
pub fn backoff(options: &FetchOptions, attempt: u32) -> Duration {
    let cap = options
        .backoff_base
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(options.backoff_max);
    cap.mul_f64(fastrand::f64())
}

fn transport(e: reqwest::Error) -> Failure {
    let mut text = if e.is_timeout() {
        "timed out (no data within the deadline)".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while receiving the body".to_string()
    } else {
        "request failed".to_string()
    };
    let mut tls = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        tls |= is_tls_error(s);
        source = s.source();
    }
    if tls {
        Failure::Tls(text)
    } else {
        Failure::Transport(text)
    }
}

/// A rustls error (an untrusted certificate, a failed handshake), bare or inside the
/// `io::Error`s the TLS stream and the connector wrap it in (two deep with hyper-util).
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls_error(inner),
        None => false,
    }
}

/// `name version (file name)`, how artifacts are named in messages.
pub fn label(artifact: &Artifact) -> String {
    match &artifact.version {
        Some(v) => format!("{} {v} ({})", artifact.name, artifact.filename),
        None => format!("{} ({})", artifact.name, artifact.filename),
    }
}

/// The URL without user name or password, safe to print.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

mod partial;
mod segments;

use segments::segment_count;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_credentials() {
        assert_eq!(
            redact("http://u:p@127.0.0.1:8/a.whl"),
            "http://127.0.0.1:8/a.whl"
        );
        assert_eq!(redact("http://127.0.0.1/a"), "http://127.0.0.1/a");
    }

    #[test]
    fn backoff_is_bounded() {
        let o = FetchOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 0..40 {
            let d = backoff(&o, attempt);
            assert!(d <= Duration::from_secs(1), "{attempt}: {d:?}");
            assert!(
                d <= Duration::from_millis(100) * 2u32.pow(attempt.min(10)),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn transient_classification() {
        assert!(Failure::Status(StatusCode::SERVICE_UNAVAILABLE).is_transient());
        assert!(Failure::Status(StatusCode::TOO_MANY_REQUESTS).is_transient());
        assert!(!Failure::Status(StatusCode::NOT_FOUND).is_transient());
        assert!(Failure::Transport("x".into()).is_transient());
        assert!(!Failure::Tls("invalid peer certificate: UnknownIssuer".into()).is_transient());
        let rustls_error =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls_error,
        ));
        assert!(is_tls_error(&nested));
        assert!(!is_tls_error(&std::io::Error::other("connection refused")));
        assert!(
            !Failure::Store(StoreError::SizeMismatch {
                expected: 1,
                actual: 2,
                expected_digest: strata_lock::Digest::new(
                    strata_lock::Algorithm::Sha256,
                    &"0".repeat(64)
                )
                .unwrap(),
                actual_digest: None,
            })
            .is_transient()
        );
    }
}
