//! `rpms.lock.yaml` (konflux-ci/rpm-lockfile-prototype output, read by Hermeto's rpm backend).
//!
//! ```yaml
//! lockfileVersion: 1
//! lockfileVendor: redhat
//! arches:
//! - arch: x86_64
//!   packages: [{url, repoid, size, checksum: "sha256:...", name, evr, sourcerpm}]
//!   source: [...]
//!   module_metadata: [{url, repoid, size, checksum}]
//! ```
//!
//! Paths follow Hermeto (`hermeto/core/package_managers/rpm/main.py`, `_download`): every
//! entry, binary, source or module metadata, goes to `deps/rpm/<arch>/<repoid>/<last URL
//! segment>`. When `repoid` is absent Hermeto invents a random one; strata uses the fixed
//! `strata-generated` (binary) and `strata-generated-source` (source) so output is
//! reproducible, and leaves [`Artifact::repo_id`] unset. Module metadata needs a `repoid`.
//! Unlike Hermeto, strata requires `checksum` on every entry: it verifies every byte.
//!
//! YAML gives no positions for values, so entry lines are found by searching the text for
//! each entry's URL in document order (best effort; `None` when not found).

use serde::Deserialize;

use crate::artifact::{Artifact, Details, Digest, Ecosystem, RpmKind, check_path_component};
use crate::ctx::{Ctx, http_url, last_segment, output_path, safe_file_name};
use crate::error::{Entry, Location, LockError, strip_position_suffix};
use crate::filter::Filter;
use crate::outcome::LoadOutcome;

/// Directory used when a binary or source entry has no `repoid`.
pub(crate) const GENERATED_REPOID: &str = "strata-generated";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpmsLock {
    lockfile_version: Option<serde_norway::Value>,
    lockfile_vendor: Option<String>,
    arches: Option<Vec<ArchSection>>,
}

#[derive(Deserialize)]
struct ArchSection {
    arch: String,
    #[serde(default)]
    packages: Vec<RpmEntry>,
    #[serde(default)]
    source: Vec<RpmEntry>,
    #[serde(default)]
    module_metadata: Vec<RpmEntry>,
}

#[derive(Deserialize)]
struct RpmEntry {
    url: String,
    repoid: Option<String>,
    size: Option<u64>,
    checksum: Option<String>,
    name: Option<String>,
    evr: Option<String>,
    sourcerpm: Option<String>,
}

const REGENERATE: &str = "regenerate it with rpm-lockfile-prototype";

/// Parses a YAML document, turning errors into [`LockError::Malformed`] with line and column.
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(
    ctx: Ctx<'_>,
    hint: &str,
) -> Result<T, LockError> {
    serde_norway::from_str(ctx.text).map_err(|e| {
        let at = match e.location() {
            Some(l) => Location::at(ctx.file, l.line(), l.column()),
            None => ctx.whole(),
        };
        let message = e.to_string();
        LockError::Malformed {
            at,
            entry: Entry::none(),
            message: format!("{}; {hint}", strip_position_suffix(&message)),
        }
    })
}

/// Parses an `rpms.lock.yaml`.
pub(crate) fn parse(ctx: Ctx<'_>, filter: &Filter) -> Result<LoadOutcome, LockError> {
    let lock: RpmsLock = from_yaml(ctx, &format!("fix the YAML or {REGENERATE}"))?;
    let arches = check_header(ctx, &lock)?;
    let mut out = LoadOutcome::default();
    let mut cursor = 0;
    for section in arches {
        let section_at = ctx.find(&format!("arch: {}", section.arch), cursor);
        if !filter.wants_rpm_arch(&section.arch) {
            let why = format!(
                "arch `{}` is not among the requested arches ({})",
                section.arch,
                filter.arches.join(", ")
            );
            out.not_selected(
                &format!("{} packages", section.arch),
                &ctx.origin(section_at),
                why,
            );
            continue;
        }
        check_path_component(&section.arch, "arch").map_err(|message| LockError::UnsafePath {
            at: ctx.at_opt(section_at),
            entry: Entry::none(),
            message,
        })?;
        let kinds = [
            (RpmKind::Binary, &section.packages),
            (RpmKind::Source, &section.source),
            (RpmKind::ModuleMetadata, &section.module_metadata),
        ];
        for (kind, entries) in kinds {
            for entry in entries {
                let offset = ctx.find(&entry.url, cursor);
                if let Some(o) = offset {
                    cursor = o;
                }
                let origin = ctx.origin(offset);
                let result = artifact(
                    ctx.at_opt(offset),
                    &section.arch,
                    kind,
                    entry,
                    origin.clone(),
                );
                out.take(result, &entry.url, &origin, filter.skip_unfetchable)?;
            }
        }
    }
    Ok(out)
}

fn check_header<'l>(ctx: Ctx<'_>, lock: &'l RpmsLock) -> Result<&'l [ArchSection], LockError> {
    let missing = |field: &str| LockError::MissingField {
        at: ctx.whole(),
        entry: Entry::none(),
        field: field.into(),
        hint: format!(
            "an rpms.lock.yaml starts with `lockfileVersion: 1`, `lockfileVendor: redhat` and `arches:`; {REGENERATE}"
        ),
    };
    let version = lock
        .lockfile_version
        .as_ref()
        .ok_or_else(|| missing("lockfileVersion"))?;
    if version.as_u64() != Some(1) {
        let shown = serde_norway::to_string(version).unwrap_or_default();
        return Err(LockError::UnsupportedVersion {
            at: ctx.at_opt(ctx.find("lockfileVersion", 0)),
            message: format!(
                "rpms.lock.yaml lockfileVersion `{}` is not supported (strata reads 1); {REGENERATE}",
                shown.trim()
            ),
        });
    }
    let vendor = lock
        .lockfile_vendor
        .as_deref()
        .ok_or_else(|| missing("lockfileVendor"))?;
    if vendor != "redhat" {
        return Err(LockError::UnsupportedVersion {
            at: ctx.at_opt(ctx.find("lockfileVendor", 0)),
            message: format!(
                "rpms.lock.yaml lockfileVendor `{vendor}` is not supported (strata reads `redhat`); {REGENERATE}"
            ),
        });
    }
    lock.arches.as_deref().ok_or_else(|| missing("arches"))
}

fn artifact(
    at: Location,
    arch: &str,
    kind: RpmKind,
    entry: &RpmEntry,
    origin: crate::Origin,
) -> Result<Artifact, LockError> {
    let what = match kind {
        RpmKind::Binary => "package",
        RpmKind::Source => "source package",
        RpmKind::ModuleMetadata => "module metadata",
    };
    let shown = entry
        .name
        .clone()
        .unwrap_or_else(|| entry.url.rsplit('/').next().unwrap_or_default().to_owned());
    let label = Entry::new(format!("{arch} {what} `{shown}`"));
    let url = http_url(&entry.url, &at, &label)?;
    let filename = last_segment(&url).to_owned();
    safe_file_name(&filename, &at, &label)?;
    let repoid = match (&entry.repoid, kind) {
        (Some(repoid), _) => {
            check_path_component(repoid, "repoid").map_err(|message| LockError::UnsafePath {
                at: at.clone(),
                entry: label.clone(),
                message,
            })?;
            repoid.clone()
        }
        (None, RpmKind::Binary) => GENERATED_REPOID.to_owned(),
        (None, RpmKind::Source) => format!("{GENERATED_REPOID}-source"),
        (None, RpmKind::ModuleMetadata) => {
            return Err(LockError::MissingField {
                at,
                entry: label,
                field: "repoid".into(),
                hint: format!("module metadata belongs to a repository; {REGENERATE}"),
            });
        }
    };
    let Some(checksum) = &entry.checksum else {
        return Err(LockError::MissingField {
            at,
            entry: label,
            field: "checksum".into(),
            hint: format!(
                "strata verifies every file and needs `checksum: sha256:<hex>`; {REGENERATE}"
            ),
        });
    };
    let digest: Digest = checksum.parse().map_err(|e| LockError::BadDigest {
        at: at.clone(),
        entry: label.clone(),
        message: format!("checksum: {e}; fix the entry or {REGENERATE}"),
    })?;
    let name = match (&entry.name, kind) {
        (Some(name), _) => name.clone(),
        (None, RpmKind::ModuleMetadata) => filename.clone(),
        (None, _) => name_from_file(&filename).to_owned(),
    };
    Ok(Artifact {
        ecosystem: Ecosystem::Rpm,
        name,
        version: entry.evr.clone(),
        path: output_path(Ecosystem::Rpm.dir_name(), &[arch, &repoid, &filename]),
        filename,
        urls: vec![url.to_string()],
        size: entry.size,
        digests: vec![digest],
        arch: Some(arch.to_owned()),
        repo_id: entry.repoid.clone(),
        origin,
        details: Details::Rpm {
            kind,
            evr: entry.evr.clone(),
            sourcerpm: entry.sourcerpm.clone(),
        },
    })
}

/// The package name in an RPM file name `name-version-release.arch.rpm`.
fn name_from_file(file: &str) -> &str {
    let stem = file.strip_suffix(".rpm").unwrap_or(file);
    let mut parts = stem.rsplitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(name)) if !name.is_empty() => name,
        _ => stem,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SHA: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn run(text: &str, filter: &Filter) -> Result<LoadOutcome, LockError> {
        let lines = crate::ctx::LineIndex::new(text);
        parse(Ctx::new(Path::new("rpms.lock.yaml"), text, &lines), filter)
    }

    fn lock(body: &str) -> String {
        format!("---\nlockfileVersion: 1\nlockfileVendor: redhat\narches:\n{body}")
    }

    #[test]
    fn names_from_rpm_files() {
        assert_eq!(name_from_file("bash-5.1.8-9.el9.x86_64.rpm"), "bash");
        assert_eq!(
            name_from_file("python3-libs-3.9.18-1.el9.x86_64.rpm"),
            "python3-libs"
        );
        assert_eq!(name_from_file("weird.rpm"), "weird");
    }

    #[test]
    fn entries_land_in_arch_and_repoid_dirs() {
        let text = lock(&format!(
            "- arch: x86_64
  packages:
  - url: http://127.0.0.1:8080/baseos/Packages/b/bash-5.1.8-9.el9.x86_64.rpm
    repoid: ubi-9-baseos-rpms
    size: 1771869
    checksum: {SHA}
    name: bash
    evr: 5.1.8-9.el9
    sourcerpm: bash-5.1.8-9.el9.src.rpm
  - url: http://127.0.0.1:8080/other/tzdata-2024a-1.el9.noarch.rpm
    size: 10
    checksum: {SHA}
  source:
  - url: http://127.0.0.1:8080/source/bash-5.1.8-9.el9.src.rpm
    repoid: ubi-9-baseos-source
    size: 10
    checksum: {SHA}
    name: bash
    evr: 5.1.8-9.el9
  - url: http://127.0.0.1:8080/source/tzdata-2024a-1.el9.src.rpm
    checksum: {SHA}
  module_metadata:
  - url: http://127.0.0.1:8080/appstream/repodata/abc-modules.yaml.gz
    repoid: ubi-9-appstream-rpms
    size: 5
    checksum: {SHA}
- arch: aarch64
  packages:
  - url: http://127.0.0.1:8080/other/tzdata-2024a-1.el9.noarch.rpm
    repoid: ubi-9-baseos-rpms
    size: 10
    checksum: {SHA}
"
        ));
        let out = run(&text, &Filter::default()).unwrap();
        let paths: Vec<&str> = out.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "deps/rpm/x86_64/ubi-9-baseos-rpms/bash-5.1.8-9.el9.x86_64.rpm",
                "deps/rpm/x86_64/strata-generated/tzdata-2024a-1.el9.noarch.rpm",
                "deps/rpm/x86_64/ubi-9-baseos-source/bash-5.1.8-9.el9.src.rpm",
                "deps/rpm/x86_64/strata-generated-source/tzdata-2024a-1.el9.src.rpm",
                "deps/rpm/x86_64/ubi-9-appstream-rpms/abc-modules.yaml.gz",
                "deps/rpm/aarch64/ubi-9-baseos-rpms/tzdata-2024a-1.el9.noarch.rpm",
            ]
        );
        let bash = &out.artifacts[0];
        assert_eq!(bash.name, "bash");
        assert_eq!(bash.version.as_deref(), Some("5.1.8-9.el9"));
        assert_eq!(bash.size, Some(1771869));
        assert_eq!(bash.arch.as_deref(), Some("x86_64"));
        assert_eq!(bash.repo_id.as_deref(), Some("ubi-9-baseos-rpms"));
        assert_eq!(bash.origin.line, Some(7));
        assert_eq!(
            bash.details,
            Details::Rpm {
                kind: RpmKind::Binary,
                evr: Some("5.1.8-9.el9".into()),
                sourcerpm: Some("bash-5.1.8-9.el9.src.rpm".into())
            }
        );
        assert_eq!(out.artifacts[1].name, "tzdata");
        assert_eq!(out.artifacts[1].repo_id, None);
        assert_eq!(
            out.artifacts[4].details,
            Details::Rpm {
                kind: RpmKind::ModuleMetadata,
                evr: None,
                sourcerpm: None
            }
        );
        assert_eq!(
            out.artifacts[5].origin.line,
            Some(33),
            "the second tzdata is found after the first"
        );

        let only_arm = run(
            &text,
            &Filter {
                arches: vec!["arm64".into()],
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(only_arm.artifacts.len(), 1);
        assert_eq!(only_arm.skipped[0].name, "x86_64 packages");
        assert_eq!(only_arm.skipped[0].origin.line, Some(5));
    }

    #[test]
    fn error_table() {
        let entry = |extra: &str| {
            lock(&format!(
                "- arch: x86_64\n  packages:\n  - url: http://127.0.0.1/p/a-1-1.x86_64.rpm\n{extra}"
            ))
        };
        let cases: Vec<(String, &str)> = vec![
            (
                "lockfileVersion: 1\narches: [\n".into(),
                "rpms.lock.yaml:3:1: ",
            ),
            (
                "lockfileVersion: 2\nlockfileVendor: redhat\narches: []\n".into(),
                "rpms.lock.yaml:1:1: rpms.lock.yaml lockfileVersion `2` is not supported",
            ),
            (
                "lockfileVersion: 1\nlockfileVendor: acme\narches: []\n".into(),
                "rpms.lock.yaml:2:1: rpms.lock.yaml lockfileVendor `acme` is not supported",
            ),
            (
                "lockfileVendor: redhat\narches: []\n".into(),
                "rpms.lock.yaml: `lockfileVersion` is missing",
            ),
            (
                "lockfileVersion: 1\nlockfileVendor: redhat\n".into(),
                "rpms.lock.yaml: `arches` is missing",
            ),
            (
                lock("- arch: x86_64\n  packages:\n  - repoid: r\n"),
                "rpms.lock.yaml:7:5: arches[0].packages[0]: missing field `url`",
            ),
            (
                lock("- arch: x86_64\n  packages:\n  - url: [1]\n"),
                "arches[0].packages[0].url: invalid type: sequence, expected a string",
            ),
            (
                entry(&format!("    repoid: ../../etc\n    checksum: {SHA}\n")),
                "rpms.lock.yaml:7:10: x86_64 package `a-1-1.x86_64.rpm`: repoid: the file name `../../etc` contains a path separator",
            ),
            (
                entry(&format!("    repoid: ..\n    checksum: {SHA}\n")),
                "repoid: the file name `..` would escape its directory; refusing to write outside",
            ),
            (
                entry("    repoid: r\n"),
                "rpms.lock.yaml:7:10: x86_64 package `a-1-1.x86_64.rpm`: `checksum` is missing",
            ),
            (
                entry("    repoid: r\n    checksum: sha256:abcd\n"),
                "checksum: `abcd` is not a sha256 digest",
            ),
            (
                entry("    repoid: r\n    checksum: md5:d41d8cd98f00b204e9800998ecf8427e\n"),
                "unsupported hash algorithm `md5`",
            ),
            (
                entry("    repoid: r\n    checksum: deadbeef\n"),
                "`deadbeef` is not a checksum of the form `alg:hex`",
            ),
            (
                lock(&format!(
                    "- arch: ../x86_64\n  packages:\n  - url: http://127.0.0.1/a.rpm\n    checksum: {SHA}\n"
                )),
                "rpms.lock.yaml:5:3: arch: the file name `../x86_64` contains a path separator",
            ),
            (
                lock(&format!(
                    "- arch: x86_64\n  packages:\n  - url: http://127.0.0.1/dir/\n    checksum: {SHA}\n"
                )),
                "the file name is empty",
            ),
            (
                lock(&format!(
                    "- arch: x86_64\n  module_metadata:\n  - url: http://127.0.0.1/m.yaml\n    checksum: {SHA}\n"
                )),
                "x86_64 module metadata `m.yaml`: `repoid` is missing",
            ),
            (
                lock(&format!(
                    "- arch: x86_64\n  packages:\n  - url: file:///srv/a.rpm\n    checksum: {SHA}\n"
                )),
                "`file:///srv/a.rpm` is a file: URL, not http(s)",
            ),
        ];
        for (text, want) in cases {
            let msg = run(&text, &Filter::default()).unwrap_err().to_string();
            assert!(msg.contains(want), "\n{text}\n got: {msg}\nwant: {want}");
        }
    }
}
