//! Input keys: one sha256 per image that changes exactly when what the image is built from
//! changes, so an image already built with the same key can be reused instead of rebuilt.
//!
//! An image's key chains, in order:
//! - the cache key of its Dockerfile's target stage, from `strata-graph`'s plan (which covers
//!   every instruction, the content, mode and symlink target of every context file a COPY/ADD
//!   reads after `.dockerignore`, build args and base image references), computed with the
//!   parent build arg set to a fixed placeholder so the per-run parent reference never
//!   changes it;
//! - the image's build settings (target, args, from-arg);
//! - the content of files matching its `inputs` and the global `inputs`;
//! - its parent's input key.
//!
//! The Dockerfile key source is the [`DockerfileKeys`] trait, implemented with
//! `strata-graph` by [`GraphKeys`]; a different key source can be swapped in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use strata_graph::context::HashOptions;
use strata_graph::plan::{PlanRequest, make_plan};
use strata_graph::stages::BuildOptions;

use crate::affected::{glob_matches, parent_placeholder};
use crate::config::{Config, ImageConfig};

/// The label a built image carries with its input key.
pub const KEY_LABEL: &str = "dev.strata.input-key";
/// The label naming the image in the set.
pub const IMAGE_LABEL: &str = "dev.strata.image";

/// Computes the cache key of a Dockerfile's target stage.
pub trait DockerfileKeys {
    /// The key of `dockerfile` built in `context` with `options`; errors are messages naming
    /// the file and line.
    fn stage_key(
        &self,
        dockerfile: &Path,
        context: &Path,
        options: &BuildOptions,
    ) -> Result<String, String>;
}

/// [`DockerfileKeys`] through `strata-graph`'s plan, with its stat cache under `cache_dir`.
#[derive(Debug, Clone, Default)]
pub struct GraphKeys {
    /// Where the stat cache lives (`None`: none).
    pub cache_dir: Option<PathBuf>,
}

impl DockerfileKeys for GraphKeys {
    fn stage_key(
        &self,
        dockerfile: &Path,
        context: &Path,
        options: &BuildOptions,
    ) -> Result<String, String> {
        let plan = make_plan(&PlanRequest {
            dockerfile: dockerfile.to_path_buf(),
            context: context.to_path_buf(),
            options: options.clone(),
            hash: HashOptions {
                cache_dir: self.cache_dir.clone(),
                threads: 0,
            },
        })
        .map_err(|e| e.to_string())?;
        plan.stages
            .iter()
            .find(|s| s.name == plan.target)
            .map(|s| s.cache_key.clone())
            .ok_or_else(|| format!("{}: no target stage", dockerfile.display()))
    }
}

/// Lists the files under `root` (relative, slash-separated), skipping `.git` and `.strata`.
pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if rel == ".git" || rel == ".strata" {
                continue;
            }
            if ft.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// sha256 over named parts, `sha256:…`.
pub fn chain(parts: &[(&str, &str)]) -> String {
    let mut h = Sha256::new();
    for (k, v) in parts {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn files_digest(root: &Path, files: &[String], globs: &[&str]) -> Result<String, String> {
    let mut parts = Vec::new();
    for f in files {
        if globs.iter().any(|g| glob_matches(g, f)) {
            let p = root.join(f);
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            #[cfg(unix)]
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                std::fs::symlink_metadata(&p)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(0)
            };
            #[cfg(not(unix))]
            let mode = 0;
            parts.push((
                f.clone(),
                format!("{mode:o}:{}", hex::encode(Sha256::digest(&bytes))),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = parts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Ok(chain(&refs))
}

/// The input keys of the named images and their ancestors, from the working tree at
/// `config.root`.
pub fn input_keys(
    config: &Config,
    names: &[String],
    source: &dyn DockerfileKeys,
) -> Result<BTreeMap<String, String>, String> {
    let files = list_files(&config.root);
    let global: Vec<&str> = config.inputs.iter().map(|(g, _)| g.as_str()).collect();
    let global_digest = files_digest(&config.root, &files, &global)?;
    let mut keys = BTreeMap::new();
    for name in config.order() {
        let wanted = names
            .iter()
            .any(|n| *n == name || config.ancestors(n).contains(&name));
        if !wanted {
            continue;
        }
        let image = &config.images[&name];
        let key = image_key(config, image, &files, &global_digest, &keys, source)?;
        keys.insert(name, key);
    }
    Ok(keys)
}

fn image_key(
    config: &Config,
    image: &ImageConfig,
    files: &[String],
    global_digest: &str,
    keys: &BTreeMap<String, String>,
    source: &dyn DockerfileKeys,
) -> Result<String, String> {
    let mut options = BuildOptions {
        build_args: image.args.clone(),
        target: image.target.clone(),
    };
    if let Some(p) = &image.from {
        options
            .build_args
            .insert(image.from_arg.clone(), parent_placeholder(p));
    }
    let dockerfile = config.root.join(config.dockerfile_rel(image));
    let context = config.root.join(config.context_rel(image));
    let stage = source
        .stage_key(&dockerfile, &context, &options)
        .map_err(|e| format!("image {}: {e}", image.name))?;
    let extra: Vec<&str> = image.inputs.iter().map(|(g, _)| g.as_str()).collect();
    let extra_digest = files_digest(&config.root, files, &extra)?;
    let parent = image
        .from
        .as_ref()
        .and_then(|p| keys.get(p))
        .cloned()
        .unwrap_or_default();
    let args = format!("{:?}", image.args);
    Ok(chain(&[
        ("strata-input-key", "v1"),
        ("stage", &stage),
        ("target", image.target.as_deref().unwrap_or("")),
        ("args", &args),
        ("from-arg", &image.from_arg),
        ("inputs", &extra_digest),
        ("global", global_digest),
        ("parent", &parent),
    ]))
}

/// A short form of a key for local tags: the first 24 hex characters.
pub fn short(key: &str) -> &str {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    &hex[..hex.len().min(24)]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config;

    struct Fake;
    impl DockerfileKeys for Fake {
        fn stage_key(&self, d: &Path, _: &Path, o: &BuildOptions) -> Result<String, String> {
            Ok(format!("{}:{:?}", d.display(), o.build_args))
        }
    }

    #[test]
    fn keys_chain_parents_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = r#"
inputs = ["g.env"]
[image.base]
file = "B"
[image.app]
file = "A"
from = "base"
inputs = ["x/**"]
"#;
        std::fs::write(dir.path().join("g.env"), "1").unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/f"), "1").unwrap();
        let c = config::parse(cfg, &dir.path().join("strata.toml"), dir.path()).unwrap();
        let all = vec!["app".to_string()];
        let k1 = input_keys(&c, &all, &Fake).unwrap();
        assert_eq!(k1.len(), 2);
        // Extra input changes app only.
        std::fs::write(dir.path().join("x/f"), "2").unwrap();
        let k2 = input_keys(&c, &all, &Fake).unwrap();
        assert_eq!(k1["base"], k2["base"]);
        assert_ne!(k1["app"], k2["app"]);
        // Global input changes both.
        std::fs::write(dir.path().join("g.env"), "2").unwrap();
        let k3 = input_keys(&c, &all, &Fake).unwrap();
        assert_ne!(k2["base"], k3["base"]);
        assert_ne!(k2["app"], k3["app"]);
        // A parent key change reaches the child even with the same Dockerfile key.
        assert!(short(&k3["app"]).len() == 24);
    }
}
