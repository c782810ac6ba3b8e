//! From a parsed Dockerfile to stages: global ARGs, `FROM` expansion, per-instruction
//! resolution (environment, expanded words, mounts, stage references) and the dependency
//! edges between stages. Pure: no file system, no network.
//!
//! The resolution follows BuildKit's `dockerfile2llb`:
//! - ARGs before the first `FROM` are *meta args*: they are only visible to `FROM` lines, and
//!   to a stage that re-declares them with `ARG NAME` (no default), which takes the global
//!   value. `--build-arg` overrides both.
//! - Inside a stage, an `ARG` that ends up with a value is added to the stage's environment
//!   (`d.state.AddEnv`), so every later `RUN` of the stage sees it and its value is part of
//!   those `RUN`s' cache keys; other instructions are affected only where they expand it
//!   (`COPY ${SRC} .`). An `ARG` with no default and no `--build-arg` adds nothing.
//! - The proxy args (`HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY`, `ALL_PROXY`, any
//!   case) given with `--build-arg` but not declared reach `RUN` through `llb.WithProxy`, which
//!   BuildKit's exec op strips from its cache map, so they never change a key. Declared with
//!   `ARG`, they are ordinary args (BuildKit adds them to the environment like any other).

use std::collections::{BTreeMap, BTreeSet};

use strata_dockerfile::shell::{Env, Lexer};
use strata_dockerfile::{ArgsForm, Dockerfile, Instruction};

use crate::error::GraphError;
use crate::mount::{Mount, parse_mount};

/// Inputs that change the graph: `--build-arg` values and `--target`.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--build-arg NAME=value` pairs.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty file system.
    Scratch,
    /// An image from a registry, by the reference written (after ARG expansion).
    Image {
        /// The reference, e.g. `fedora:40` or `alpine@sha256:…`.
        reference: String,
        /// Whether it is pinned by digest (`@sha256:`); a tag can move.
        pinned: bool,
    },
    /// An earlier stage of the same Dockerfile.
    Stage(usize),
}

/// How one stage depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepKind {
    /// `FROM <stage>`.
    From,
    /// `COPY --from=<stage>` (or `ADD --from`).
    CopyFrom,
    /// `RUN --mount=...,from=<stage>`.
    MountFrom,
}

/// An edge of the stage DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The index of the stage depended on.
    pub stage: usize,
    /// Which instruction made the edge.
    pub kind: DepKind,
    /// Its 1-based line.
    pub line: usize,
}

/// Whether an instruction creates a build step in BuildKit (and so has a cache entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `RUN`: an exec op.
    Exec,
    /// `COPY`, `ADD`, `WORKDIR` (a mkdir): a file op.
    File,
    /// Image-config only (`ENV`, `ARG`, `LABEL`, `CMD`, …): no step of its own; it can change
    /// the keys of later steps through the environment, working directory, user or shell.
    Meta,
}

/// Where a `COPY`/`ADD` reads its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// The build context.
    Context,
    /// Another stage.
    Stage(usize),
    /// An image (`--from=alpine:3`).
    Image(String),
    /// Remote URLs or git repositories (`ADD https://…`).
    Remote,
    /// Heredoc content only (`COPY <<EOF /x`).
    Inline,
}

/// One instruction of a stage with everything its cache key needs, expanded.
#[derive(Debug, Clone)]
pub struct Step {
    /// The instruction as parsed.
    pub instruction: Instruction,
    /// Whether it is a build step.
    pub op: OpKind,
    /// Named key inputs in a stable order, e.g. `("command", "…")`, `("arg:V", "1")`,
    /// `("flag:chmod", "755")`. Context file digests and stage keys are added later.
    pub inputs: Vec<(String, String)>,
    /// Context paths or globs (cleaned, relative to the context root, `.` for all) whose
    /// files go into the key: `COPY`/`ADD` sources from the context and bind mounts of it.
    pub context_sources: Vec<String>,
    /// `--exclude` patterns of a `COPY`/`ADD` from the context.
    pub context_excludes: Vec<String>,
    /// Stages whose keys go into this step's key, with a label (`from`, `mount:/target`).
    pub stage_inputs: Vec<(String, usize)>,
    /// For `COPY`/`ADD`: the expanded sources and where they come from.
    pub copy: Option<(CopySource, Vec<String>, String)>,
    /// Parsed `--mount` flags of a `RUN`, expanded.
    pub mounts: Vec<Mount>,
    /// Build args whose values this step's key includes.
    pub args_used: BTreeSet<String>,
}

impl Step {
    /// The 1-based line the instruction starts on.
    pub fn line(&self) -> usize {
        self.instruction.start_line
    }

    /// The upper-cased keyword.
    pub fn keyword(&self) -> String {
        self.instruction.keyword.to_ascii_uppercase()
    }
}

/// An `ARG` declared inside a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageArg {
    /// The name.
    pub name: String,
    /// The 1-based line of the `ARG`.
    pub line: usize,
    /// The value it got (build arg, default, or global value), if any.
    pub value: Option<String>,
}

/// One `FROM` … section.
#[derive(Debug, Clone)]
pub struct Stage {
    /// 0-based position among the stages.
    pub index: usize,
    /// `AS name` lower-cased, else the index as a string.
    pub name: String,
    /// Whether it has an `AS` name.
    pub named: bool,
    /// The 1-based line of its `FROM`.
    pub line: usize,
    /// The base as written (`${BASE}:40`).
    pub base_text: String,
    /// The base after expansion.
    pub base: Base,
    /// `FROM --platform=…`, expanded.
    pub platform: Option<String>,
    /// `FROM --platform=…` as written.
    pub platform_raw: Option<String>,
    /// The instructions after `FROM`.
    pub steps: Vec<Step>,
    /// Stages this one needs, without duplicates, in first-use order.
    pub deps: Vec<Dep>,
    /// The `ARG`s declared in the stage.
    pub args: Vec<StageArg>,
}

/// A global (`ARG` before the first `FROM`) argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArg {
    /// The name.
    pub name: String,
    /// The value after `--build-arg` overrides and expansion, if any.
    pub value: Option<String>,
    /// The 1-based line.
    pub line: usize,
    /// The default as written (`""` when none).
    pub default_text: String,
}

/// The stages of a Dockerfile, their edges, and which of them the target needs.
#[derive(Debug, Clone)]
pub struct Graph {
    /// All stages in file order.
    pub stages: Vec<Stage>,
    /// Global ARGs.
    pub global_args: Vec<GlobalArg>,
    /// The index of the target stage.
    pub target: usize,
    /// `reachable[i]`: whether the target needs stage `i`.
    pub reachable: Vec<bool>,
    /// `--build-arg`s that nothing declares (BuildKit warns about them too).
    pub unused_build_args: Vec<String>,
}

/// BuildKit's proxy build args: passed to `RUN` outside the cache key unless declared.
pub fn is_proxy_arg(name: &str) -> bool {
    [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ]
    .iter()
    .any(|p| name.eq_ignore_ascii_case(p))
}

/// Args that BuildKit never adds to the environment.
fn is_non_env_arg(name: &str) -> bool {
    matches!(
        name,
        "BUILDKIT_SBOM_SCAN_CONTEXT" | "BUILDKIT_SBOM_SCAN_STAGE"
    )
}

/// The automatic platform args BuildKit defines in the global scope, for this host.
pub fn platform_args() -> Vec<(String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    let platform = format!("linux/{arch}");
    [
        ("BUILDPLATFORM", platform.as_str()),
        ("BUILDOS", "linux"),
        ("BUILDARCH", arch),
        ("BUILDVARIANT", ""),
        ("TARGETPLATFORM", platform.as_str()),
        ("TARGETOS", "linux"),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Cleans a source path to context-relative form: no leading `/` or `./`, `..` cannot climb
/// above the root, `.` for the root itself.
pub fn clean_context_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Joins `path` onto the working directory `cwd` unless it is absolute, and cleans it.
fn resolve_in(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let cleaned = clean_context_path(&joined);
    let mut out = if cleaned == "." {
        "/".to_string()
    } else {
        format!("/{cleaned}")
    };
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

fn is_remote(src: &str) -> bool {
    src.starts_with("http://")
        || src.starts_with("https://")
        || src.starts_with("git@")
        || src.starts_with("git://")
        || (src.contains("://") && src.ends_with(".git"))
}

/// Builds the graph: stages, resolved steps, edges, the target and what it needs.
pub fn analyze(df: &Dockerfile, opts: &BuildOptions) -> Result<Graph, GraphError> {
    let lexer = Lexer::new(df.escape);
    let first_from = df
        .instructions
        .iter()
        .position(|i| i.keyword == "from")
        .ok_or(GraphError::NoStages)?;

    // Global scope: automatic platform args, then the ARGs before the first FROM.
    let mut meta: Vec<(String, String)> = platform_args();
    let mut global_args = Vec::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for ins in &df.instructions[..first_from] {
        if ins.keyword != "arg" {
            return Err(GraphError::BeforeFrom {
                line: ins.start_line,
                keyword: ins.keyword.to_ascii_uppercase(),
            });
        }
        for word in &ins.values {
            let (name, default) = split_arg(word);
            declared.insert(name.clone());
            let value = match opts.build_args.get(&name) {
                Some(v) => Some(v.clone()),
                None => match default {
                    Some(d) => Some(expand(&lexer, &d, &meta, ins.start_line)?.result),
                    None => None,
                },
            };
            if let Some(v) = &value {
                meta.push((name.clone(), v.clone()));
            }
            global_args.push(GlobalArg {
                default_text: word.split_once('=').map(|x| x.1).unwrap_or("").to_string(),
                name,
                value,
                line: ins.start_line,
            });
        }
    }

    // Stage headers first, so COPY --from can name any stage.
    let mut stages: Vec<Stage> = Vec::new();
    let mut sections: Vec<&[Instruction]> = Vec::new();
    let from_positions: Vec<usize> = df
        .instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "from")
        .map(|(n, _)| n)
        .collect();
    for (index, &pos) in from_positions.iter().enumerate() {
        let end = from_positions
            .get(index + 1)
            .copied()
            .unwrap_or(df.instructions.len());
        let from = &df.instructions[pos];
        sections.push(&df.instructions[pos + 1..end]);
        stages.push(stage_header(index, from, &stages, &meta, &lexer)?);
    }

    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    for (index, section) in sections.iter().enumerate() {
        let ctx = StageCtx {
            index,
            names: &names,
            lexer: &lexer,
            opts,
            meta: &meta,
            global_args: &global_args,
        };
        let (steps, args) = resolve_steps(&ctx, section)?;
        for a in &args {
            declared.insert(a.name.clone());
        }
        let stage = &mut stages[index];
        for step in &steps {
            for (label, dep) in &step.stage_inputs {
                let kind = if label.starts_with("mount") {
                    DepKind::MountFrom
                } else {
                    DepKind::CopyFrom
                };
                if !stage.deps.iter().any(|d| d.stage == *dep) {
                    stage.deps.push(Dep {
                        stage: *dep,
                        kind,
                        line: step.line(),
                    });
                }
            }
        }
        stage.steps = steps;
        stage.args = args;
    }

    check_cycles(&stages)?;
    let target = match &opts.target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| s.named && s.name == t.to_ascii_lowercase())
            .ok_or_else(|| GraphError::UnknownTarget(t.clone(), names.join(", ")))?,
    };
    let reachable = reachable_from(&stages, target);
    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !is_proxy_arg(k))
        .filter(|k| !platform_args().iter().any(|(p, _)| p == *k))
        .cloned()
        .collect();
    Ok(Graph {
        stages,
        global_args,
        target,
        reachable,
        unused_build_args,
    })
}

/// `NAME=value` or `NAME` → (name, default).
fn split_arg(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (word.to_string(), None),
    }
}

fn expand<E: Env + ?Sized>(
    lexer: &Lexer,
    word: &str,
    env: &E,
    line: usize,
) -> Result<strata_dockerfile::shell::Expansion, GraphError> {
    lexer.expand(word, env).map_err(|e| GraphError::Invalid {
        line,
        message: e.to_string(),
    })
}

fn stage_header(
    index: usize,
    from: &Instruction,
    earlier: &[Stage],
    meta: &[(String, String)],
    lexer: &Lexer,
) -> Result<Stage, GraphError> {
    let line = from.start_line;
    let words = &from.values;
    let (base_text, alias) = match words.as_slice() {
        [b] => (b.clone(), None),
        [b, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (b.clone(), Some(name.clone())),
        _ => {
            return Err(GraphError::Invalid {
                line,
                message: "FROM takes an image and optionally `AS name`".into(),
            });
        }
    };
    let expanded = expand(lexer, &base_text, meta, line)?.result;
    if expanded.trim().is_empty() {
        return Err(GraphError::Invalid {
            line,
            message: format!(
                "base name ({base_text}) should not be blank: give the ARG a default or pass --build-arg"
            ),
        });
    }
    let platform = match from.flag("platform") {
        Some(p) => Some(expand(lexer, p, meta, line)?.result),
        None => None,
    };
    let lowered = expanded.to_ascii_lowercase();
    let base = if let Some(i) = earlier.iter().position(|s| s.named && s.name == lowered) {
        Base::Stage(i)
    } else if lowered == "scratch" {
        Base::Scratch
    } else {
        Base::Image {
            pinned: expanded.contains("@sha256:"),
            reference: expanded,
        }
    };
    let name = alias
        .as_ref()
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_else(|| index.to_string());
    if alias.is_some() && earlier.iter().any(|s| s.named && s.name == name) {
        return Err(GraphError::Invalid {
            line,
            message: format!("duplicate stage name `{name}`: rename one of them"),
        });
    }
    let deps = match base {
        Base::Stage(i) => vec![Dep {
            stage: i,
            kind: DepKind::From,
            line,
        }],
        _ => Vec::new(),
    };
    Ok(Stage {
        index,
        named: alias.is_some(),
        name,
        line,
        base_text,
        base,
        platform,
        platform_raw: from.flag("platform").map(str::to_string),
        steps: Vec::new(),
        deps,
        args: Vec::new(),
    })
}

struct StageCtx<'a> {
    index: usize,
    names: &'a [String],
    lexer: &'a Lexer,
    opts: &'a BuildOptions,
    meta: &'a [(String, String)],
    global_args: &'a [GlobalArg],
}

impl StageCtx<'_> {
    /// Resolves `--from=<name|index>`: a stage index, or `None` for an image.
    fn stage_ref(&self, from: &str, line: usize) -> Result<Option<usize>, GraphError> {
        if let Ok(i) = from.parse::<usize>() {
            if i >= self.index {
                return Err(GraphError::Invalid {
                    line,
                    message: format!(
                        "invalid from flag value {i}: refers to current or future build stage"
                    ),
                });
            }
            return Ok(Some(i));
        }
        let lowered = from.to_ascii_lowercase();
        Ok(self
            .names
            .iter()
            .enumerate()
            .find(|(i, n)| **n == lowered && n.parse::<usize>().map(|x| x != *i).unwrap_or(true))
            .map(|(i, _)| i))
    }
}

/// The mutable state BuildKit carries through a stage.
struct State {
    env: Vec<(String, String)>,
    arg_names: BTreeSet<String>,
    cwd: String,
    user: String,
    shell: Vec<String>,
}

impl State {
    fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The environment as sorted key inputs: `arg:NAME` for args, `env:NAME` for ENV.
    fn env_inputs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, val)| {
                let kind = if self.arg_names.contains(k) {
                    "arg"
                } else {
                    "env"
                };
                (format!("{kind}:{k}"), val.clone())
            })
            .collect();
        v.sort();
        v
    }

    fn used_args(&self, names: &BTreeSet<String>) -> BTreeSet<String> {
        names
            .iter()
            .filter(|n| self.arg_names.contains(*n))
            .cloned()
            .collect()
    }
}

fn resolve_steps(
    ctx: &StageCtx<'_>,
    section: &[Instruction],
) -> Result<(Vec<Step>, Vec<StageArg>), GraphError> {
    let mut st = State {
        env: Vec::new(),
        arg_names: BTreeSet::new(),
        cwd: "/".into(),
        user: String::new(),
        shell: vec!["/bin/sh".into(), "-c".into()],
    };
    let mut steps = Vec::new();
    let mut args = Vec::new();
    for ins in section {
        let step = match ins.keyword.as_str() {
            "arg" => resolve_arg(ctx, ins, &mut st, &mut args)?,
            "env" => resolve_env(ctx, ins, &mut st)?,
            "workdir" => {
                let e = expand(
                    ctx.lexer,
                    ins.values.first().map_or("", |s| s),
                    &st.env,
                    ins.start_line,
                )?;
                st.cwd = resolve_in(&st.cwd, &e.result);
                let mut step = meta_step(ins, OpKind::File);
                step.inputs = vec![
                    ("mkdir".into(), st.cwd.clone()),
                    ("user".into(), st.user.clone()),
                ];
                step.args_used = st.used_args(&e.matched);
                step
            }
            "user" => {
                let e = expand(
                    ctx.lexer,
                    ins.values.first().map_or("", |s| s),
                    &st.env,
                    ins.start_line,
                )?;
                st.user = e.result;
                let mut step = meta_step(ins, OpKind::Meta);
                step.args_used = st.used_args(&e.matched);
                step
            }
            "shell" => {
                if let ArgsForm::Json(v) = &ins.args {
                    st.shell = v.clone();
                }
                meta_step(ins, OpKind::Meta)
            }
            "run" => resolve_run(ctx, ins, &st)?,
            "copy" | "add" => resolve_copy(ctx, ins, &st)?,
            "from" => unreachable!("sections exclude FROM"),
            _ => meta_step(ins, OpKind::Meta),
        };
        steps.push(step);
    }
    Ok((steps, args))
}

fn meta_step(ins: &Instruction, op: OpKind) -> Step {
    Step {
        instruction: ins.clone(),
        op,
        inputs: vec![("instruction".into(), ins.original.clone())],
        context_sources: Vec::new(),
        context_excludes: Vec::new(),
        stage_inputs: Vec::new(),
        copy: None,
        mounts: Vec::new(),
        args_used: BTreeSet::new(),
    }
}

fn resolve_arg(
    ctx: &StageCtx<'_>,
    ins: &Instruction,
    st: &mut State,
    args: &mut Vec<StageArg>,
) -> Result<Step, GraphError> {
    for word in &ins.values {
        let (name, default) = split_arg(word);
        let value = if let Some(v) = ctx.opts.build_args.get(&name) {
            Some(v.clone())
        } else if let Some(d) = default {
            Some(expand(ctx.lexer, &d, &st.env, ins.start_line)?.result)
        } else {
            // `ARG NAME` takes the global value (meta args include platform args).
            ctx.global_args
                .iter()
                .rev()
                .find(|g| g.name == name)
                .and_then(|g| g.value.clone())
                .or_else(|| {
                    platform_args()
                        .into_iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v)
                })
        };
        let _ = ctx.meta;
        if let Some(v) = &value
            && !is_non_env_arg(&name)
        {
            st.set_env(&name, v);
            st.arg_names.insert(name.clone());
        }
        args.push(StageArg {
            name,
            line: ins.start_line,
            value,
        });
    }
    Ok(meta_step(ins, OpKind::Meta))
}

fn resolve_env(ctx: &StageCtx<'_>, ins: &Instruction, st: &mut State) -> Result<Step, GraphError> {
    let mut used = BTreeSet::new();
    for triple in ins.values.chunks(3) {
        let [key, value, ..] = triple else { continue };
        let e = expand(ctx.lexer, value, &st.env, ins.start_line)?;
        used.extend(st.used_args(&e.matched));
        st.set_env(key, &e.result);
        st.arg_names.remove(key.as_str());
    }
    let mut step = meta_step(ins, OpKind::Meta);
    step.args_used = used;
    Ok(step)
}

fn resolve_run(ctx: &StageCtx<'_>, ins: &Instruction, st: &State) -> Result<Step, GraphError> {
    let line = ins.start_line;
    let mut step = meta_step(ins, OpKind::Exec);
    let command = match &ins.args {
        ArgsForm::Json(v) => serde_json::to_string(v).unwrap_or_default(),
        ArgsForm::Shell(text) => {
            let mut parts = st.shell.clone();
            parts.push(text.clone());
            serde_json::to_string(&parts).unwrap_or_default()
        }
    };
    step.inputs = vec![("command".into(), command)];
    for h in &ins.heredocs {
        step.inputs
            .push((format!("heredoc:{}", h.name), h.content.clone()));
    }
    step.inputs.extend(st.env_inputs());
    step.inputs.push(("workdir".into(), st.cwd.clone()));
    step.inputs.push(("user".into(), st.user.clone()));
    for flag in &ins.flags {
        let Some(body) = flag.strip_prefix("--") else {
            continue;
        };
        let (name, value) = body.split_once('=').unwrap_or((body, ""));
        if name == "mount" {
            let expanded = expand(ctx.lexer, value, &st.env, line)?;
            step.args_used.extend(st.used_args(&expanded.matched));
            let mount = parse_mount(&expanded.result).map_err(|m| GraphError::Invalid {
                line,
                message: format!("bad --mount: {m}"),
            })?;
            let target = mount.target().unwrap_or("").to_string();
            step.inputs
                .push((format!("mount:{target}"), mount.canonical()));
            match mount.from() {
                Some(from) => {
                    if let Some(i) = ctx.stage_ref(from, line)? {
                        step.stage_inputs.push((format!("mount:{target}"), i));
                    }
                }
                None if mount.kind == "bind" => {
                    step.context_sources
                        .push(clean_context_path(mount.source().unwrap_or(".")));
                }
                None => {}
            }
            step.mounts.push(mount);
        } else {
            step.inputs
                .push((format!("flag:{name}"), value.to_string()));
        }
    }
    // Every arg in the environment is an (implicit) use by RUN.
    step.args_used.extend(st.arg_names.iter().cloned());
    Ok(step)
}

fn resolve_copy(ctx: &StageCtx<'_>, ins: &Instruction, st: &State) -> Result<Step, GraphError> {
    let line = ins.start_line;
    let mut step = meta_step(ins, OpKind::File);
    let words: Vec<String> = match &ins.args {
        ArgsForm::Json(v) => v.clone(),
        ArgsForm::Shell(_) => ins.values.clone(),
    };
    if words.len() < 2 {
        return Err(GraphError::Invalid {
            line,
            message: format!(
                "{} requires at least two arguments: a source and a destination",
                ins.keyword.to_ascii_uppercase()
            ),
        });
    }
    let mut used = BTreeSet::new();
    let mut expanded = Vec::new();
    for w in &words {
        let heredoc = w.starts_with("<<") && !ins.heredocs.is_empty();
        if heredoc {
            expanded.push(w.clone());
            continue;
        }
        let e = expand(ctx.lexer, w, &st.env, line)?;
        used.extend(e.matched.iter().cloned());
        expanded.push(e.result);
    }
    let dest_raw = expanded.pop().unwrap_or_default();
    let dest = resolve_in(&st.cwd, &dest_raw);
    let sources = expanded;
    let mut inputs = vec![
        ("instruction".to_string(), ins.keyword.clone()),
        ("dest".to_string(), dest),
    ];
    let mut flag_names = BTreeSet::new();
    for flag in &ins.flags {
        let Some(body) = flag.strip_prefix("--") else {
            continue;
        };
        let (name, value) = body.split_once('=').unwrap_or((body, "true"));
        let e = expand(ctx.lexer, value, &st.env, line)?;
        used.extend(e.matched.iter().cloned());
        flag_names.insert(name.to_string());
        if name == "exclude" {
            step.context_excludes.push(e.result.clone());
        }
        inputs.push((format!("flag:{name}"), e.result));
    }
    let from = match ins.flag("from") {
        Some(f) => Some(expand(ctx.lexer, f, &st.env, line)?.result),
        None => None,
    };
    let source = match &from {
        Some(f) => match ctx.stage_ref(f, line)? {
            Some(i) => {
                step.stage_inputs.push(("from".into(), i));
                CopySource::Stage(i)
            }
            None => CopySource::Image(f.clone()),
        },
        None if !sources.is_empty() && sources.iter().all(|s| is_remote(s)) => CopySource::Remote,
        None if !ins.heredocs.is_empty() && sources.iter().all(|s| s.starts_with("<<")) => {
            CopySource::Inline
        }
        None => CopySource::Context,
    };
    for s in &sources {
        inputs.push(("source".into(), s.clone()));
        if s.starts_with("<<") {
            let name = s.trim_start_matches("<<").trim_start_matches('-');
            let name = name.trim_matches(|c| c == '"' || c == '\'');
            if let Some(h) = ins.heredocs.iter().find(|h| h.name == name) {
                inputs.push((format!("heredoc:{}", h.name), h.content.clone()));
            }
        } else if source == CopySource::Context && !is_remote(s) {
            step.context_sources.push(clean_context_path(s));
        }
    }
    if let CopySource::Image(r) = &source {
        inputs.push(("from-image".into(), r.clone()));
    }
    step.inputs = inputs;
    step.args_used = st.used_args(&used);
    step.copy = Some((source, sources, dest_raw));
    Ok(step)
}

fn check_cycles(stages: &[Stage]) -> Result<(), GraphError> {
    // 0 = unvisited, 1 = on stack, 2 = done
    fn visit(
        i: usize,
        stages: &[Stage],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Result<(), GraphError> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut names: Vec<&str> = path[start..]
                    .iter()
                    .map(|&p| stages[p].name.as_str())
                    .collect();
                names.push(&stages[i].name);
                return Err(GraphError::Cycle(names.join(" -> ")));
            }
            _ => {}
        }
        mark[i] = 1;
        path.push(i);
        for d in &stages[i].deps {
            visit(d.stage, stages, mark, path)?;
        }
        path.pop();
        mark[i] = 2;
        Ok(())
    }
    let mut mark = vec![0u8; stages.len()];
    for i in 0..stages.len() {
        visit(i, stages, &mut mark, &mut Vec::new())?;
    }
    Ok(())
}

fn reachable_from(stages: &[Stage], target: usize) -> Vec<bool> {
    let mut seen = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        todo.extend(stages[i].deps.iter().map(|d| d.stage));
    }
    seen
}
