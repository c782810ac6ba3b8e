//! strata: fast, hermetic container image builds.
//!
//! The binary owns the command line: argument parsing, output formats, progress display,
//! logging and exit codes (0 success, 1 the work failed, 2 bad input or usage). The work itself
//! lives in the library crates (`strata-lock`, `strata-store`, `strata-tree`).

mod cli;
mod cmd;
mod exit;
mod progress;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Fetch(args) => cmd::fetch::run(args),
        Command::Env(args) => cmd::env::run(args),
        Command::InjectFiles(args) => cmd::inject::run(args),
        Command::Cache(args) => cmd::cache::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Lint(args) => cmd::lint::run(args),
        Command::Epochs(args) => cmd::epochs::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Affected(args) => cmd::affected::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Gc(args) => cmd::gc::run(args),
        Command::Mount(args) => cmd::mount::run(args),
        Command::Umount(args) => cmd::mount::umount(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::LayerStore(args) => cmd::layer_store::run(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

/// Logs go to stderr; the level comes from `STRATA_LOG` (an env-filter), else `-v`/`-q`.
fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // fuser logs an error for every reply to a request the kernel has already dropped (an
    // interrupted read: ENOENT), which is routine for a mounted filesystem, not a fault;
    // STRATA_LOG can still show it.
    let default = format!("{default},fuser::reply=off");
    let filter = EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new(&default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
