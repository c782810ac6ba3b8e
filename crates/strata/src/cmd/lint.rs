//! `strata lint`: cache and layer hygiene rules for a Containerfile.

use std::process::ExitCode;

use crate::cmd::plan::{dockerfile_path, parse_build_args};
use crate::exit::{CmdResult, input};
use anyhow::anyhow;
use clap::{Args, ValueEnum};
use strata_graph::context::ignored_sources;
use strata_graph::lint::{Severity, lint};
use strata_graph::plan::{load_graph, load_ignore};
use strata_graph::render;

/// Output formats of `strata lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// `file:line: severity[rule]: message` and the fix.
    Text,
    /// A JSON array of {rule, severity, line, message, fix, stage}.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
}

/// The lowest severity that fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 only for errors.
    Error,
    /// Exit 1 for warnings and errors.
    Warning,
}

/// Arguments of `strata lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The Containerfile [default: CONTEXT/Dockerfile, else CONTEXT/Containerfile].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The build context directory (for `.dockerignore` checks).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub context: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// A build argument, as `docker build` takes it (`--build-arg BASE_IMAGE=x`); needed when
    /// a `FROM` names an ARG without a default, as a layered image's Dockerfile does.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
}

use std::path::PathBuf;

/// Runs `strata lint`.
pub fn run(args: LintArgs) -> CmdResult {
    let dockerfile = dockerfile_path(args.file.as_deref(), &args.context);
    let graph = load_graph(&dockerfile, &parse_build_args(&args.build_args)?).map_err(input)?;
    let ignored: Vec<String> = if args.context.is_dir() {
        let (_, matcher) = load_ignore(&dockerfile, &args.context).map_err(input)?;
        let sources: Vec<String> = graph
            .stages
            .iter()
            .flat_map(|s| s.steps.iter())
            .flat_map(|s| s.context_sources.iter().cloned())
            .collect();
        ignored_sources(&args.context, &matcher, &sources)
    } else if args.file.is_some() {
        Vec::new()
    } else {
        return Err(input(anyhow!(
            "context {} is not a directory",
            args.context.display()
        )));
    };
    let findings = lint(&graph, &|s| ignored.iter().any(|i| i == s));
    let shown = dockerfile.display().to_string();
    match args.format {
        LintFormat::Text => print!("{}", render::lint_text(&shown, &findings)),
        LintFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&findings).unwrap_or_default()
        ),
        LintFormat::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&render::lint_sarif(&shown, &findings))
                .unwrap_or_default()
        ),
    }
    let threshold = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    Ok(if findings.iter().any(|f| f.severity >= threshold) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
