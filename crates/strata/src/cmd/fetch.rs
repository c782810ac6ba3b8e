//! `strata fetch`: lockfiles → verified store → Hermeto-compatible output directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use futures_util::StreamExt;
use serde::Serialize;
use strata_lock::{Artifact, Digest, Ecosystem, SkipReason};
use strata_store::{Failure, FetchError, Fetched, Fetcher, Source, Store, StoreError};
use strata_tree::{Node, Tree, TreeOptions};

use crate::cli::{FetchArgs, Format};
use crate::cmd::fetch_plan;
use crate::exit::{CmdResult, input, work};
use crate::progress::FetchProgress;

/// What a fetch did, printed as text or JSON.
#[derive(Debug, Serialize)]
struct Summary {
    output: PathBuf,
    cache_dir: PathBuf,
    artifacts: usize,
    bytes: u64,
    downloaded: usize,
    downloaded_bytes: u64,
    from_cache: usize,
    skipped: Vec<SkippedEntry>,
    failed: Vec<FailedArtifact>,
    /// Wall-clock seconds.
    duration: f64,
    duration_ms: u128,
}

#[derive(Debug, Clone, Serialize)]
struct SkippedEntry {
    name: String,
    lockfile: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct FailedArtifact {
    artifact: String,
    path: String,
    lockfile: String,
    urls: Vec<String>,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actual: Option<String>,
}

/// Runs `strata fetch`.
pub fn run(args: FetchArgs) -> CmdResult {
    let started = Instant::now();
    // The warm path: a plan cached for exactly these inputs, every entry in the store.
    let plan_key = fetch_plan::key(&args.lockfiles, &filter_identity(&args));
    let store = Store::open(args.cache.resolve());
    if let (Some(key), Ok(store)) = (&plan_key, &store)
        && let Some(cached) = fetch_plan::load(store, key)
        && let Some(summary) = from_cached_plan(store, cached, &args.output, started)
    {
        print_summary(&summary, args.format);
        return Ok(ExitCode::SUCCESS);
    }
    // Input errors come first: a bad lockfile is exit 2 even when the cache is unusable.
    let plan = Plan::load(&args)?;
    let store = store.map_err(work)?;
    let options = args.download.fetch_options(&args.cache).map_err(input)?;
    let fetcher = Fetcher::new(store.clone(), options).map_err(|e| work(anyhow::anyhow!(e)))?;
    prepare_output(&args.output, &plan.tree)?;
    let progress = FetchProgress::new(plan.unique.len() as u64, args.format == Format::Text);
    // Cache hits need no async machinery: they are linked on this thread, and the runtime is
    // started only when something must be downloaded or RPM repodata must be ensured.
    let (mut results, misses) = link_cached(&store, &plan, &args.output, &progress);
    let needs_async =
        !misses.is_empty() || plan.artifacts.iter().any(|a| a.ecosystem == Ecosystem::Rpm);
    let runtime = if needs_async {
        Some(start_runtime()?)
    } else {
        None
    };
    if let Some(runtime) = &runtime {
        results.extend(runtime.block_on(fetch_all(
            &fetcher,
            &plan,
            &misses,
            &args.output,
            &progress,
            usize::from(args.download.jobs),
        )));
    }
    progress.finish();

    let mut summary = Summary {
        output: args.output.clone(),
        cache_dir: store.root().to_path_buf(),
        artifacts: plan.artifacts.len(),
        bytes: 0,
        downloaded: 0,
        downloaded_bytes: 0,
        from_cache: 0,
        skipped: plan.skipped.clone(),
        failed: Vec::new(),
        duration: 0.0,
        duration_ms: 0,
    };
    for (digest, result) in &results {
        let users = &plan.unique[digest];
        match result {
            Ok(fetched) => {
                summary.bytes += fetched.size * users.len() as u64;
                match fetched.source {
                    Source::Download => {
                        summary.downloaded += 1;
                        summary.downloaded_bytes += fetched.downloaded;
                        summary.from_cache += users.len() - 1;
                    }
                    Source::Cache | Source::Shared => summary.from_cache += users.len(),
                }
            }
            Err(error) => {
                for &i in users {
                    summary
                        .failed
                        .push(describe_failure(&plan.artifacts[i], error));
                }
            }
        }
    }
    summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
    if summary.failed.is_empty() {
        if let Some(runtime) = &runtime {
            let repodata = runtime.block_on(crate::cmd::repodata::write_all(
                &fetcher,
                &plan.artifacts,
                &args.output,
            ));
            tracing::info!(
                "repodata: {} repos from cache, {} generated",
                repodata.cached,
                repodata.generated
            );
        }
        write_generated(&args.output, &plan.tree)?;
        if let Some(key) = &plan_key
            && let Some(bytes) = cacheable_plan(&store, &plan, &results)
            && let Err(e) = store.write_derived(key, &bytes)
        {
            tracing::debug!("the plan was not cached: {e}");
        }
    }
    summary.duration_ms = started.elapsed().as_millis();
    summary.duration = started.elapsed().as_secs_f64();
    print_summary(&summary, args.format);
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What, besides the lockfiles, decides a fetch's plan (see [`fetch_plan::key`]).
fn filter_identity(args: &FetchArgs) -> String {
    format!("{:?}", args.download.filter())
}

/// Carries out a cached plan: directories, then one link per output path (the generated
/// files are store entries too).
/// `None` (nothing reported; the full path takes over and finishes the job) as soon as an
/// entry is missing from the store or anything fails.
fn from_cached_plan(
    store: &Store,
    plan: fetch_plan::CachedPlan,
    output: &Path,
    started: Instant,
) -> Option<Summary> {
    for dir in &plan.dirs {
        std::fs::create_dir_all(output.join(dir)).ok()?;
    }
    let mut bytes = 0;
    for link in &plan.links {
        for path in &link.paths {
            store
                .link_if_present(&link.digest, &output.join(path))
                .ok()??;
            bytes += link.size;
        }
    }
    for link in &plan.generated {
        for path in &link.paths {
            store
                .link_if_present(&link.digest, &output.join(path))
                .ok()??;
        }
    }
    let elapsed = started.elapsed();
    Some(Summary {
        output: output.to_path_buf(),
        cache_dir: store.root().to_path_buf(),
        artifacts: plan.artifacts,
        bytes,
        downloaded: 0,
        downloaded_bytes: 0,
        from_cache: plan.links.iter().map(|l| l.paths.len()).sum(),
        skipped: plan
            .skipped
            .into_iter()
            .map(|(name, lockfile, reason)| SkippedEntry {
                name,
                lockfile,
                reason,
            })
            .collect(),
        failed: Vec::new(),
        duration: elapsed.as_secs_f64(),
        duration_ms: elapsed.as_millis(),
    })
}

/// The plan of a completed fetch, encoded for the cache (its generated files put in the
/// store); `None` for plans that depend on the output directory (RPM repo files), that did
/// not complete, or whose generated files the store could not take.
fn cacheable_plan(store: &Store, plan: &Plan, results: &[Outcome]) -> Option<Vec<u8>> {
    if plan.artifacts.iter().any(|a| a.ecosystem == Ecosystem::Rpm) {
        return None;
    }
    let mut cached = fetch_plan::CachedPlan {
        artifacts: plan.artifacts.len(),
        skipped: plan
            .skipped
            .iter()
            .map(|s| (s.name.clone(), s.lockfile.clone(), s.reason.clone()))
            .collect(),
        ..Default::default()
    };
    for (digest, result) in results {
        let fetched = result.as_ref().ok()?;
        cached.links.push(fetch_plan::CachedLink {
            digest: digest.clone(),
            size: fetched.size,
            paths: plan.unique[digest]
                .iter()
                .map(|&i| plan.artifacts[i].path.clone())
                .collect(),
        });
    }
    for entry in plan.tree.iter() {
        let path = plan.tree.path(entry.id).unwrap_or_default();
        match entry.node {
            Node::Dir if !path.is_empty() => cached.dirs.push(path.to_string()),
            Node::Generated(bytes) => {
                let link = fetch_plan::store_generated(store, &path, bytes)
                    .map_err(|e| tracing::debug!("a generated file was not stored: {e}"))
                    .ok()?;
                cached.generated.push(link);
            }
            _ => {}
        }
    }
    Some(fetch_plan::encode(&cached))
}

/// Everything decided before any byte is written: parsing errors stop here, exit 2.
struct Plan {
    artifacts: Vec<Artifact>,
    skipped: Vec<SkippedEntry>,
    tree: Tree,
    /// Each distinct store digest and the artifacts (indices) that share it.
    unique: BTreeMap<Digest, Vec<usize>>,
}

impl Plan {
    fn load(args: &FetchArgs) -> Result<Plan, crate::exit::Failure> {
        let outcome = strata_lock::load_all_with_skipped(&args.lockfiles, &args.download.filter())
            .map_err(input)?;
        let artifacts = outcome.artifacts;
        let skipped = outcome
            .skipped
            .iter()
            .filter_map(|s| match &s.reason {
                SkipReason::Unfetchable(why) | SkipReason::NoFileSelected(why) => {
                    Some(SkippedEntry {
                        name: s.name.clone(),
                        lockfile: s.origin.to_string(),
                        reason: why.clone(),
                    })
                }
                SkipReason::NotSelected(_) => None,
            })
            .collect();
        let for_output_dir = match &args.for_output_dir {
            Some(p) => p.clone(),
            None => std::path::absolute(&args.output)
                .with_context(|| {
                    format!(
                        "could not resolve the output directory {}",
                        args.output.display()
                    )
                })
                .map_err(input)?,
        };
        let npm_projects = strata_tree::load_npm_projects(&artifacts).map_err(input)?;
        let options = TreeOptions {
            for_output_dir: Some(for_output_dir.to_string_lossy().into_owned()),
            npm_projects,
            sbom: Default::default(),
        };
        let tree = Tree::build(&artifacts, &options).map_err(input)?;
        let mut unique: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
        for (i, a) in artifacts.iter().enumerate() {
            unique.entry(a.store_digest().clone()).or_default().push(i);
        }
        Ok(Plan {
            artifacts,
            skipped,
            tree,
            unique,
        })
    }
}

/// Creates the output directory and every directory of the tree.
fn prepare_output(output: &Path, tree: &Tree) -> Result<(), crate::exit::Failure> {
    for entry in tree.iter() {
        if matches!(entry.node, Node::Dir) {
            let rel = tree.path(entry.id).unwrap_or_default();
            let dir = output.join(rel);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("could not create {}", dir.display()))
                .map_err(work)?;
        }
    }
    Ok(())
}

/// Ensures every distinct digest and links it to each of its output paths as it arrives.
/// A multi-threaded runtime for downloads.
fn start_runtime() -> Result<tokio::runtime::Runtime, crate::exit::Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(work)
}

type Outcome = (Digest, Result<Fetched, FetchError>);

/// Links every digest already in the store to its output paths; returns those outcomes and
/// the digests still to download. A hit costs one link(2) per output path and nothing else.
fn link_cached<'p>(
    store: &Store,
    plan: &'p Plan,
    output: &Path,
    progress: &FetchProgress,
) -> (Vec<Outcome>, Vec<&'p Digest>) {
    let mut done = Vec::new();
    let mut misses = Vec::new();
    for (digest, users) in &plan.unique {
        let first = &plan.artifacts[users[0]];
        let dest = output.join(&first.path);
        let result = match store.link_if_present(digest, &dest) {
            Ok(None) => {
                misses.push(digest);
                continue;
            }
            Ok(Some(_)) => {
                let path = store.entry_path(digest);
                let size = first
                    .size
                    .or_else(|| std::fs::metadata(&path).ok().map(|m| m.len()))
                    .unwrap_or(0);
                let fetched = Fetched {
                    path,
                    source: Source::Cache,
                    downloaded: 0,
                    size,
                };
                place(store, plan, digest, &users[1..], output, fetched)
            }
            Err(e) => Err(FetchError {
                artifact: strata_store::label(first),
                attempts: vec![(dest.display().to_string(), Failure::Store(e))],
            }),
        };
        finish_one(progress, &result);
        done.push((digest.clone(), result));
    }
    (done, misses)
}

/// Ensures each missing digest and links it to each of its output paths as it arrives.
async fn fetch_all(
    fetcher: &Fetcher,
    plan: &Plan,
    misses: &[&Digest],
    output: &Path,
    progress: &FetchProgress,
    jobs: usize,
) -> Vec<Outcome> {
    let store = fetcher.store();
    futures_util::stream::iter(misses.iter().copied())
        .map(|digest| async move {
            let users = &plan.unique[digest];
            let result = match fetcher.ensure(&plan.artifacts[users[0]], progress).await {
                Ok(fetched) => place(store, plan, digest, users, output, fetched),
                Err(e) => Err(e),
            };
            finish_one(progress, &result);
            (digest.clone(), result)
        })
        .buffer_unordered(jobs.saturating_mul(2).max(1))
        .collect()
        .await
}

/// Links a store entry to the output path of every artifact that shares its digest.
fn place(
    store: &Store,
    plan: &Plan,
    digest: &Digest,
    users: &[usize],
    output: &Path,
    fetched: Fetched,
) -> Result<Fetched, FetchError> {
    for &i in users {
        let artifact = &plan.artifacts[i];
        if let Err(e) = store.link_into(digest, &output.join(&artifact.path)) {
            return Err(FetchError {
                artifact: strata_store::label(artifact),
                attempts: vec![(fetched.path.display().to_string(), Failure::Store(e))],
            });
        }
    }
    Ok(fetched)
}

fn finish_one(progress: &FetchProgress, result: &Result<Fetched, FetchError>) {
    if let Err(e) = result {
        progress.println(&format!("error: {e}"));
    }
    progress.artifact_done();
}

/// Writes bom.json, .build-config.json and other generated files, each atomically.
fn write_generated(output: &Path, tree: &Tree) -> Result<(), crate::exit::Failure> {
    for entry in tree.iter() {
        if let Node::Generated(bytes) = entry.node {
            let path = output.join(tree.path(entry.id).unwrap_or_default());
            strata_tree::write_regenerable(&path, bytes)
                .with_context(|| format!("could not write {}", path.display()))
                .map_err(work)?;
        }
    }
    Ok(())
}

fn describe_failure(artifact: &Artifact, error: &FetchError) -> FailedArtifact {
    let mismatch = error.attempts.iter().rev().find_map(|(_, f)| match f {
        Failure::Store(StoreError::DigestMismatch { expected, actual }) => {
            Some((expected.to_string(), actual.to_string()))
        }
        Failure::Store(StoreError::SizeMismatch {
            expected,
            actual,
            expected_digest,
            actual_digest,
        }) => Some((
            format!("{expected_digest} ({expected} bytes)"),
            match actual_digest {
                Some(digest) => format!("{digest} ({actual} bytes)"),
                None => format!("more than {actual} bytes (cut off, not hashed)"),
            },
        )),
        _ => None,
    });
    FailedArtifact {
        artifact: strata_store::label(artifact),
        path: artifact.path.clone(),
        lockfile: artifact.origin.to_string(),
        urls: artifact
            .urls
            .iter()
            .map(|u| strata_store::redact(u))
            .collect(),
        error: error.to_string(),
        expected: mismatch.as_ref().map(|m| m.0.clone()),
        actual: mismatch.map(|m| m.1),
    }
}

fn print_summary(summary: &Summary, format: Format) {
    match format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(summary).expect("the summary serialises")
            );
        }
        Format::Text => {
            for s in summary.skipped.iter().filter(|_| !crate::progress::quiet()) {
                eprintln!("skipped {} ({}): {}", s.name, s.lockfile, s.reason);
            }
            for f in &summary.failed {
                eprintln!("failed: {} [{}]\n  {}", f.artifact, f.lockfile, f.error);
            }
            if crate::progress::quiet() && summary.failed.is_empty() {
                return;
            }
            let status = if summary.failed.is_empty() {
                "fetched"
            } else {
                "incomplete:"
            };
            eprintln!(
                "{status} {} artifacts ({}) into {} in {:.2}s: {} downloaded ({}), {} from cache{}",
                summary.artifacts,
                indicatif::HumanBytes(summary.bytes),
                summary.output.display(),
                summary.duration_ms as f64 / 1000.0,
                summary.downloaded,
                indicatif::HumanBytes(summary.downloaded_bytes),
                summary.from_cache,
                if summary.failed.is_empty() {
                    String::new()
                } else {
                    format!(", {} failed", summary.failed.len())
                },
            );
        }
    }
}
