//! Reads that are not store entries: small documents whose digest is not known in advance
//! (a live repository's `repomd.xml`) and leading byte ranges of artifacts (RPM headers, for
//! building repodata without downloading whole packages). Nothing read here is verified or
//! stored: callers verify what they can (dnf checks every package it installs against the
//! sha256 that repodata carries, which comes from the lockfile, not from these bytes).

use std::sync::OnceLock;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::RANGE;

use super::{Failure, FetchError, Fetcher, backoff, redact, transport};

/// The client for partial reads, shared by every fetcher of the process.
static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();

impl Fetcher {
    /// GETs at most `limit` bytes of `url`, retrying transient failures like
    /// [`Fetcher::ensure`]. A longer body is an error. Not verified, not stored.
    pub async fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.get_partial(url, None, limit).await
    }

    /// GETs bytes `start..start + len` of `url` (fewer at the end of the file) with a `Range`
    /// request; a server that ignores `Range` is read only as far as needed. Not verified,
    /// not stored.
    pub async fn get_range(&self, url: &str, start: u64, len: u64) -> Result<Vec<u8>, FetchError> {
        self.get_partial(url, Some(start), len).await
    }

    fn partial_client(&self) -> Result<&'static reqwest::Client, Failure> {
        CLIENT
            .get_or_init(|| {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(self.options.connect_timeout)
                    .read_timeout(self.options.read_timeout)
                    .build()
                    .map_err(|e| format!("could not set up the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| Failure::Transport(e.clone()))
    }

    async fn get_partial(
        &self,
        url: &str,
        start: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let shown = redact(url);
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut attempt = 0;
        loop {
            let failure = match self.get_once(url, start, limit).await {
                Ok(bytes) => return Ok(bytes),
                Err(f) if !f.is_transient() || attempt >= self.options.retries => f,
                Err(f) => {
                    let delay = backoff(&self.options, attempt);
                    tracing::info!(url = %shown, attempt = attempt + 1, ?delay, "retrying after {f}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    continue;
                }
            };
            return Err(FetchError {
                artifact: shown.clone(),
                attempts: vec![(shown, failure)],
            });
        }
    }

    async fn get_once(
        &self,
        url: &str,
        start: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, Failure> {
        let mut request = self.partial_client()?.get(url);
        if let Ok(parsed) = url::Url::parse(url)
            && parsed.username().is_empty()
            && let Some(creds) = parsed.host_str().and_then(|h| self.options.netrc.lookup(h))
        {
            request = request.basic_auth(&creds.login, Some(&creds.password));
        }
        if let Some(start) = start {
            let end = start.saturating_add(limit.max(1) - 1);
            request = request.header(RANGE, format!("bytes={start}-{end}"));
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(Failure::Status(status));
        }
        // A 200 to a range request carries the whole file: skip to `start`.
        let mut skip = match start {
            Some(s) if status != StatusCode::PARTIAL_CONTENT => s,
            _ => 0,
        };
        let mut out = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(transport)?;
            let skipped = (skip as usize).min(chunk.len());
            let chunk = &chunk[skipped..];
            skip -= skipped as u64;
            let room = (limit as usize).saturating_sub(out.len());
            if chunk.len() > room {
                if start.is_none() {
                    return Err(Failure::Transport(format!(
                        "the response is larger than the {limit} bytes expected"
                    )));
                }
                out.extend_from_slice(&chunk[..room]);
                break;
            }
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }
}
