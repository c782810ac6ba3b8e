//! Which images a run includes and in what order. Pure.
//!
//! A run includes the requested images (the affected ones, all with `--all`, or the named
//! ones) and every image they are built from: a prerequisite that was not requested is still
//! needed for its reference, and is reused by input key when possible. Images start as soon
//! as their parent finished, up to the job limit.

use std::collections::BTreeSet;

use crate::config::Config;

/// What the user asked to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every image.
    All,
    /// These images (and their prerequisites).
    Named(Vec<String>),
}

/// The images of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// Every image in the run, parents first.
    pub images: Vec<String>,
    /// The images that were asked for (the others are prerequisites).
    pub requested: BTreeSet<String>,
    /// Parallel levels (depth in the `from` tree).
    pub levels: Vec<Vec<String>>,
}

/// Plans a run. Unknown names are an error listing the images.
pub fn plan_run(config: &Config, selection: &Selection) -> Result<RunPlan, String> {
    let requested: BTreeSet<String> = match selection {
        Selection::All => config.images.keys().cloned().collect(),
        Selection::Named(names) => {
            for n in names {
                if !config.images.contains_key(n) {
                    return Err(format!(
                        "no image named {n:?} in {} (images: {})",
                        config.path.display(),
                        config.images.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            names.iter().cloned().collect()
        }
    };
    let mut needed: BTreeSet<String> = requested.clone();
    for n in &requested {
        needed.extend(config.ancestors(n));
    }
    let images: Vec<String> = config
        .order()
        .into_iter()
        .filter(|n| needed.contains(n))
        .collect();
    let depth = |n: &str| config.ancestors(n).len();
    let max = images.iter().map(|n| depth(n)).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); if images.is_empty() { 0 } else { max + 1 }];
    for n in &images {
        levels[depth(n)].push(n.clone());
    }
    Ok(RunPlan {
        images,
        requested,
        levels,
    })
}

/// The images that can start now: not started, and their parent (if in the run) succeeded.
pub fn ready(
    config: &Config,
    plan: &RunPlan,
    started: &BTreeSet<String>,
    succeeded: &BTreeSet<String>,
) -> Vec<String> {
    plan.images
        .iter()
        .filter(|n| !started.contains(*n))
        .filter(|n| match &config.images[*n].from {
            Some(p) if plan.images.contains(p) => succeeded.contains(p),
            _ => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config;

    fn cfg() -> Config {
        config::parse(
            "[image.base]\nfile = \"B\"\n[image.tooling]\nfile = \"T\"\nfrom = \"base\"\n[image.app]\nfile = \"A\"\nfrom = \"tooling\"\n[image.docs]\nfile = \"D\"\nfrom = \"base\"\n[image.solo]\nfile = \"S\"\n",
            Path::new("strata.toml"),
            Path::new("."),
        )
        .unwrap()
    }

    #[test]
    fn selection_table() {
        let c = cfg();
        let s = |v: &[&str]| Selection::Named(v.iter().map(|s| s.to_string()).collect());
        for (sel, images, levels) in [
            (
                Selection::All,
                vec!["base", "solo", "docs", "tooling", "app"],
                vec![vec!["base", "solo"], vec!["docs", "tooling"], vec!["app"]],
            ),
            (
                s(&["app"]),
                vec!["base", "tooling", "app"],
                vec![vec!["base"], vec!["tooling"], vec!["app"]],
            ),
            (
                s(&["docs", "solo"]),
                vec!["base", "solo", "docs"],
                vec![vec!["base", "solo"], vec!["docs"]],
            ),
            (s(&[]), vec![], vec![]),
        ] {
            let p = plan_run(&c, &sel).unwrap();
            assert_eq!(p.images, images, "{sel:?}");
            assert_eq!(p.levels, levels, "{sel:?}");
        }
        assert!(
            plan_run(&c, &s(&["nope"]))
                .unwrap_err()
                .contains("images: app, base, docs, solo, tooling")
        );
    }

    #[test]
    fn ready_table() {
        let c = cfg();
        let p = plan_run(&c, &Selection::All).unwrap();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(ready(&c, &p, &set(&[]), &set(&[])), vec!["base", "solo"]);
        assert_eq!(
            ready(&c, &p, &set(&["base", "solo"]), &set(&[])),
            Vec::<String>::new()
        );
        assert_eq!(
            ready(&c, &p, &set(&["base", "solo"]), &set(&["base"])),
            vec!["docs", "tooling"]
        );
        // Only the named subtree: tooling's parent is in the run.
        let q = plan_run(&c, &Selection::Named(vec!["app".into()])).unwrap();
        assert_eq!(
            ready(&c, &q, &set(&["base"]), &set(&["base"])),
            vec!["tooling"]
        );
    }
}
