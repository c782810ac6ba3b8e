//! `strata gc`: the retention policy of `strata.toml` applied to a registry repository over
//! the Registry HTTP API. Dry run by default.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use strata_registry::client::{DOCKER_LIST, OCI_INDEX, Registry, RepoRef};
use strata_registry::retention::{TagInfo, decide, hold_index_children, recheck};

use crate::exit::{CmdResult, input, work};

/// `strata gc --help` examples.
pub const EXAMPLES: &str = "\
Examples:
  # What would go, and why (nothing is deleted):
  strata gc --registry 127.0.0.1:5000/app

  # Delete:
  strata gc --registry 127.0.0.1:5000/app --apply

The policy is [retention] in strata.toml:
  keep = [{ tags = \"tooling-*\", newest = 3 }, { tags = \"pr-*\", max-age = \"7d\" }]
  protect = [\"*-stable\", \"latest\"]
The first keep rule whose glob matches a tag decides it; tags no rule matches are kept;
protected tags, and every manifest they point to, are never deleted. A registry deletes by
digest (all tags of that manifest go together), so a manifest that any kept tag points to
stays, and so does every manifest a kept index (a multi-arch image) lists, whatever
its own tags say. Creation time comes from the image config. Deleting needs the registry to allow it
(distribution: storage.delete.enabled: true); blobs are freed by the registry's own
garbage-collect.

Key tags (sk-<24 hex>, pushed by strata build --push next to every tag so later builds can
reuse the image) are strata's bookkeeping: no rule is asked about a key tag whose manifest
has other tags, and it goes with that manifest when all of those go. A manifest left with
only key tags (its tags moved to newer images) is kept, since builds can still reuse it,
unless a protect glob or a keep rule whose glob starts with sk- says otherwise, e.g.
  keep = [..., { tags = \"sk-*\", max-age = \"30d\" }]
(a catch-all such as { tags = \"*\", newest = 5 } does not decide key tags).

Logging in: strata reads the engines' auth files (docker login, buildah login, podman login:
$REGISTRY_AUTH_FILE, ~/.config/containers/auth.json, ~/.docker/config.json, and their
credential helpers); STRATA_REGISTRY_USERNAME and STRATA_REGISTRY_PASSWORD override them.

Exit status: 0 success, 1 a registry request failed, 2 bad strata.toml or --registry.";

/// Arguments of `strata gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The repository: HOST[:PORT]/REPOSITORY [default: `registry` in strata.toml].
    #[arg(long, value_name = "HOST/REPO")]
    pub registry: Option<String>,
    /// The file with the [retention] policy.
    #[arg(long, value_name = "FILE", default_value = "strata.toml")]
    pub config: PathBuf,
    /// Delete (default: only say what would be deleted).
    #[arg(long)]
    pub apply: bool,
    /// Use plain HTTP even for a non-loopback registry.
    #[arg(long)]
    pub insecure: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::cli::Format::Text)]
    pub format: crate::cli::Format,
}

/// Runs `strata gc`.
pub fn run(args: GcArgs) -> CmdResult {
    let config = strata_layers::config::load(&args.config).map_err(input)?;
    let Some(reg) = args.registry.clone().or_else(|| config.registry.clone()) else {
        return Err(input(anyhow::anyhow!(
            "no registry: pass --registry HOST/REPO or set registry = \"HOST/REPO\" in {}",
            args.config.display()
        )));
    };
    let repo = RepoRef::parse(&reg).map_err(input)?;
    let client = Registry::new(repo.clone(), args.insecure).map_err(work)?;
    let tags = client.list_tags().map_err(work)?;
    let mut created: BTreeMap<String, Option<i64>> = BTreeMap::new();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut infos = Vec::new();
    for tag in &tags {
        let Some(m) = client.get_manifest(tag).map_err(work)? else {
            continue; // deleted meanwhile
        };
        if m.is_index() && !children.contains_key(&m.digest) {
            index_children(&client, &m, &mut children).map_err(work)?;
        }
        let c = match created.get(&m.digest) {
            Some(c) => *c,
            None => {
                let c = client.created(&m).unwrap_or_else(|e| {
                    tracing::warn!("{tag}: creation time unknown: {e}");
                    None
                });
                created.insert(m.digest.clone(), c);
                c
            }
        };
        infos.push(TagInfo {
            tag: tag.clone(),
            digest: m.digest,
            created: c,
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut decisions = decide(&config.retention, &infos, now);
    hold_index_children(&mut decisions, &children);
    let doomed: BTreeSet<String> = decisions
        .iter()
        .filter(|d| d.delete)
        .map(|d| d.digest.clone())
        .collect();
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    let mut spared = Vec::new();
    if args.apply {
        // Tags pushed or moved since the listing must not lose their manifest.
        let (still_doomed, late) = recheck(&decisions, &current_tags(&client).map_err(work)?);
        spared = late;
        for d in &still_doomed {
            match client.delete_manifest(d) {
                Ok(()) => deleted.push(d.clone()),
                Err(e) => failed.push(format!("{d}: {e}")),
            }
        }
    }
    match args.format {
        crate::cli::Format::Json => {
            let v = serde_json::json!({
                "registry": repo.to_string(),
                "applied": args.apply,
                "tags": decisions,
                "delete_digests": doomed,
                "deleted": deleted,
                "spared": spared
                    .iter()
                    .map(|(digest, tag)| serde_json::json!({"digest": digest, "tag": tag}))
                    .collect::<Vec<_>>(),
                "failed": failed,
            });
            println!("{v}");
        }
        crate::cli::Format::Text => {
            if config.retention.keep.is_empty() && config.retention.protect.is_empty() {
                println!(
                    "no [retention] policy in {}: every tag is kept",
                    args.config.display()
                );
            }
            let verb = if args.apply {
                "deleted"
            } else {
                "would delete"
            };
            for d in &decisions {
                let when = d
                    .created
                    .map(strata_layers::template::format_rfc3339)
                    .unwrap_or_else(|| "created ?".into());
                let short = d.digest.get(..19).unwrap_or(&d.digest);
                let action = if d.delete { verb } else { "keep" };
                println!("{action:>12}  {}  {short}  {when}  {}", d.tag, d.reason);
            }
            let n = decisions.iter().filter(|d| d.delete).count();
            println!(
                "{}: {} tag(s), {verb} {n} tag(s) in {} manifest(s){}",
                repo,
                decisions.len(),
                doomed.len(),
                if args.apply || n == 0 {
                    ""
                } else {
                    " (dry run: pass --apply to delete)"
                }
            );
            for (digest, tag) in &spared {
                println!(
                    "{:>12}  {digest}: tag {tag} points to it since the listing",
                    "spared"
                );
            }
            for f in &failed {
                eprintln!("error: delete failed: {f}");
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(work(anyhow::anyhow!("{} delete(s) failed", failed.len())))
    }
}

/// Records the digests `index` lists in `children`, and those of the indexes it lists, at
/// any depth (each index fetched once).
fn index_children(
    client: &Registry,
    index: &strata_registry::client::Manifest,
    children: &mut BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let mut pending = vec![index.clone()];
    while let Some(m) = pending.pop() {
        let entries = m.json()["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut listed = Vec::new();
        for e in &entries {
            let Some(digest) = e["digest"].as_str() else {
                continue;
            };
            listed.push(digest.to_string());
            let nested = matches!(e["mediaType"].as_str(), Some(OCI_INDEX | DOCKER_LIST));
            if nested
                && !children.contains_key(digest)
                && digest != m.digest
                && let Some(child) = client.get_manifest(digest)?
            {
                pending.push(child);
            }
        }
        children.insert(m.digest.clone(), listed);
    }
    Ok(())
}

/// Every tag of the repository with the digest it points to now (tags deleted meanwhile left
/// out).
fn current_tags(client: &Registry) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for tag in client.list_tags()? {
        if let Some(digest) = client.head_manifest(&tag)? {
            pairs.push((tag, digest));
        }
    }
    Ok(pairs)
}
