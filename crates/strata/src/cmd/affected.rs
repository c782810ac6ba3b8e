//! `strata affected`: which images of a layered set (`strata.toml`) a change between two git
//! revisions affects, and why.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::exit::{CmdResult, Failure, input, work};

/// `strata affected --help` examples.
pub const EXAMPLES: &str = "\
Examples:
  # What does this branch change, relative to main?
  strata affected --base origin/main

  # In a GitHub Actions job (writes base=true|false ... and changes=[...] to $GITHUB_OUTPUT):
  strata affected --base ${{ github.event.pull_request.base.sha }} --format github

  strata affected --base HEAD~1 --format json | jq -r '.changes[]'

Each image's inputs come from its Dockerfile: the file itself, every context path that a
reachable COPY/ADD (or RUN --mount=type=bind) reads, minus .dockerignore; plus its `inputs`
globs, the global `inputs`, its strata.toml settings, and the images it is built `from`.

Changes count from the merge base of --base and --head (what a pull request changed since it
forked, not the base branch's later commits). A shallow clone that lacks the base commit or
that merge base is an error that says how deep to fetch.

Exit status: 0 success, 1 git failed, 2 bad strata.toml, Dockerfile or revision.";

/// Output formats of `strata affected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AffectedFormat {
    /// One line per image with the reasons.
    Text,
    /// `{"images":{…},"changes":[…]}`.
    Json,
    /// `<image>=true|false` and `changes=[…]` lines, also appended to `$GITHUB_OUTPUT`.
    Github,
}

/// Arguments of `strata affected`.
#[derive(Debug, Args)]
pub struct AffectedArgs {
    /// The layered image set.
    #[arg(long, value_name = "FILE", default_value = "strata.toml")]
    pub config: PathBuf,
    /// The revision to compare against (e.g. origin/main, HEAD~1, a PR's base SHA); changes
    /// count from the merge base of it and --head, as CI path filters do for pull requests.
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The revision with the changes.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AffectedFormat::Text)]
    pub format: AffectedFormat,
}

/// Maps a layers error to an exit code.
pub fn failure(e: strata_layers::LayersError) -> Failure {
    if e.is_input() { input(e) } else { work(e) }
}

/// Runs `strata affected`.
pub fn run(args: AffectedArgs) -> CmdResult {
    let config = strata_layers::config::load(&args.config).map_err(input)?;
    let a = strata_layers::affected(&config, &args.base, &args.head).map_err(failure)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        AffectedFormat::Text => {
            write!(out, "{}", a.text(&config.order(), 5)).map_err(work)?;
        }
        AffectedFormat::Json => {
            writeln!(out, "{}", serde_json::to_string(&a).map_err(work)?).map_err(work)?;
        }
        AffectedFormat::Github => {
            let text = a.github_output();
            write!(out, "{text}").map_err(work)?;
            if let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
                let path = PathBuf::from(path);
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(text.as_bytes()))
                    .with_context(|| format!("appending to $GITHUB_OUTPUT ({})", path.display()))
                    .map_err(work)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
