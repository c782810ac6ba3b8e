//! Per-repository cache epochs: one short hash per repo id, covering exactly that repo's
//! locked entries, so that one repo's update busts only its own download stage
//! (`ARG VSCODE_CACHE_EPOCH`). Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use strata_lock::{Artifact, Details, Ecosystem, RpmKind};

use crate::live::PrimaryPackage;

/// Hex digits of an epoch (64 bits of sha256).
const EPOCH_HEX: usize = 16;

/// One repo id's epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Epoch {
    /// The repo id (the directory name under `deps/rpm/<arch>/`).
    pub repoid: String,
    /// The variable name, `<REPOID>_CACHE_EPOCH`.
    pub name: String,
    /// The hash.
    pub value: String,
}

/// The build-arg name for a repo id: upper-cased, every non-alphanumeric character as `_`,
/// then `_CACHE_EPOCH` (`fedora-42` → `FEDORA_42_CACHE_EPOCH`).
pub fn epoch_var(repoid: &str) -> String {
    let mut out: String = repoid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out.push_str("_CACHE_EPOCH");
    out
}

/// `(arch, repoid)` of an RPM artifact, from its path `deps/rpm/<arch>/<repoid>/<file>`.
pub fn repo_of(a: &Artifact) -> Option<(&str, &str)> {
    if a.ecosystem != Ecosystem::Rpm {
        return None;
    }
    let mut parts = a.path.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("deps"), Some("rpm"), Some(arch), Some(repoid)) => Some((arch, repoid)),
        _ => None,
    }
}

/// The line one locked entry contributes to its repo's hash: arch, kind, file name and
/// digests. URLs are left out on purpose: the same bytes from another mirror are no change.
pub fn entry_line(a: &Artifact) -> String {
    let kind = match &a.details {
        Details::Rpm { kind, .. } => match kind {
            RpmKind::Binary => "binary",
            RpmKind::Source => "source",
            RpmKind::ModuleMetadata => "module_metadata",
        },
        _ => "other",
    };
    let mut digests: Vec<String> = a.digests.iter().map(|d| d.to_string()).collect();
    digests.sort();
    format!(
        "{}\t{kind}\t{}\t{}",
        a.arch.as_deref().unwrap_or(""),
        a.filename,
        digests.join(",")
    )
}

/// A stable hash of lines: sorted and deduplicated first, so input order never matters.
pub fn hash_lines(domain: &str, lines: impl IntoIterator<Item = String>) -> String {
    let mut lines: Vec<String> = lines.into_iter().collect();
    lines.sort();
    lines.dedup();
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update(b"\n");
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// One epoch per repo id among `artifacts` (RPMs only, every arch together), sorted by repo
/// id. Fails when two repo ids map to the same variable name.
pub fn lockfile_epochs(artifacts: &[Artifact]) -> Result<Vec<Epoch>, String> {
    let mut by_repo: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in artifacts {
        if let Some((_, repoid)) = repo_of(a) {
            by_repo.entry(repoid).or_default().push(entry_line(a));
        }
    }
    let epochs = by_repo
        .into_iter()
        .map(|(repoid, lines)| make(repoid, hash_lines("strata-epoch-1", lines)))
        .collect();
    check_unique(epochs)
}

/// The epoch of a live repo from the named packages found in its primary metadata (every
/// version and arch of each name). Returns the epoch and the names found.
pub fn live_epoch(
    repoid: &str,
    packages: &[PrimaryPackage],
    names: &[String],
) -> (Epoch, Vec<String>) {
    let mut found = Vec::new();
    let lines = packages
        .iter()
        .filter(|p| names.contains(&p.name))
        .map(|p| {
            found.push(p.name.clone());
            format!("{}\t{}\t{}", p.name, p.nevra_tail(), p.pkgid)
        })
        .collect::<Vec<_>>();
    found.sort();
    found.dedup();
    (
        make(repoid, hash_lines("strata-live-epoch-1", lines)),
        found,
    )
}

fn make(repoid: &str, hash: String) -> Epoch {
    Epoch {
        repoid: repoid.to_owned(),
        name: epoch_var(repoid),
        value: hash[..EPOCH_HEX].to_owned(),
    }
}

/// Refuses two repo ids whose variable names collide (`a-b` and `a.b`).
pub fn check_unique(epochs: Vec<Epoch>) -> Result<Vec<Epoch>, String> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &epochs {
        if let Some(other) = seen.insert(&e.name, &e.repoid)
            && other != e.repoid
        {
            return Err(format!(
                "repo ids `{other}` and `{}` both map to {}; rename one of them",
                e.repoid, e.name
            ));
        }
    }
    Ok(epochs)
}

/// How `strata epochs` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFormat {
    /// `NAME=value` lines.
    Env,
    /// `--build-arg NAME=value` pairs on one line.
    Args,
    /// A JSON list of `{repoid, name, value}`.
    Json,
    /// `NAME=value` lines for `$GITHUB_OUTPUT`.
    Github,
}

/// Renders epochs in a format.
pub fn format_epochs(epochs: &[Epoch], format: EpochFormat) -> String {
    match format {
        EpochFormat::Env | EpochFormat::Github => epochs.iter().fold(String::new(), |mut s, e| {
            let _ = writeln!(s, "{}={}", e.name, e.value);
            s
        }),
        EpochFormat::Args => {
            let parts: Vec<String> = epochs
                .iter()
                .map(|e| format!("--build-arg {}={}", e.name, e.value))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                parts.join(" ") + "\n"
            }
        }
        EpochFormat::Json => serde_json::to_string_pretty(epochs).expect("epochs serialise") + "\n",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn lock(entries: &[(&str, &str, &str)]) -> Vec<Artifact> {
        let mut text = String::from(
            "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n",
        );
        for (repoid, file, hex) in entries {
            text.push_str(&format!(
                "  - url: http://127.0.0.1/{repoid}/{file}\n    repoid: {repoid}\n    checksum: sha256:{}\n",
                hex.repeat(64 / hex.len())
            ));
        }
        strata_lock::parse(Path::new("rpms.lock.yaml"), &text, &Default::default()).unwrap()
    }

    fn values(a: &[Artifact]) -> BTreeMap<String, String> {
        lockfile_epochs(a)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect()
    }

    #[test]
    fn names() {
        assert_eq!(epoch_var("vscode"), "VSCODE_CACHE_EPOCH");
        assert_eq!(epoch_var("fedora-42.x"), "FEDORA_42_X_CACHE_EPOCH");
        assert_eq!(epoch_var("9base"), "_9BASE_CACHE_EPOCH");
    }

    #[test]
    fn epochs_follow_exactly_their_repo() {
        let base = values(&lock(&[
            ("code", "code-1-1.x86_64.rpm", "a"),
            ("edge", "edge-1-1.x86_64.rpm", "b"),
            ("edge", "edge-lib-1-1.x86_64.rpm", "c"),
        ]));
        assert_eq!(base.len(), 2);
        assert_eq!(base["CODE_CACHE_EPOCH"].len(), 16);
        let reordered = values(&lock(&[
            ("edge", "edge-lib-1-1.x86_64.rpm", "c"),
            ("code", "code-1-1.x86_64.rpm", "a"),
            ("edge", "edge-1-1.x86_64.rpm", "b"),
        ]));
        assert_eq!(base, reordered, "order does not matter");
        let edge_changed = values(&lock(&[
            ("code", "code-1-1.x86_64.rpm", "a"),
            ("edge", "edge-1-1.x86_64.rpm", "b"),
            ("edge", "edge-lib-1-2.x86_64.rpm", "d"),
        ]));
        assert_eq!(base["CODE_CACHE_EPOCH"], edge_changed["CODE_CACHE_EPOCH"]);
        assert_ne!(base["EDGE_CACHE_EPOCH"], edge_changed["EDGE_CACHE_EPOCH"]);
        let digest_only = values(&lock(&[
            ("code", "code-1-1.x86_64.rpm", "e"),
            ("edge", "edge-1-1.x86_64.rpm", "b"),
            ("edge", "edge-lib-1-1.x86_64.rpm", "c"),
        ]));
        assert_ne!(base["CODE_CACHE_EPOCH"], digest_only["CODE_CACHE_EPOCH"]);
        assert_eq!(base["EDGE_CACHE_EPOCH"], digest_only["EDGE_CACHE_EPOCH"]);
    }

    #[test]
    fn colliding_names_are_refused() {
        let err = lockfile_epochs(&lock(&[
            ("a-b", "x-1-1.x86_64.rpm", "a"),
            ("a.b", "y-1-1.x86_64.rpm", "b"),
        ]))
        .unwrap_err();
        assert!(err.contains("A_B_CACHE_EPOCH"), "{err}");
    }

    #[test]
    fn formats() {
        let e = vec![make("a", "1".repeat(64)), make("b", "2".repeat(64))];
        assert_eq!(
            format_epochs(&e, EpochFormat::Env),
            "A_CACHE_EPOCH=1111111111111111\nB_CACHE_EPOCH=2222222222222222\n"
        );
        assert_eq!(
            format_epochs(&e, EpochFormat::Args),
            "--build-arg A_CACHE_EPOCH=1111111111111111 --build-arg B_CACHE_EPOCH=2222222222222222\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format_epochs(&e, EpochFormat::Json)).unwrap();
        assert_eq!(json[1]["repoid"], "b");
        assert_eq!(format_epochs(&[], EpochFormat::Args), "");
    }

    #[test]
    fn live_epochs_cover_named_packages_only() {
        let pkg = |name: &str, ver: &str| PrimaryPackage {
            name: name.into(),
            arch: "noarch".into(),
            epoch: "0".into(),
            ver: ver.into(),
            rel: "1".into(),
            pkgid: format!("{name}{ver}"),
            href: String::new(),
        };
        let names = vec!["code".to_owned(), "missing".to_owned()];
        let (a, found) = live_epoch("r", &[pkg("code", "1"), pkg("other", "1")], &names);
        assert_eq!(found, vec!["code".to_owned()]);
        let (b, _) = live_epoch("r", &[pkg("other", "2"), pkg("code", "1")], &names);
        assert_eq!(a, b, "other packages and order do not matter");
        let (c, _) = live_epoch("r", &[pkg("code", "2")], &names);
        assert_ne!(a.value, c.value);
    }
}
