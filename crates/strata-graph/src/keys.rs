//! Cache keys: a sha256 per step and per stage, chained the way BuildKit chains its ops.
//!
//! What goes into a key (BuildKit's rules, as far as they can be known without the engine):
//! - A stage starts from its base: `scratch`, an image reference *as written* (a tag is keyed
//!   by its text, so a moved tag is not seen: pin by digest), or another stage's key.
//! - `RUN` (exec op): the command with the shell it runs under, heredoc bodies, the whole
//!   environment (`ENV`s and `ARG`s with values declared so far in the stage), working
//!   directory, user, every `--mount` (canonical text; a `from=` stage adds that stage's key,
//!   a bind mount of the context adds the selected files), `--network`/`--security`, chained
//!   on the previous step's key. Undeclared proxy build args are never included.
//! - `COPY`/`ADD` (file op): sources and destination after ARG expansion, every flag
//!   (`--chmod`, `--chown`, `--link`, `--exclude`, `--parents`, …), and the content of the
//!   selected files: each file's path, content sha256, mode and symlink target (never its
//!   mtime, owner or inode); from a stage, that stage's key; from an image, its reference;
//!   for remote URLs, the URL text (the content is not fetched).
//! - `WORKDIR` is a mkdir file op keyed by the path and user.
//! - Config-only instructions (`ENV`, `ARG`, `LABEL`, `CMD`, …) make no op: a step's key is its
//!   parent's; they reach later keys through the environment, working directory and user.
//!
//! A stage's key is the key of its last step. Keys are strata's own sha256s: they predict
//! *which* steps BuildKit will re-run, they are not BuildKit's cache digests.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use strata_dockerfile::dockerignore::Matcher;

use crate::stages::{Base, Graph, OpKind};

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A symbolic link (not followed).
    Symlink,
    /// A directory: keyed by its path only (BuildKit's content hash of a copied directory
    /// changes when a directory appears, not when a directory's mode or mtime changes).
    Dir,
}

/// One context file as the keys see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// File or symlink.
    pub kind: FileKind,
    /// Permission and special bits (`st_mode & 0o7777`; 0 for directories).
    pub mode: u32,
    /// The sha256 (hex) of the content; empty for symlinks and directories.
    pub content: String,
    /// The symlink target.
    pub link_target: Option<String>,
}

impl FileEntry {
    /// The file's digest: kind, mode, symlink target and content, nothing else.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "{:?}\0{:o}\0{}\0{}",
            self.kind,
            self.mode,
            self.link_target.as_deref().unwrap_or(""),
            self.content
        ));
        hex::encode(h.finalize())
    }
}

/// The context files that are not `.dockerignore`d (and, when built by
/// [`crate::context::hash_context`], that some step selects), by slash-separated path
/// relative to the context root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextIndex {
    /// Path → entry.
    pub files: BTreeMap<String, FileEntry>,
}

/// Whether a source has glob characters (BuildKit resolves those with path matching).
pub fn has_wildcard(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// A compiled COPY source: `.` (everything), a literal path (that file, or everything under
/// that directory), or a glob (matching paths, and everything under matching directories).
#[derive(Debug, Clone)]
pub enum SourceSelector {
    /// The whole context.
    All,
    /// A literal path.
    Literal(String),
    /// A glob, compiled with moby's pattern matcher.
    Glob(Box<Matcher>),
}

impl SourceSelector {
    /// Compiles a cleaned context source (see [`crate::stages::clean_context_path`]).
    pub fn new(source: &str) -> SourceSelector {
        if source == "." || source.is_empty() {
            SourceSelector::All
        } else if has_wildcard(source) {
            match Matcher::from_globs([source]) {
                Ok(m) => SourceSelector::Glob(Box::new(m)),
                Err(_) => SourceSelector::Literal(source.to_string()),
            }
        } else {
            SourceSelector::Literal(source.to_string())
        }
    }

    /// Whether the context path `path` is selected.
    pub fn selects(&self, path: &str) -> bool {
        match self {
            SourceSelector::All => true,
            SourceSelector::Literal(l) => {
                path == l
                    || (path.starts_with(l.as_str()) && path.as_bytes().get(l.len()) == Some(&b'/'))
            }
            SourceSelector::Glob(m) => m.matches(path),
        }
    }

    /// The literal directory prefix before any glob character (`""` for all): a directory
    /// that neither contains nor lies under it cannot hold a selected file.
    pub fn prefix(&self) -> String {
        match self {
            SourceSelector::All => String::new(),
            SourceSelector::Literal(l) => l.clone(),
            SourceSelector::Glob(_) => String::new(),
        }
    }
}

/// The literal directory prefix of a glob source (`src/*.rs` → `src`).
pub fn glob_prefix(source: &str) -> String {
    let mut parts = Vec::new();
    for part in source.split('/') {
        if has_wildcard(part) {
            break;
        }
        parts.push(part);
    }
    parts.join("/")
}

/// `path` relative to the copy source `source` that selects it: the path below the
/// literal source, or below the entry a glob source resolved to (as many components as the
/// glob has); `""` for the source itself.
pub fn source_relative<'p>(source: &str, selector: &SourceSelector, path: &'p str) -> &'p str {
    match selector {
        SourceSelector::All => path,
        SourceSelector::Literal(l) => path.get(l.len() + 1..).unwrap_or(""),
        SourceSelector::Glob(_) => {
            let depth = source.split('/').filter(|c| !c.is_empty()).count();
            path.splitn(depth + 1, '/').nth(depth).unwrap_or("")
        }
    }
}

/// The files a set of sources selects, minus `--exclude` patterns, in path order.
///
/// As in BuildKit (the copy op hands `ExcludePatterns` to fsutil's copier, which matches
/// them against the path relative to each copied source), a pattern applies to paths
/// relative to the source that selects the file: `COPY --exclude=*.md docs/ /d/` skips
/// `docs/a.md`, while `--exclude=docs/a.md` there would mean `docs/docs/a.md`. A source
/// that is itself a file is never excluded; a file selected by several sources is copied
/// when any of them keeps it.
pub fn select<'a>(
    index: &'a ContextIndex,
    sources: &[String],
    excludes: &[String],
) -> Vec<(&'a String, &'a FileEntry)> {
    let selectors: Vec<SourceSelector> = sources.iter().map(|s| SourceSelector::new(s)).collect();
    let exclude = if excludes.is_empty() {
        None
    } else {
        Matcher::from_globs(excludes).ok()
    };
    index
        .files
        .iter()
        .filter(|(p, _)| {
            sources.iter().zip(&selectors).any(|(src, s)| {
                s.selects(p)
                    && exclude.as_ref().is_none_or(|m| {
                        let rel = source_relative(src, s, p);
                        rel.is_empty() || !m.matches(rel)
                    })
            })
        })
        .collect()
}

/// The key of one step, with every input that went into it (for explanations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepKey {
    /// The 1-based line.
    pub line: usize,
    /// The upper-cased keyword.
    pub keyword: String,
    /// The instruction text (continuations joined).
    pub text: String,
    /// Whether it makes a build step.
    pub op: OpKind,
    /// `sha256:…`: the key after this step.
    pub key: String,
    /// Named inputs, including `file:<path>` digests and `stage:<label>` keys.
    pub inputs: Vec<(String, String)>,
}

/// The keys of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageKeys {
    /// The key of the base (image reference, scratch, or the base stage's key).
    pub base_key: String,
    /// Per-step keys.
    pub steps: Vec<StepKey>,
    /// The stage's key: its last step's key (the base key for an empty stage).
    pub key: String,
}

/// A file's key input: `mode:content:symlink target` (the mode first, so explanations can
/// tell a mode change from a content change); `dir` for a directory.
pub fn file_input(entry: &FileEntry) -> String {
    if entry.kind == FileKind::Dir {
        return "dir".to_string();
    }
    // Built by hand rather than with `format!`: this runs once per selected file per step.
    let target = entry.link_target.as_deref().unwrap_or("");
    let mut s = String::with_capacity(8 + entry.content.len() + target.len());
    let mut digits = [0u8; 11];
    let mut n = entry.mode;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n & 7) as u8;
        n >>= 3;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[i..].iter().map(|&d| char::from(d)));
    s.push(':');
    s.push_str(&entry.content);
    s.push(':');
    s.push_str(target);
    s
}

/// Hashes a parent key and named inputs into `sha256:…`.
pub fn chain(parent: &str, kind: &str, inputs: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for part in [parent, kind] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for (k, v) in inputs {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The key of a base.
fn base_key(base: &Base, platform: Option<&str>, stage_keys: &[Option<StageKeys>]) -> String {
    let platform = platform.unwrap_or("").to_string();
    match base {
        Base::Scratch => chain("", "scratch", &[("platform".into(), platform)]),
        Base::Image { reference, .. } => chain(
            "",
            "image",
            &[
                ("image".into(), reference.clone()),
                ("platform".into(), platform),
            ],
        ),
        Base::Stage(i) => stage_keys[*i]
            .as_ref()
            .map(|k| k.key.clone())
            .unwrap_or_default(),
    }
}

/// Computes the keys of every stage the target needs (`None` for the others).
pub fn compute_keys(graph: &Graph, index: &ContextIndex) -> Vec<Option<StageKeys>> {
    let n = graph.stages.len();
    let mut keys: Vec<Option<StageKeys>> = vec![None; n];
    let order = topo_order(graph);
    for i in order {
        let stage = &graph.stages[i];
        let base = base_key(&stage.base, stage.platform.as_deref(), &keys);
        let mut prev = base.clone();
        let mut steps = Vec::with_capacity(stage.steps.len());
        for step in &stage.steps {
            let mut inputs = step.inputs.clone();
            for (label, dep) in &step.stage_inputs {
                let k = keys[*dep]
                    .as_ref()
                    .map(|k| k.key.clone())
                    .unwrap_or_default();
                inputs.push((format!("stage:{label}:{}", graph.stages[*dep].name), k));
            }
            if !step.context_sources.is_empty() {
                for (path, entry) in select(index, &step.context_sources, &step.context_excludes) {
                    let mut name = String::with_capacity(5 + path.len());
                    name.push_str("file:");
                    name.push_str(path);
                    inputs.push((name, file_input(entry)));
                }
            }
            let key = match step.op {
                OpKind::Meta => prev.clone(),
                OpKind::Exec => chain(&prev, "exec", &inputs),
                OpKind::File => chain(&prev, "file", &inputs),
            };
            prev = key.clone();
            steps.push(StepKey {
                line: step.line(),
                keyword: step.keyword(),
                text: step.instruction.original.clone(),
                op: step.op,
                key,
                inputs,
            });
        }
        keys[i] = Some(StageKeys {
            base_key: base,
            steps,
            key: prev,
        });
    }
    keys
}

/// Reachable stages, dependencies first.
fn topo_order(graph: &Graph) -> Vec<usize> {
    fn visit(i: usize, g: &Graph, done: &mut [bool], out: &mut Vec<usize>) {
        if done[i] {
            return;
        }
        done[i] = true;
        for d in &g.stages[i].deps {
            visit(d.stage, g, done, out);
        }
        out.push(i);
    }
    let mut done = vec![false; graph.stages.len()];
    let mut out = Vec::new();
    for (i, r) in graph.reachable.iter().enumerate() {
        if *r {
            visit(i, graph, &mut done, &mut out);
        }
    }
    out
}

/// Every context source (cleaned) that some reachable step reads, for the context walker.
pub fn context_sources(graph: &Graph) -> Vec<String> {
    let mut v: Vec<String> = graph
        .stages
        .iter()
        .filter(|s| graph.reachable[s.index])
        .flat_map(|s| s.steps.iter())
        .flat_map(|st| st.context_sources.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}
