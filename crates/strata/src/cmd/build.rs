//! `strata build`: builds a layered image set (`strata.toml`) with a real engine, in
//! dependency order, reusing images whose input key already exists, tagging only after every
//! image succeeded (and, with --push, every image's content is in its registry), and writing
//! a build record.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_layers::build::{BuildOptions, Event, Selection};
use strata_layers::config::EngineKind;
use strata_layers::engine::Engine;
use strata_layers::keys::GraphKeys;
use strata_layers::template::Vars;

use crate::cmd::affected::failure;
use crate::exit::{CmdResult, input, work};

/// `strata build --help` examples.
pub const EXAMPLES: &str = "\
Examples:
  # What changed since main, plus what it is built from (reused when unchanged):
  strata build --base origin/main

  # Everything, pushing the tags, with buildah:
  strata build --all --push --engine buildah

  # One image and its prerequisites:
  strata build app

  # Rebuild tooling and app although images with their keys exist (a scheduled refresh
  # that takes the package mirrors' security fixes; bump an input instead when the new
  # images must get new keys):
  strata build --rebuild tooling app

Each image gets an input key (its Dockerfile's cache keys from the stage graph, the content
of every context file it COPYs, its build settings and inputs, and its parent's key). An
image whose key already exists - the local image strata-local/<image>:<key> (labelled
dev.strata.input-key=<key>), or the tag <repo>:sk-<key> in its registry - is reused, not
rebuilt; a registry image is pulled only when it is asked for or something is built on it.
A parent's reference goes to its children in the build arg named by from-arg (default
BASE_IMAGE). Tags are applied only after every image of the run succeeded. With --push,
every image's content is pushed first, under its key tag only; its tags are applied locally
and pushed only once all of those pushes succeeded, so a registry that fails partway leaves
no tag of the run applied. A tag is pushed as a copy of its key tag's manifest, made by the
registry (one digest for every tag of an image, zstd:chunked annotations kept); the engine
pushes it only if the registry refuses. A failure after that point (a tag push) names every
tag that was and was not applied. Each run writes a JSON record under .strata/builds/ (see
strata report).

An image that must be rebuilt need not start from nothing on a fresh runner: with the docker
engine, strata builds with BuildKit's inline cache (BUILDKIT_INLINE_CACHE=1) and passes the
image's tags that outlive a commit (no {sha}, {short_sha} or {timestamp}: base-stable,
latest, pr-{pr}) as --cache-from, so only the steps a change reaches re-run. [build]
registry-cache = false turns this off. cache-from / cache-to in an [image] table take what
the engine's build accepts, checked before anything is built (exit 2 naming the key and line
otherwise): docker (docker build, no buildx) takes image references as cache-from and no
cache-to; buildah and podman take one repository without a tag each (built with --layers).

Engines: docker (BuildKit, DOCKER_BUILDKIT=1, $STRATA_DOCKER or /usr/bin/docker), buildah,
podman. In an unprivileged container, buildah/podman need [build] storage-driver = \"vfs\"
and isolation = \"chroot\" (or $STRATA_STORAGE_DRIVER/$STRATA_ISOLATION); with no bridge
network, network = \"host\".

Registry logins: the engine pushes and pulls with its own login; strata's key lookups and
tag copies read the same auth files (docker login, buildah login, podman login, and their
credential helpers), or STRATA_REGISTRY_USERNAME and STRATA_REGISTRY_PASSWORD.

On a terminal, a progress view shows each image queued, running (elapsed time, latest log
line) or done, below the prefixed log; otherwise the prefixed log lines only.

Exit status: 0 every image built or reused, 1 a build failed (nothing tagged) or a tag or
push failed (the message says what was and was not applied), 2 bad strata.toml, image name
or revision.";

/// Arguments of `strata build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Images to build (with their prerequisites) [default: the affected ones with --base,
    /// else all].
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The layered image set.
    #[arg(long, value_name = "FILE", default_value = "strata.toml")]
    pub config: PathBuf,
    /// The engine [default: [build] engine in strata.toml, else docker].
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// Push the images (under key tags first, then their tags) after every image succeeded.
    #[arg(long)]
    pub push: bool,
    /// Images built at once [default: [build] jobs, else 2].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Build every image.
    #[arg(long, conflicts_with_all = ["images", "base"])]
    pub all: bool,
    /// Build the images affected since this revision (see strata affected).
    #[arg(long, value_name = "REV", conflicts_with = "images")]
    pub base: Option<String>,
    /// `--network` for builds [default: [build] network].
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// The {registry} value [default: registry in strata.toml, else $STRATA_REGISTRY].
    #[arg(long, value_name = "HOST/REPO")]
    pub registry: Option<String>,
    /// Build the requested images (and the images of the run built on them) even when an
    /// image with their input key exists, locally or in the registry; the engine's layer
    /// cache still applies. Their key tags then name the new images.
    #[arg(long)]
    pub rebuild: bool,
    /// Do not look for images with the same input key in the registry.
    #[arg(long)]
    pub no_registry_lookup: bool,
    /// Print the build record as JSON on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

/// Engines on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    /// BuildKit through docker build.
    Docker,
    /// buildah bud.
    Buildah,
    /// podman build.
    Podman,
}

fn git_out(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Template variables from git and the CI environment.
pub fn vars(root: &std::path::Path, registry: Option<&str>) -> Vars {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let sha = env("STRATA_SHA").or_else(|| git_out(root, &["rev-parse", "HEAD"]));
    let branch = env("STRATA_BRANCH")
        .or_else(|| env("GITHUB_HEAD_REF"))
        .or_else(|| {
            env("GITHUB_REF_NAME").filter(|_| {
                !env("GITHUB_REF")
                    .unwrap_or_default()
                    .starts_with("refs/pull/")
            })
        })
        .or_else(|| git_out(root, &["symbolic-ref", "--quiet", "--short", "HEAD"]));
    let pr = env("STRATA_PR").or_else(|| {
        env("GITHUB_REF").and_then(|r| {
            r.strip_prefix("refs/pull/")
                .and_then(|x| x.split('/').next())
                .map(str::to_string)
        })
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Vars::new(
        registry,
        sha.as_deref(),
        branch.as_deref(),
        pr.as_deref(),
        now,
    )
}

/// Runs `strata build`.
pub fn run(args: BuildArgs) -> CmdResult {
    let config = strata_layers::config::load(&args.config).map_err(input)?;
    let selection = if args.all {
        Selection::All
    } else if !args.images.is_empty() {
        Selection::Named(args.images.clone())
    } else if let Some(base) = &args.base {
        let a = strata_layers::affected(&config, base, "HEAD").map_err(failure)?;
        eprintln!(
            "affected since {base}: {}",
            if a.changes.is_empty() {
                "none".to_string()
            } else {
                a.changes.join(", ")
            }
        );
        Selection::Named(a.changes)
    } else {
        Selection::All
    };
    let kind = match args.engine {
        Some(EngineArg::Docker) => EngineKind::Docker,
        Some(EngineArg::Buildah) => EngineKind::Buildah,
        Some(EngineArg::Podman) => EngineKind::Podman,
        None => config.build.engine.unwrap_or_default(),
    };
    let mut engine = Engine::new(
        kind,
        args.network
            .clone()
            .or_else(|| config.build.network.clone()),
        config.build.storage_driver.clone(),
        config.build.isolation.clone(),
    );
    if let Some(c) = &config.build.push_compression {
        if kind == EngineKind::Docker {
            return Err(input(anyhow::anyhow!(
                "{}: build.push-compression = {c:?} needs buildah or podman (docker push always gzips); use --engine buildah or remove it",
                config.path.display()
            )));
        }
        engine.push_compression = Some(c.clone());
    }
    let registry = args
        .registry
        .clone()
        .or_else(|| config.registry.clone())
        .or_else(|| std::env::var("STRATA_REGISTRY").ok());
    let jobs = args.jobs.or(config.build.jobs).unwrap_or(2);
    if jobs == 0 {
        return Err(input(anyhow::anyhow!("--jobs must be at least 1")));
    }
    let records_dir = config
        .root
        .join(config.build.records.as_deref().unwrap_or(".strata/builds"));
    let keys = GraphKeys {
        cache_dir: Some(strata_store::default_root()),
    };
    let board = Board::new(std::io::stderr().is_terminal());
    let log = |l: &str| board.line(l);
    let events = |e: Event<'_>| board.event(e);
    let opts = BuildOptions {
        selection,
        engine,
        jobs,
        push: args.push,
        registry_lookup: !args.no_registry_lookup,
        rebuild: args.rebuild,
        vars: vars(&config.root, registry.as_deref()),
        keys: &keys,
        records_dir: Some(records_dir),
        log: &log,
        events: board
            .bars
            .is_some()
            .then_some(&events as &(dyn Fn(Event<'_>) + Sync)),
    };
    let record = strata_layers::build::run(&config, &opts);
    board.finish();
    let record = record.map_err(failure)?;
    if args.json {
        println!("{}", serde_json::to_string(&record).map_err(work)?);
    } else {
        for (name, i) in &record.images {
            println!(
                "{name:<16} {:<8} {:>7.1}s  {}",
                i.status,
                i.duration_ms as f64 / 1000.0,
                if i.tags.is_empty() {
                    String::new()
                } else {
                    i.tags.join(" ")
                }
            );
        }
        println!(
            "{} in {:.1}s",
            match (record.success, &record.error) {
                (true, _) => "done",
                (false, Some(_)) => "FAILED (publishing: see the error)",
                (false, None) => "FAILED (no tags applied)",
            },
            record.duration_ms as f64 / 1000.0
        );
    }
    if record.success {
        Ok(ExitCode::SUCCESS)
    } else if let Some(e) = &record.error {
        Err(work(anyhow::anyhow!("publishing failed: {e}")))
    } else {
        Err(work(anyhow::anyhow!(
            "the build failed: {}",
            record
                .images
                .iter()
                .filter(|(_, i)| i.status == "failed")
                .map(|(n, i)| format!("{n}: {}", i.error.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}

/// The progress view: on a terminal, one line per image of the run (queued, running with
/// its elapsed time and latest log line, or its outcome) below the scrolling prefixed log;
/// otherwise only the prefixed log lines.
struct Board {
    /// The bars by image name, on a terminal.
    bars: Option<(MultiProgress, Mutex<Bars>)>,
}

/// One bar per image of the run, in run order.
type Bars = Vec<(String, ProgressBar)>;

impl Board {
    fn new(tty: bool) -> Board {
        Board {
            bars: tty.then(|| {
                (
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Mutex::new(Vec::new()),
                )
            }),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template).expect("the template is valid")
    }

    fn bar(&self, name: &str) -> Option<ProgressBar> {
        let (_, bars) = self.bars.as_ref()?;
        let bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone())
    }

    /// A log line: printed above the bars on a terminal (and shown as the image's latest
    /// line), on stderr otherwise.
    fn line(&self, l: &str) {
        let Some((multi, _)) = &self.bars else {
            eprintln!("{l}");
            return;
        };
        if let Some(rest) = l.strip_prefix('[')
            && let Some((name, text)) = rest.split_once("] ")
            && let Some(bar) = self.bar(name)
            && !bar.is_finished()
        {
            bar.set_message(text.chars().take(100).collect::<String>());
        }
        let _ = multi.println(l);
    }

    fn event(&self, e: Event<'_>) {
        let Some((multi, bars)) = &self.bars else {
            return;
        };
        match e {
            Event::Planned(names) => {
                let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
                let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
                for n in names {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(Self::style("  {prefix}  queued"));
                    bar.set_prefix(format!("{n:width$}"));
                    bar.tick();
                    bars.push((n.clone(), bar));
                }
            }
            Event::Started(name) => {
                if let Some(bar) = self.bar(name) {
                    bar.set_style(Self::style(
                        "{spinner} {prefix}  running {elapsed:>4}  {wide_msg}",
                    ));
                    bar.reset_elapsed();
                    bar.enable_steady_tick(Duration::from_millis(200));
                }
            }
            Event::Finished(name, status) => {
                if let Some(bar) = self.bar(name) {
                    let secs = bar.elapsed().as_secs_f64();
                    bar.set_style(Self::style("  {prefix}  {msg}"));
                    bar.finish_with_message(format!("{status} in {secs:.1}s"));
                }
            }
        }
    }

    /// Leaves the final state of the bars on the terminal.
    fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for (_, bar) in bars.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
