//! `strata.toml`: the images of a layered set, the registry, global inputs, build defaults and
//! the retention policy. Parsing and validation are pure; every error names the key and line.
//!
//! ```toml
//! registry = "127.0.0.1:5000/app"       # {registry} in tags
//! inputs = ["ci/versions.env"]          # global inputs: a change here affects every image
//!
//! [build]
//! engine = "docker"                     # docker | buildah | podman
//! network = "host"                      # passed to the engine's build
//! jobs = 2                              # images built at once
//! registry-cache = true                 # docker: inline cache, earlier builds as --cache-from
//! push-compression = "zstd:chunked"     # buildah/podman: lazily pullable (strata layer-store)
//!
//! [image.base]
//! file = "Dockerfile.base"              # required
//! context = "."                         # default "."
//! tags = ["{registry}:base-{sha}", "{registry}:base-stable"]
//!
//! [image.tooling]
//! file = "Dockerfile.tooling"
//! from = "base"                         # built after base; base's ref goes in as a build arg
//! from-arg = "BASE_IMAGE"               # default BASE_IMAGE
//! inputs = ["scripts/tooling/**"]       # extra inputs beyond what the Dockerfile reads
//! args = { VERSION = "1" }              # build args
//! target = "final"                      # build target stage
//! cache-from = ["127.0.0.1:5000/cache"] # layer cache source(s), as the engine takes them
//! cache-to = ["127.0.0.1:5000/cache"]   # (checked before a build: crate::engine::check_cache)
//!
//! [retention]
//! keep = [{ tags = "pr-*", max-age = "7d" }]
//! protect = ["*-stable", "latest"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_registry::retention::Policy;
use toml::Spanned;

use crate::template;

/// The default build arg that carries the parent image reference.
pub const DEFAULT_FROM_ARG: &str = "BASE_IMAGE";

/// A `strata.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key, when known (`image.app.from`).
    pub key: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Which engine builds the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// BuildKit through `docker build` with `DOCKER_BUILDKIT=1`.
    #[default]
    Docker,
    /// `buildah bud`.
    Buildah,
    /// `podman build`.
    Podman,
}

impl EngineKind {
    /// The engine's name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Buildah => "buildah",
            EngineKind::Podman => "podman",
        }
    }
}

/// `[build]`: defaults for `strata build`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildSettings {
    /// The engine.
    pub engine: Option<EngineKind>,
    /// `--network` for builds (e.g. `host`).
    pub network: Option<String>,
    /// How many images build at once.
    pub jobs: Option<usize>,
    /// Where build records go (default `.strata/builds`).
    pub records: Option<String>,
    /// buildah/podman `--storage-driver` (e.g. `vfs` in an unprivileged container).
    pub storage_driver: Option<String>,
    /// buildah/podman `--isolation` (e.g. `chroot`).
    pub isolation: Option<String>,
    /// Docker engine only (default true): build with BuildKit's inline cache and use the
    /// image's earlier builds in the registry as `--cache-from`, so that a runner with an empty
    /// builder cache re-runs only the steps a change reaches (see
    /// [`crate::build::registry_cache_refs`]).
    pub registry_cache: Option<bool>,
    /// buildah/podman: how pushed layers are compressed (`gzip`, `zstd`, `zstd:chunked`),
    /// pushed as OCI images. `zstd:chunked` makes them lazily pullable through
    /// `strata layer-store` (checked: [`PUSH_COMPRESSIONS`]).
    pub push_compression: Option<String>,
}

/// The values `[build] push-compression` takes.
pub const PUSH_COMPRESSIONS: [&str; 3] = ["gzip", "zstd", "zstd:chunked"];

/// One `[image.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// The name (the table key).
    pub name: String,
    /// Line of the `[image.NAME]` header.
    pub line: usize,
    /// The Dockerfile, relative to the config file's directory.
    pub file: String,
    /// The build context directory, relative to the config file's directory.
    pub context: String,
    /// Tag templates.
    pub tags: Vec<String>,
    /// The image this one is built from.
    pub from: Option<String>,
    /// The build arg carrying the parent's image reference.
    pub from_arg: String,
    /// Extra input globs (repository-relative), with the line they are on.
    pub inputs: Vec<(String, usize)>,
    /// Build args.
    pub args: BTreeMap<String, String>,
    /// Build target stage.
    pub target: Option<String>,
    /// `--cache-from` values, with the line each is on.
    pub cache_from: Vec<(String, usize)>,
    /// `--cache-to` values, with the line each is on.
    pub cache_to: Vec<(String, usize)>,
}

impl ImageConfig {
    /// The fields that change what gets built (not the tags), for comparing revisions.
    pub fn build_identity(&self) -> String {
        format!(
            "{}\0{}\0{:?}\0{}\0{:?}\0{:?}\0{:?}",
            self.file,
            self.context,
            self.from,
            self.from_arg,
            self.inputs.iter().map(|(g, _)| g).collect::<Vec<_>>(),
            self.args,
            self.target
        )
    }
}

/// A whole `strata.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory paths are relative to (the file's directory).
    pub root: PathBuf,
    /// The `{registry}` value.
    pub registry: Option<String>,
    /// Global inputs (globs relative to `root`) with their lines.
    pub inputs: Vec<(String, usize)>,
    /// Build defaults.
    pub build: BuildSettings,
    /// Images by name.
    pub images: BTreeMap<String, ImageConfig>,
    /// Retention policy.
    pub retention: Policy,
    /// Line of `[retention]`, if present.
    pub retention_line: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    registry: Option<String>,
    #[serde(default)]
    inputs: Vec<Spanned<String>>,
    #[serde(default)]
    build: BuildSettings,
    #[serde(default)]
    image: BTreeMap<String, Spanned<RawImage>>,
    retention: Option<Spanned<Policy>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    file: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    from: Option<Spanned<String>>,
    from_arg: Option<Spanned<String>>,
    #[serde(default)]
    inputs: Vec<Spanned<String>>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    target: Option<String>,
    #[serde(default)]
    cache_from: Vec<Spanned<String>>,
    #[serde(default)]
    cache_to: Vec<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The dotted key (`image.app.args`) whose key or value covers `span` most narrowly, for
/// errors that serde reports with a position but without the key. `None` when the text does
/// not parse or no key covers the span.
fn key_at(text: &str, span: &std::ops::Range<usize>) -> Option<String> {
    fn covers(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
        outer.start <= inner.start && inner.end <= outer.end
    }
    fn walk(
        table: &toml::de::DeTable<'_>,
        path: &mut Vec<String>,
        span: &std::ops::Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        for (k, v) in table.iter() {
            path.push(k.get_ref().to_string());
            let width = [k.span(), v.span()]
                .into_iter()
                .filter(|s| covers(s, span))
                .map(|s| s.len())
                .min();
            if let Some(w) = width
                && best.as_ref().is_none_or(|(b, _)| w <= *b)
            {
                *best = Some((w, path.join(".")));
            }
            walk_value(v.get_ref(), path, span, best);
            path.pop();
        }
    }
    fn walk_value(
        v: &toml::de::DeValue<'_>,
        path: &mut Vec<String>,
        span: &std::ops::Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        match v {
            toml::de::DeValue::Table(t) => walk(t, path, span, best),
            toml::de::DeValue::Array(a) => {
                for e in a.iter() {
                    walk_value(e.get_ref(), path, span, best);
                }
            }
            _ => {}
        }
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    walk(doc.get_ref(), &mut Vec::new(), span, &mut best);
    best.map(|(_, k)| k)
}

/// The line of the value at a dotted key path (`["build", "jobs"]`), if the text has it.
fn value_line(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let (last, tables) = path.split_last()?;
    let mut table = doc.get_ref();
    for k in tables {
        table = table.get(*k)?.get_ref().as_table()?;
    }
    Some(line_of(text, table.get(*last)?.span().start))
}

/// Reads and validates a `strata.toml`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: None,
        key: None,
        message: format!("cannot read it: {e} (write one, or pass --config FILE)"),
    })?;
    let root = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, path, &root)
}

/// Parses and validates `strata.toml` text; `path` is for messages, `root` is where relative
/// paths start.
pub fn parse(text: &str, path: &Path, root: &Path) -> Result<Config, ConfigError> {
    let err = |line: Option<usize>, key: Option<String>, message: String| ConfigError {
        path: path.to_path_buf(),
        line,
        key,
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = e.span().and_then(|s| key_at(text, &s));
        err(line, key, e.message().trim().to_string())
    })?;
    let mut images = BTreeMap::new();
    for (name, spanned) in &raw.image {
        let line = line_of(text, spanned.span().start);
        let key = |k: &str| Some(format!("image.{name}.{k}"));
        if !valid_name(name) {
            return Err(err(
                Some(line),
                Some(format!("image.{name}")),
                "image names use a-z, 0-9, '-' and '_' and start with a letter or digit".into(),
            ));
        }
        let r = spanned.get_ref();
        let Some(file) = &r.file else {
            return Err(err(
                Some(line),
                key("file"),
                format!(
                    "missing: every image needs file = \"<Dockerfile>\" (e.g. file = \"Dockerfile.{name}\")"
                ),
            ));
        };
        check_rel(file, text, "file", name).map_err(|(l, m)| err(Some(l), key("file"), m))?;
        if let Some(c) = &r.context {
            check_rel(c, text, "context", name)
                .map_err(|(l, m)| err(Some(l), key("context"), m))?;
        }
        for t in &r.tags {
            template::validate(t.get_ref())
                .map_err(|m| err(Some(line_of(text, t.span().start)), key("tags"), m))?;
        }
        let from_arg = match &r.from_arg {
            Some(a) => {
                let v = a.get_ref();
                if v.is_empty()
                    || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || v.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(err(
                        Some(line_of(text, a.span().start)),
                        key("from-arg"),
                        format!("{v:?} is not a build arg name (letters, digits, '_')"),
                    ));
                }
                v.clone()
            }
            None => DEFAULT_FROM_ARG.to_string(),
        };
        if r.from_arg.is_some() && r.from.is_none() {
            return Err(err(
                r.from_arg.as_ref().map(|a| line_of(text, a.span().start)),
                key("from-arg"),
                "from-arg without from: say which image this one is built from".into(),
            ));
        }
        images.insert(
            name.clone(),
            ImageConfig {
                name: name.clone(),
                line,
                file: file.get_ref().clone(),
                context: r
                    .context
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_else(|| ".".into()),
                tags: r.tags.iter().map(|t| t.get_ref().clone()).collect(),
                from: r.from.as_ref().map(|f| f.get_ref().clone()),
                from_arg,
                inputs: r
                    .inputs
                    .iter()
                    .map(|i| (i.get_ref().clone(), line_of(text, i.span().start)))
                    .collect(),
                args: r.args.clone(),
                target: r.target.clone(),
                cache_from: r
                    .cache_from
                    .iter()
                    .map(|c| (c.get_ref().clone(), line_of(text, c.span().start)))
                    .collect(),
                cache_to: r
                    .cache_to
                    .iter()
                    .map(|c| (c.get_ref().clone(), line_of(text, c.span().start)))
                    .collect(),
            },
        );
    }
    if images.is_empty() {
        return Err(err(
            None,
            Some("image".into()),
            "no images: add an [image.NAME] table with file = \"Dockerfile\"".into(),
        ));
    }
    // `from` must name an image, and there must be no cycle.
    let names: Vec<&str> = images.keys().map(String::as_str).collect();
    for (name, spanned) in &raw.image {
        if let Some(f) = &spanned.get_ref().from
            && !images.contains_key(f.get_ref())
        {
            return Err(err(
                Some(line_of(text, f.span().start)),
                Some(format!("image.{name}.from")),
                format!(
                    "no image named {:?} (images: {})",
                    f.get_ref(),
                    names.join(", ")
                ),
            ));
        }
    }
    for name in images.keys() {
        let mut seen = BTreeSet::new();
        let mut cur = name.as_str();
        let mut chain = vec![cur.to_string()];
        while let Some(p) = images[cur].from.as_deref() {
            chain.push(p.to_string());
            if !seen.insert(cur) || p == name {
                return Err(err(
                    Some(images[name].line),
                    Some(format!("image.{name}.from")),
                    format!(
                        "images are built from each other in a cycle: {}",
                        chain.join(" -> ")
                    ),
                ));
            }
            cur = p;
        }
    }
    for i in &raw.inputs {
        if i.get_ref().trim().is_empty() {
            return Err(err(
                Some(line_of(text, i.span().start)),
                Some("inputs".into()),
                "empty glob".into(),
            ));
        }
    }
    if let Some(c) = &raw.build.push_compression
        && !PUSH_COMPRESSIONS.contains(&c.as_str())
    {
        return Err(err(
            value_line(text, &["build", "push-compression"]),
            Some("build.push-compression".into()),
            format!("{c:?} is not one of {}", PUSH_COMPRESSIONS.join(", ")),
        ));
    }
    if raw.build.jobs == Some(0) {
        return Err(err(
            value_line(text, &["build", "jobs"]),
            Some("build.jobs".into()),
            "must be at least 1 (the number of images built at once)".into(),
        ));
    }
    Ok(Config {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        registry: raw.registry,
        inputs: raw
            .inputs
            .iter()
            .map(|i| (i.get_ref().clone(), line_of(text, i.span().start)))
            .collect(),
        build: raw.build,
        images,
        retention_line: raw
            .retention
            .as_ref()
            .map(|r| line_of(text, r.span().start)),
        retention: raw.retention.map(|r| r.into_inner()).unwrap_or_default(),
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_rel(
    v: &Spanned<String>,
    text: &str,
    what: &str,
    image: &str,
) -> Result<(), (usize, String)> {
    let s = v.get_ref();
    let line = line_of(text, v.span().start);
    if s.is_empty() {
        return Err((line, format!("empty {what} for image {image}")));
    }
    if s.starts_with('/') || s.split('/').any(|p| p == "..") {
        return Err((
            line,
            format!("{s:?} must be a path inside the project (relative, no '..')"),
        ));
    }
    Ok(())
}

impl Config {
    /// Image names in build order: by depth in the `from` tree (roots first), then by name.
    pub fn order(&self) -> Vec<String> {
        let mut names: Vec<(usize, String)> = self
            .images
            .keys()
            .map(|n| (self.ancestors(n).len(), n.clone()))
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }

    /// The ancestors of an image, nearest first.
    pub fn ancestors(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = self.images.get(name).and_then(|i| i.from.clone());
        while let Some(p) = cur {
            cur = self.images[&p].from.clone();
            out.push(p);
        }
        out
    }

    /// The Dockerfile of an image, as a repository path relative to `root` (cleaned).
    pub fn dockerfile_rel(&self, image: &ImageConfig) -> String {
        clean(&image.file)
    }

    /// The context of an image relative to `root` (cleaned, `""` for the root).
    pub fn context_rel(&self, image: &ImageConfig) -> String {
        let c = clean(&image.context);
        if c == "." { String::new() } else { c }
    }
}

/// Cleans a relative path: no `./`, no doubled or trailing slashes.
pub fn clean(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("strata.toml"), Path::new("."))
    }

    const ISSUE: &str = r#"registry = "127.0.0.1:5000/app"
inputs = ["ci/versions.env"]

[image.base]
file = "Dockerfile.base"          # required
context = "."                     # default "."
tags = ["{registry}:base-{sha}", "{registry}:base-stable"]

[image.tooling]
file = "Dockerfile.tooling"
from = "base"
from-arg = "BASE_IMAGE"
inputs = ["scripts/tooling/**"]

[image.app]
file = "Dockerfile"
from = "tooling"
args = { GREETING = "hi" }

[retention]
keep = [
  { tags = "base-*", newest = "all" },
  { tags = "tooling-*", newest = 3 },
  { tags = "pr-*", max-age = "7d" },
  { tags = "main-*", newest = 10 },
]
protect = ["*-stable", "latest"]
"#;

    #[test]
    fn parses_the_issue_example() {
        let c = p(ISSUE).unwrap();
        assert_eq!(c.order(), vec!["base", "tooling", "app"]);
        assert_eq!(c.images["tooling"].from.as_deref(), Some("base"));
        assert_eq!(c.images["app"].from_arg, "BASE_IMAGE");
        assert_eq!(
            c.images["tooling"].inputs,
            vec![("scripts/tooling/**".into(), 13)]
        );
        assert_eq!(c.images["base"].line, 4);
        assert_eq!(c.inputs[0].1, 2);
        assert_eq!(c.retention.keep.len(), 4);
        assert_eq!(c.retention_line, Some(20));
        assert_eq!(c.ancestors("app"), vec!["tooling", "base"]);
    }

    #[test]
    fn errors_name_key_and_line() {
        let cases: &[(&str, Option<usize>, &str)] = &[
            (
                "[image.a]\nfile = \"D\"\nflie = 1\n",
                Some(3),
                "unknown field `flie`",
            ),
            (
                "[image.a]\ncontext = \".\"\n",
                Some(1),
                "image.a.file: missing",
            ),
            (
                "[image.a]\nfile = \"D\"\n[image.b]\nfile = \"E\"\nfrom = \"c\"\n",
                Some(5),
                "image.b.from: no image named \"c\" (images: a, b)",
            ),
            (
                "[image.a]\nfile = \"D\"\nfrom = \"b\"\n[image.b]\nfile = \"E\"\nfrom = \"a\"\n",
                Some(1),
                "cycle",
            ),
            (
                "[image.a]\nfile = \"D\"\ntags = [\"x:{shaa}\"]\n",
                Some(3),
                "image.a.tags: unknown variable {shaa}",
            ),
            ("[image.a]\nfile = \"../D\"\n", Some(2), "image.a.file"),
            (
                "[image.a]\nfile = \"D\"\nfrom-arg = \"X\"\n",
                Some(3),
                "from-arg without from",
            ),
            (
                "[image.a]\nfile = \"D\"\n[retention]\nkeep = [{ tags = \"x-*\", newest = \"some\" }]\n",
                Some(4),
                "newest",
            ),
            (
                "[image.a]\nfile = \"D\"\n[retention]\nkeep = [{ tags = \"x-*\", max-age = \"7y\" }]\n",
                Some(4),
                "unknown unit",
            ),
            (
                "[image.a]\nfile = \"D\"\n[retention]\nkeep = [{ tags = \"x-*\" }]\n",
                Some(4),
                "says nothing to keep",
            ),
            (
                "registry = 3\n[image.a]\nfile = \"D\"\n",
                Some(1),
                "registry: invalid type: integer `3`, expected a string",
            ),
            (
                "[build]\nengine = \"docker\"\njobs = 0\n[image.a]\nfile = \"D\"\n",
                Some(3),
                "strata.toml:3: build.jobs: must be at least 1",
            ),
            (
                "[image.a]\nfile = \"D\"\n[image.b]\nfile = \"E\"\nargs = { X = 1 }\n",
                Some(5),
                "image.b.args.X: invalid type: integer `1`, expected a string",
            ),
            (
                "[build]\npush-compression = \"lz4\"\n[image.a]\nfile = \"D\"\n",
                Some(2),
                "strata.toml:2: build.push-compression: \"lz4\" is not one of gzip, zstd, zstd:chunked",
            ),
            (
                "[build]\njobs = \"two\"\n[image.a]\nfile = \"D\"\n",
                Some(2),
                "build.jobs: invalid type: string \"two\"",
            ),
            ("", None, "no images"),
            ("[image.A]\nfile = \"D\"\n", Some(1), "image names"),
        ];
        for (text, line, want) in cases {
            let e = p(text).expect_err(text);
            assert_eq!(e.line, *line, "{text}: {e}");
            assert!(e.to_string().contains(want), "{text}: {e}");
            assert!(e.to_string().starts_with("strata.toml"), "{e}");
        }
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("."), ".");
        assert_eq!(clean(""), ".");
    }
}
