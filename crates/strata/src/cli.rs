//! The command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// strata makes container image builds fast and hermetic.
///
/// It reads lockfiles (pylock.toml, package-lock.json, rpms.lock.yaml, artifacts.lock.yaml),
/// downloads exactly the pinned artifacts into a verified, shared, content-addressed cache,
/// and lays them out the way Hermeto/Cachi2 does, so Containerfiles written for Hermeto work
/// unchanged.
#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). STRATA_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// strata's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download every artifact the lockfiles pin into a Hermeto-compatible output directory.
    #[command(after_long_help = FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// Print the environment variables a build needs to use an output directory.
    Env(EnvArgs),
    /// Rewrite project files (npm lockfiles) and write repo files to point at the output dir.
    InjectFiles(InjectArgs),
    /// Inspect and maintain the shared artifact cache.
    Cache(CacheArgs),
    /// Mount the output tree lazily with FUSE: files download when first opened.
    Mount(crate::cmd::mount::MountArgs),
    /// Unmount a `strata mount` and wait for its daemon to finish.
    Umount(crate::cmd::mount::UmountArgs),
    /// Show a Containerfile's stage graph: parallel levels, critical path, cache keys.
    #[command(after_long_help = PLAN_EXAMPLES)]
    Plan(crate::cmd::plan::PlanArgs),
    /// Check a Containerfile for cache and layer hygiene problems.
    #[command(after_long_help = LINT_EXAMPLES)]
    Lint(crate::cmd::lint::LintArgs),
    /// Print one <REPOID>_CACHE_EPOCH per RPM repo, from rpms.lock.yaml or live repos.
    #[command(after_long_help = crate::cmd::epochs::EXAMPLES)]
    Epochs(crate::cmd::epochs::EpochsArgs),
    /// Render a parallel-download Containerfile (RFC 0041 layout) from a manifest.
    #[command(after_long_help = crate::cmd::generate::EXAMPLES)]
    Generate(crate::cmd::generate::GenerateArgs),
    /// Which images of a layered set (strata.toml) a git change affects, and why.
    #[command(after_long_help = crate::cmd::affected::EXAMPLES)]
    Affected(crate::cmd::affected::AffectedArgs),
    /// Build a layered image set in dependency order, reusing images whose inputs are unchanged.
    #[command(after_long_help = crate::cmd::build::EXAMPLES)]
    Build(crate::cmd::build::BuildArgs),
    /// Summarise the build records under .strata/builds (text, or HTML with a timeline).
    Report(crate::cmd::report::ReportArgs),
    /// Apply the retention policy of strata.toml to a registry repository (dry run by default).
    #[command(after_long_help = crate::cmd::gc::EXAMPLES)]
    Gc(crate::cmd::gc::GcArgs),
    /// Serve the lockfiles lazily over HTTP (pip/uv index, npm registry, the tree) and NFS.
    Serve(crate::cmd::serve::ServeArgs),
    /// Serve registry image layers lazily to podman/buildah (an additional layer store).
    LayerStore(crate::cmd::layer_store::LayerStoreArgs),
}

const PLAN_EXAMPLES: &str = "\
Examples:
  # Stages, parallel levels, critical path and a cache key per stage:
  strata plan -f Containerfile --context .

  # Only what the `image` stage needs, with a build arg, as JSON:
  strata plan --target image --build-arg DNF_CACHE_EPOCH=3 --format json | jq .levels

  # Which stages will miss the cache compared with the last release?
  strata plan --compare v1.2.0

  # Draw the graph:
  strata plan --format dot | dot -Tsvg > stages.svg
  strata plan --format mermaid >> README.md

Keys follow BuildKit's rules: COPY/ADD by the content, mode and symlink target of the files
they select (not mtimes; .dockerignore and <Dockerfile>.dockerignore honoured), RUN by its
command, environment (ENV and the stage's ARGs), mounts and parent. An ARG busts the RUNs
after its declaration in the stage; undeclared proxy args (HTTP_PROXY, ...) never do. A base
image tag is keyed by its text: pin by digest to see upstream changes.

Context hashing is parallel and keeps a stat cache under the strata cache dir, so a second
run re-reads only changed files.

Exit status: 0 success, 1 the context could not be read, 2 bad input (unparseable
Containerfile, unknown --target, bad --build-arg, unknown revision).";

const LINT_EXAMPLES: &str = "\
Examples:
  strata lint -f Containerfile
  strata lint --fail-on warning --format json | jq '.[].rule'
  strata lint --format sarif > strata.sarif   # upload to GitHub code scanning
  strata lint -f Dockerfile.tooling --build-arg BASE_IMAGE=base   # FROM ${BASE_IMAGE}

Rules: merged-package-db (error), copy-ignored-file (error), context-copy-before-deps,
package-cache-left, serial-downloads, unused-arg, unreachable-stage, unpinned-base
(warnings), script-copied-to-run (info).

Exit status: 0 no finding at --fail-on severity (default error) or above, 1 such findings,
2 unreadable or unparseable input.";

const FETCH_EXAMPLES: &str = "\
Examples:
  # Everything a Containerfile needs, into ./strata-output:
  strata fetch pylock.toml package-lock.json rpms.lock.yaml

  # Only x86_64 wheels, for a build that mounts the output at /cachi2/output:
  strata fetch --arch x86_64 --for-output-dir /cachi2/output -o out pylock.toml

  # A summary for scripts:
  strata fetch --format json pylock.toml | jq .downloaded

Artifacts land in a shared cache ($STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata, else
~/.cache/strata) and are hard-linked into the output, so a second fetch of the same lockfiles
copies nothing. Concurrent strata processes sharing a cache download each file once.

Exit status: 0 all artifacts fetched, 1 a download failed (the others still complete),
2 bad input (nothing is written).";

/// Output format of commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Cache location, shared by every command that uses the store.
#[derive(Debug, Args)]
pub struct CacheDirArg {
    /// The shared artifact cache [default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata,
    /// else ~/.cache/strata].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A remote tier shared by machines: an OCI registry asked for each artifact missing from
    /// the cache before the upstream, and given what the upstream sends. Registry errors only
    /// warn. See docs/serve.md.
    #[arg(long, value_name = "oci://HOST[:PORT]/REPO", env = "STRATA_REMOTE")]
    pub remote: Option<String>,
    /// Only read from the remote tier, never push to it.
    #[arg(long)]
    pub no_remote_push: bool,
}

impl CacheDirArg {
    /// The cache directory to use.
    pub fn resolve(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(strata_store::default_root)
    }

    /// The remote tier of `--remote` / `STRATA_REMOTE`, if any (an empty value means none).
    pub fn remote_tier(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<dyn strata_store::RemoteTier>>> {
        let Some(spec) = self.remote.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let spec = strata_remote::RemoteSpec::parse(spec.trim())
            .map_err(|e| anyhow::anyhow!("--remote (or STRATA_REMOTE): {e}"))?;
        let mut options = strata_remote::RemoteOptions {
            push: !self.no_remote_push,
            ..Default::default()
        };
        if let Ok(size) = std::env::var("STRATA_REMOTE_CHUNK_SIZE") {
            let size =
                parse_size(&size).map_err(|e| anyhow::anyhow!("STRATA_REMOTE_CHUNK_SIZE: {e}"))?;
            options.chunk_size = (size > 0).then_some(size);
        }
        let tier = strata_remote::OciRemote::new(spec, options).map_err(anyhow::Error::msg)?;
        Ok(Some(std::sync::Arc::new(tier)))
    }
}

/// Which lockfile entries to take and how to download them: shared by `fetch`, `mount` and
/// `serve`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Downloads in flight at once (`strata mount`: a profile prefetch gets twice as many,
    /// plus one for each open that waits meanwhile, up to 4 × N).
    #[arg(short, long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub jobs: u16,
    /// Keep only wheels (and RPM arch sections) for these architectures, plus pure-Python
    /// wheels and sdists; repeat for several. Accepts x86_64/amd64, aarch64/arm64, ppc64le,
    /// s390x...
    #[arg(long = "arch", value_name = "ARCH", value_parser = strata_lock::check_arch)]
    pub arches: Vec<String>,
    /// Keep only wheels for these Python tags (`cp312`, `py3`...; abi3 wheels of older
    /// CPythons count), plus sdists; repeat for several.
    #[arg(long = "python-tag", value_name = "TAG", value_parser = parse_python_tag)]
    pub python_tags: Vec<String>,
    /// Skip lockfile entries that have no downloadable file (directory, VCS, git or file:
    /// sources) instead of failing.
    #[arg(long)]
    pub skip_unfetchable: bool,
    /// Retries of a URL after a transient failure (5xx, 429, broken or stalled connection);
    /// then the artifact fails (fetch: exit 1; mount: EIO; serve: 502 or EIO).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Seconds without any data after which a connection counts as stalled.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub read_timeout: u64,
}

impl DownloadArgs {
    /// The lockfile filter these flags select.
    pub fn filter(&self) -> strata_lock::Filter {
        strata_lock::Filter {
            arches: self.arches.clone(),
            python_tags: self.python_tags.clone(),
            skip_unfetchable: self.skip_unfetchable,
        }
    }

    /// Downloader options: these flags, `.netrc`, and the remote tier of `cache`.
    pub fn fetch_options(&self, cache: &CacheDirArg) -> anyhow::Result<strata_store::FetchOptions> {
        Ok(strata_store::FetchOptions {
            jobs: usize::from(self.jobs),
            retries: self.retries,
            read_timeout: std::time::Duration::from_secs(self.read_timeout.max(1)),
            netrc: strata_store::Netrc::load_default(),
            remote: cache.remote_tier()?,
            ..strata_store::FetchOptions::default()
        })
    }
}

/// Arguments of `strata fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Lockfiles: pylock.toml, pylock.<name>.toml, package-lock.json, npm-shrinkwrap.json,
    /// rpms.lock.yaml, artifacts.lock.yaml (the type is told from the file name).
    #[arg(required = true, value_name = "LOCKFILE")]
    pub lockfiles: Vec<PathBuf>,
    /// Output directory.
    #[arg(short, long, value_name = "DIR", default_value = "strata-output")]
    pub output: PathBuf,
    /// Where the build will see the output directory (e.g. /cachi2/output) [default: the
    /// output directory's absolute path].
    #[arg(long, value_name = "PATH")]
    pub for_output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheDirArg,
    #[command(flatten)]
    pub download: DownloadArgs,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output format of `strata env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormatArg {
    /// `export NAME=value` lines for a POSIX shell (source them in a RUN).
    Env,
    /// A JSON list of {"name","value"}.
    Json,
}

/// Arguments of `strata env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The output directory of `strata fetch`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where the build sees the output directory [default: DIR's absolute path].
    #[arg(long, value_name = "PATH")]
    pub for_output_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EnvFormatArg::Env)]
    pub format: EnvFormatArg,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `strata inject-files`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The output directory of `strata fetch`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where the build sees the output directory [default: DIR's absolute path].
    #[arg(long, value_name = "PATH")]
    pub for_output_dir: Option<PathBuf>,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `strata cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// What to do with the cache.
    #[command(subcommand)]
    pub action: CacheAction,
}

/// `strata cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Print the cache directory.
    Dir,
    /// Count entries and bytes.
    Stats {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Re-hash every entry and report any whose content does not match its digest
    /// (exit 1 if any).
    Verify {
        /// Remove corrupt entries so the next fetch downloads them again.
        #[arg(long)]
        repair: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Remove leftovers of killed downloads, and entries by age or total size.
    Gc {
        /// Remove entries not used for this long (e.g. 30d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_age: Option<std::time::Duration>,
        /// Then remove least recently used entries until the cache is at most this big
        /// (e.g. 10G, 500M).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Parses sizes like `10G`, `500M`, `64KiB`, `1000`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 10G or 500M"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}` (use K, M, G or T)")),
    };
    Ok((number * multiplier as f64) as u64)
}

/// A Python tag such as `cp312`, `py3` or `pp310`, lower-cased.
fn parse_python_tag(tag: &str) -> Result<String, String> {
    let lower = tag.to_ascii_lowercase();
    let digits = ["cp", "py", "pp", "ip", "jy"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => Ok(lower),
        _ => Err(format!(
            "`{tag}` is not a Python tag (write e.g. cp312, py3 or pp310)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
