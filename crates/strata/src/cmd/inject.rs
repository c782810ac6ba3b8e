//! `strata inject-files`: point project files and repo files at the output directory.

use std::process::ExitCode;

use strata_tree::InjectError;

use crate::cli::{Format, InjectArgs};
use crate::exit::{CmdResult, input, work};

/// Runs `strata inject-files`.
pub fn run(args: InjectArgs) -> CmdResult {
    let report = strata_tree::inject_files(&args.dir, args.for_output_dir.as_deref()).map_err(
        |e| match e {
            InjectError::NoBuildConfig(_) | InjectError::BadBuildConfig { .. } => input(e),
            other => work(other),
        },
    )?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "project_files": report.project_files,
                "repo_files": report.repo_files,
                "unchanged": report.unchanged,
            })
        ),
        Format::Text => {
            for path in report.project_files.iter().chain(&report.repo_files) {
                let state = if report.unchanged.contains(path) {
                    "unchanged"
                } else {
                    "wrote"
                };
                eprintln!("{state} {}", path.display());
            }
            if report.project_files.is_empty() && report.repo_files.is_empty() {
                eprintln!(
                    "nothing to inject: no npm projects or RPM repositories in {}",
                    args.dir.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
