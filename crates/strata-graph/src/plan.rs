//! A whole plan: parse, build the graph, hash the context, compute keys and the schedule.

use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_dockerfile::dockerignore::{self, Matcher};

use crate::context::{ContextError, HashOptions, HashStats, IgnoreRules, hash_context};
use crate::dag::schedule;
use crate::keys::{StageKeys, compute_keys, context_sources};
use crate::stages::{Base, BuildOptions, Graph, OpKind, analyze};

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The Dockerfile could not be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The Dockerfile does not parse.
    #[error("{}:{}: {}", path.display(), error.line, error.message)]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        error: strata_dockerfile::ParseError,
    },
    /// The Dockerfile parses but its stages do not make a graph.
    #[error("{}{}", path.display(), error_with_line(error))]
    Graph {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: crate::GraphError,
    },
    /// The `.dockerignore` file is unreadable or has a bad pattern.
    #[error("{}: {message}", path.display())]
    Ignore {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A context file could not be read.
    #[error("reading the build context: {0}")]
    Context(ContextError),
}

fn error_with_line(e: &crate::GraphError) -> String {
    match e.line() {
        Some(line) => format!(":{line}: {}", e.message()),
        None => format!(": {e}"),
    }
}

impl PlanError {
    /// Whether the input (Dockerfile, ignore file, options) is at fault rather than the work.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, PlanError::Context(_))
    }
}

/// One step in the plan output.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    /// 1-based line.
    pub line: usize,
    /// Upper-cased keyword.
    pub instruction: String,
    /// `exec`, `file` or `config` (no build step).
    pub op: &'static str,
    /// The key after this step.
    pub cache_key: String,
    /// Context files whose content is in this step's key.
    pub context_files: usize,
}

/// One stage in the plan output.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStage {
    /// `AS` name, else the index as a string.
    pub name: String,
    /// 0-based index.
    pub index: usize,
    /// The base: a stage name, an image reference, or `scratch`.
    pub base: String,
    /// `stage`, `image` or `scratch`.
    pub base_kind: &'static str,
    /// For an image base: whether it is pinned by digest (a tag is keyed by its text only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_pinned: Option<bool>,
    /// Stages this one needs.
    pub depends_on: Vec<String>,
    /// Parallel level (longest path from a root).
    pub level: usize,
    /// The stage's cache key.
    pub cache_key: String,
    /// 1-based line of its `FROM`.
    pub line: usize,
    /// Per-step keys.
    pub steps: Vec<PlanStep>,
}

/// The plan of a build.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The stages the target needs, in file order.
    pub stages: Vec<PlanStage>,
    /// Stage names per parallel level.
    pub levels: Vec<Vec<String>>,
    /// The longest chain of stages ending at the target.
    pub critical_path: Vec<String>,
    /// The widest level.
    pub max_parallelism: usize,
    /// The target stage.
    pub target: String,
    /// Stages the target does not need (not built, not keyed).
    pub pruned: Vec<String>,
    /// Caveats about the keys (unpinned bases, remote sources, unused build args).
    pub notes: Vec<String>,
    /// The ignore file used, if any.
    pub dockerignore: Option<PathBuf>,
    /// What hashing the context did.
    pub context: HashStats,
    /// Full keys with their inputs (for `--compare`).
    #[serde(skip)]
    pub keys: Vec<Option<StageKeys>>,
    /// The graph the plan was made from.
    #[serde(skip)]
    pub graph: Option<Graph>,
}

/// Where to read things from.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// Build args and target.
    pub options: BuildOptions,
    /// Hashing options (stat cache, threads).
    pub hash: HashOptions,
}

/// Reads and parses the Dockerfile, then builds the graph.
pub fn load_graph(dockerfile: &Path, options: &BuildOptions) -> Result<Graph, PlanError> {
    let bytes = std::fs::read(dockerfile).map_err(|cause| PlanError::Read {
        path: dockerfile.to_path_buf(),
        cause,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let df = strata_dockerfile::parse(&text).map_err(|error| PlanError::Parse {
        path: dockerfile.to_path_buf(),
        error,
    })?;
    analyze(&df, options).map_err(|error| PlanError::Graph {
        path: dockerfile.to_path_buf(),
        error,
    })
}

/// Reads the ignore patterns that apply (`<Dockerfile>.dockerignore` first).
pub fn load_ignore(
    dockerfile: &Path,
    context: &Path,
) -> Result<(Option<PathBuf>, Matcher), PlanError> {
    let (path, _, matcher) = read_ignore(dockerfile, context)?;
    Ok((path, matcher))
}

/// Reads the ignore file that applies: its path, patterns and compiled matcher.
fn read_ignore(
    dockerfile: &Path,
    context: &Path,
) -> Result<(Option<PathBuf>, Vec<dockerignore::Pattern>, Matcher), PlanError> {
    let (path, patterns) =
        dockerignore::read_dockerignore(dockerfile, context).map_err(|e| PlanError::Ignore {
            path: dockerignore::dockerignore_for(dockerfile, context)
                .unwrap_or_else(|| context.join(".dockerignore")),
            message: e.to_string(),
        })?;
    let matcher = Matcher::new(&patterns).map_err(|e| PlanError::Ignore {
        path: path.clone().unwrap_or_default(),
        message: format!("bad pattern: {e}"),
    })?;
    Ok((path, patterns, matcher))
}

/// Makes a plan: graph, context hashes, keys and schedule.
pub fn make_plan(req: &PlanRequest) -> Result<Plan, PlanError> {
    let graph = load_graph(&req.dockerfile, &req.options)?;
    let (ignore_path, patterns, matcher) = read_ignore(&req.dockerfile, &req.context)?;
    let ignore = IgnoreRules::new(matcher, &patterns);
    let sources = context_sources(&graph);
    let (index, stats) =
        hash_context(&req.context, &ignore, &sources, &req.hash).map_err(PlanError::Context)?;
    let keys = compute_keys(&graph, &index);
    Ok(assemble(graph, keys, stats, ignore_path))
}

/// Puts a graph and its keys together into a [`Plan`].
pub fn assemble(
    graph: Graph,
    keys: Vec<Option<StageKeys>>,
    context: HashStats,
    dockerignore: Option<PathBuf>,
) -> Plan {
    let sched = schedule(&graph);
    let name = |i: usize| graph.stages[i].name.clone();
    let mut notes = Vec::new();
    let mut stages = Vec::new();
    for s in graph.stages.iter().filter(|s| graph.reachable[s.index]) {
        let (base, base_kind, base_pinned) = match &s.base {
            Base::Scratch => ("scratch".to_string(), "scratch", None),
            Base::Image { reference, pinned } => {
                if !pinned {
                    notes.push(format!(
                        "stage {}: base image `{reference}` is a tag, keyed by its text: when the tag moves the key does not change (pin it with @sha256:…)",
                        s.name
                    ));
                }
                (reference.clone(), "image", Some(*pinned))
            }
            Base::Stage(i) => (name(*i), "stage", None),
        };
        let k = keys[s.index].as_ref();
        let steps = k
            .map(|k| {
                k.steps
                    .iter()
                    .map(|st| PlanStep {
                        line: st.line,
                        instruction: st.keyword.clone(),
                        op: match st.op {
                            OpKind::Exec => "exec",
                            OpKind::File => "file",
                            OpKind::Meta => "config",
                        },
                        cache_key: st.key.clone(),
                        context_files: st
                            .inputs
                            .iter()
                            .filter(|(n, v)| n.starts_with("file:") && v != "dir")
                            .count(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        for st in &s.steps {
            if let Some((crate::stages::CopySource::Remote, srcs, _)) = &st.copy {
                notes.push(format!(
                    "line {}: remote source {} is keyed by its URL text; its content is not fetched",
                    st.line(),
                    srcs.join(" ")
                ));
            }
        }
        stages.push(PlanStage {
            name: s.name.clone(),
            index: s.index,
            base,
            base_kind,
            base_pinned,
            depends_on: s.deps.iter().map(|d| name(d.stage)).collect(),
            level: sched.level[s.index].unwrap_or(0),
            cache_key: k.map(|k| k.key.clone()).unwrap_or_default(),
            line: s.line,
            steps,
        });
    }
    for a in &graph.unused_build_args {
        notes.push(format!(
            "build arg {a} is not declared by any ARG: it changes nothing"
        ));
    }
    Plan {
        levels: sched
            .levels
            .iter()
            .map(|l| l.iter().map(|&i| name(i)).collect())
            .collect(),
        critical_path: sched.critical_path.iter().map(|&i| name(i)).collect(),
        max_parallelism: sched.max_parallelism,
        target: name(graph.target),
        pruned: graph
            .stages
            .iter()
            .filter(|s| !graph.reachable[s.index])
            .map(|s| s.name.clone())
            .collect(),
        stages,
        notes,
        dockerignore,
        context,
        keys,
        graph: Some(graph),
    }
}
