//! Cache and layer hygiene rules over the stage graph. Pure: the one fact that needs the
//! context (whether a `COPY` source is `.dockerignore`d) comes in as a function.
//!
//! | id | severity | finds |
//! |---|---|---|
//! | `merged-package-db` | error | package installs in separate stages merged with `COPY --from=x / /` or by copying a package database (`/var/lib/rpm`, `/var/lib/dpkg`, …): the second copy clobbers the first's database |
//! | `copy-ignored-file` | error | a `COPY`/`ADD` source that `.dockerignore` excludes (the build fails with "not found") |
//! | `context-copy-before-deps` | warning | the whole context copied before a dependency install in the same stage |
//! | `package-cache-left` | warning | dnf/yum/apt/apk/pip installs that leave their caches in the layer |
//! | `serial-downloads` | warning | one stage running several independent downloads |
//! | `unused-arg` | warning | an `ARG` never referenced (it still busts every later `RUN`) |
//! | `unreachable-stage` | warning | a stage the final stage never uses |
//! | `unpinned-base` | warning | a base image by tag, not digest |
//! | `script-copied-to-run` | info | a script `COPY`ed from the context only to be run by a later `RUN`: a bind mount keeps it out of the image and saves a layer |

use serde::Serialize;

use crate::stages::{Base, CopySource, Graph, OpKind, Stage, Step, is_proxy_arg};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Slower or bigger builds than needed, or keys that bust too often.
    Warning,
    /// A broken image or a failing build.
    Error,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable kebab-case rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The stage it is in.
    pub stage: String,
}

/// Every rule: id, severity, one-line description.
pub const RULES: &[(&str, Severity, &str)] = &[
    (
        "merged-package-db",
        Severity::Error,
        "package databases merged from separate stages",
    ),
    (
        "copy-ignored-file",
        Severity::Error,
        "COPY/ADD source excluded by .dockerignore",
    ),
    (
        "context-copy-before-deps",
        Severity::Warning,
        "whole context copied before dependency installation",
    ),
    (
        "package-cache-left",
        Severity::Warning,
        "package manager cache left in the layer",
    ),
    (
        "serial-downloads",
        Severity::Warning,
        "several independent downloads in one stage",
    ),
    (
        "unused-arg",
        Severity::Warning,
        "ARG declared and never used",
    ),
    (
        "unreachable-stage",
        Severity::Warning,
        "stage not needed by the final stage",
    ),
    (
        "unpinned-base",
        Severity::Warning,
        "base image not pinned by digest",
    ),
    (
        "script-copied-to-run",
        Severity::Info,
        "script copied into the image only to be run once",
    ),
];

/// Runs every rule. `is_ignored(source)` says whether a literal context source exists and is
/// excluded by `.dockerignore` (pass `|_| false` without a context). The graph should be
/// built without `--target`, so reachability is judged from the last stage.
pub fn lint(graph: &Graph, is_ignored: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut out = Vec::new();
    merged_package_db(graph, &mut out);
    for stage in &graph.stages {
        copy_ignored(stage, is_ignored, &mut out);
        context_copy_before_deps(stage, &mut out);
        script_copied_to_run(graph, stage, &mut out);
        package_cache_left(stage, &mut out);
        serial_downloads(stage, &mut out);
        unused_stage_args(stage, &mut out);
        if !graph.reachable[stage.index] {
            out.push(Finding {
                rule: "unreachable-stage",
                severity: Severity::Warning,
                line: stage.line,
                message: format!(
                    "stage `{}` is not used by the final stage `{}`: BuildKit skips it, the legacy builder builds it",
                    stage.name, graph.stages[graph.target].name
                ),
                fix: "delete it, or reference it (COPY --from / FROM), or build it with --target".into(),
                stage: stage.name.clone(),
            });
        }
        if let Base::Image {
            reference,
            pinned: false,
        } = &stage.base
        {
            out.push(Finding {
                rule: "unpinned-base",
                severity: Severity::Warning,
                line: stage.line,
                message: format!(
                    "base image `{reference}` is a tag: its content can change while every cache key stays the same"
                ),
                fix: format!("pin it: FROM {reference}@sha256:<digest> (keep the tag for readers)"),
                stage: stage.name.clone(),
            });
        }
    }
    unused_global_args(graph, &mut out);
    out.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule.cmp(b.rule)));
    out
}

/// The text a RUN executes: its command and heredoc bodies.
fn run_text(step: &Step) -> String {
    let mut s = match &step.instruction.args {
        strata_dockerfile::ArgsForm::Json(v) => v.join(" "),
        strata_dockerfile::ArgsForm::Shell(t) => t.clone(),
    };
    for h in &step.instruction.heredocs {
        s.push('\n');
        s.push_str(&h.content);
    }
    s
}

/// Splits a shell script into simple commands (on `&&`, `||`, `;`, `|`, newlines) as token
/// lists, dropping `sudo`, `VAR=value` prefixes and line-continuation backslashes.
pub fn commands(script: &str) -> Vec<Vec<String>> {
    let normalised = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for part in normalised.split(['\n', ';', '|', '&']) {
        let mut toks: Vec<String> = part
            .split_whitespace()
            .filter(|t| *t != "\\")
            .map(|t| t.trim_matches(|c| c == '(' || c == ')').to_string())
            .collect();
        while let Some(first) = toks.first() {
            let is_assign = first.contains('=') && !first.starts_with('-');
            if first == "sudo" || first == "exec" || first == "env" || is_assign {
                toks.remove(0);
            } else {
                break;
            }
        }
        if !toks.is_empty() {
            out.push(toks);
        }
    }
    out
}

/// The package manager a command installs with, if it does.
pub fn install_manager(cmd: &[String]) -> Option<&'static str> {
    let prog = cmd.first()?.rsplit('/').next().unwrap_or("");
    let rest: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
    let has = |words: &[&str]| rest.iter().any(|t| words.contains(t));
    match prog {
        "dnf" | "dnf5" | "yum" | "microdnf" | "tdnf" => {
            has(&["install", "reinstall", "upgrade", "update", "groupinstall"]).then_some("dnf")
        }
        "rpm" => rest
            .iter()
            .any(|t| t.starts_with("-i") || t.starts_with("-U") || *t == "--install")
            .then_some("rpm"),
        "apt-get" | "apt" => has(&["install", "upgrade", "dist-upgrade"]).then_some("apt"),
        "dpkg" => has(&["-i", "--install"]).then_some("dpkg"),
        "apk" => has(&["add"]).then_some("apk"),
        "pip" | "pip3" => has(&["install"]).then_some("pip"),
        "python" | "python3" if rest.starts_with(&["-m", "pip"]) && has(&["install"]) => {
            Some("pip")
        }
        _ => None,
    }
}

/// Whether a command installs a project's dependencies (system packages included).
fn dependency_install(cmd: &[String]) -> bool {
    if install_manager(cmd).is_some() {
        return true;
    }
    let prog = cmd.first().map(String::as_str).unwrap_or("");
    let sub = cmd.get(1).map(String::as_str).unwrap_or("");
    matches!(
        (prog, sub),
        ("npm", "install" | "ci" | "i")
            | ("yarn", "" | "install")
            | ("pnpm", "install" | "i")
            | ("poetry", "install")
            | ("pipenv", "install" | "sync")
            | ("uv", "sync" | "pip")
            | ("bundle", "install")
            | ("go", "mod")
            | ("composer", "install")
    )
}

/// Whether a command downloads something (and is not a checksum or signature fetch).
fn download(cmd: &[String]) -> bool {
    let prog = cmd.first().map(String::as_str).unwrap_or("");
    let sub = cmd.get(1).map(String::as_str).unwrap_or("");
    let checksum = |t: &str| {
        [
            ".sha256",
            ".sha256sum",
            ".sha512",
            ".asc",
            ".sig",
            "checksums.txt",
            "SHA256SUMS",
        ]
        .iter()
        .any(|s| t.ends_with(s))
    };
    match prog {
        "curl" | "wget" => cmd
            .iter()
            .any(|t| t.contains("://") && !checksum(t.trim_matches(|c| c == '"' || c == '\''))),
        "git" => sub == "clone",
        "dnf" | "yum" | "dnf5" => sub == "download" || cmd.iter().any(|t| t == "download"),
        "yumdownloader" => true,
        "pip" | "pip3" => sub == "download",
        _ => false,
    }
}

/// Whether the RUN cleans the cache of `manager` (or keeps it out of the layer).
fn cleans(manager: &str, text: &str, step: &Step, env_no_pip_cache: bool) -> bool {
    if step
        .mounts
        .iter()
        .any(|m| m.kind == "cache" || m.kind == "tmpfs")
    {
        return true;
    }
    let t = text;
    match manager {
        "dnf" | "rpm" => {
            t.contains("clean all")
                || t.contains("rm -rf /var/cache/dnf")
                || t.contains("rm -rf /var/cache/yum")
                || t.contains("rm -rf /var/cache/libdnf5")
                || t.contains("rm -rf /var/cache/*")
                || manager == "rpm"
        }
        "apt" | "dpkg" => t.contains("/var/lib/apt/lists") || manager == "dpkg",
        "apk" => t.contains("--no-cache") || t.contains("/var/cache/apk"),
        "pip" => {
            env_no_pip_cache
                || t.contains("--no-cache-dir")
                || t.contains(".cache/pip")
                || t.contains("pip cache purge")
        }
        _ => true,
    }
}

fn package_cache_left(stage: &Stage, out: &mut Vec<Finding>) {
    let mut no_pip_cache = false;
    for step in &stage.steps {
        if step.instruction.keyword == "env" || step.instruction.keyword == "arg" {
            if step.instruction.original.contains("PIP_NO_CACHE_DIR") {
                no_pip_cache = true;
            }
            continue;
        }
        if step.op != OpKind::Exec {
            continue;
        }
        let text = run_text(step);
        let mut seen = Vec::new();
        for cmd in commands(&text) {
            let Some(m) = install_manager(&cmd) else {
                continue;
            };
            if seen.contains(&m) || cleans(m, &text, step, no_pip_cache) {
                continue;
            }
            seen.push(m);
            let fix = match m {
                "dnf" => {
                    "end the same RUN with `&& dnf clean all` (or yum/microdnf clean all), or use RUN --mount=type=cache,target=/var/cache/dnf"
                }
                "apt" => {
                    "end the same RUN with `&& rm -rf /var/lib/apt/lists/*`, or use cache mounts for /var/cache/apt and /var/lib/apt"
                }
                "apk" => {
                    "use `apk add --no-cache`, or RUN --mount=type=cache,target=/var/cache/apk"
                }
                _ => {
                    "use `pip install --no-cache-dir` (or ENV PIP_NO_CACHE_DIR=1), or RUN --mount=type=cache,target=/root/.cache/pip"
                }
            };
            out.push(Finding {
                rule: "package-cache-left",
                severity: Severity::Warning,
                line: step.line(),
                message: format!("{m} install keeps its package cache in this layer"),
                fix: fix.into(),
                stage: stage.name.clone(),
            });
        }
    }
}

fn serial_downloads(stage: &Stage, out: &mut Vec<Finding>) {
    let downloads: Vec<(usize, String)> = stage
        .steps
        .iter()
        .filter(|s| s.op == OpKind::Exec)
        .flat_map(|s| {
            commands(&run_text(s))
                .into_iter()
                .filter(|c| download(c))
                .map(move |c| (s.line(), c[..c.len().min(3)].join(" ")))
        })
        .collect();
    if downloads.len() < 2 {
        return;
    }
    let lines: Vec<String> = downloads
        .iter()
        .map(|(l, c)| format!("line {l}: {c}"))
        .collect();
    out.push(Finding {
        rule: "serial-downloads",
        severity: Severity::Warning,
        line: downloads[1].0,
        message: format!(
            "stage `{}` runs {} downloads one after another ({})",
            stage.name,
            downloads.len(),
            lines.join("; ")
        ),
        fix: "give each independent download its own stage (FROM base AS dl-x) and COPY --from the results: BuildKit runs the stages in parallel and caches them separately".into(),
        stage: stage.name.clone(),
    });
}

fn context_copy_before_deps(stage: &Stage, out: &mut Vec<Finding>) {
    for (i, step) in stage.steps.iter().enumerate() {
        let Some((CopySource::Context, sources, _)) = &step.copy else {
            continue;
        };
        let whole = sources
            .iter()
            .any(|s| matches!(crate::stages::clean_context_path(s).as_str(), "." | "*"));
        if !whole {
            continue;
        }
        let later = stage.steps[i + 1..].iter().find(|s| {
            s.op == OpKind::Exec && commands(&run_text(s)).iter().any(|c| dependency_install(c))
        });
        if let Some(install) = later {
            out.push(Finding {
                rule: "context-copy-before-deps",
                severity: Severity::Warning,
                line: step.line(),
                message: format!(
                    "the whole context is copied before the dependency install on line {}: every code edit re-runs the install",
                    install.line()
                ),
                fix: "COPY only the dependency manifests (requirements.txt, pyproject.toml, package*.json, go.sum, …) first, install, then COPY the rest".into(),
                stage: stage.name.clone(),
            });
        }
    }
}

/// Programs that run a script given as their first non-flag argument.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "python", "python3", "perl", "ruby", "node", ".",
    "source",
];

/// The file a `COPY` of one literal context file creates, when the destination is absolute.
fn copied_file(sources: &[String], dest: &str) -> Option<String> {
    let [source] = sources else { return None };
    let literal = !source.contains(['*', '?', '[']) && !source.ends_with('/');
    let name = source
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != ".")?;
    if !literal || !dest.starts_with('/') {
        return None;
    }
    Some(if dest.ends_with('/') {
        format!("{dest}{name}")
    } else {
        dest.to_string()
    })
}

/// Whether a RUN's script executes `path`: as an interpreter's script argument
/// (`sh -e /x.sh`, `. /x.sh`) or, for a `.sh`/`.py`/… file, as the command itself.
fn runs_script(script: &str, path: &str) -> bool {
    let unquote = |t: &str| t.trim_matches(|c| c == '"' || c == '\'').to_string();
    let scripty = [".sh", ".bash", ".py", ".pl", ".rb", ".js"]
        .iter()
        .any(|ext| path.ends_with(ext));
    commands(script).iter().any(|cmd| {
        let toks: Vec<String> = cmd.iter().map(|t| unquote(t)).collect();
        if toks.first().is_some_and(|t| t == path) {
            return scripty;
        }
        let Some(at) = toks.iter().position(|t| t == path) else {
            return false;
        };
        toks[..at]
            .iter()
            .rposition(|t| !t.starts_with('-'))
            .is_some_and(|i| INTERPRETERS.contains(&toks[i].rsplit('/').next().unwrap_or("")))
    })
}

/// `COPY script /x` then `RUN sh /x`, with nothing else in the Dockerfile naming `/x`.
fn script_copied_to_run(graph: &Graph, stage: &Stage, out: &mut Vec<Finding>) {
    for (i, step) in stage.steps.iter().enumerate() {
        if step.keyword() != "COPY" || !step.instruction.flags.is_empty() {
            continue;
        }
        let Some((CopySource::Context, sources, dest)) = &step.copy else {
            continue;
        };
        let Some(path) = copied_file(sources, dest) else {
            continue;
        };
        let run = stage.steps[i + 1..]
            .iter()
            .find(|s| s.op == OpKind::Exec && runs_script(&run_text(s), &path));
        let Some(run) = run else { continue };
        let named_elsewhere = graph.stages.iter().flat_map(|s| s.steps.iter()).any(|s| {
            !std::ptr::eq(s, step) && !std::ptr::eq(s, run) && step_text(s).contains(&path)
        });
        if named_elsewhere {
            continue;
        }
        out.push(Finding {
            rule: "script-copied-to-run",
            severity: Severity::Info,
            line: step.line(),
            message: format!(
                "`{path}` is copied only for the RUN on line {}: it stays in the image and costs a layer (each layer is one more download and unpack on a fresh runner)",
                run.line()
            ),
            fix: format!(
                "bind-mount it for that RUN and drop the COPY: RUN --mount=type=bind,source={},target={path} … (keep the COPY if the image needs the file at run time)",
                sources[0]
            ),
            stage: stage.name.clone(),
        });
    }
}

/// Whether `text` references `$name` or `${name…}`.
pub fn references(text: &str, name: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find('$') {
        let at = from + pos + 1;
        let rest = &text[at..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        if let Some(after) = rest.strip_prefix(name) {
            let next = after.chars().next();
            if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                return true;
            }
        }
        from = at;
        if from >= bytes.len() {
            break;
        }
    }
    false
}

fn step_text(step: &Step) -> String {
    let mut s = step.instruction.original.clone();
    for h in &step.instruction.heredocs {
        s.push('\n');
        s.push_str(&h.content);
    }
    s
}

fn unused_stage_args(stage: &Stage, out: &mut Vec<Finding>) {
    for arg in &stage.args {
        if is_proxy_arg(&arg.name) {
            continue;
        }
        let used = stage
            .steps
            .iter()
            .filter(|s| s.line() >= arg.line)
            .filter(|s| !(s.instruction.keyword == "arg" && s.line() == arg.line))
            .any(|s| references(&step_text(s), &arg.name));
        if !used {
            out.push(Finding {
                rule: "unused-arg",
                severity: Severity::Warning,
                line: arg.line,
                message: format!(
                    "ARG {} is never used in stage `{}`, yet its value is in the environment of every later RUN, so changing it re-runs them",
                    arg.name, stage.name
                ),
                fix: format!("delete `ARG {}`, or move it down to the step that needs it", arg.name),
                stage: stage.name.clone(),
            });
        }
    }
}

fn unused_global_args(graph: &Graph, out: &mut Vec<Finding>) {
    for g in &graph.global_args {
        if is_proxy_arg(&g.name) {
            continue;
        }
        let in_from = graph.stages.iter().any(|s| {
            references(&s.base_text, &g.name)
                || s.platform_raw
                    .as_deref()
                    .is_some_and(|p| references(p, &g.name))
        });
        let redeclared = graph
            .stages
            .iter()
            .any(|s| s.args.iter().any(|a| a.name == g.name));
        let in_later_global = graph
            .global_args
            .iter()
            .any(|o| o.line > g.line && references(&o.default_text, &g.name));
        if !(in_from || redeclared || in_later_global) {
            out.push(Finding {
                rule: "unused-arg",
                severity: Severity::Warning,
                line: g.line,
                message: format!(
                    "global ARG {} is used by no FROM and re-declared in no stage (global ARGs are only visible to FROM lines)",
                    g.name
                ),
                fix: format!("delete it, or add `ARG {}` inside the stages that need it", g.name),
                stage: String::new(),
            });
        }
    }
}

fn copy_ignored(stage: &Stage, is_ignored: &dyn Fn(&str) -> bool, out: &mut Vec<Finding>) {
    for step in &stage.steps {
        if step
            .copy
            .as_ref()
            .is_none_or(|c| c.0 != CopySource::Context)
        {
            continue;
        }
        for src in &step.context_sources {
            if is_ignored(src) {
                out.push(Finding {
                    rule: "copy-ignored-file",
                    severity: Severity::Error,
                    line: step.line(),
                    message: format!(
                        "`{src}` is excluded by .dockerignore, so this {} fails with \"not found\"",
                        step.keyword()
                    ),
                    fix: format!(
                        "remove the pattern that matches `{src}` from .dockerignore or add `!{src}`"
                    ),
                    stage: stage.name.clone(),
                });
            }
        }
    }
}

/// Whether a COPY from another stage copies the whole root or a package database.
fn copy_kind(sources: &[String]) -> Option<&'static str> {
    const DBS: &[&str] = &[
        "var/lib/rpm",
        "usr/lib/sysimage/rpm",
        "var/lib/dpkg",
        "var/lib/apk",
        "lib/apk/db",
        "var/lib/dnf",
    ];
    let mut kind = None;
    for s in sources {
        let c = crate::stages::clean_context_path(s);
        if c == "." || c == "*" {
            kind = Some("root");
        } else if DBS
            .iter()
            .any(|d| c == *d || c.starts_with(&format!("{d}/")) || d.starts_with(&format!("{c}/")))
        {
            return Some("db");
        }
    }
    kind
}

/// Stages on `i`'s FROM chain, `i` first.
fn base_chain(graph: &Graph, i: usize) -> Vec<usize> {
    let mut chain = vec![i];
    let mut at = i;
    while let Base::Stage(b) = graph.stages[at].base {
        if chain.contains(&b) {
            break;
        }
        chain.push(b);
        at = b;
    }
    chain
}

fn installs(stage: &Stage, before_line: usize) -> bool {
    stage
        .steps
        .iter()
        .filter(|s| s.op == OpKind::Exec && s.line() < before_line)
        .any(|s| {
            commands(&run_text(s))
                .iter()
                .any(|c| install_manager(c).is_some_and(|m| m != "pip"))
        })
}

fn merged_package_db(graph: &Graph, out: &mut Vec<Finding>) {
    for stage in &graph.stages {
        let own_chain = base_chain(graph, stage.index);
        let mut merged: Vec<(usize, String)> = Vec::new();
        for step in &stage.steps {
            let Some((CopySource::Stage(x), sources, _)) = &step.copy else {
                continue;
            };
            let Some(kind) = copy_kind(sources) else {
                continue;
            };
            let x_chain = base_chain(graph, *x);
            let x_installs = x_chain
                .iter()
                .filter(|s| !own_chain.contains(s))
                .any(|&s| installs(&graph.stages[s], usize::MAX));
            if !x_installs {
                continue;
            }
            let src = &graph.stages[*x].name;
            let own_installs = own_chain.iter().filter(|s| !x_chain.contains(s)).any(|&s| {
                installs(
                    &graph.stages[s],
                    if s == stage.index {
                        step.line()
                    } else {
                        usize::MAX
                    },
                )
            });
            let message = if kind == "db" {
                Some(format!(
                    "COPY --from={src} copies a package database: it replaces this stage's database, so packages installed elsewhere vanish from rpm -qa/dpkg -l"
                ))
            } else if let Some((line, first)) = merged.first() {
                Some(format!(
                    "COPY --from={src} / merges a second stage's root over the one from `{first}` (line {line}): the package database of `{first}` is clobbered, its packages' files stay but are no longer registered"
                ))
            } else if own_installs {
                Some(format!(
                    "COPY --from={src} / copies a stage's root over packages this stage installed: its package database replaces this stage's"
                ))
            } else {
                None
            };
            if kind == "root" {
                merged.push((step.line(), src.clone()));
            }
            if let Some(message) = message {
                out.push(Finding {
                    rule: "merged-package-db",
                    severity: Severity::Error,
                    line: step.line(),
                    message,
                    fix: "download in parallel stages instead (`dnf download --destdir=/rpms …`, `apt-get download`), COPY --from only the package files, and install them all in one transaction in the final stage".into(),
                    stage: stage.name.clone(),
                });
            }
        }
    }
}
