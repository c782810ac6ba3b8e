//! The container engine edge: BuildKit through `docker build` (`DOCKER_BUILDKIT=1`),
//! `buildah bud`, `podman build`. Command lines are built by pure functions (tested with
//! tables); [`Engine`] runs them.
//!
//! Binaries: `$STRATA_DOCKER` (else `/usr/bin/docker` when present, else `docker` on PATH),
//! `$STRATA_BUILDAH` (else `buildah`), `$STRATA_PODMAN` (else `podman`). `DOCKER_HOST` is
//! inherited. For buildah and podman, `storage-driver` and `isolation` (from `[build]` in
//! `strata.toml`, or `$STRATA_STORAGE_DRIVER` / `$STRATA_ISOLATION`) are passed when set;
//! in an unprivileged container `vfs` and `chroot` are what work.
//!
//! Layer caches (`cache-from`, `cache-to` in an `[image]` table) are passed the way each
//! engine takes them, and [`check_cache`] refuses, before anything is built, what an engine
//! cannot honour: `docker build` (Debian's Docker 20.10, no buildx) has no `--cache-to` and
//! takes image references as `--cache-from` (not buildx's `type=…,ref=…`); buildah 1.28 and
//! podman 4.3 take one repository (no tag) each as `--cache-from REPO` / `--cache-to REPO`,
//! and only with `--layers`, which strata then adds (with `--tls-verify=false` for a
//! repository on loopback, as for pushes).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::EngineKind;

/// One image build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRequest {
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The context directory.
    pub context: PathBuf,
    /// The local reference to tag the result with.
    pub tag: String,
    /// Build args.
    pub build_args: BTreeMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `--cache-from` values.
    pub cache_from: Vec<String>,
    /// `--cache-to` values.
    pub cache_to: Vec<String>,
}

/// How to run an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// Which.
    pub kind: EngineKind,
    /// The binary.
    pub bin: PathBuf,
    /// `--network` for builds.
    pub network: Option<String>,
    /// buildah/podman `--storage-driver`.
    pub storage_driver: Option<String>,
    /// buildah/podman `--isolation`.
    pub isolation: Option<String>,
    /// buildah/podman `--compression-format` for pushes (then in the OCI format).
    pub push_compression: Option<String>,
}

/// What an engine says about a local image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image ID (config digest).
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Number of layers.
    pub layers: usize,
    /// The input key label, if any.
    pub input_key: Option<String>,
    /// The image's tags (`RepoTags`, or buildah/podman's names), when the engine says.
    pub tags: Vec<String>,
}

impl Engine {
    /// An engine with binaries and options from the environment (see the module docs).
    pub fn new(
        kind: EngineKind,
        network: Option<String>,
        storage_driver: Option<String>,
        isolation: Option<String>,
    ) -> Engine {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let bin = match kind {
            EngineKind::Docker => env("STRATA_DOCKER").map(PathBuf::from).unwrap_or_else(|| {
                if Path::new("/usr/bin/docker").exists() {
                    PathBuf::from("/usr/bin/docker")
                } else {
                    PathBuf::from("docker")
                }
            }),
            EngineKind::Buildah => PathBuf::from(env("STRATA_BUILDAH").unwrap_or("buildah".into())),
            EngineKind::Podman => PathBuf::from(env("STRATA_PODMAN").unwrap_or("podman".into())),
        };
        Engine {
            kind,
            bin,
            network,
            storage_driver: storage_driver.or_else(|| env("STRATA_STORAGE_DRIVER")),
            isolation: isolation.or_else(|| env("STRATA_ISOLATION")),
            push_compression: None,
        }
    }

    /// Global flags (before the subcommand).
    pub fn global_args(&self) -> Vec<String> {
        match (self.kind, &self.storage_driver) {
            (EngineKind::Docker, _) | (_, None) => vec![],
            (_, Some(d)) => vec!["--storage-driver".into(), d.clone()],
        }
    }

    /// The full argument list of a build. Pure.
    pub fn build_command(&self, r: &BuildRequest) -> Vec<String> {
        let mut a = self.global_args();
        match self.kind {
            EngineKind::Docker => a.extend(["build".into(), "--progress=plain".into()]),
            EngineKind::Buildah => a.push("bud".into()),
            EngineKind::Podman => a.push("build".into()),
        }
        if self.kind != EngineKind::Docker {
            if let Some(i) = &self.isolation {
                a.push(format!("--isolation={i}"));
            }
            // Reuse parents from local storage; only pull what is missing.
            a.push("--pull=missing".into());
        }
        if let Some(n) = &self.network {
            a.push(format!("--network={n}"));
        }
        a.push("-f".into());
        a.push(r.dockerfile.display().to_string());
        a.push("-t".into());
        a.push(r.tag.clone());
        for (k, v) in &r.build_args {
            a.push("--build-arg".into());
            a.push(format!("{k}={v}"));
        }
        if let Some(t) = &r.target {
            a.push("--target".into());
            a.push(t.clone());
        }
        for (k, v) in &r.labels {
            a.push("--label".into());
            a.push(format!("{k}={v}"));
        }
        match self.kind {
            // `docker build` has no --cache-to: check_cache refuses it before a build, and
            // the engine would refuse the flag.
            EngineKind::Docker => {
                for c in &r.cache_from {
                    a.push(format!("--cache-from={c}"));
                }
                for c in &r.cache_to {
                    a.push(format!("--cache-to={c}"));
                }
            }
            EngineKind::Buildah | EngineKind::Podman => {
                if !r.cache_from.is_empty() || !r.cache_to.is_empty() {
                    // Without --layers both flags are silently ignored.
                    a.push("--layers".into());
                    if r.cache_from
                        .iter()
                        .chain(&r.cache_to)
                        .any(|c| Self::insecure(c))
                    {
                        a.push("--tls-verify=false".into());
                    }
                }
                for c in &r.cache_from {
                    a.push("--cache-from".into());
                    a.push(c.clone());
                }
                for c in &r.cache_to {
                    a.push("--cache-to".into());
                    a.push(c.clone());
                }
            }
        }
        a.push(r.context.display().to_string());
        a
    }

    /// Environment for every engine command.
    pub fn envs(&self) -> Vec<(&'static str, &'static str)> {
        match self.kind {
            EngineKind::Docker => vec![("DOCKER_BUILDKIT", "1")],
            _ => vec![],
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.envs(self.envs());
        c.args(self.global_args());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} {}: {}",
                self.bin.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Whether the engine answers.
    pub fn check(&self) -> Result<(), String> {
        let args: &[&str] = match self.kind {
            EngineKind::Docker => &["version", "--format", "{{.Server.Version}}"],
            _ => &["version"],
        };
        self.run(args).map(|_| ()).map_err(|e| {
            format!(
                "the {} engine is not usable: {e}{}",
                self.kind.name(),
                match self.kind {
                    EngineKind::Docker => " (is dockerd running and DOCKER_HOST set?)",
                    _ => " (is it installed?)",
                }
            )
        })
    }

    /// Runs a build, calling `line` for every output line (stdout and stderr). Returns
    /// whether it succeeded.
    pub fn build(&self, r: &BuildRequest, line: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        let args = self.build_command(r);
        let mut child = self
            .command_no_global()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        std::thread::scope(|s| {
            s.spawn(|| {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    line(&l);
                }
            });
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                line(&l);
            }
        });
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed ({status})",
                self.bin.display(),
                args.join(" ")
            ))
        }
    }

    fn command_no_global(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.envs(self.envs());
        c
    }

    /// A local image carrying the input key label, if any (its ID).
    pub fn find_by_key(&self, key: &str) -> Result<Option<String>, String> {
        let filter = format!("label={}={key}", crate::keys::KEY_LABEL);
        let out = self.run(&["images", "-q", "--no-trunc", "--filter", &filter])?;
        // Children inherit labels but always set their own key, so a match is exact; check
        // the label anyway.
        for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Ok(info) = self.inspect(id)
                && info.input_key.as_deref() == Some(key)
            {
                return Ok(Some(info.id));
            }
        }
        Ok(None)
    }

    /// Every local image carrying an input key label, by key, in two engine calls (one
    /// listing, one inspection of all of them; buildah inspects one image per call). Where
    /// several images carry a key, the first listed (the newest) wins.
    pub fn local_keys(&self) -> Result<BTreeMap<String, ImageInfo>, String> {
        let filter = format!("label={}", crate::keys::KEY_LABEL);
        let out = self.run(&["images", "-q", "--no-trunc", "--filter", &filter])?;
        let mut ids: Vec<&str> = Vec::new();
        for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut infos = Vec::new();
        match self.kind {
            _ if ids.is_empty() => {}
            EngineKind::Buildah => {
                for id in &ids {
                    // Skip an image removed since the listing.
                    if let Ok(info) = self.inspect(id) {
                        infos.push(info);
                    }
                }
            }
            _ => {
                let mut args = vec!["image", "inspect"];
                args.extend(ids.iter().copied());
                // An image removed since the listing (another build or a prune on a shared
                // engine) fails the command, but the others are still printed: use them.
                let out = self
                    .command()
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let v: serde_json::Value = match serde_json::from_str(text.trim()) {
                    Ok(v) => v,
                    Err(_) if !out.status.success() => {
                        return Err(format!(
                            "{} image inspect: {}",
                            self.bin.display(),
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    Err(e) => return Err(format!("image inspect: {e}")),
                };
                for one in v.as_array().into_iter().flatten() {
                    infos.push(self.parse_inspect(one)?);
                }
            }
        }
        let mut by_key = BTreeMap::new();
        for info in infos {
            if let Some(k) = info.input_key.clone() {
                by_key.entry(k).or_insert(info);
            }
        }
        Ok(by_key)
    }

    /// The local images among `refs` (input key → local reference), by key, in one engine
    /// call (buildah: one per reference): cost in proportion to the run, not to the images
    /// on the engine. A reference whose image does not carry that key label is not a match.
    pub fn local_refs(
        &self,
        refs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, ImageInfo>, String> {
        let mut infos = Vec::new();
        match self.kind {
            _ if refs.is_empty() => {}
            EngineKind::Buildah => {
                for r in refs.values() {
                    if let Ok(info) = self.inspect(r) {
                        infos.push(info);
                    }
                }
            }
            _ => {
                let mut args = vec!["image", "inspect"];
                args.extend(refs.values().map(String::as_str));
                // Missing references fail the command, but the others are still printed.
                let out = self
                    .command()
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
                let text = String::from_utf8_lossy(&out.stdout);
                if let Ok(serde_json::Value::Array(a)) = serde_json::from_str(text.trim()) {
                    for one in &a {
                        infos.push(self.parse_inspect(one)?);
                    }
                } else if !out.status.success()
                    && !String::from_utf8_lossy(&out.stderr).contains("No such")
                {
                    return Err(format!(
                        "{} image inspect: {}",
                        self.bin.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
        }
        let mut by_key = BTreeMap::new();
        for info in infos {
            if let Some(k) = info.input_key.clone()
                && refs.contains_key(&k)
            {
                by_key.entry(k).or_insert(info);
            }
        }
        Ok(by_key)
    }

    /// ID, size, layers and key label of a local image.
    pub fn inspect(&self, reference: &str) -> Result<ImageInfo, String> {
        let text = match self.kind {
            EngineKind::Docker | EngineKind::Podman => {
                self.run(&["image", "inspect", reference])?
            }
            EngineKind::Buildah => self.run(&["inspect", "--type", "image", reference])?,
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("inspect {reference}: {e}"))?;
        let v = if let Some(a) = v.as_array() {
            a.first().cloned().unwrap_or_default()
        } else {
            v
        };
        self.parse_inspect(&v)
    }

    fn parse_inspect(&self, v: &serde_json::Value) -> Result<ImageInfo, String> {
        let label = |v: &serde_json::Value| -> Option<String> {
            v.get(crate::keys::KEY_LABEL)?.as_str().map(str::to_string)
        };
        match self.kind {
            EngineKind::Buildah => {
                let id = v.get("FromImageID").and_then(|x| x.as_str()).unwrap_or("");
                let layers = v
                    .pointer("/OCIv1/rootfs/diff_ids")
                    .and_then(|x| x.as_array())
                    .map_or(0, |a| a.len());
                let input_key = v.pointer("/OCIv1/config/Labels").and_then(label);
                // buildah inspect has no size; podman's view of the same storage does.
                let size = self
                    .run(&[
                        "images",
                        "--format",
                        "{{.Size}}",
                        "--filter",
                        &format!("id={id}"),
                    ])
                    .ok()
                    .and_then(|s| parse_human_size(s.lines().next().unwrap_or("")))
                    .unwrap_or(0);
                Ok(ImageInfo {
                    id: format!("sha256:{}", id.trim_start_matches("sha256:")),
                    size,
                    layers,
                    input_key,
                    tags: Vec::new(),
                })
            }
            _ => {
                let id = v.get("Id").and_then(|x| x.as_str()).unwrap_or("");
                Ok(ImageInfo {
                    id: format!("sha256:{}", id.trim_start_matches("sha256:")),
                    size: v.get("Size").and_then(|x| x.as_u64()).unwrap_or(0),
                    layers: v
                        .pointer("/RootFS/Layers")
                        .and_then(|x| x.as_array())
                        .map_or(0, |a| a.len()),
                    input_key: v.pointer("/Config/Labels").and_then(label),
                    tags: v
                        .get("RepoTags")
                        .and_then(|x| x.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| t.as_str())
                                .map(|t| t.strip_prefix("docker.io/").unwrap_or(t).to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
        }
    }

    /// Tags a local image.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), String> {
        self.run(&["tag", source, target]).map(|_| ())
    }

    /// Whether a registry reference should be used over plain HTTP / without TLS checks.
    fn insecure(reference: &str) -> bool {
        let host = reference.split('/').next().unwrap_or("");
        host.starts_with("127.") || host.starts_with("localhost")
    }

    /// The arguments of a buildah/podman push of `reference`, writing its digest to
    /// `digestfile`.
    pub fn push_args(&self, reference: &str, digestfile: &str) -> Vec<String> {
        let mut args = vec!["push".to_string(), format!("--digestfile={digestfile}")];
        if Self::insecure(reference) {
            args.push("--tls-verify=false".into());
        }
        if let Some(c) = &self.push_compression {
            args.extend([
                "--format".into(),
                "oci".into(),
                "--compression-format".into(),
            ]);
            args.push(c.clone());
        }
        args.push(reference.into());
        args
    }

    /// Pushes a tag; returns the pushed manifest digest when the engine reports it.
    pub fn push(&self, reference: &str) -> Result<Option<String>, String> {
        if self.kind == EngineKind::Docker {
            let out = self.run(&["push", reference])?;
            return Ok(out
                .lines()
                .rev()
                .find_map(|l| l.split("digest: ").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string));
        }
        let digestfile = tempfile_name();
        let args = self.push_args(reference, &digestfile);
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let d = std::fs::read_to_string(&digestfile).ok();
        let _ = std::fs::remove_file(&digestfile);
        Ok(d.map(|s| s.trim().to_string()))
    }

    /// Pulls a reference.
    pub fn pull(&self, reference: &str) -> Result<(), String> {
        let mut args = vec!["pull"];
        if self.kind != EngineKind::Docker && Self::insecure(reference) {
            args.push("--tls-verify=false");
        }
        if self.kind == EngineKind::Docker {
            args.push("-q");
        }
        args.push(reference);
        self.run(&args).map(|_| ())
    }

    /// Removes local tags (not failing when absent).
    pub fn untag(&self, reference: &str) {
        let _ = self.run(&["rmi", reference]);
    }
}

/// The RUN instructions of a Dockerfile that bind-mount files from the build context (a
/// `--mount` of type bind without `from=`): `(line, source)`. buildah's and podman's layer
/// cache (`--layers`, which `cache-from`/`cache-to` need) keys a RUN on its text, not on the
/// content of those files (buildah 1.28, podman 4.3: a changed bind-mounted script reuses
/// the stale layer), so strata refuses that combination before building. Pure.
pub fn context_bind_mounts(dockerfile: &strata_dockerfile::Dockerfile) -> Vec<(usize, String)> {
    let runs = dockerfile
        .instructions
        .iter()
        .filter(|i| i.keyword == "run");
    runs.flat_map(|i| {
        i.flags
            .iter()
            .filter_map(|f| f.strip_prefix("--mount="))
            .filter_map(|v| strata_graph::mount::parse_mount(v).ok())
            .filter(|m| m.kind == "bind" && m.from().is_none())
            .map(|m| (i.start_line, m.source().unwrap_or(".").to_string()))
            .collect::<Vec<_>>()
    })
    .collect()
}

/// Why an engine cannot honour an image's layer cache settings: the setting (`cache-from` or
/// `cache-to`), the line of the offending value, and what is wrong with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheProblem {
    /// `cache-from` or `cache-to`.
    pub setting: &'static str,
    /// The line of the value in `strata.toml`.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Checks an image's `cache-from` and `cache-to` values (each with its line) against what
/// the engine's build command accepts (see the module docs). Pure.
pub fn check_cache(
    kind: EngineKind,
    cache_from: &[(String, usize)],
    cache_to: &[(String, usize)],
) -> Result<(), CacheProblem> {
    let problem = |setting: &'static str, line: usize, message: String| CacheProblem {
        setting,
        line,
        message,
    };
    let buildx = |v: &str| v.contains('=') || v.contains(',');
    match kind {
        EngineKind::Docker => {
            if let Some((v, line)) = cache_to.first() {
                return Err(problem(
                    "cache-to",
                    *line,
                    format!(
                        "the docker engine cannot export a layer cache to {v:?}: strata runs \
                         `docker build` (Docker 20.10 without buildx), which has no --cache-to. \
                         Remove it (with docker, [build] registry-cache, on by default, already \
                         puts BuildKit's inline cache into the images strata pushes), or build \
                         with engine = \"buildah\" or \"podman\", which push a layer cache to a \
                         repository"
                    ),
                ));
            }
            for (v, line) in cache_from {
                if buildx(v) {
                    return Err(problem(
                        "cache-from",
                        *line,
                        format!(
                            "{v:?} is buildx syntax; `docker build` (Docker 20.10 without \
                             buildx) takes an image reference here, e.g. \
                             \"127.0.0.1:5000/app:base-stable\""
                        ),
                    ));
                }
                parse_reference(v).map_err(|m| problem("cache-from", *line, m))?;
            }
        }
        EngineKind::Buildah | EngineKind::Podman => {
            let engine = kind.name();
            for (setting, values) in [("cache-from", cache_from), ("cache-to", cache_to)] {
                if let Some((_, line)) = values.get(1) {
                    return Err(problem(
                        setting,
                        *line,
                        format!(
                            "{engine} takes one {setting} repository (its --{setting} is a \
                             single value: a second would silently replace the first); keep one"
                        ),
                    ));
                }
                for (v, line) in values {
                    if buildx(v) {
                        return Err(problem(
                            setting,
                            *line,
                            format!(
                                "{v:?} is buildx syntax; {engine} takes a repository here (no \
                                 tag), e.g. \"127.0.0.1:5000/app-cache\""
                            ),
                        ));
                    }
                    let (repo, tag, digest) =
                        parse_reference(v).map_err(|m| problem(setting, *line, m))?;
                    if tag.is_some() || digest.is_some() {
                        return Err(problem(
                            setting,
                            *line,
                            format!(
                                "{v:?} names a tag or digest; {engine} keeps its layer cache \
                                 under tags of its own: give the repository alone ({repo:?})"
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Splits an image reference into repository, tag and digest, or says why it is not one.
fn parse_reference(v: &str) -> Result<(&str, Option<&str>, Option<&str>), String> {
    let bad = |why: &str| {
        Err(format!(
            "{v:?} is not an image reference ({why}), e.g. \"127.0.0.1:5000/app-cache\""
        ))
    };
    if v.is_empty() || v.chars().any(|c| c.is_whitespace()) {
        return bad("empty or with spaces");
    }
    let (name, digest) = match v.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (v, None),
    };
    if let Some(d) = digest
        && !d
            .split_once(':')
            .is_some_and(|(a, h)| !a.is_empty() && !h.is_empty())
    {
        return bad("a digest is algorithm:hex");
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].find(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag
        && !crate::template::is_valid_tag(t)
    {
        return bad("a tag is letters, digits, '_', '.', '-'");
    }
    let parts: Vec<&str> = repo.split('/').collect();
    let host = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    for (i, p) in parts.iter().enumerate() {
        let ok = if i == 0 && host {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        } else {
            !p.is_empty()
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if !ok {
            return bad("repository path components are lowercase letters, digits, '.', '_', '-'");
        }
    }
    Ok((repo, tag, digest))
}

fn tempfile_name() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!("strata-digest-{}-{n}", std::process::id()))
        .display()
        .to_string()
}

/// Parses `2.13 MB`, `512kB`, `1.2GB` (decimal units, as podman prints them).
pub fn parse_human_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let i = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(i);
    let n: f64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    Some((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> BuildRequest {
        BuildRequest {
            dockerfile: "df/Dockerfile".into(),
            context: "ctx".into(),
            tag: "strata-local/app:abc".into(),
            build_args: BTreeMap::from([("BASE_IMAGE".into(), "strata-local/base:k".into())]),
            target: Some("final".into()),
            labels: BTreeMap::from([("dev.strata.input-key".into(), "sha256:k".into())]),
            cache_from: vec![],
            cache_to: vec![],
        }
    }

    fn engine(kind: EngineKind, options: bool) -> Engine {
        let some = |v: &str| options.then(|| v.to_string());
        Engine {
            kind,
            bin: kind.name().into(),
            network: some("host"),
            storage_driver: some("vfs"),
            isolation: some("chroot"),
            push_compression: None,
        }
    }

    #[test]
    fn command_table() {
        let head = "-f df/Dockerfile -t strata-local/app:abc --build-arg BASE_IMAGE=strata-local/base:k --target final --label dev.strata.input-key=sha256:k";
        let with = |from: &[&str], to: &[&str]| BuildRequest {
            cache_from: from.iter().map(|s| s.to_string()).collect(),
            cache_to: to.iter().map(|s| s.to_string()).collect(),
            ..req()
        };
        let cases = [
            (
                engine(EngineKind::Docker, true),
                req(),
                format!("build --progress=plain --network=host {head} ctx"),
            ),
            (
                engine(EngineKind::Docker, false),
                with(
                    &["127.0.0.1:5000/app:base-stable", "127.0.0.1:5000/app:pr-1"],
                    &[],
                ),
                format!(
                    "build --progress=plain {head} --cache-from=127.0.0.1:5000/app:base-stable --cache-from=127.0.0.1:5000/app:pr-1 ctx"
                ),
            ),
            (
                engine(EngineKind::Buildah, true),
                req(),
                format!(
                    "--storage-driver vfs bud --isolation=chroot --pull=missing --network=host {head} ctx"
                ),
            ),
            // buildah and podman ignore both flags without --layers; a loopback registry
            // is plain HTTP.
            (
                engine(EngineKind::Buildah, true),
                with(&["127.0.0.1:5000/c"], &["127.0.0.1:5000/c"]),
                format!(
                    "--storage-driver vfs bud --isolation=chroot --pull=missing --network=host {head} --layers --tls-verify=false --cache-from 127.0.0.1:5000/c --cache-to 127.0.0.1:5000/c ctx"
                ),
            ),
            (
                engine(EngineKind::Podman, false),
                req(),
                format!("build --pull=missing {head} ctx"),
            ),
            (
                engine(EngineKind::Podman, false),
                with(&["10.0.0.5:5000/c"], &[]),
                format!("build --pull=missing {head} --layers --cache-from 10.0.0.5:5000/c ctx"),
            ),
            (
                engine(EngineKind::Podman, false),
                with(&[], &["localhost:5000/c"]),
                format!(
                    "build --pull=missing {head} --layers --tls-verify=false --cache-to localhost:5000/c ctx"
                ),
            ),
        ];
        for (engine, request, want) in cases {
            assert_eq!(
                engine.build_command(&request).join(" "),
                want,
                "{:?}",
                engine.kind
            );
        }
    }

    #[test]
    fn cache_settings_each_engine_can_honour() {
        let v = |vals: &[&str]| -> Vec<(String, usize)> {
            vals.iter()
                .enumerate()
                .map(|(i, s)| (s.to_string(), 10 + i))
                .collect()
        };
        let (docker, buildah, podman) =
            (EngineKind::Docker, EngineKind::Buildah, EngineKind::Podman);
        // (engine, cache-from, cache-to, Ok or (setting, line, part of the message))
        type Want = Option<(&'static str, usize, &'static str)>;
        let cases: &[(EngineKind, &[&str], &[&str], Want)] = &[
            (docker, &[], &[], None),
            (
                docker,
                &["127.0.0.1:5000/app:base-stable", "app"],
                &[],
                None,
            ),
            (docker, &["127.0.0.1:5000/app@sha256:0a1b"], &[], None),
            (
                docker,
                &["127.0.0.1:5000/app:x", "type=registry,ref=127.0.0.1:5000/c"],
                &[],
                Some(("cache-from", 11, "is buildx syntax")),
            ),
            (
                docker,
                &[],
                &["127.0.0.1:5000/c"],
                Some(("cache-to", 10, "has no --cache-to")),
            ),
            (
                docker,
                &[],
                &["type=inline"],
                Some(("cache-to", 10, "has no --cache-to")),
            ),
            (
                docker,
                &["127.0.0.1:5000/App"],
                &[],
                Some(("cache-from", 10, "is not an image reference")),
            ),
            (buildah, &["127.0.0.1:5000/c"], &["127.0.0.1:5000/c"], None),
            (podman, &["localhost/cache"], &[], None),
            (
                buildah,
                &["127.0.0.1:5000/c:tag"],
                &[],
                Some(("cache-from", 10, "names a tag or digest")),
            ),
            (
                podman,
                &[],
                &["127.0.0.1:5000/c@sha256:0a1b"],
                Some(("cache-to", 10, "names a tag or digest")),
            ),
            (
                buildah,
                &[],
                &["type=registry,ref=127.0.0.1:5000/c"],
                Some(("cache-to", 10, "is buildx syntax")),
            ),
            (
                podman,
                &["127.0.0.1:5000/a", "127.0.0.1:5000/b"],
                &[],
                Some(("cache-from", 11, "takes one cache-from repository")),
            ),
            (
                buildah,
                &["a b"],
                &[],
                Some(("cache-from", 10, "is not an image reference")),
            ),
        ];
        for (kind, from, to, want) in cases {
            let got = check_cache(*kind, &v(from), &v(to));
            match (want, got) {
                (None, Ok(())) => {}
                (Some((setting, line, msg)), Err(p)) => {
                    assert_eq!(
                        (p.setting, p.line),
                        (*setting, *line),
                        "{kind:?} {from:?} {to:?}: {}",
                        p.message
                    );
                    assert!(p.message.contains(msg), "{kind:?}: {}", p.message);
                }
                (want, got) => panic!("{kind:?} {from:?} {to:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn pushes_name_their_compression_and_format_only_when_configured() {
        let mut e = engine(EngineKind::Buildah, false);
        assert_eq!(
            e.push_args("127.0.0.1:5000/app:t", "/tmp/d"),
            [
                "push",
                "--digestfile=/tmp/d",
                "--tls-verify=false",
                "127.0.0.1:5000/app:t"
            ]
        );
        e.push_compression = Some("zstd:chunked".into());
        assert_eq!(
            e.push_args("registry.example/app:t", "/tmp/d"),
            [
                "push",
                "--digestfile=/tmp/d",
                "--format",
                "oci",
                "--compression-format",
                "zstd:chunked",
                "registry.example/app:t"
            ]
        );
    }

    #[test]
    fn context_bind_mounts_are_found_but_not_stage_or_cache_mounts() {
        let df = strata_dockerfile::parse(
            "FROM scratch AS b\nRUN --mount=type=bind,source=s.sh,target=/s.sh sh /s.sh\n\
             RUN --mount=type=cache,target=/c --mount=type=bind,from=b,source=/x,target=/y true\n\
             RUN --mount=target=/all true\n",
        )
        .unwrap();
        assert_eq!(
            context_bind_mounts(&df),
            [(2, "s.sh".to_string()), (4, ".".to_string())]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_human_size("2.13 MB"), Some(2_130_000));
        assert_eq!(parse_human_size("512kB"), Some(512_000));
        assert_eq!(parse_human_size("x"), None);
    }
}
