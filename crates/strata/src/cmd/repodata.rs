//! RPM repodata for output directories: used by `strata fetch` (and available to
//! `strata mount`) to give every `deps/rpm/<arch>/<repoid>/` a `repodata/` dnf can read.

use std::path::Path;

use futures_util::StreamExt as _;
use strata_lock::Artifact;
use strata_rpm::{HeaderStats, Obtained, RepodataCache, ensure_repodata, group_repos};
use strata_store::Fetcher;

/// What [`write_all`] did.
#[derive(Debug, Default)]
pub struct RepodataReport {
    /// Repositories whose repodata came from the cache.
    pub cached: usize,
    /// Repositories whose repodata was generated now.
    pub generated: usize,
    /// Repositories left without repodata, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Writes `repodata/` into every RPM repository directory of `output`, from the cache or
/// generated from package headers (the packages are in the store already after a fetch).
/// A repository whose packages cannot be read gets no repodata and a warning: the fetched
/// files are still correct, only dnf cannot use that directory as a repo.
pub async fn write_all(fetcher: &Fetcher, artifacts: &[Artifact], output: &Path) -> RepodataReport {
    let cache = RepodataCache::new(fetcher.store().clone());
    let stats = HeaderStats::default();
    let repos = group_repos(artifacts);
    let results: Vec<_> = futures_util::stream::iter(repos.iter())
        .map(|repo| {
            let cache = &cache;
            let stats = &stats;
            async move {
                let result = ensure_repodata(fetcher, cache, repo, 16, stats)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|(data, how)| {
                        let dir = output.join(repo.dir());
                        let old = dir.join("repodata");
                        if old.exists() {
                            std::fs::remove_dir_all(&old)
                                .map_err(|e| format!("could not replace {}: {e}", old.display()))?;
                        }
                        for f in &data.files {
                            let dest = dir.join(&f.path);
                            std::fs::create_dir_all(dest.parent().expect("repodata has a dir"))
                                .map_err(|e| format!("could not create {}: {e}", dest.display()))?;
                            cache
                                .store()
                                .link_into(&f.digest, &dest)
                                .map_err(|e| e.to_string())?;
                        }
                        Ok(how)
                    });
                (repo.dir(), result)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut report = RepodataReport::default();
    for (dir, result) in results {
        match result {
            Ok(Obtained::Cached) => report.cached += 1,
            Ok(Obtained::Generated) => report.generated += 1,
            Err(e) => {
                tracing::warn!("no repodata for {dir}: {e}");
                report.failed.push((dir, e));
            }
        }
    }
    report.failed.sort();
    report
}
