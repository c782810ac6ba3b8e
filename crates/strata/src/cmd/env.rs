//! `strata env`: the environment a build needs to use an output directory.

use std::process::ExitCode;

use anyhow::Context as _;
use strata_tree::{BUILD_CONFIG_JSON, BuildConfig, EnvFormat};

use crate::cli::{EnvArgs, EnvFormatArg};
use crate::exit::{CmdResult, input, work};

/// Runs `strata env`.
pub fn run(args: EnvArgs) -> CmdResult {
    let config_path = args.dir.join(BUILD_CONFIG_JSON);
    let bytes = std::fs::read(&config_path)
        .with_context(|| {
            format!(
                "could not read {}; is {} the output directory of `strata fetch`?",
                config_path.display(),
                args.dir.display()
            )
        })
        .map_err(input)?;
    let config = BuildConfig::from_json(&bytes)
        .with_context(|| format!("{} is not a valid build config", config_path.display()))
        .map_err(input)?;
    let for_output_dir = match &args.for_output_dir {
        Some(p) => p.clone(),
        None => strata_tree::default_for_output_dir(&args.dir)
            .with_context(|| format!("could not resolve {}", args.dir.display()))
            .map_err(input)?,
    };
    let vars = strata_tree::env_vars(&config, &for_output_dir.to_string_lossy()).map_err(input)?;
    let format = match args.format {
        EnvFormatArg::Env => EnvFormat::Env,
        EnvFormatArg::Json => EnvFormat::Json,
    };
    let text = strata_tree::format_env(&vars, format);
    match &args.output {
        Some(path) => strata_tree::write_atomically(path, text.as_bytes())
            .with_context(|| format!("could not write {}", path.display()))
            .map_err(work)?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
