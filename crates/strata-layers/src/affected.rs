//! Which images a change set affects, and why. Pure: the inputs of each image are derived
//! from its Dockerfile text (through `strata-graph`'s stage graph: every reachable step's
//! context sources, `--exclude`s and the `.dockerignore` that applies) by
//! [`derive_inputs`], over a `read` function that returns a file at some revision; then
//! [`compute`] matches changed paths against them.
//!
//! An image is affected when any of these changed:
//! - its Dockerfile, or the ignore file that applies to it;
//! - a context path that a reachable `COPY`/`ADD` (or `RUN --mount=type=bind`) reads and
//!   that `.dockerignore` does not exclude;
//! - a path matching its `inputs` globs or the global `inputs`;
//! - its build-relevant settings in `strata.toml` (see [`crate::config::ImageConfig::build_identity`]);
//! - an image it is built `from` (transitively).

use std::collections::BTreeMap;

use serde::Serialize;
use strata_dockerfile::dockerignore::{self, Matcher};
use strata_graph::keys::{SourceSelector, source_relative};
use strata_graph::stages::{BuildOptions, analyze};

use crate::config::{Config, ImageConfig};

/// The placeholder the parent build arg takes when deriving inputs and keys, so that the
/// parent's (per-run) reference never changes them.
pub fn parent_placeholder(parent: &str) -> String {
    format!("strata.invalid/parent/{parent}:input-key")
}

/// How a path changed between two revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New.
    Added,
    /// Content or mode changed.
    Modified,
    /// Removed.
    Deleted,
    /// Moved from the given path (both paths count as changed).
    Renamed(String),
}

/// One changed path, relative to the config's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path (for a rename: the new path).
    pub path: String,
    /// How.
    pub kind: ChangeKind,
}

impl Change {
    /// Every path this change touches, with a note for the reason text.
    fn paths(&self) -> Vec<(&str, &'static str)> {
        match &self.kind {
            ChangeKind::Added => vec![(self.path.as_str(), " (added)")],
            ChangeKind::Modified => vec![(self.path.as_str(), "")],
            ChangeKind::Deleted => vec![(self.path.as_str(), " (deleted)")],
            ChangeKind::Renamed(from) => vec![
                (from.as_str(), " (renamed away)"),
                (self.path.as_str(), " (renamed here)"),
            ],
        }
    }
}

/// Something in an image's Dockerfile that reads context files.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Context-relative sources (cleaned; `.` for all, globs allowed).
    pub sources: Vec<String>,
    /// `--exclude` globs.
    pub excludes: Vec<String>,
    /// `COPY src/ /app/src (Dockerfile:7)`.
    pub because: String,
}

/// Everything that feeds one image.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// The image.
    pub name: String,
    /// Its Dockerfile, relative to the config directory.
    pub dockerfile: String,
    /// The ignore file that applies, relative to the config directory.
    pub ignore_file: Option<String>,
    /// The ignore files that would apply if created (`<Dockerfile>.dockerignore`,
    /// `<context>/.dockerignore`): creating one changes what COPY reads.
    pub ignore_candidates: Vec<String>,
    /// The context directory relative to the config directory (`""` for the same).
    pub context: String,
    /// The `.dockerignore` patterns.
    pub ignore: Matcher,
    /// What reads the context.
    pub readers: Vec<Reader>,
    /// Extra input globs with their `strata.toml` lines.
    pub extra: Vec<(String, usize)>,
    /// The image it is built from.
    pub parent: Option<String>,
}

/// Why an image is affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The changed path.
    pub path: String,
    /// What in the image's inputs reads it.
    pub because: String,
}

/// One image's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageResult {
    /// Whether it must be rebuilt.
    pub affected: bool,
    /// Why (empty when not affected).
    pub reasons: Vec<Reason>,
}

/// The affected set: `{"images":{…},"changes":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affected {
    /// Every image's verdict.
    pub images: BTreeMap<String, ImageResult>,
    /// The affected images, parents first.
    pub changes: Vec<String>,
}

/// A Dockerfile that cannot be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image {image}: {message}")]
pub struct InputsError {
    /// The image.
    pub image: String,
    /// What is wrong, with file and line.
    pub message: String,
}

fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, w) in s.split_whitespace().enumerate() {
        if w == "\\" {
            continue;
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if out.chars().count() > max {
        out = out.chars().take(max - 1).collect::<String>() + "…";
    }
    out
}

/// Derives an image's inputs from its Dockerfile and ignore file, read through `read`
/// (a path relative to the config directory → its content, `None` when absent).
pub fn derive_inputs(
    config: &Config,
    image: &ImageConfig,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<ImageInputs, InputsError> {
    let err = |message: String| InputsError {
        image: image.name.clone(),
        message,
    };
    let dockerfile = config.dockerfile_rel(image);
    let context = config.context_rel(image);
    let text = read(&dockerfile).ok_or_else(|| {
        err(format!(
            "its Dockerfile {dockerfile} does not exist (strata.toml:{}: fix image.{}.file)",
            image.line, image.name
        ))
    })?;
    let text = String::from_utf8_lossy(&text);
    let df = strata_dockerfile::parse(&text)
        .map_err(|e| err(format!("{dockerfile}:{}: {}", e.line, e.message)))?;
    let mut opts = BuildOptions {
        build_args: image.args.clone(),
        target: image.target.clone(),
    };
    if let Some(p) = &image.from {
        opts.build_args
            .insert(image.from_arg.clone(), parent_placeholder(p));
    }
    let graph = analyze(&df, &opts).map_err(|e| {
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        err(format!("{dockerfile}{line}: {e}"))
    })?;
    let join = |dir: &str, f: &str| {
        if dir.is_empty() {
            f.to_string()
        } else {
            format!("{dir}/{f}")
        }
    };
    let ignore_candidates = vec![
        format!("{dockerfile}.dockerignore"),
        join(&context, ".dockerignore"),
    ];
    let mut ignore_file = None;
    let mut patterns = Vec::new();
    for c in &ignore_candidates {
        if let Some(bytes) = read(c) {
            patterns = dockerignore::parse(&String::from_utf8_lossy(&bytes));
            ignore_file = Some(c.clone());
            break;
        }
    }
    let ignore = Matcher::new(&patterns).map_err(|e| {
        err(format!(
            "{}: bad pattern: {e}",
            ignore_file.as_deref().unwrap_or(".dockerignore")
        ))
    })?;
    let file_label = dockerfile
        .rsplit('/')
        .next()
        .unwrap_or(&dockerfile)
        .to_string();
    let mut readers = Vec::new();
    for stage in graph.stages.iter().filter(|s| graph.reachable[s.index]) {
        for step in &stage.steps {
            if step.context_sources.is_empty() {
                continue;
            }
            readers.push(Reader {
                sources: step.context_sources.clone(),
                excludes: step.context_excludes.clone(),
                because: format!(
                    "{} ({file_label}:{})",
                    one_line(&step.instruction.original, 100),
                    step.line()
                ),
            });
        }
    }
    Ok(ImageInputs {
        name: image.name.clone(),
        dockerfile,
        ignore_file,
        ignore_candidates,
        context,
        ignore,
        readers,
        extra: image.inputs.clone(),
        parent: image.from.clone(),
    })
}

fn under<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// Why (if at all) one path affects one image directly.
fn direct_reason(inputs: &ImageInputs, path: &str, config_file: &str) -> Option<String> {
    if path == inputs.dockerfile {
        return Some(format!("the Dockerfile of {}", inputs.name));
    }
    if inputs.ignore_file.as_deref() == Some(path) {
        return Some(format!(
            "the .dockerignore of {} (decides what COPY reads)",
            inputs.name
        ));
    }
    if inputs.ignore_file.is_none() && inputs.ignore_candidates.iter().any(|c| c == path) {
        return Some(format!(
            "a .dockerignore that would apply to {} (decides what COPY reads)",
            inputs.name
        ));
    }
    if let Some(rel) = under(path, &inputs.context)
        && !inputs.ignore.matches(rel)
    {
        for r in &inputs.readers {
            // BuildKit matches --exclude relative to each copied source (see
            // strata_graph::keys::select): the file is read when a source that selects it
            // does not exclude it.
            let exclude = if r.excludes.is_empty() {
                None
            } else {
                Matcher::from_globs(&r.excludes).ok()
            };
            let read = r.sources.iter().any(|s| {
                let selector = SourceSelector::new(s);
                selector.selects(rel)
                    && exclude.as_ref().is_none_or(|m| {
                        let inner = source_relative(s, &selector, rel);
                        inner.is_empty() || !m.matches(inner)
                    })
            });
            if read {
                return Some(r.because.clone());
            }
        }
    }
    for (glob, line) in &inputs.extra {
        if glob_matches(glob, path) {
            return Some(format!(
                "inputs = [\"{glob}\"] of image.{} ({config_file}:{line})",
                inputs.name
            ));
        }
    }
    None
}

/// Whether a repository-relative glob (moby pattern syntax, `**` allowed) matches a path or
/// one of its parent directories.
pub fn glob_matches(glob: &str, path: &str) -> bool {
    Matcher::from_globs([glob])
        .map(|m| m.matches(path))
        .unwrap_or(false)
}

/// Computes the affected set. `order` is the build order of image names (parents first);
/// `settings_changed` maps an image to a reason when its `strata.toml` settings changed;
/// `config_file` names strata.toml in reasons.
pub fn compute(
    order: &[String],
    inputs: &BTreeMap<String, ImageInputs>,
    global: &[(String, usize)],
    settings_changed: &BTreeMap<String, Reason>,
    changes: &[Change],
    config_file: &str,
) -> Affected {
    let mut images: BTreeMap<String, ImageResult> = BTreeMap::new();
    for name in order {
        let inp = &inputs[name];
        let mut reasons = Vec::new();
        if let Some(r) = settings_changed.get(name) {
            reasons.push(r.clone());
        }
        for c in changes {
            for (path, note) in c.paths() {
                let because = global
                    .iter()
                    .find(|(g, _)| glob_matches(g, path))
                    .map(|(g, line)| format!("global inputs = [\"{g}\"] ({config_file}:{line})"))
                    .or_else(|| direct_reason(inp, path, config_file));
                if let Some(b) = because {
                    reasons.push(Reason {
                        path: path.to_string(),
                        because: format!("{b}{note}"),
                    });
                }
            }
        }
        if let Some(p) = &inp.parent
            && let Some(pr) = images.get(p).filter(|r| r.affected)
        {
            let path = pr
                .reasons
                .first()
                .map(|r| r.path.clone())
                .unwrap_or_default();
            reasons.push(Reason {
                path,
                because: format!("built from image {p}, which is affected"),
            });
        }
        reasons.dedup();
        images.insert(
            name.clone(),
            ImageResult {
                affected: !reasons.is_empty(),
                reasons,
            },
        );
    }
    let changes = order
        .iter()
        .filter(|n| images[*n].affected)
        .cloned()
        .collect();
    Affected { images, changes }
}

impl Affected {
    /// `--format github`: `<image>=true|false` lines and `changes=[…]`.
    pub fn github_output(&self) -> String {
        let mut s = String::new();
        for (name, r) in &self.images {
            s.push_str(&format!("{name}={}\n", r.affected));
        }
        s.push_str(&format!(
            "changes={}\n",
            serde_json::to_string(&self.changes).unwrap_or_default()
        ));
        s
    }

    /// Human text, parents first; at most `max_reasons` reasons per image.
    pub fn text(&self, order: &[String], max_reasons: usize) -> String {
        let mut s = String::new();
        for name in order {
            let r = &self.images[name];
            if !r.affected {
                s.push_str(&format!("{name}: not affected\n"));
                continue;
            }
            s.push_str(&format!("{name}: affected\n"));
            for reason in r.reasons.iter().take(max_reasons) {
                if reason.path.is_empty() {
                    s.push_str(&format!("  {}\n", reason.because));
                } else {
                    s.push_str(&format!("  {} → {}\n", reason.path, reason.because));
                }
            }
            if r.reasons.len() > max_reasons {
                s.push_str(&format!(
                    "  … and {} more (--format json lists all)\n",
                    r.reasons.len() - max_reasons
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config;

    const CONFIG: &str = r#"
inputs = ["ci/global.env"]
[image.base]
file = "Dockerfile.base"
[image.tooling]
file = "Dockerfile.tooling"
from = "base"
inputs = ["scripts/tooling/**"]
[image.app]
file = "app/Dockerfile"
context = "app"
from = "tooling"
[image.other]
file = "Dockerfile.other"
"#;

    fn files() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            (
                "Dockerfile.base",
                "FROM scratch\nCOPY packages.txt /etc/\nRUN --mount=type=bind,source=base-scripts,target=/s sh /s/install\n",
            ),
            (
                "Dockerfile.tooling",
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tools/ /opt/tools/\nCOPY --exclude=*.md docs/ /docs/\n",
            ),
            (
                "app/Dockerfile",
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS build\nCOPY src/ /app/src\nFROM build AS unused\nCOPY tests/ /t\nFROM build\nCOPY . /all\n",
            ),
            ("app/.dockerignore", "*.log\nnode_modules\n"),
            (
                "Dockerfile.other",
                "FROM scratch AS unused\nCOPY unused/ /\nFROM scratch\nCOPY other/*.txt /\n",
            ),
        ])
    }

    fn run(changes: &[Change]) -> Affected {
        let c = config::parse(CONFIG, Path::new("strata.toml"), Path::new(".")).unwrap();
        let f = files();
        let read = |p: &str| f.get(p).map(|s| s.as_bytes().to_vec());
        let inputs: BTreeMap<String, ImageInputs> = c
            .images
            .values()
            .map(|i| (i.name.clone(), derive_inputs(&c, i, &read).unwrap()))
            .collect();
        compute(
            &c.order(),
            &inputs,
            &c.inputs,
            &BTreeMap::new(),
            changes,
            "strata.toml",
        )
    }

    fn m(p: &str) -> Change {
        Change {
            path: p.into(),
            kind: ChangeKind::Modified,
        }
    }

    #[test]
    fn table() {
        let d = |p: &str| Change {
            path: p.into(),
            kind: ChangeKind::Deleted,
        };
        let r = |from: &str, to: &str| Change {
            path: to.into(),
            kind: ChangeKind::Renamed(from.into()),
        };
        let cases: Vec<(&str, Vec<Change>, Vec<&str>)> = vec![
            ("nothing", vec![], vec![]),
            ("unrelated file", vec![m("README.md")], vec![]),
            ("app source", vec![m("app/src/main.py")], vec!["app"]),
            ("app ignored log", vec![m("app/x.log")], vec![]),
            (
                "app COPY . reads all but ignored",
                vec![m("app/README")],
                vec!["app"],
            ),
            (
                "app dockerignore",
                vec![m("app/.dockerignore")],
                vec!["app"],
            ),
            (
                "base packages",
                vec![m("packages.txt")],
                vec!["base", "tooling", "app"],
            ),
            (
                "base bind mount",
                vec![m("base-scripts/install")],
                vec!["base", "tooling", "app"],
            ),
            ("tooling file", vec![m("tools/x")], vec!["tooling", "app"]),
            ("tooling excluded doc", vec![m("docs/readme.md")], vec![]),
            (
                // `*.md` is relative to docs/ and stops at a slash, as in BuildKit.
                "tooling nested doc",
                vec![m("docs/sub/readme.md")],
                vec!["tooling", "app"],
            ),
            (
                "tooling doc",
                vec![m("docs/guide.txt")],
                vec!["tooling", "app"],
            ),
            (
                "tooling extra input",
                vec![m("scripts/tooling/a/b.sh")],
                vec!["tooling", "app"],
            ),
            (
                "global input",
                vec![m("ci/global.env")],
                vec!["base", "other", "tooling", "app"],
            ),
            ("glob source", vec![m("other/a.txt")], vec!["other"]),
            ("glob non-match", vec![m("other/a.bin")], vec![]),
            (
                "deleted tool",
                vec![d("tools/gone")],
                vec!["tooling", "app"],
            ),
            (
                "renamed into tools",
                vec![r("misc/a", "tools/a")],
                vec!["tooling", "app"],
            ),
            (
                "renamed out of tools",
                vec![r("tools/a", "misc/a")],
                vec!["tooling", "app"],
            ),
            ("dockerfile", vec![m("Dockerfile.other")], vec!["other"]),
            (
                "new ignore file for base",
                vec![m(".dockerignore")],
                vec!["base", "other", "tooling", "app"],
            ),
            ("unreachable stage input", vec![m("unused/x")], vec![]),
        ];
        for (name, changes, want) in cases {
            let a = run(&changes);
            assert_eq!(a.changes, want, "case {name}: {a:#?}");
        }
    }

    #[test]
    fn reasons_name_instruction_and_line() {
        let a = run(&[m("tools/x")]);
        let t = &a.images["tooling"];
        assert_eq!(
            t.reasons,
            vec![Reason {
                path: "tools/x".into(),
                because: "COPY tools/ /opt/tools/ (Dockerfile.tooling:3)".into()
            }]
        );
        assert_eq!(
            a.images["app"].reasons[0].because,
            "built from image tooling, which is affected"
        );
        let json = serde_json::to_string(&run(&[m("app/src/main.py")])).unwrap();
        assert!(json.contains(r#""app":{"affected":true,"reasons":[{"path":"app/src/main.py","because":"COPY src/ /app/src (Dockerfile:3)"}]}"#), "{json}");
        assert!(json.ends_with(r#""changes":["app"]}"#), "{json}");
        let g = run(&[m("app/src/main.py")]).github_output();
        assert!(g.contains("app=true\nbase=false\n"), "{g}");
        assert!(g.ends_with("changes=[\"app\"]\n"), "{g}");
    }

    #[test]
    fn missing_dockerfile_is_an_error() {
        let c = config::parse(CONFIG, Path::new("strata.toml"), Path::new(".")).unwrap();
        let e = derive_inputs(&c, &c.images["base"], &|_| None).unwrap_err();
        assert!(
            e.to_string().contains("Dockerfile.base does not exist"),
            "{e}"
        );
    }
}
