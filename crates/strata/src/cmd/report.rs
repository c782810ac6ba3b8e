//! `strata report`: a summary of the build records under `.strata/builds/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::exit::{CmdResult, input, work};

/// Arguments of `strata report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The layered image set (its directory holds .strata/builds).
    #[arg(long, value_name = "FILE", default_value = "strata.toml")]
    pub config: PathBuf,
    /// The records directory [default: [build] records in strata.toml, else .strata/builds].
    #[arg(long, value_name = "DIR")]
    pub records: Option<PathBuf>,
    /// Also write one HTML page with the table and a timeline (inline SVG) per run.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How many recent runs get a timeline in the HTML.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,
}

/// Runs `strata report`.
pub fn run(args: ReportArgs) -> CmdResult {
    let dir = match &args.records {
        Some(d) => d.clone(),
        None => {
            let config = strata_layers::config::load(&args.config).map_err(input)?;
            config
                .root
                .join(config.build.records.as_deref().unwrap_or(".strata/builds"))
        }
    };
    let (records, warnings) = strata_layers::record::read_all(&dir);
    for w in &warnings {
        eprintln!("warning: skipping unreadable record {w}");
    }
    if records.is_empty() {
        return Err(input(anyhow::anyhow!(
            "no build records in {} (run strata build first)",
            dir.display()
        )));
    }
    print!(
        "{}",
        strata_layers::report::text(&strata_layers::report::summarize(&records))
    );
    if let Some(h) = &args.html {
        std::fs::write(h, strata_layers::report::html(&records, args.last))
            .with_context(|| format!("writing {}", h.display()))
            .map_err(work)?;
        println!("wrote {}", h.display());
    }
    Ok(ExitCode::SUCCESS)
}
