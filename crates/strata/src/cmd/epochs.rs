//! `strata epochs`: one cache epoch per RPM repo id, from a lockfile or from live repos.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use strata_lock::Filter;
use strata_rpm::{Epoch, EpochFormat};
use strata_store::{FetchOptions, Fetcher, Netrc, Store};

use crate::cli::CacheDirArg;
use crate::exit::{CmdResult, input, work};

/// Output format of `strata epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EpochsFormat {
    /// `NAME=value` lines (source them, or pass to `env`).
    Env,
    /// `--build-arg NAME=value` pairs on one line, for `docker build $(...)`.
    Args,
    /// A JSON list of {"repoid","name","value"}.
    Json,
    /// `NAME=value` lines appended to `$GITHUB_OUTPUT` (printed when it is unset).
    Github,
}

/// Arguments of `strata epochs`.
#[derive(Debug, Args)]
pub struct EpochsArgs {
    /// rpms.lock.yaml files: one epoch per repo id, over exactly that repo's locked entries.
    #[arg(
        value_name = "LOCKFILE",
        required_unless_present = "repos",
        conflicts_with = "repos"
    )]
    pub lockfiles: Vec<PathBuf>,
    /// A live repository as ID=BASEURL (repeat): its repodata/repomd.xml and primary
    /// metadata are read over HTTP.
    #[arg(long = "repo", value_name = "ID=BASEURL", value_parser = parse_repo, requires = "packages")]
    pub repos: Vec<(String, String)>,
    /// With --repo: the packages whose versions make up the epochs (repeat, or several
    /// names after one flag).
    #[arg(long = "package", value_name = "NAME", num_args = 1..)]
    pub packages: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EpochsFormat::Env)]
    pub format: EpochsFormat,
    #[command(flatten)]
    pub cache: CacheDirArg,
}

/// Help shown after `strata epochs --help`.
pub const EXAMPLES: &str = "\
Examples:
  # One <REPOID>_CACHE_EPOCH per repo id of the lockfile:
  strata epochs rpms.lock.yaml

  # Straight into a build, so that only the changed repo's download stage reruns:
  docker build $(strata epochs --format args rpms.lock.yaml) -t app .

  # In a GitHub Actions step (appends to $GITHUB_OUTPUT):
  strata epochs --format github rpms.lock.yaml

  # Without a lockfile, from what live repos serve now:
  strata epochs --repo vscode=https://mirror.example/vscode --package code code-insiders

A lockfile epoch hashes each entry's arch, kind, file name and checksum (not its URL), so it
does not change when the lockfile is reordered or a mirror moves, and changes when any entry
of that repo does. A live epoch hashes the named packages' epoch:version-release.arch and
checksums as that repo's primary metadata lists them.

Exit status: 0 success, 1 a repo could not be read or a package is in none of the repos,
2 bad input.";

fn parse_repo(s: &str) -> Result<(String, String), String> {
    let (id, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ID=BASEURL"))?;
    if id.is_empty() || url.is_empty() {
        return Err(format!("`{s}` is not ID=BASEURL"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    Ok((id.to_owned(), url.to_owned()))
}

/// Runs `strata epochs`.
pub fn run(args: EpochsArgs) -> CmdResult {
    let epochs = if args.repos.is_empty() {
        let artifacts =
            strata_lock::load_all(&args.lockfiles, &Filter::default()).map_err(input)?;
        let epochs = strata_rpm::lockfile_epochs(&artifacts).map_err(|e| input(anyhow!(e)))?;
        if epochs.is_empty() {
            tracing::warn!("the lockfiles have no RPM entries: no epochs to print");
        }
        epochs
    } else {
        live_epochs(&args)?
    };
    let format = match args.format {
        EpochsFormat::Env => EpochFormat::Env,
        EpochsFormat::Args => EpochFormat::Args,
        EpochsFormat::Json => EpochFormat::Json,
        EpochsFormat::Github => EpochFormat::Github,
    };
    let text = strata_rpm::format_epochs(&epochs, format);
    match std::env::var_os("GITHUB_OUTPUT").filter(|_| format == EpochFormat::Github) {
        Some(path) => {
            let path = PathBuf::from(path);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("could not append to $GITHUB_OUTPUT ({})", path.display()))
                .map_err(work)?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn live_epochs(args: &EpochsArgs) -> Result<Vec<Epoch>, crate::exit::Failure> {
    let mut names = args.packages.clone();
    names.sort();
    names.dedup();
    let store = Store::open(args.cache.resolve()).map_err(work)?;
    let options = FetchOptions {
        netrc: Netrc::load_default(),
        ..FetchOptions::default()
    };
    let fetcher = Fetcher::new(store, options).map_err(|e| work(anyhow!(e)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(work)?;
    let results = runtime.block_on(futures_util::future::join_all(
        args.repos
            .iter()
            .map(|(_, url)| strata_rpm::live_primary(&fetcher, url)),
    ));
    let mut epochs = Vec::new();
    let mut found_any: Vec<String> = Vec::new();
    for ((id, url), result) in args.repos.iter().zip(results) {
        let packages = result
            .with_context(|| format!("could not read repo `{id}` at {url}"))
            .map_err(work)?;
        let (epoch, found) = strata_rpm::epoch::live_epoch(id, &packages, &names);
        if found.is_empty() {
            tracing::warn!("repo `{id}` has none of the named packages");
        }
        found_any.extend(found);
        epochs.push(epoch);
    }
    let missing: Vec<&String> = names.iter().filter(|n| !found_any.contains(n)).collect();
    if !missing.is_empty() {
        return Err(work(anyhow!(
            "no repo has {}: check the names, or add the repo that ships them with --repo",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    epochs.sort_by(|a, b| a.repoid.cmp(&b.repoid));
    strata_rpm::epoch::check_unique(epochs).map_err(|e| input(anyhow!(e)))
}
