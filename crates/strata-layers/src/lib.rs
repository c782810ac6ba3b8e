//! strata-layers: layered image sets (seeds 001 and 003): base → tooling → app images,
//! rebuilt only when their inputs change, tagged, recorded and reported.
//!
//! This crate owns:
//! - [`config`]: `strata.toml` (images, registry, global inputs, build defaults, retention
//!   policy), with errors naming the key and line; [`template`]: tag templates.
//! - [`affected`]: the pure affected-set computation over inputs derived from each
//!   Dockerfile through `strata-graph`'s stage graph; [`git`]: the git edge feeding it.
//! - [`keys`]: the content-addressed input key of each image (the Dockerfile's stage cache
//!   keys from `strata-graph`, build settings, extra and global inputs, parents' keys).
//! - [`order`]: which images a run builds and in what order (pure).
//! - [`engine`]: the container engine edge (docker/BuildKit, buildah, podman): command lines
//!   (pure, tested with tables) and running them.
//! - [`build`]: the orchestration of a run: parallel builds in dependency order, reuse by
//!   input key, tags applied only after every image succeeded, streamed prefixed logs.
//! - [`record`]: the JSON build record of a run under `.strata/builds/`, and [`report`]: a
//!   text and HTML (inline SVG timeline) summary of the history.
//!
//! It must not parse Dockerfiles itself (that is `strata-dockerfile` and `strata-graph`) nor
//! speak the registry protocol (that is `strata-registry`).

pub mod affected;
pub mod build;
pub mod config;
pub mod engine;
pub mod git;
pub mod keys;
pub mod order;
pub mod record;
pub mod report;
pub mod template;

use std::collections::BTreeMap;

pub use affected::{Affected, Change, ChangeKind, Reason};
pub use config::{Config, ConfigError};

/// Why a layered operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// Bad `strata.toml`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Dockerfile or ignore file that cannot be analysed.
    #[error(transparent)]
    Inputs(#[from] affected::InputsError),
    /// A git revision problem (unknown revision, shallow clone).
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// Bad usage (unknown image name, conflicting options).
    #[error("{0}")]
    Usage(String),
    /// The work failed (a build, the engine, the disk).
    #[error("{0}")]
    Work(String),
}

impl LayersError {
    /// Whether the input is at fault (exit 2) rather than the work (exit 1).
    pub fn is_input(&self) -> bool {
        match self {
            LayersError::Config(_) | LayersError::Inputs(_) | LayersError::Usage(_) => true,
            LayersError::Git(g) => matches!(g, git::GitError::BadRevision(_)),
            LayersError::Work(_) => false,
        }
    }
}

/// `strata affected`: the images affected between `base` and `head` (revisions in the git
/// repository holding the config), with reasons.
pub fn affected(config: &Config, base: &str, head: &str) -> Result<Affected, LayersError> {
    let repo = git::Repo::new(&config.root);
    let head = repo.resolve_head(head)?;
    let base = repo.resolve_base(base, &head)?;
    let changes = repo.changes(&base, &head)?;
    let read = |p: &str| repo.show(&head, p);
    let mut inputs = BTreeMap::new();
    for image in config.images.values() {
        inputs.insert(
            image.name.clone(),
            affected::derive_inputs(config, image, &read)?,
        );
    }
    let config_name = config
        .path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "strata.toml".into());
    let mut settings = BTreeMap::new();
    if let git::Base::Commit(b) = &base
        && changes.iter().any(|c| {
            c.path == config_name || matches!(&c.kind, ChangeKind::Renamed(f) if *f == config_name)
        })
    {
        let old = repo.show(b, &config_name).and_then(|bytes| {
            config::parse(&String::from_utf8_lossy(&bytes), &config.path, &config.root).ok()
        });
        for (name, image) in &config.images {
            let because = match &old {
                None => Some(format!(
                    "{config_name} at the base revision is missing or invalid"
                )),
                Some(o)
                    if o.inputs
                        .iter()
                        .map(|i| &i.0)
                        .ne(config.inputs.iter().map(|i| &i.0)) =>
                {
                    Some(format!("global inputs in {config_name} changed"))
                }
                Some(o) => match o.images.get(name) {
                    None => Some(format!("[image.{name}] is new in {config_name}")),
                    Some(oi) if oi.build_identity() != image.build_identity() => Some(format!(
                        "[image.{name}] build settings changed ({config_name}:{})",
                        image.line
                    )),
                    _ => None,
                },
            };
            if let Some(because) = because {
                settings.insert(
                    name.clone(),
                    Reason {
                        path: config_name.clone(),
                        because,
                    },
                );
            }
        }
    }
    Ok(affected::compute(
        &config.order(),
        &inputs,
        &config.inputs,
        &settings,
        &changes,
        &config_name,
    ))
}
