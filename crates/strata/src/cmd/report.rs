//! `strata report` (in progress).

use clap::Args;

use crate::exit::{CmdResult, input};

/// Arguments of `strata report`.
#[derive(Debug, Args)]
pub struct ReportArgs {}

/// Runs `strata report`.
pub fn run(_args: ReportArgs) -> CmdResult {
    Err(input(anyhow::anyhow!("strata report is not finished yet")))
}
