//! A build run: the images of a [`RunPlan`] built in dependency order, independent ones in
//! parallel, each reused instead of rebuilt when an image with its input key exists (the local
//! image `strata-local/<image>:<short key>` labelled `dev.strata.input-key=<key>`, or the
//! registry tag `<repo>:sk-<key>`), tags applied only after every image succeeded, a
//! [`Record`] written. Where each image comes from is decided before anything runs: one
//! engine inspection of the run's local references, the registry's key tags looked up at
//! once; an image found only in the registry is pulled when it is requested or built upon
//! (otherwise its layers arrive with its child's pull, or are not needed at all).
//!
//! Local references: each image of the run is tagged `strata-local/<image>:<short key>` as
//! soon as it is ready; children get that reference in their `from-arg` build arg.
//! Tags: every requested image, and every prerequisite that had to be built, gets its
//! configured tags (reused prerequisites keep the tags they have). With `push`, the tags and
//! the key tag `sk-<short key>` (in each tagged repository) are pushed.
//!
//! Publishing follows a [`publish_plan`], in phases: with `push`, first every image's content
//! is pushed under its key tags (bookkeeping no one pulls by name); only when all of those
//! succeeded are the user-facing tags applied, locally, and then pushed. A content push that
//! fails (a registry down, a rejected upload) thus leaves no user-facing tag anywhere; a
//! failure later on is reported with exactly which tags were and were not applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use strata_registry::client::{Registry, RepoRef};

use crate::LayersError;
use crate::config::Config;
use crate::engine::{BuildRequest, Engine, ImageInfo};
use crate::keys::{DockerfileKeys, IMAGE_LABEL, KEY_LABEL, input_keys, short};
pub use crate::order::Selection;
use crate::order::{RunPlan, plan_run, ready};
use crate::record::{ImageRecord, Record};
use crate::template::{self, Vars};

/// How to run a build.
pub struct BuildOptions<'a> {
    /// What to build.
    pub selection: Selection,
    /// The engine.
    pub engine: Engine,
    /// Images built at once.
    pub jobs: usize,
    /// Push tags (and key tags) to their registries.
    pub push: bool,
    /// Look for images with the same key in the registry (`sk-<key>` tags).
    pub registry_lookup: bool,
    /// Build the requested images (and the run's images built on them) even when an image
    /// with their input key exists (see [`rebuilt_images`]).
    pub rebuild: bool,
    /// Template variables for tags.
    pub vars: Vars,
    /// Where the Dockerfile keys come from.
    pub keys: &'a (dyn DockerfileKeys + Sync),
    /// Where to write the record (`None`: do not write).
    pub records_dir: Option<PathBuf>,
    /// Receives log lines (`[image] …`) and progress messages.
    pub log: &'a (dyn Fn(&str) + Sync),
    /// Receives each image's state changes (for a progress view), if set.
    pub events: Option<&'a (dyn Fn(Event<'_>) + Sync)>,
}

/// A change in the state of a run's images, for progress views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The images of the run, parents first; all are queued.
    Planned(&'a [String]),
    /// An image's step started (reuse or build).
    Started(&'a str),
    /// An image's step ended with this status (`built`, `reused`, `failed`).
    Finished(&'a str, &'a str),
}

/// The repository part of a reference (`host/repo:tag` → `host/repo`).
pub fn repository(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => r,
        _ => reference,
    }
}

/// The key tag of an input key in a repository (`<repo>:sk-<24 hex>`, see
/// [`strata_registry::keytag`]).
pub fn key_tag(repo: &str, key: &str) -> String {
    format!("{repo}:{}", strata_registry::key_tag(key))
}

fn registry_for(repo: &str) -> Option<Registry> {
    let r = RepoRef::parse(repo).ok()?;
    Registry::new(r, false).ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Template variables whose value changes with every commit or run: a tag using one of them
/// never names an earlier build.
const PER_BUILD_VARIABLES: [&str; 3] = ["{sha}", "{short_sha}", "{timestamp}"];

/// Where an image's earlier builds are, for BuildKit's inline cache (`--cache-from`): its
/// configured tags that stay the same from commit to commit (`base-stable`, `latest`,
/// `pr-{pr}`), rendered, and only those in a registry (a local-only name would be looked up
/// on Docker Hub). Pure.
pub fn registry_cache_refs(image: &crate::config::ImageConfig, vars: &Vars) -> Vec<String> {
    let mut v = vars.clone();
    v.set("image", image.name.as_str());
    let mut refs: Vec<String> = Vec::new();
    for t in &image.tags {
        if PER_BUILD_VARIABLES.iter().any(|p| t.contains(p)) {
            continue;
        }
        if let Ok(r) = template::render(t, &v)
            && in_a_registry(&r)
            && !refs.contains(&r)
        {
            refs.push(r);
        }
    }
    refs
}

/// Whether a reference names a registry host (`host.tld/…`, `host:port/…`, `localhost/…`).
fn in_a_registry(reference: &str) -> bool {
    reference
        .split_once('/')
        .is_some_and(|(host, _)| host.contains('.') || host.contains(':') || host == "localhost")
}

/// The build arg that makes BuildKit put its cache metadata into the image it exports.
const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

/// The local reference of an image with an input key: `strata-local/<image>:<short key>`.
pub fn local_ref(name: &str, key: &str) -> String {
    format!("strata-local/{name}:{}", short(key))
}

/// The outcome of one image's step.
struct Done {
    name: String,
    record: ImageRecord,
    local_ref: String,
}

/// Runs a build. Returns the record (also on failure: check `success`).
pub fn run(config: &Config, opts: &BuildOptions<'_>) -> Result<Record, LayersError> {
    let started = Instant::now();
    let started_ms = now_ms();
    let plan: RunPlan = plan_run(config, &opts.selection).map_err(LayersError::Usage)?;
    let log = opts.log;
    // Tags first: a bad template fails before anything runs.
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &plan.images {
        let mut v = opts.vars.clone();
        v.set("image", n.as_str());
        let t: Result<Vec<String>, String> = config.images[n]
            .tags
            .iter()
            .map(|t| template::render(t, &v))
            .collect();
        tags.insert(
            n.clone(),
            t.map_err(|e| LayersError::Usage(format!("image.{n}.tags: {e}")))?,
        );
    }
    // Layer cache settings the engine cannot honour fail before anything is built.
    for n in &plan.images {
        let image = &config.images[n];
        crate::engine::check_cache(opts.engine.kind, &image.cache_from, &image.cache_to).map_err(
            |p| {
                LayersError::Config(crate::ConfigError {
                    path: config.path.clone(),
                    line: Some(p.line),
                    key: Some(format!("image.{n}.{}", p.setting)),
                    message: p.message,
                })
            },
        )?;
    }
    if opts.engine.kind != crate::config::EngineKind::Docker {
        for n in &plan.images {
            refuse_stale_layer_cache(config, n)?;
        }
    }
    let mut record = Record {
        id: format!(
            "{}-{}",
            template::format_timestamp((started_ms / 1000) as i64),
            std::process::id()
        ),
        started: template::format_rfc3339((started_ms / 1000) as i64),
        started_epoch_ms: started_ms,
        engine: opts.engine.kind.name().into(),
        sha: opts.vars.values.get("sha").cloned(),
        jobs: opts.jobs,
        pushed: opts.push,
        ..Record::default()
    };
    if plan.images.is_empty() {
        record.success = true;
        log("nothing to build");
        return finish(record, started, opts);
    }
    log(&format!(
        "computing input keys for {}",
        plan.images.join(", ")
    ));
    let keys = input_keys(config, &plan.images, opts.keys).map_err(LayersError::Work)?;
    let rebuilt = if opts.rebuild {
        rebuilt_images(config, &plan)
    } else {
        BTreeSet::new()
    };
    if opts.rebuild {
        log(&format!(
            "rebuilding {} whatever exists with their input keys",
            rebuilt.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        let left = left_on_previous_parents(config, &rebuilt);
        if !left.is_empty() {
            log(&format!(
                "note: {} stay on the images they were built on (not in this run; name them \
                 to rebuild them too)",
                left.join(", ")
            ));
        }
    }
    // The local images by key: every image strata builds or pulls is tagged with its local
    // reference, so one inspection of the run's references finds them (no per-image
    // lookups, and no listing of every image on the engine).
    let refs: BTreeMap<String, String> = plan
        .images
        .iter()
        .map(|n| (keys[n].clone(), local_ref(n, &keys[n])))
        .collect();
    let local = match opts.engine.local_refs(&refs) {
        Ok(l) => l,
        Err(e) => {
            opts.engine.check().map_err(LayersError::Work)?;
            return Err(LayersError::Work(e));
        }
    };
    let sources = resolve(config, opts, &plan, &keys, &tags, &rebuilt, local);
    let event = |e: Event<'_>| {
        if let Some(f) = opts.events {
            f(e)
        }
    };
    event(Event::Planned(&plan.images));

    let (tx, rx) = mpsc::channel::<Done>();
    let mut started_set: BTreeSet<String> = BTreeSet::new();
    let mut succeeded: BTreeSet<String> = BTreeSet::new();
    let mut failed = false;
    let mut local_refs: BTreeMap<String, String> = BTreeMap::new();
    let mut records: BTreeMap<String, ImageRecord> = BTreeMap::new();
    std::thread::scope(|scope| {
        let mut in_flight = 0usize;
        loop {
            if !failed {
                for name in ready(config, &plan, &started_set, &succeeded) {
                    if in_flight >= opts.jobs.max(1) {
                        break;
                    }
                    started_set.insert(name.clone());
                    in_flight += 1;
                    let parent_ref = config.images[&name]
                        .from
                        .as_ref()
                        .and_then(|p| local_refs.get(p).cloned());
                    let key = keys[&name].clone();
                    let requested = plan.requested.contains(&name);
                    let tx = tx.clone();
                    let source = sources[&name].clone();
                    event(Event::Started(&name));
                    scope.spawn(move || {
                        let t0 = now_ms();
                        let (rec, local_ref) =
                            one_image(config, opts, &name, &key, parent_ref, source, requested);
                        let mut rec = rec;
                        rec.start_ms = t0.saturating_sub(started_ms);
                        rec.end_ms = now_ms().saturating_sub(started_ms);
                        rec.duration_ms = rec.end_ms - rec.start_ms;
                        let _ = tx.send(Done {
                            name,
                            record: rec,
                            local_ref,
                        });
                    });
                }
            }
            if in_flight == 0 {
                break;
            }
            let Ok(done) = rx.recv() else { break };
            in_flight -= 1;
            event(Event::Finished(&done.name, &done.record.status));
            if done.record.status == "failed" {
                failed = true;
                log(&format!(
                    "[{}] FAILED: {}",
                    done.name,
                    done.record.error.clone().unwrap_or_default()
                ));
            } else {
                log(&format!(
                    "[{}] {} in {:.1}s ({})",
                    done.name,
                    done.record.status,
                    done.record.duration_ms as f64 / 1000.0,
                    done.local_ref
                ));
                succeeded.insert(done.name.clone());
                local_refs.insert(done.name.clone(), done.local_ref);
            }
            records.insert(done.name, done.record);
        }
    });
    for n in &plan.images {
        records.entry(n.clone()).or_insert_with(|| ImageRecord {
            status: "skipped".into(),
            input_key: keys[n].clone(),
            requested: plan.requested.contains(n),
            error: Some("not started: an image it depends on failed".into()),
            ..ImageRecord::default()
        });
    }
    record.success = !failed && succeeded.len() == plan.images.len();
    if record.success {
        // Tags only now, and user-facing ones only once every image's content is pushed: no
        // half-published sets.
        let publish: Vec<PublishImage> = plan
            .images
            .iter()
            .filter(|n| {
                let r = &records[*n];
                r.requested || r.status == "built"
            })
            .map(|n| PublishImage {
                name: n.clone(),
                local: local_refs[n].clone(),
                key: keys[n].clone(),
                tags: tags[n].clone(),
            })
            .collect();
        let steps = publish_plan(&publish, opts.push);
        let published = run_publish(&opts.engine, &steps, log);
        for (step, digest) in steps.iter().zip(&published.digests) {
            let r = records.get_mut(step.image()).expect("record");
            if let PublishStep::Tag { reference, .. } = step {
                r.tags.push(reference.clone());
            }
            if digest.is_some() {
                r.digest = digest.clone();
            }
        }
        if let Some(error) = published.error {
            let summary = publish_summary(&steps, published.digests.len(), &error);
            log(&format!("error: {summary}"));
            record.success = false;
            record.error = Some(summary);
        }
    }
    record.images = records;
    finish(record, started, opts)
}

/// An image whose tags a run applies: its local reference, input key and rendered tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishImage {
    /// The image's name.
    pub name: String,
    /// Its local reference (what gets tagged).
    pub local: String,
    /// Its input key (for the key tags).
    pub key: String,
    /// Its rendered tags, user-facing.
    pub tags: Vec<String>,
}

/// One step of publishing a run's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishStep {
    /// Tag the local image with its key tag `reference` (`<repo>:sk-<key>`) and push it: the
    /// image's content reaches the registry under strata's bookkeeping name only.
    Content {
        /// The image.
        image: String,
        /// Its local reference.
        local: String,
        /// The key tag reference.
        reference: String,
    },
    /// Apply a user-facing tag to the local image.
    Tag {
        /// The image.
        image: String,
        /// Its local reference.
        local: String,
        /// The tag.
        reference: String,
    },
    /// Push a user-facing tag already applied locally (its content is already there): the
    /// registry is told to point the tag at the manifest of `source`, the image's key tag in
    /// the same repository, so every tag of an image names one digest (and keeps the
    /// manifest's annotations, such as zstd:chunked's table of contents); the engine pushes
    /// the tag only when the registry refuses that.
    Push {
        /// The image.
        image: String,
        /// The tag.
        reference: String,
        /// The key tag pushed by the image's [`PublishStep::Content`] step in the tag's
        /// repository.
        source: String,
    },
}

impl PublishStep {
    /// The image the step is for.
    pub fn image(&self) -> &str {
        match self {
            PublishStep::Content { image, .. }
            | PublishStep::Tag { image, .. }
            | PublishStep::Push { image, .. } => image,
        }
    }

    /// What the step does, for messages (`pushing …`, `tagging app as …`).
    pub fn describe(&self) -> String {
        match self {
            PublishStep::Content {
                image, reference, ..
            } => format!("pushing the content of {image} as {reference}"),
            PublishStep::Tag {
                image, reference, ..
            } => format!("tagging {image} as {reference}"),
            PublishStep::Push { reference, .. } => format!("pushing {reference}"),
        }
    }
}

/// The order in which a run's images are published, once every image succeeded. Pure.
///
/// With `push`: first the content of every image, pushed under its key tag in each
/// repository its tags name ([`PublishStep::Content`]); then every user-facing tag applied
/// locally ([`PublishStep::Tag`]); then every user-facing tag pushed ([`PublishStep::Push`]).
/// A failure stops the run at that step, so a failed content push leaves no user-facing
/// tag applied anywhere, and a failed local tag none pushed. Without `push`: the local tags
/// only. Images and tags keep their order.
pub fn publish_plan(images: &[PublishImage], push: bool) -> Vec<PublishStep> {
    let mut steps = Vec::new();
    if push {
        for i in images {
            let mut repos: Vec<&str> = Vec::new();
            for t in &i.tags {
                let repo = repository(t);
                if !repos.contains(&repo) {
                    repos.push(repo);
                    steps.push(PublishStep::Content {
                        image: i.name.clone(),
                        local: i.local.clone(),
                        reference: key_tag(repo, &i.key),
                    });
                }
            }
        }
    }
    for i in images {
        for t in &i.tags {
            steps.push(PublishStep::Tag {
                image: i.name.clone(),
                local: i.local.clone(),
                reference: t.clone(),
            });
        }
    }
    if push {
        for i in images {
            for t in &i.tags {
                steps.push(PublishStep::Push {
                    image: i.name.clone(),
                    reference: t.clone(),
                    source: key_tag(repository(t), &i.key),
                });
            }
        }
    }
    steps
}

/// With buildah or podman, an image with a layer cache (`cache-from`/`cache-to`, hence
/// `--layers`) must not bind-mount context files into a RUN: the engine's cache would reuse
/// that RUN's layer after the files change (see [`crate::engine::context_bind_mounts`]).
fn refuse_stale_layer_cache(config: &Config, name: &str) -> Result<(), LayersError> {
    let image = &config.images[name];
    if image.cache_from.is_empty() && image.cache_to.is_empty() {
        return Ok(());
    }
    let dockerfile = config.dockerfile_rel(image);
    let Ok(text) = std::fs::read_to_string(config.root.join(&dockerfile)) else {
        return Ok(()); // a missing Dockerfile is reported where the keys are computed
    };
    let Ok(parsed) = strata_dockerfile::parse(&text) else {
        return Ok(());
    };
    match crate::engine::context_bind_mounts(&parsed).first() {
        None => Ok(()),
        Some((line, source)) => Err(LayersError::Config(crate::ConfigError {
            path: config.path.clone(),
            line: image
                .cache_from
                .first()
                .or(image.cache_to.first())
                .map(|(_, l)| *l),
            key: Some(format!("image.{name}.cache-from")),
            message: format!(
                "{dockerfile}:{line} bind-mounts `{source}` from the build context into a RUN, and buildah/podman's layer cache ignores those files' content (a change would reuse a stale layer); COPY them instead, or drop cache-from/cache-to for this image"
            ),
        })),
    }
}

/// What running a publish plan did.
#[derive(Debug, Default)]
struct Published {
    /// For each step done, in order, the manifest digest its push reported.
    digests: Vec<Option<String>>,
    /// The failure that stopped it at step `digests.len()`.
    error: Option<String>,
}

/// Runs a publish plan in order, stopping at the first failure.
fn run_publish(engine: &Engine, steps: &[PublishStep], log: &(dyn Fn(&str) + Sync)) -> Published {
    let mut out = Published::default();
    for step in steps {
        let result = match step {
            PublishStep::Content {
                image,
                local,
                reference,
            } => {
                log(&format!("[{image}] pushing {reference}"));
                engine
                    .tag(local, reference)
                    .and_then(|_| engine.push(reference))
            }
            PublishStep::Tag {
                local, reference, ..
            } => engine.tag(local, reference).map(|_| None),
            PublishStep::Push {
                image,
                reference,
                source,
            } => {
                log(&format!("[{image}] pushing {reference}"));
                copy_tag(source, reference).map(Some).or_else(|why| {
                    log(&format!(
                        "[{image}] the registry did not take {reference} as a copy of \
                         {source} ({why}); pushing it with the engine"
                    ));
                    engine.push(reference)
                })
            }
        };
        match result {
            Ok(d) => out.digests.push(d),
            Err(e) => {
                out.error = Some(format!("{} failed: {e}", step.describe()));
                break;
            }
        }
    }
    out
}

/// Points the tag of `reference` at the manifest `source` names, in the same repository,
/// through the registry's API (a manifest GET and PUT, no blobs moved); returns the
/// manifest's digest.
fn copy_tag(source: &str, reference: &str) -> Result<String, String> {
    let repo = repository(reference);
    let tag = reference
        .strip_prefix(repo)
        .and_then(|t| t.strip_prefix(':'))
        .ok_or_else(|| format!("{reference} names no tag"))?;
    let registry = registry_for(repo).ok_or_else(|| format!("{repo} is not a registry"))?;
    let source_tag = source.rsplit_once(':').map_or(source, |(_, t)| t);
    let manifest = registry
        .get_manifest(source_tag)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{source} is not in the registry"))?;
    registry
        .put_manifest(tag, &manifest.media_type, &manifest.body)
        .map_err(|e| e.to_string())
}

/// What a publish run that failed at step `done` with `error` applied and did not: every
/// tag named, so nobody has to guess what a registry or engine now holds. Pure.
pub fn publish_summary(steps: &[PublishStep], done: usize, error: &str) -> String {
    let (before, after) = steps.split_at(done.min(steps.len()));
    let refs = |part: &[PublishStep], want: fn(&PublishStep) -> Option<&String>| {
        let v: Vec<&str> = part.iter().filter_map(want).map(String::as_str).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    fn content(s: &PublishStep) -> Option<&String> {
        match s {
            PublishStep::Content { reference, .. } => Some(reference),
            _ => None,
        }
    }
    fn tag(s: &PublishStep) -> Option<&String> {
        match s {
            PublishStep::Tag { reference, .. } => Some(reference),
            _ => None,
        }
    }
    fn push(s: &PublishStep) -> Option<&String> {
        match s {
            PublishStep::Push { reference, .. } => Some(reference),
            _ => None,
        }
    }
    let user_facing = before
        .iter()
        .any(|s| !matches!(s, PublishStep::Content { .. }));
    format!(
        "{error}. {}Applied: image content under key tags: {}; local tags: {}; pushed tags: {}. \
         Not applied: image content under key tags: {}; local tags: {}; pushed tags: {}",
        if user_facing {
            ""
        } else {
            "No tag was applied, locally or in a registry. "
        },
        refs(before, content),
        refs(before, tag),
        refs(before, push),
        refs(after, content),
        refs(after, tag),
        refs(after, push),
    )
}

fn finish(
    mut record: Record,
    started: Instant,
    opts: &BuildOptions<'_>,
) -> Result<Record, LayersError> {
    record.duration_ms = started.elapsed().as_millis() as u64;
    if let Some(dir) = &opts.records_dir {
        let p = record.write(dir).map_err(|e| {
            LayersError::Work(format!(
                "writing the build record in {}: {e}",
                dir.display()
            ))
        })?;
        (opts.log)(&format!("build record: {}", p.display()));
    }
    Ok(record)
}

/// Where an image of a run comes from, decided before anything runs.
#[derive(Debug, Clone)]
enum Source {
    /// A local image with the key.
    Local(ImageInfo),
    /// The registry's key tag (`repo:sk-<key>`), its manifest digest, and whether it must be
    /// pulled (a requested image, or the parent of an image that is built); otherwise its
    /// layers would come with its child's pull anyway.
    Registry {
        reference: String,
        digest: String,
        pull: bool,
    },
    /// Nothing has the key: build it.
    Build,
}

/// Decides each image's [`Source`]: the local images by key (from one engine query), else
/// the registry's key tags (all lookups at once), else build. A registry image is pulled
/// only when it is requested or an image built in this run is built from it.
fn resolve(
    config: &Config,
    opts: &BuildOptions<'_>,
    plan: &RunPlan,
    keys: &BTreeMap<String, String>,
    tags: &BTreeMap<String, Vec<String>>,
    rebuilt: &BTreeSet<String>,
    mut local: BTreeMap<String, ImageInfo>,
) -> BTreeMap<String, Source> {
    let log = opts.log;
    for n in rebuilt {
        local.remove(&keys[n]);
    }
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    if opts.registry_lookup {
        let missing: Vec<&String> = plan
            .images
            .iter()
            .filter(|n| !rebuilt.contains(*n) && !local.contains_key(&keys[*n]))
            .collect();
        let results: Vec<(String, Option<(String, String)>)> = std::thread::scope(|s| {
            let handles: Vec<_> = missing
                .iter()
                .map(|n| {
                    let n = (*n).clone();
                    let key = keys[&n].clone();
                    let mut repos: Vec<String> =
                        tags[&n].iter().map(|t| repository(t).to_string()).collect();
                    repos.dedup();
                    s.spawn(move || {
                        for repo in &repos {
                            let Some(reg) = registry_for(repo) else {
                                continue;
                            };
                            match reg.head_manifest(&strata_registry::key_tag(&key)) {
                                Ok(Some(d)) => {
                                    return (n, Some((key_tag(repo, &key), d)));
                                }
                                Ok(None) => {}
                                Err(e) => log(&format!(
                                    "[{n}] warning: registry lookup in {repo} failed: {e}"
                                )),
                            }
                        }
                        (n, None)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (n, f) in results {
            if let Some(f) = f {
                found.insert(n, f);
            }
        }
    }
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for n in &plan.images {
        let s = if let Some(info) = local.remove(&keys[n]) {
            Source::Local(info)
        } else if let Some((reference, digest)) = found.remove(n) {
            Source::Registry {
                reference,
                digest,
                pull: true,
            }
        } else {
            Source::Build
        };
        sources.insert(n.clone(), s);
    }
    for n in &plan.images {
        let built_child = plan.images.iter().any(|c| {
            config.images[c].from.as_deref() == Some(n.as_str())
                && matches!(sources[c], Source::Build)
        });
        let needed = plan.requested.contains(n) || built_child;
        if let Some(Source::Registry { pull, .. }) = sources.get_mut(n) {
            *pull = needed;
        }
    }
    sources
}

/// The images a `rebuild` run builds whatever exists with their keys: the requested ones
/// and, transitively, every image of the run built on one of them (a child's key does not
/// change when its parent is rebuilt, so reusing it would keep it on the previous parent).
/// Pure.
pub fn rebuilt_images(config: &Config, plan: &RunPlan) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = plan.requested.clone();
    // plan.images lists parents first, so one pass reaches every descendant.
    for n in &plan.images {
        if config.images[n]
            .from
            .as_ref()
            .is_some_and(|p| set.contains(p))
        {
            set.insert(n.clone());
        }
    }
    set
}

/// The images outside a run that are built, directly or not, on an image the run rebuilds:
/// they keep images built on the previous one (their keys did not change). Pure; relies on
/// the configuration having no `from` cycle, which [`Config`] parsing rejects.
pub fn left_on_previous_parents(config: &Config, rebuilt: &BTreeSet<String>) -> Vec<String> {
    let ancestors = |n: &String| {
        std::iter::successors(config.images[n].from.as_ref(), |p| {
            config.images.get(*p).and_then(|i| i.from.as_ref())
        })
    };
    config
        .images
        .keys()
        .filter(|n| !rebuilt.contains(*n) && ancestors(n).any(|p| rebuilt.contains(p)))
        .cloned()
        .collect()
}

/// Reuses or builds one image; returns its record and local reference.
fn one_image(
    config: &Config,
    opts: &BuildOptions<'_>,
    name: &str,
    key: &str,
    parent_ref: Option<String>,
    source: Source,
    requested: bool,
) -> (ImageRecord, String) {
    let image = &config.images[name];
    let local_ref = local_ref(name, key);
    let engine = &opts.engine;
    let mut rec = ImageRecord {
        input_key: key.to_string(),
        requested,
        ..ImageRecord::default()
    };
    let log = opts.log;
    let mut known: Option<ImageInfo> = None;
    match source {
        Source::Local(info) => {
            // Already tagged with its local reference when an earlier run built or pulled
            // it here: no engine call.
            let tagged = info
                .tags
                .iter()
                .any(|t| t == &local_ref || t.strip_prefix("localhost/") == Some(&local_ref));
            let tag = if tagged {
                Ok(())
            } else {
                engine.tag(&info.id, &local_ref)
            };
            if let Err(e) = tag {
                rec.status = "failed".into();
                rec.error = Some(e);
                return (rec, local_ref);
            }
            log(&format!(
                "[{name}] reusing local image {} (input key {})",
                &info.id[..info.id.len().min(19)],
                short(key)
            ));
            rec.status = "reused".into();
            rec.reused_from = Some("local".into());
            known = Some(info);
        }
        Source::Registry {
            reference,
            digest,
            pull,
        } => {
            if pull {
                log(&format!("[{name}] reusing {reference} from the registry"));
                match engine
                    .pull(&reference)
                    .and_then(|_| engine.tag(&reference, &local_ref))
                {
                    Ok(()) => {
                        rec.status = "reused".into();
                        rec.reused_from = Some("registry".into());
                    }
                    Err(e) => log(&format!(
                        "[{name}] warning: pulling {reference} failed: {e}"
                    )),
                }
            } else {
                // Nothing in this run is built from it: no need to pull it.
                log(&format!(
                    "[{name}] reusing {reference} in the registry (not pulled: nothing here is built from it)"
                ));
                rec.status = "reused".into();
                rec.reused_from = Some("registry".into());
                rec.digest = Some(digest);
                return (rec, reference);
            }
        }
        Source::Build => {}
    }
    // 3. Build.
    if rec.status.is_empty() {
        let mut build_args = image.args.clone();
        if let Some(p) = parent_ref {
            build_args.insert(image.from_arg.clone(), p);
        }
        let mut cache_from: Vec<String> = image.cache_from.iter().map(|(c, _)| c.clone()).collect();
        if engine.kind == crate::config::EngineKind::Docker
            && config.build.registry_cache != Some(false)
        {
            build_args
                .entry(INLINE_CACHE_ARG.to_string())
                .or_insert_with(|| "1".into());
            for r in registry_cache_refs(image, &opts.vars) {
                if !cache_from.contains(&r) {
                    cache_from.push(r);
                }
            }
        }
        let req = BuildRequest {
            dockerfile: config.root.join(config.dockerfile_rel(image)),
            context: config.root.join(config.context_rel(image)),
            tag: local_ref.clone(),
            build_args,
            target: image.target.clone(),
            labels: BTreeMap::from([
                (KEY_LABEL.to_string(), key.to_string()),
                (IMAGE_LABEL.to_string(), name.to_string()),
            ]),
            cache_from,
            cache_to: image.cache_to.iter().map(|(c, _)| c.clone()).collect(),
        };
        let cache_note = if req.cache_from.is_empty() {
            String::new()
        } else {
            format!("; layer cache from {}", req.cache_from.join(", "))
        };
        log(&format!(
            "[{name}] building (input key {}{cache_note})",
            short(key)
        ));
        let prefix = format!("[{name}] ");
        let line = |l: &str| {
            if !l.trim().is_empty() {
                log(&format!("{prefix}{l}"))
            }
        };
        if let Err(e) = engine.build(&req, &line) {
            rec.status = "failed".into();
            rec.error = Some(e);
            return (rec, local_ref);
        }
        rec.status = "built".into();
    }
    let info = match known {
        Some(info) => Ok(info),
        None => engine.inspect(&local_ref),
    };
    match info {
        Ok(info) => {
            rec.digest = Some(info.id.clone());
            rec.image_id = Some(info.id);
            rec.size = Some(info.size);
            rec.layers = Some(info.layers);
        }
        Err(e) => log(&format!("[{name}] warning: inspect failed: {e}")),
    }
    (rec, local_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_reaches_the_run_images_built_on_a_rebuilt_one() {
        let config = crate::config::parse(
            "[image.base]\nfile = \"B\"\n[image.tooling]\nfile = \"T\"\nfrom = \"base\"\n\
             [image.app]\nfile = \"A\"\nfrom = \"tooling\"\n[image.docs]\nfile = \"D\"\nfrom = \"base\"\n",
            std::path::Path::new("strata.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let run = |sel: &[&str]| {
            let plan = plan_run(&config, &Selection::Named(names(sel))).unwrap();
            let rebuilt = rebuilt_images(&config, &plan);
            let left = left_on_previous_parents(&config, &rebuilt);
            (rebuilt.into_iter().collect::<Vec<_>>(), left)
        };
        // tooling alone: base is a prerequisite (reused), app stays on the old tooling.
        assert_eq!(run(&["tooling"]), (names(&["tooling"]), names(&["app"])));
        // base and app named: tooling, between them in the run, is rebuilt too; docs is
        // outside the run and stays on the old base.
        assert_eq!(
            run(&["base", "app"]),
            (names(&["app", "base", "tooling"]), names(&["docs"]))
        );
        let all = plan_run(&config, &Selection::All).unwrap();
        let rebuilt = rebuilt_images(&config, &all);
        assert_eq!(rebuilt.len(), 4);
        assert!(left_on_previous_parents(&config, &rebuilt).is_empty());
    }

    #[test]
    fn registry_cache_uses_the_tags_that_outlive_a_commit() {
        let config = crate::config::parse(
            r#"
registry = "127.0.0.1:5000/app"
[image.tooling]
file = "Dockerfile.tooling"
tags = ["{registry}:tooling-{short_sha}", "{registry}:tooling-stable", "{registry}:pr-{pr}",
        "{registry}:t-{timestamp}", "local/only:latest", "{registry}:tooling-stable"]
"#,
            std::path::Path::new("strata.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        let vars = Vars::new(
            Some("127.0.0.1:5000/app"),
            Some("0123456789abcdef"),
            Some("main"),
            Some("42"),
            0,
        );
        assert_eq!(
            registry_cache_refs(&config.images["tooling"], &vars),
            vec![
                "127.0.0.1:5000/app:tooling-stable".to_string(),
                "127.0.0.1:5000/app:pr-42".to_string(),
            ]
        );
        assert!(in_a_registry("localhost/app:1"));
        assert!(in_a_registry("registry.example/app:1"));
        assert!(!in_a_registry("app:1"));
        assert!(!in_a_registry("strata-local/app:1"));
    }

    const KEY_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const KEY_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn images() -> Vec<PublishImage> {
        vec![
            PublishImage {
                name: "base".into(),
                local: "strata-local/base:b".into(),
                key: KEY_B.into(),
                tags: vec![
                    "r1/x:base-1".into(),
                    "r1/x:base-stable".into(),
                    "r2/mirror:base".into(),
                ],
            },
            PublishImage {
                name: "app".into(),
                local: "strata-local/app:a".into(),
                key: KEY_A.into(),
                tags: vec!["r3/gone:latest".into()],
            },
        ]
    }

    /// A compact form of a plan: `content/tag/push image reference`.
    fn compact(steps: &[PublishStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                PublishStep::Content {
                    image,
                    local,
                    reference,
                } => format!("content {image} {local} {reference}"),
                PublishStep::Tag {
                    image,
                    local,
                    reference,
                } => format!("tag {image} {local} {reference}"),
                PublishStep::Push {
                    image,
                    reference,
                    source,
                } => format!("push {image} {reference} from {source}"),
            })
            .collect()
    }

    #[test]
    fn publish_plan_pushes_all_content_before_any_user_facing_tag() {
        let sk_b = strata_registry::key_tag(KEY_B);
        let sk_a = strata_registry::key_tag(KEY_A);
        assert_eq!(
            compact(&publish_plan(&images(), true)),
            vec![
                format!("content base strata-local/base:b r1/x:{sk_b}"),
                format!("content base strata-local/base:b r2/mirror:{sk_b}"),
                format!("content app strata-local/app:a r3/gone:{sk_a}"),
                "tag base strata-local/base:b r1/x:base-1".to_string(),
                "tag base strata-local/base:b r1/x:base-stable".to_string(),
                "tag base strata-local/base:b r2/mirror:base".to_string(),
                "tag app strata-local/app:a r3/gone:latest".to_string(),
                format!("push base r1/x:base-1 from r1/x:{sk_b}"),
                format!("push base r1/x:base-stable from r1/x:{sk_b}"),
                format!("push base r2/mirror:base from r2/mirror:{sk_b}"),
                format!("push app r3/gone:latest from r3/gone:{sk_a}"),
            ]
        );
        // Without a push: the local tags only.
        assert_eq!(
            compact(&publish_plan(&images(), false)),
            vec![
                "tag base strata-local/base:b r1/x:base-1",
                "tag base strata-local/base:b r1/x:base-stable",
                "tag base strata-local/base:b r2/mirror:base",
                "tag app strata-local/app:a r3/gone:latest",
            ]
        );
        assert!(publish_plan(&[], true).is_empty());
    }

    #[test]
    fn publish_summary_names_what_was_and_was_not_applied() {
        let steps = publish_plan(&images(), true);
        let sk_b = strata_registry::key_tag(KEY_B);
        let sk_a = strata_registry::key_tag(KEY_A);
        // The app's content push failed: nothing user-facing happened.
        let s = publish_summary(&steps, 2, "pushing r3/gone failed: refused");
        assert_eq!(
            s,
            format!(
                "pushing r3/gone failed: refused. No tag was applied, locally or in a registry. \
                 Applied: image content under key tags: r1/x:{sk_b}, r2/mirror:{sk_b}; local tags: none; pushed tags: none. \
                 Not applied: image content under key tags: r3/gone:{sk_a}; local tags: r1/x:base-1, r1/x:base-stable, \
                 r2/mirror:base, r3/gone:latest; pushed tags: r1/x:base-1, r1/x:base-stable, r2/mirror:base, r3/gone:latest"
            )
        );
        // A tag push failed after two went through.
        let s = publish_summary(&steps, 9, "pushing r2/mirror:base failed: gone");
        assert!(!s.contains("No tag was applied"), "{s}");
        assert!(
            s.contains(
                "local tags: r1/x:base-1, r1/x:base-stable, r2/mirror:base, r3/gone:latest; \
                 pushed tags: r1/x:base-1, r1/x:base-stable. Not applied: image content under \
                 key tags: none; local tags: none; pushed tags: r2/mirror:base, r3/gone:latest"
            ),
            "{s}"
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            repository("127.0.0.1:5000/app:base-1"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(
            key_tag("r/app", "sha256:0123456789abcdef0123456789abcdef"),
            "r/app:sk-0123456789abcdef01234567"
        );
    }
}
