//! `strata mount` and `strata umount`: the lazy FUSE view of the output tree.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use clap::Args;
use strata_lazyfs::mounts::{self, Existing};
use strata_lazyfs::{FsOptions, LazyFs, LazyHandle, MountOptions, Mounted, PrefetchPriority};
use strata_lock::{Artifact, SkipReason};
use strata_store::{FetchOptions, Fetcher, Store};
use strata_tree::{SbomOptions, Tree, TreeOptions};

use crate::cli::{CacheDirArg, DownloadArgs};
use crate::exit::{CmdResult, input, work};

/// Set in the environment of the re-executed daemon: the fd to write "ready" to.
const READY_FD_ENV: &str = "STRATA_MOUNT_READY_FD";

/// Arguments of `strata mount`.
#[derive(Debug, Args)]
#[command(after_long_help = MOUNT_HELP)]
pub struct MountArgs {
    /// Where to mount (created if missing).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// Lockfiles, as for `strata fetch`.
    #[arg(required = true, value_name = "LOCKFILE")]
    pub lockfiles: Vec<PathBuf>,
    /// Run in the background; return once the mount is ready. The daemon logs to
    /// <cache-dir>/logs/mount<MOUNTPOINT with `/` as `_`>.log.
    #[arg(long)]
    pub daemon: bool,
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// Where the build will see the mount (e.g. /cachi2/output) [default: MOUNTPOINT's
    /// canonical path]. Used in .build-config.json and the rpm repo files.
    #[arg(long, value_name = "PATH")]
    pub for_output_dir: Option<PathBuf>,
    /// Write the files the build opens, in order, with timings (JSON lines) to FILE: each
    /// file's first successful open, and its first failed one as `"source":"failed"`; `t_ms`
    /// counts from when the mount was ready.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// After mounting, fetch in the background: the files of a recorded profile (FILE), every
    /// artifact at the lowest priority (`all`), or nothing (`none`).
    #[arg(long, value_name = "FILE|all|none", default_value = "none")]
    pub prefetch: String,
    /// Let other users (and build containers in user namespaces) read the mount.
    #[arg(long)]
    pub allow_other: bool,
    #[command(flatten)]
    pub download: DownloadArgs,
    /// Serve reads in strata even where FUSE passthrough is available.
    #[arg(long)]
    pub no_passthrough: bool,
    /// Split each download an open waits for into up to N parallel Range requests, one
    /// connection each (files whose lockfile gives a size, parts of at least 128 KiB), so the
    /// open waits for one part's transfer, not the whole file's; 1 turns it off. Prefetches
    /// are not split: they are not waited for, and their slots are the parallelism.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub segments: u16,
    /// Seconds an open waits for its file's download before it fails with EIO (the download
    /// goes on, for the cache and later opens); 0 waits as long as the download takes.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub open_timeout: u64,
}

const MOUNT_HELP: &str = "\
The mount holds exactly the tree `strata fetch` writes (deps/..., bom.json,
.build-config.json), so the same Containerfile works eager or lazy:
  strata mount --daemon --for-output-dir /cachi2/output --allow-other /tmp/deps pylock.toml
  podman build -v /tmp/deps:/cachi2/output:ro .
  strata umount /tmp/deps

Listing and stat never download. Opening a file that is not in the cache yet blocks that
open until the file is downloaded and verified (other opens go on); a failed download (after
--retries) makes the open fail with EIO and is logged with the artifact and its URLs, and so
does a download still running after --open-timeout seconds (it goes on in the background).

Every deps/rpm/<arch>/<repoid>/ has a repodata/ for dnf: from the cache when those packages
were seen before, else generated from the packages' headers (HTTP Range reads, not whole
packages) before the mount is ready, so a first mount of new RPMs returns later.

Prefetch trade-off: without it a build pays the download latency of each file when it first
opens it, which wins when a build uses a small part of its lockfiles. Record a profile once
(--record build.jsonl) and replay it (--prefetch build.jsonl) to download those files in the
background right after mounting, ahead of the build; files outside the profile stay lazy.
`--prefetch all` downloads everything, --jobs/4 files at a time, yielding to the build's own
opens: while an open waits for a download, no prefetch starts and all but one running prefetch
are cancelled (restarted later), so the build finishes no later, but the bandwidth and disk of
a full fetch are spent.

A file that an open waits for is downloaded as up to --segments parallel Range requests
when the lockfile gives its size (pylock.toml, rpms.lock.yaml): on a link where each
connection is slow, the open then waits for about one part's transfer plus one round trip.
Servers without Range support get one stream.

Exit status: 0 unmounted cleanly, 1 the mount failed, 2 bad input.";

/// Arguments of `strata umount`.
#[derive(Debug, Args)]
pub struct UmountArgs {
    /// The mountpoint of a `strata mount`.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
}

/// Runs `strata mount`.
pub fn run(args: MountArgs) -> CmdResult {
    let ready_fd = std::env::var(READY_FD_ENV).ok();
    match (args.daemon, ready_fd) {
        (true, None) => spawn_daemon(&args),
        (_, fd) => serve(args, fd.and_then(|f| f.parse().ok())),
    }
}

/// Lockfiles → artifacts → tree, as `strata fetch` plans it; errors here are bad input.
/// `bom.json` is left to the filesystem to generate when it is first opened (with the
/// returned options): at 50,000 artifacts it is ~35 MB, and building it at mount time was
/// most of the daemon's memory peak.
///
/// `repodata` runs between the lockfiles and the tree: it may add artifacts (see
/// [`repodata_artifacts`]), which the tree then has like the others.
fn plan(
    args: &MountArgs,
    mountpoint: &Path,
    repodata: impl FnOnce(&[Artifact]) -> Vec<Artifact>,
) -> Result<(Vec<Artifact>, Tree, SbomOptions, usize), crate::exit::Failure> {
    let outcome = strata_lock::load_all_with_skipped(&args.lockfiles, &args.download.filter())
        .map_err(input)?;
    for s in &outcome.skipped {
        if let SkipReason::Unfetchable(why) | SkipReason::NoFileSelected(why) = &s.reason {
            tracing::warn!("skipped {} ({}): {why}", s.name, s.origin);
        }
    }
    let for_output_dir = args
        .for_output_dir
        .clone()
        .unwrap_or_else(|| mountpoint.to_path_buf());
    let mut artifacts = outcome.artifacts;
    let npm_projects = strata_tree::load_npm_projects(&artifacts).map_err(input)?;
    let made = repodata(&artifacts);
    let made_count = made.len();
    artifacts.extend(made);
    let options = TreeOptions {
        for_output_dir: Some(for_output_dir.to_string_lossy().into_owned()),
        npm_projects,
        sbom: Default::default(),
    };
    let tree = Tree::build_without_bom(&artifacts, &options).map_err(input)?;
    Ok((artifacts, tree, options.sbom, made_count))
}

/// `repodata/` of every `deps/rpm/<arch>/<repoid>/`, as artifacts backed by store entries:
/// from the repodata cache when the repository's packages were seen before, else generated
/// now from the packages' headers (HTTP Range reads; whole packages are not downloaded).
///
/// This runs before the mount is declared ready, so a repository's first mount pays the
/// header reads (one round trip or two per package); dnf never sees a repository without
/// its metadata. A repository whose headers cannot be read gets no `repodata/` and a
/// warning, as with `strata fetch`.
async fn repodata_artifacts(
    fetcher: &Fetcher,
    artifacts: &[Artifact],
    jobs: usize,
) -> Vec<Artifact> {
    let cache = strata_rpm::RepodataCache::new(fetcher.store().clone());
    let stats = strata_rpm::HeaderStats::default();
    let mut made = Vec::new();
    for repo in strata_rpm::group_repos(artifacts) {
        let started = Instant::now();
        let (data, how) = match cache.lookup(&repo.key()) {
            Some(hit) => (hit, "cached"),
            None => match strata_rpm::ensure_repodata(fetcher, &cache, &repo, jobs, &stats).await {
                Ok((data, _)) => (data, "generated from package headers"),
                Err(e) => {
                    tracing::warn!("no repodata for {}: {e}", repo.dir());
                    continue;
                }
            },
        };
        eprintln!(
            "strata: repodata for {}: {how} ({} files, {} ms)",
            repo.dir(),
            data.files.len(),
            started.elapsed().as_millis()
        );
        let origin = repo.artifacts[0].origin.clone();
        for file in data.files {
            let path = format!("{}/{}", repo.dir(), file.path);
            let filename = path.rsplit('/').next().unwrap_or_default().to_owned();
            made.push(Artifact {
                ecosystem: strata_lock::Ecosystem::Generic,
                name: filename.clone(),
                version: None,
                filename,
                urls: vec![format!(
                    "file://{}",
                    fetcher.store().entry_path(&file.digest).display()
                )],
                size: Some(file.size),
                digests: vec![file.digest],
                arch: None,
                repo_id: None,
                path,
                origin: origin.clone(),
                details: strata_lock::Details::Generic,
            });
        }
    }
    made
}

fn fetcher(
    store: &Store,
    args: &MountArgs,
    jobs: usize,
    segments: usize,
) -> Result<Fetcher, crate::exit::Failure> {
    let options = FetchOptions {
        jobs,
        segments,
        ..args.download.fetch_options(&args.cache).map_err(input)?
    };
    Fetcher::new(store.clone(), options).map_err(|e| work(anyhow!(e)))
}

/// What to prefetch, decided before mounting so that a bad profile is an input error.
enum Prefetch {
    None,
    All,
    Profile(Vec<String>),
}

fn parse_prefetch(arg: &str) -> Result<Prefetch, crate::exit::Failure> {
    Ok(match arg {
        "none" => Prefetch::None,
        "all" => Prefetch::All,
        file => Prefetch::Profile(
            strata_lazyfs::load_profile(Path::new(file))
                .map_err(input)?
                .into_iter()
                .map(|e| e.path)
                .collect(),
        ),
    })
}

/// Mounts in this process and serves until unmounted.
fn serve(args: MountArgs, ready_fd: Option<i32>) -> CmdResult {
    if ready_fd.is_some() {
        // SAFETY: setsid has no preconditions; it detaches the daemon from the terminal.
        unsafe { libc::setsid() };
    }
    let started = Instant::now();
    let mountpoint = prepare_mountpoint(&args.mountpoint)?;
    let prefetch = parse_prefetch(&args.prefetch)?;
    let store = Store::open(args.cache.resolve()).map_err(work)?;
    let demand = fetcher(
        &store,
        &args,
        usize::from(args.download.jobs),
        usize::from(args.segments),
    )?;
    let recorder = match &args.record {
        Some(path) => Some(
            strata_lazyfs::Recorder::create(path)
                .with_context(|| format!("could not create the profile {}", path.display()))
                .map_err(input)?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(work)?;
    let (artifacts, tree, sbom, made) = plan(&args, &mountpoint, |artifacts| {
        runtime.block_on(repodata_artifacts(
            &demand,
            artifacts,
            usize::from(args.download.jobs),
        ))
    })?;
    let files = artifacts.len() - made;
    let fs = LazyFs::new(
        tree,
        artifacts,
        demand,
        runtime.handle().clone(),
        FsOptions {
            passthrough: !args.no_passthrough,
            recorder,
            lazy_bom: Some(sbom),
            made_artifacts: made,
            open_timeout: (args.open_timeout > 0).then(|| Duration::from_secs(args.open_timeout)),
        },
    );
    let options = MountOptions {
        allow_other: args.allow_other,
        ..MountOptions::default()
    };
    let signals = Signals::install(&runtime, ready_fd.is_none())
        .context("could not install the signal handlers")
        .map_err(work)?;
    let mounted = Mounted::mount(fs, &mountpoint, &options)
        .with_context(|| format!("could not mount at {}", mountpoint.display()))
        .map_err(work)?;
    let handle = mounted.handle();
    eprintln!(
        "strata: mounted {files} artifacts at {} in {} ms (pid {}{})",
        mountpoint.display(),
        started.elapsed().as_millis(),
        std::process::id(),
        if handle.passthrough() {
            ", passthrough"
        } else {
            ""
        },
    );
    if let Some(fd) = ready_fd {
        signal_ready(fd);
    }
    let unmounter = mounted.unmounter();
    runtime.spawn(async move {
        signals.first().await;
        tracing::info!("signal received, unmounting");
        if let Err(e) = unmounter.unmount() {
            eprintln!("strata: could not unmount: {e}");
        }
    });
    start_prefetch(&runtime, &handle, prefetch, &store, &args)?;
    let summary = mounted
        .run()
        .with_context(|| format!("serving {} failed", mountpoint.display()))
        .map_err(work)?;
    runtime.shutdown_background();
    eprintln!(
        "strata: unmounted {} after {:.1}s: {} opens ({} waited {:.1}s in total), {} downloaded ({}), {} shared, {} prefetched, {} failed, {} reads served by strata",
        mountpoint.display(),
        summary.mounted_ms as f64 / 1000.0,
        summary.opens,
        summary.opens_waited,
        summary.wait_ms as f64 / 1000.0,
        summary.downloaded,
        indicatif::HumanBytes(summary.downloaded_bytes),
        summary.shared,
        summary.prefetched,
        summary.failed,
        summary.reads,
    );
    Ok(ExitCode::SUCCESS)
}

fn start_prefetch(
    runtime: &tokio::runtime::Runtime,
    handle: &LazyHandle,
    prefetch: Prefetch,
    store: &Store,
    args: &MountArgs,
) -> Result<(), crate::exit::Failure> {
    let jobs = usize::from(args.download.jobs);
    let (ids, jobs, priority) = match prefetch {
        Prefetch::None => return Ok(()),
        Prefetch::All => (
            handle.all_artifacts(),
            (jobs / 4).max(1),
            PrefetchPriority::Lowest,
        ),
        Prefetch::Profile(paths) => {
            let ids = paths
                .iter()
                .filter_map(|p| {
                    let id = handle.resolve_artifact(p);
                    if id.is_none() {
                        tracing::info!("prefetch: {p} is not an artifact of this mount; skipped");
                    }
                    id
                })
                .collect();
            // More slots than demand: a profile's downloads are latency-bound, and the
            // prefetch has to stay ahead of a build that no longer waits for them.
            (ids, 2 * jobs, PrefetchPriority::Profile)
        }
    };
    // A profile prefetch may widen to twice its slots when opens wait (see
    // `PrefetchPriority::Profile`): its fetcher must allow that many downloads.
    let fetcher_jobs = match priority {
        PrefetchPriority::Profile => 2 * jobs,
        PrefetchPriority::Lowest => jobs,
    };
    let fetcher = fetcher(store, args, fetcher_jobs, 1)?;
    let handle = handle.clone();
    runtime.spawn(async move { handle.prefetch(fetcher, ids, jobs, priority).await });
    Ok(())
}

/// The signals that unmount: SIGTERM and SIGINT, and SIGHUP for a foreground mount (its
/// terminal went away). Installed before mounting, so that such a signal at any moment after
/// the mount exists (say, right after `--daemon` returned) unmounts it instead of killing
/// the process and leaving a dead mount; one that arrives before the waiting starts is kept.
pub(crate) struct Signals(Vec<tokio::signal::unix::Signal>);

impl Signals {
    /// Installs the handlers (SIGHUP's with `hangup`) on `runtime`.
    pub(crate) fn install(
        runtime: &tokio::runtime::Runtime,
        hangup: bool,
    ) -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let _in_runtime = runtime.enter();
        let mut kinds = vec![SignalKind::terminate(), SignalKind::interrupt()];
        if hangup {
            kinds.push(SignalKind::hangup());
        }
        kinds
            .into_iter()
            .map(signal)
            .collect::<Result<_, _>>()
            .map(Signals)
    }

    /// Waits for the first of the signals.
    pub(crate) async fn first(mut self) {
        let waits = self.0.iter_mut().map(|s| Box::pin(s.recv()));
        futures_util::future::select_all(waits).await;
    }
}

/// The mountpoint as `/proc/self/mountinfo` names it (see [`mounts::canonical`]), so that a
/// path through a symlink or with `..` finds the mount there.
fn resolve_mountpoint(path: &Path) -> Result<PathBuf, crate::exit::Failure> {
    mounts::canonical(path)
        .with_context(|| format!("could not resolve {}", path.display()))
        .map_err(input)
}

/// Creates the mountpoint if needed and cleans a stale mount a crashed daemon left there.
pub(crate) fn prepare_mountpoint(path: &Path) -> Result<PathBuf, crate::exit::Failure> {
    let abs = resolve_mountpoint(path)?;
    match mounts::clean_stale(&abs)
        .with_context(|| format!("could not inspect the mount at {}", abs.display()))
        .map_err(work)?
    {
        Existing::None => {}
        Existing::CleanedStale(m) => {
            eprintln!(
                "strata: detached a stale mount at {} left by a daemon that died ({})",
                abs.display(),
                m.source
            );
        }
        Existing::Live(m) => {
            return Err(input(anyhow!(
                "{} is already mounted ({} {}); run `strata umount {}` first",
                abs.display(),
                m.fstype,
                m.source,
                abs.display()
            )));
        }
    }
    std::fs::create_dir_all(&abs)
        .with_context(|| format!("could not create the mountpoint {}", abs.display()))
        .map_err(input)?;
    Ok(abs)
}

fn signal_ready(fd: i32) {
    // SAFETY: the fd was handed to this process by its parent for exactly this purpose and
    // nothing else in this process uses it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let _ = pipe.write_all(b"ready\n");
}

/// The daemon's log file for a mountpoint.
fn log_path(cache_dir: &Path, mountpoint: &Path) -> PathBuf {
    let name: String = mountpoint
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache_dir.join("logs").join(format!("mount{name}.log"))
}

/// Re-executes strata in the background and returns once it reports the mount ready.
fn spawn_daemon(args: &MountArgs) -> CmdResult {
    let abs = resolve_mountpoint(&args.mountpoint)?;
    let log = log_path(&args.cache.resolve(), &abs);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))
            .map_err(work)?;
    }
    let log_file = std::fs::File::create(&log)
        .with_context(|| format!("could not create the daemon log {}", log.display()))
        .map_err(work)?;
    let (reader, writer) = std::io::pipe()
        .context("could not create a pipe")
        .map_err(work)?;
    let writer = OwnedFd::from(writer);
    // SAFETY: clearing FD_CLOEXEC on an fd this function owns, so the child inherits it.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFD, 0) };
    let exe = std::env::current_exe()
        .context("could not find the strata executable")
        .map_err(work)?;
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut child = std::process::Command::new(exe)
        .args(argv)
        .env(READY_FD_ENV, writer.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("could not start the mount daemon")
        .map_err(work)?;
    drop(writer);
    let mut answer = String::new();
    let _ = (&reader).read_to_string(&mut answer);
    if answer.starts_with("ready") {
        eprintln!(
            "strata: mounted at {} (daemon pid {}, log {})",
            abs.display(),
            child.id(),
            log.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let status = child.wait().ok().and_then(|s| s.code()).unwrap_or(1);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprint!("{text}");
    Ok(ExitCode::from(status.clamp(1, 255) as u8))
}

/// Runs `strata umount`.
pub fn umount(args: UmountArgs) -> CmdResult {
    let abs = resolve_mountpoint(&args.mountpoint)?;
    let entry = mounts::find(&abs)
        .context("could not read /proc/self/mountinfo")
        .map_err(work)?
        .ok_or_else(|| input(anyhow!("nothing is mounted at {}", abs.display())))?;
    let Some(pid) = entry.strata_pid() else {
        return Err(input(anyhow!(
            "{} is a {} mount of {}, not a strata mount; not touching it",
            abs.display(),
            entry.fstype,
            entry.source
        )));
    };
    mounts::unmount(&abs)
        .with_context(|| format!("could not unmount {}", abs.display()))
        .map_err(work)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while mounts::process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if mounts::process_alive(pid) && mounts::find(&abs).ok().flatten().is_some() {
        eprintln!(
            "strata: {} is busy; detached it, it goes away when its last user closes it",
            abs.display()
        );
    } else {
        eprintln!("strata: unmounted {}", abs.display());
    }
    Ok(ExitCode::SUCCESS)
}
