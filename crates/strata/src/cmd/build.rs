//! `strata build` (in progress).

use clap::Args;

use crate::exit::{CmdResult, input};

/// `strata build --help` examples.
pub const EXAMPLES: &str = "";

/// Arguments of `strata build`.
#[derive(Debug, Args)]
pub struct BuildArgs {}

/// Runs `strata build`.
pub fn run(_args: BuildArgs) -> CmdResult {
    Err(input(anyhow::anyhow!("strata build is not finished yet")))
}
