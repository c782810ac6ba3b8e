//! `strata plan`: the stage graph of a Containerfile, its parallel levels, critical path and
//! cache keys, and (`--compare REV`) which stages would miss the cache relative to a git
//! revision.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use strata_graph::context::HashOptions;
use strata_graph::plan::{Plan, PlanError, PlanRequest, make_plan};
use strata_graph::render;
use strata_graph::stages::BuildOptions;

use crate::cli::CacheDirArg;
use crate::exit::{CmdResult, Failure, input, work};

/// Output formats of `strata plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A summary, the levels and one line per stage.
    Text,
    /// One JSON document: stages, levels, critical_path, max_parallelism, …
    Json,
    /// A Graphviz digraph (`| dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

/// Arguments of `strata plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The Containerfile [default: CONTEXT/Dockerfile, else CONTEXT/Containerfile].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The build context directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub context: PathBuf,
    /// Plan only what this stage needs [default: the last stage].
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A build argument, `NAME=value`, or `NAME` to take it from the environment. Repeatable.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also compute the keys at this git revision (Containerfile and context as committed)
    /// and say, per stage, whether the key differs and why.
    #[arg(long, value_name = "REV")]
    pub compare: Option<String>,
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// Do not read or write the stat cache (hash every selected file).
    #[arg(long)]
    pub no_stat_cache: bool,
    /// Hashing threads [default: one per CPU].
    #[arg(short, long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
}

/// The Dockerfile to use: `-f`, else `Dockerfile`, else `Containerfile` in the context.
pub fn dockerfile_path(file: Option<&Path>, context: &Path) -> PathBuf {
    if let Some(f) = file {
        return f.to_path_buf();
    }
    let docker = context.join("Dockerfile");
    if docker.is_file() {
        return docker;
    }
    let containerfile = context.join("Containerfile");
    if containerfile.is_file() {
        containerfile
    } else {
        docker
    }
}

/// Parses `--build-arg` values; a bare name takes its value from the environment (and is
/// skipped when unset), as `docker build` does.
pub fn parse_build_args(args: &[String]) -> Result<BuildOptions, Failure> {
    let mut opts = BuildOptions::default();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                opts.build_args.insert(k.to_string(), v.to_string());
            }
            Some(_) => return Err(input(anyhow!("--build-arg `{a}`: expected NAME=value"))),
            None => {
                if let Ok(v) = std::env::var(a) {
                    opts.build_args.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(opts)
}

fn plan_failure(e: PlanError) -> Failure {
    if e.is_input_error() {
        input(e)
    } else {
        work(e)
    }
}

/// Runs `strata plan`.
pub fn run(args: PlanArgs) -> CmdResult {
    let dockerfile = dockerfile_path(args.file.as_deref(), &args.context);
    if !args.context.is_dir() {
        return Err(input(anyhow!(
            "build context {} is not a directory (pass --context DIR)",
            args.context.display()
        )));
    }
    let mut options = parse_build_args(&args.build_args)?;
    options.target = args.target.clone();
    let hash = HashOptions {
        cache_dir: (!args.no_stat_cache).then(|| args.cache.resolve()),
        threads: args.jobs,
    };
    let req = PlanRequest {
        dockerfile: dockerfile.clone(),
        context: args.context.clone(),
        options,
        hash,
    };
    let plan = make_plan(&req).map_err(plan_failure)?;
    let diffs = match &args.compare {
        Some(rev) => {
            let old = plan_at_revision(rev, &req)?;
            Some(strata_graph::compare::compare(&old, &plan))
        }
        None => None,
    };
    let out = match args.format {
        PlanFormat::Text => {
            let mut s = render::plan_text(&plan);
            if let (Some(rev), Some(d)) = (&args.compare, &diffs) {
                s.push('\n');
                s.push_str(&render::compare_text(rev, d));
            }
            s
        }
        PlanFormat::Json => {
            let mut v = render::plan_json(&plan);
            if let (Some(rev), Some(d)) = (&args.compare, &diffs) {
                v["compare"] = serde_json::json!({"revision": rev, "stages": d});
            }
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        PlanFormat::Dot => render::plan_dot(&plan),
        PlanFormat::Mermaid => render::plan_mermaid(&plan),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// This process's umask (from /proc/self/status; 022 when unknown). A checkout gives files
/// `0666 & !umask` (`0777` for executables), so the tree exported from git gets the same
/// modes as the working tree would, and a mode counts only when it really differs.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes the plan of the same Containerfile and context as committed at `rev`: the tree is
/// exported with `git archive` into a temporary directory (without a stat cache).
fn plan_at_revision(rev: &str, req: &PlanRequest) -> Result<Plan, Failure> {
    let context = std::fs::canonicalize(&req.context)
        .with_context(|| format!("resolving {}", req.context.display()))
        .map_err(input)?;
    let top = PathBuf::from(
        git(&context, &["rev-parse", "--show-toplevel"])
            .map_err(|e| input(e.context("--compare needs the context inside a git work tree")))?,
    );
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    git(
        &context,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| input(anyhow!("--compare {rev}: no such git revision")))?;
    let dockerfile = std::fs::canonicalize(&req.dockerfile).unwrap_or(req.dockerfile.clone());
    let rel_context = context
        .strip_prefix(&top)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let rel_dockerfile = dockerfile
        .strip_prefix(&top)
        .map_err(|_| {
            input(anyhow!(
                "--compare: {} is outside the git work tree",
                dockerfile.display()
            ))
        })?
        .to_path_buf();

    let tmp = TempDir(std::env::temp_dir().join(format!(
        "strata-plan-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )));
    std::fs::create_dir_all(&tmp.0).map_err(work)?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(&top)
        .arg("-c")
        .arg(format!("tar.umask={:04o}", current_umask()))
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git archive")
        .map_err(work)?;
    let stdout = archive
        .stdout
        .take()
        .ok_or_else(|| work(anyhow!("git archive: no output")))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&tmp.0)
        .stdin(stdout)
        .status()
        .context("running tar")
        .map_err(work)?;
    let git_status = archive.wait().map_err(work)?;
    if !git_status.success() || !tar.success() {
        return Err(work(anyhow!(
            "exporting {rev} with git archive | tar failed"
        )));
    }
    let old_dockerfile = tmp.0.join(&rel_dockerfile);
    if !old_dockerfile.is_file() {
        return Err(input(anyhow!(
            "--compare {rev}: {} does not exist at that revision",
            rel_dockerfile.display()
        )));
    }
    let old_req = PlanRequest {
        dockerfile: old_dockerfile,
        context: tmp.0.join(rel_context),
        options: req.options.clone(),
        hash: HashOptions {
            cache_dir: None,
            threads: req.hash.threads,
        },
    };
    make_plan(&old_req).map_err(|e| {
        let at_rev = anyhow!("at revision {rev}: {e}");
        if e.is_input_error() {
            input(at_rev)
        } else {
            work(at_rev)
        }
    })
}
