//! `strata cache`: where the cache is, what it holds, whether it is sound, and clean-up.

use std::process::ExitCode;

use indicatif::HumanBytes;
use strata_store::{GcPolicy, Store};

use crate::cli::{CacheAction, CacheArgs, Format};
use crate::exit::{CmdResult, work};

/// Runs `strata cache ...`.
pub fn run(args: CacheArgs) -> CmdResult {
    let root = args.cache.resolve();
    if let CacheAction::Dir = args.action {
        println!("{}", root.display());
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(&root).map_err(work)?;
    match args.action {
        CacheAction::Dir => unreachable!("handled above"),
        CacheAction::Stats { format } => {
            let stats = store.stats().map_err(work)?;
            match format {
                Format::Json => println!("{}", json(&stats)),
                Format::Text => {
                    println!("cache: {}", stats.root.display());
                    println!("entries: {} ({})", stats.entries, HumanBytes(stats.bytes));
                    for (alg, (n, bytes)) in &stats.by_algorithm {
                        println!("  {alg}: {n} ({})", HumanBytes(*bytes));
                    }
                    println!("downloads in progress: {}", stats.temp_files);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Verify { repair, format } => {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            let report = store.verify(threads, repair).map_err(work)?;
            match format {
                Format::Json => println!("{}", json(&report)),
                Format::Text => {
                    for (path, problem) in &report.corrupt {
                        eprintln!("corrupt: {}: {problem}", path.display());
                    }
                    for path in &report.foreign_files {
                        eprintln!("not a cache entry: {}", path.display());
                    }
                    eprintln!(
                        "verified {} entries ({}): {} corrupt{}",
                        report.checked,
                        HumanBytes(report.bytes),
                        report.corrupt.len(),
                        if repair {
                            format!(", {} removed", report.removed)
                        } else {
                            String::new()
                        }
                    );
                    if !report.corrupt.is_empty() && !repair {
                        eprintln!(
                            "run `strata cache verify --repair` to remove them; the next fetch downloads them again"
                        );
                    }
                }
            }
            let sound =
                report.is_clean() || (repair && report.removed as usize == report.corrupt.len());
            Ok(if sound {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CacheAction::Gc {
            max_age,
            max_size,
            dry_run,
            format,
        } => {
            let report = store
                .gc(&GcPolicy {
                    max_age,
                    max_size,
                    dry_run,
                })
                .map_err(work)?;
            match format {
                Format::Json => println!("{}", json(&report)),
                Format::Text => eprintln!(
                    "{} {} entries ({}), kept {} ({}); removed {} leftover temp files",
                    if dry_run { "would remove" } else { "removed" },
                    report.removed,
                    HumanBytes(report.freed),
                    report.kept,
                    HumanBytes(report.kept_bytes),
                    report.temps_removed
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("reports serialise")
}
