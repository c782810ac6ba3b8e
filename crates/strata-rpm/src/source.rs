//! Where package headers and live metadata come from: the store when the package is already
//! there, otherwise the upstream with `Range` requests for just the header bytes. All HTTP
//! goes through [`strata_store::Fetcher`].

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt as _;
use strata_lock::{Algorithm, Artifact, Details, RpmKind};
use strata_store::{FetchError, Fetcher};

use crate::cache::{CachedRepodata, RepodataCache, repo_key};
use crate::epoch::repo_of;
use crate::header::{self, HeaderError, PackageHeader};
use crate::live::{self, MetadataError, PrimaryPackage};
use crate::repodata::{ExtraMetadata, RepoPackage, generate};

/// First read of a package: the lead, the signature and most main headers of small packages
/// fit in 16 KiB; larger headers take one more request for exactly the missing bytes.
const FIRST_READ: u64 = 16 << 10;
/// Largest `repomd.xml` accepted.
const REPOMD_LIMIT: u64 = 16 << 20;
/// Largest compressed primary metadata accepted without a checksum to key it by.
const PRIMARY_LIMIT: u64 = 1 << 30;

/// Why repodata or live metadata could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum RepodataError {
    /// A package's headers could not be read.
    #[error("{artifact}: {source}")]
    Header {
        /// The package (`name version (file)`).
        artifact: String,
        /// Why.
        source: HeaderError,
    },
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The store or the index could not be read or written.
    #[error("repodata cache: {0}")]
    Io(#[from] std::io::Error),
    /// Live metadata is malformed.
    #[error("{url}: {source}")]
    Metadata {
        /// What was read.
        url: String,
        /// Why.
        source: MetadataError,
    },
    /// A metadata file did not match the checksum `repomd.xml` gives it.
    #[error("{url}: checksum mismatch (repomd.xml says {expected}, got {actual})")]
    Mismatch {
        /// What was read.
        url: String,
        /// Expected hex.
        expected: String,
        /// Actual hex.
        actual: String,
    },
}

/// The artifacts of one repository directory, `deps/rpm/<arch>/<repoid>/`.
#[derive(Debug, Clone)]
pub struct RepoArtifacts<'a> {
    /// The arch directory.
    pub arch: String,
    /// The repo id directory.
    pub repoid: String,
    /// Its artifacts (packages, source packages, module metadata).
    pub artifacts: Vec<&'a Artifact>,
}

impl RepoArtifacts<'_> {
    /// `deps/rpm/<arch>/<repoid>`, the repository root relative to the output directory.
    pub fn dir(&self) -> String {
        format!("deps/rpm/{}/{}", self.arch, self.repoid)
    }

    /// The repodata cache key of this repository.
    pub fn key(&self) -> String {
        repo_key(self.artifacts.iter().copied())
    }
}

/// Groups RPM artifacts by repository directory, sorted by `(arch, repoid)`.
pub fn group_repos(artifacts: &[Artifact]) -> Vec<RepoArtifacts<'_>> {
    let mut map: BTreeMap<(&str, &str), Vec<&Artifact>> = BTreeMap::new();
    for a in artifacts {
        if let Some(key) = repo_of(a) {
            map.entry(key).or_default().push(a);
        }
    }
    map.into_iter()
        .map(|((arch, repoid), artifacts)| RepoArtifacts {
            arch: arch.to_owned(),
            repoid: repoid.to_owned(),
            artifacts,
        })
        .collect()
}

/// Counts what header reads cost.
#[derive(Debug, Default)]
pub struct HeaderStats {
    /// Packages whose headers were read from the store.
    pub from_store: AtomicU64,
    /// Packages whose headers were read with `Range` requests.
    pub ranged: AtomicU64,
    /// Bytes transferred by `Range` requests.
    pub range_bytes: AtomicU64,
}

/// How a repository's repodata was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    /// The index was in the cache.
    Cached,
    /// It was generated now.
    Generated,
}

/// Reads a package's headers: from its store entry when present, else with `Range` requests
/// (64 KiB first, then exactly what the header sizes say is missing).
pub async fn read_header(
    fetcher: &Fetcher,
    artifact: &Artifact,
    stats: &HeaderStats,
) -> Result<PackageHeader, RepodataError> {
    let fail = |source| RepodataError::Header {
        artifact: strata_store::label(artifact),
        source,
    };
    let entry = fetcher.store().entry_path(artifact.store_digest());
    if entry.is_file() {
        let prefix = tokio::task::spawn_blocking(move || read_prefix(&entry))
            .await
            .expect("reading a file does not panic")?;
        stats.from_store.fetch_add(1, Ordering::Relaxed);
        return header::parse(&prefix).map_err(fail);
    }
    let url = artifact.urls.first().map(String::as_str).unwrap_or("");
    let mut want = FIRST_READ.min(artifact.size.unwrap_or(FIRST_READ).max(1));
    let mut bytes: Vec<u8> = Vec::new();
    stats.ranged.fetch_add(1, Ordering::Relaxed);
    loop {
        if (bytes.len() as u64) < want {
            let more = fetcher
                .get_range(url, bytes.len() as u64, want - bytes.len() as u64)
                .await?;
            stats
                .range_bytes
                .fetch_add(more.len() as u64, Ordering::Relaxed);
            let got_nothing = more.is_empty();
            bytes.extend(more);
            if got_nothing {
                return header::parse(&bytes).map_err(fail);
            }
        }
        match header::headers_len(&bytes) {
            Ok(end) if end <= bytes.len() => return header::parse(&bytes).map_err(fail),
            Ok(end) => want = end as u64,
            Err(HeaderError::Truncated { needed, .. }) if needed > bytes.len() => {
                // Ask for the rest of the signature and a good guess at the main header.
                want = needed as u64 + FIRST_READ;
            }
            Err(e) => return Err(fail(e)),
        }
    }
}

/// Reads the leading bytes of a file holding the headers.
fn read_prefix(path: &std::path::Path) -> Result<Vec<u8>, RepodataError> {
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let mut want = FIRST_READ as usize;
    loop {
        let have = bytes.len();
        (&mut file)
            .take((want - have) as u64)
            .read_to_end(&mut bytes)?;
        match header::headers_len(&bytes) {
            Ok(end) if end > bytes.len() && bytes.len() == want => want = end,
            Err(HeaderError::Truncated { needed, .. }) if bytes.len() == want => {
                want = needed + FIRST_READ as usize / 4
            }
            _ => return Ok(bytes),
        }
    }
}

/// The cached repodata of `repo`, generating and caching it on a miss: headers are read for
/// every package (`jobs` at a time) from the store or with `Range` requests, never by
/// downloading whole packages.
pub async fn ensure_repodata(
    fetcher: &Fetcher,
    cache: &RepodataCache,
    repo: &RepoArtifacts<'_>,
    jobs: usize,
    stats: &HeaderStats,
) -> Result<(CachedRepodata, Obtained), RepodataError> {
    let key = repo.key();
    if let Some(hit) = cache.lookup(&key) {
        return Ok((hit, Obtained::Cached));
    }
    let mut packages = Vec::new();
    let mut extra = Vec::new();
    let mut to_read = Vec::new();
    for a in &repo.artifacts {
        match &a.details {
            Details::Rpm {
                kind: RpmKind::ModuleMetadata,
                ..
            } => extra.push(ExtraMetadata {
                kind: "modules".into(),
                location: a.filename.clone(),
                sha256: sha256_of(a).unwrap_or_default(),
                size: a.size,
            }),
            _ => to_read.push(*a),
        }
    }
    let results: Vec<Result<RepoPackage, RepodataError>> = futures_util::stream::iter(to_read)
        .map(|a| async move {
            let header = read_header(fetcher, a, stats).await?;
            let size = match a.size {
                Some(s) => s,
                None => fetcher
                    .store()
                    .entry_path(a.store_digest())
                    .metadata()
                    .map(|m| m.len())
                    .unwrap_or(0),
            };
            Ok(RepoPackage {
                header,
                location: a.filename.clone(),
                sha256: sha256_of(a).ok_or_else(|| RepodataError::Header {
                    artifact: strata_store::label(a),
                    source: HeaderError::NotRpm("the lockfile gives no sha256 for it".into()),
                })?,
                size,
            })
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for r in results {
        packages.push(r?);
    }
    let files = generate(&packages, &extra);
    let cache = cache.clone();
    let stored = tokio::task::spawn_blocking(move || cache.insert(&key, &files))
        .await
        .expect("inserting does not panic")?;
    Ok((stored, Obtained::Generated))
}

fn sha256_of(a: &Artifact) -> Option<String> {
    a.digests
        .iter()
        .find(|d| d.algorithm == Algorithm::Sha256)
        .map(|d| d.hex().to_owned())
}

/// Reads a live repository's primary metadata: `<baseurl>/repodata/repomd.xml`, then the
/// primary file it lists (gz, xz or zstd), verified against repomd's sha256.
pub async fn live_primary(
    fetcher: &Fetcher,
    baseurl: &str,
) -> Result<Vec<PrimaryPackage>, RepodataError> {
    let base = baseurl.trim_end_matches('/');
    let repomd_url = format!("{base}/repodata/repomd.xml");
    let repomd = fetcher.get_bytes(&repomd_url, REPOMD_LIMIT).await?;
    let meta = |url: &str, source| RepodataError::Metadata {
        url: url.to_owned(),
        source,
    };
    let entries = live::parse_repomd(&repomd).map_err(|e| meta(&repomd_url, e))?;
    let primary = live::primary_entry(&entries).map_err(|e| meta(&repomd_url, e))?;
    let url = format!("{base}/{}", primary.href.trim_start_matches('/'));
    let bytes = fetcher.get_bytes(&url, PRIMARY_LIMIT).await?;
    if primary.checksum_type == "sha256" {
        let actual = crate::repodata::sha256_hex(&bytes);
        if actual != primary.checksum {
            return Err(RepodataError::Mismatch {
                url,
                expected: primary.checksum.clone(),
                actual,
            });
        }
    }
    let xml = live::decompress(&primary.href, &bytes).map_err(|e| meta(&url, e))?;
    live::parse_primary(&xml).map_err(|e| meta(&url, e))
}
