//! `pylock.toml` (PEP 751, the packaging.python.org "pylock.toml specification").
//!
//! Each `[[packages]]` entry yields its wheels (filtered by platform/Python tags), its sdist,
//! or its archive, placed at `deps/pip/<file name>`. The file name is the entry's `name`, else
//! the percent-decoded last segment of its `url`. `vcs` and `directory` packages, and files
//! with only a local `path`, have nothing to download: an error unless skipped.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::artifact::{Algorithm, Artifact, Details, Digest, Ecosystem};
use crate::ctx::{Ctx, http_url, last_segment_decoded, output_path, safe_file_name};
use crate::error::{Entry, Location, LockError};
use crate::filter::{Filter, WheelName};
use crate::outcome::LoadOutcome;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PyLock {
    lock_version: Option<Spanned<String>>,
    packages: Option<Vec<Spanned<Package>>>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    version: Option<String>,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<Spanned<FileRef>>,
    sdist: Option<Spanned<FileRef>>,
    wheels: Option<Vec<Spanned<FileRef>>>,
}

/// A wheel, sdist or archive table: where the file is and how to check it.
#[derive(Deserialize)]
struct FileRef {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    hashes: Option<BTreeMap<String, String>>,
}

/// What kind of file a [`FileRef`] is, and its field path for messages (`wheels[2]`).
struct Kind {
    field: String,
    wheel: Option<bool>,
}

const REGENERATE: &str =
    "regenerate the lock file with a PEP 751 locker (e.g. `uv export --format pylock.toml`)";

/// Parses a `pylock.toml`.
pub(crate) fn parse(ctx: Ctx<'_>, filter: &Filter) -> Result<LoadOutcome, LockError> {
    let lock: PyLock = toml::from_str(ctx.text).map_err(|e| syntax_error(ctx, &e))?;
    check_version(ctx, lock.lock_version.as_ref())?;
    let packages = lock.packages.ok_or_else(|| LockError::MissingField {
        at: ctx.whole(),
        entry: Entry::none(),
        field: "packages".into(),
        hint: format!("a pylock.toml lists its packages in `[[packages]]`; {REGENERATE}"),
    })?;
    let mut out = LoadOutcome::default();
    for package in &packages {
        package_artifacts(ctx, package, filter, &mut out)?;
    }
    Ok(out)
}

fn syntax_error(ctx: Ctx<'_>, e: &toml::de::Error) -> LockError {
    LockError::Malformed {
        at: ctx.at_opt(e.span().map(|s| s.start)),
        entry: Entry::none(),
        message: format!("{}; fix the TOML or {REGENERATE}", e.message().trim_end()),
    }
}

fn check_version(ctx: Ctx<'_>, version: Option<&Spanned<String>>) -> Result<(), LockError> {
    let Some(version) = version else {
        return Err(LockError::MissingField {
            at: ctx.whole(),
            entry: Entry::none(),
            field: "lock-version".into(),
            hint: format!("strata reads pylock.toml `lock-version = \"1.0\"`; {REGENERATE}"),
        });
    };
    if version.get_ref().split('.').next() != Some("1") {
        return Err(LockError::UnsupportedVersion {
            at: ctx.at_offset(version.span().start),
            message: format!(
                "pylock.toml lock-version `{}` is not supported (strata reads 1.x); {REGENERATE} or upgrade strata",
                version.get_ref()
            ),
        });
    }
    Ok(())
}

/// Appends the artifacts (or skips) of one `[[packages]]` entry.
fn package_artifacts(
    ctx: Ctx<'_>,
    spanned: &Spanned<Package>,
    filter: &Filter,
    out: &mut LoadOutcome,
) -> Result<(), LockError> {
    let package = spanned.get_ref();
    let name = package.name.get_ref().as_str();
    let entry = Entry::new(format!("package `{name}`"));
    let at = ctx.at_offset(spanned.span().start);
    let origin = ctx.origin(Some(spanned.span().start));
    let skip = filter.skip_unfetchable;

    let has_files = package.sdist.is_some() || package.wheels.is_some();
    let sources = [
        ("vcs", package.vcs.is_some()),
        ("directory", package.directory.is_some()),
        ("archive", package.archive.is_some()),
        ("sdist/wheels", has_files),
    ];
    let present: Vec<&str> = sources
        .iter()
        .filter(|(_, p)| *p)
        .map(|(n, _)| *n)
        .collect();
    if present.len() > 1 {
        return Err(LockError::Invalid {
            at,
            entry,
            message: format!(
                "has more than one source ({}); PEP 751 makes vcs, directory, archive and sdist/wheels mutually exclusive",
                present.join(", ")
            ),
        });
    }
    let unfetchable = |reason: &str| -> Result<Artifact, LockError> {
        Err(LockError::Unfetchable {
            at: at.clone(),
            entry: entry.clone(),
            reason: reason.into(),
        })
    };
    match present.first() {
        None => out.take(
            unfetchable("has no wheels, sdist, archive, vcs or directory to install from"),
            name,
            &origin,
            skip,
        ),
        Some(&"vcs") => out.take(
            unfetchable("is a VCS checkout (`vcs`)"),
            name,
            &origin,
            skip,
        ),
        Some(&"directory") => out.take(
            unfetchable("is a local source tree (`directory`)"),
            name,
            &origin,
            skip,
        ),
        Some(&"archive") => {
            let archive = package.archive.as_ref().expect("archive is present");
            let kind = Kind {
                field: "archive".into(),
                wheel: None,
            };
            file_artifact(ctx, package, &entry, archive, &kind, filter, out)
        }
        Some(_) => {
            let taken = out.artifacts.len();
            let skipped_before = out.skipped.len();
            for (i, wheel) in package.wheels.iter().flatten().enumerate() {
                let kind = Kind {
                    field: format!("wheels[{i}]"),
                    wheel: Some(true),
                };
                file_artifact(ctx, package, &entry, wheel, &kind, filter, out)?;
            }
            if let Some(sdist) = &package.sdist {
                let kind = Kind {
                    field: "sdist".into(),
                    wheel: Some(false),
                };
                file_artifact(ctx, package, &entry, sdist, &kind, filter, out)?;
            }
            let filtered_out = out.skipped[skipped_before..]
                .iter()
                .any(|s| matches!(s.reason, crate::SkipReason::NotSelected(_)));
            if out.artifacts.len() == taken && filtered_out {
                out.skipped.push(crate::Skipped {
                    origin,
                    name: name.to_owned(),
                    reason: crate::SkipReason::NoFileSelected(
                        "no wheel matches the requested platform and there is no sdist: it will not install from this output".into(),
                    ),
                });
            }
            Ok(())
        }
    }
}

/// Appends the artifact of one wheel/sdist/archive table, or records why it is skipped.
fn file_artifact(
    ctx: Ctx<'_>,
    package: &Package,
    entry: &Entry,
    file: &Spanned<FileRef>,
    kind: &Kind,
    filter: &Filter,
    out: &mut LoadOutcome,
) -> Result<(), LockError> {
    let span = file.span();
    let origin = ctx.origin(Some(span.start));
    let label = file
        .get_ref()
        .name
        .clone()
        .unwrap_or_else(|| format!("{} {}", package.name.get_ref(), kind.field));
    let result = build_file_artifact(ctx, package, entry, file.get_ref(), span, kind);
    if let Ok(artifact) = &result
        && matches!(artifact.details, Details::Pip { wheel: true })
    {
        let wheel = WheelName::parse(&artifact.filename).expect("checked while building");
        if let Err(why) = filter.wants_wheel(&wheel) {
            out.not_selected(&artifact.filename, &origin, why);
            return Ok(());
        }
    }
    out.take(result, &label, &origin, filter.skip_unfetchable)
}

fn build_file_artifact(
    ctx: Ctx<'_>,
    package: &Package,
    entry: &Entry,
    file: &FileRef,
    span: Range<usize>,
    kind: &Kind,
) -> Result<Artifact, LockError> {
    let at = ctx.at_offset(span.start);
    let field = &kind.field;
    let Some(raw_url) = &file.url else {
        if let Some(path) = &file.path {
            return Err(LockError::Unfetchable {
                at,
                entry: entry.clone(),
                reason: format!("{field} is a local file (`path = \"{path}\"`) with no `url`"),
            });
        }
        return Err(LockError::MissingField {
            at,
            entry: entry.clone(),
            field: format!("{field}.url"),
            hint: format!("every file needs a `url` (or `path`); {REGENERATE}"),
        });
    };
    let url = http_url(raw_url, &at, entry)?;
    let filename = match &file.name {
        Some(name) => name.clone(),
        None => last_segment_decoded(&url),
    };
    safe_file_name(&filename, &at, entry)?;
    let wheel = kind.wheel.unwrap_or_else(|| filename.ends_with(".whl"));
    if wheel {
        WheelName::parse(&filename).map_err(|e| LockError::Invalid {
            at: at.clone(),
            entry: entry.clone(),
            message: format!("{field}: {e}; set the wheel's `name` to its real file name"),
        })?;
    }
    let digests = hashes(file.hashes.as_ref(), &at, entry, field)?;
    Ok(Artifact {
        ecosystem: Ecosystem::Pip,
        name: package.name.get_ref().clone(),
        version: package.version.clone(),
        path: output_path(Ecosystem::Pip.dir_name(), &[&filename]),
        filename,
        urls: vec![url.to_string()],
        size: file.size,
        digests,
        arch: None,
        repo_id: None,
        origin: ctx.origin(Some(span.start)),
        details: Details::Pip { wheel },
    })
}

/// Digests from a `hashes` table: every algorithm strata knows (others, like md5 or blake2b,
/// are ignored); at least one of sha256/384/512 is required.
fn hashes(
    table: Option<&BTreeMap<String, String>>,
    at: &Location,
    entry: &Entry,
    field: &str,
) -> Result<Vec<Digest>, LockError> {
    let Some(table) = table else {
        return Err(LockError::MissingField {
            at: at.clone(),
            entry: entry.clone(),
            field: format!("{field}.hashes"),
            hint: format!(
                "strata verifies every file and needs e.g. `hashes = {{sha256 = \"...\"}}`; {REGENERATE}"
            ),
        });
    };
    let mut digests = Vec::new();
    for (alg, hex) in table {
        let Ok(algorithm) = alg.parse::<Algorithm>() else {
            continue;
        };
        let digest = Digest::new(algorithm, hex).map_err(|e| LockError::BadDigest {
            at: at.clone(),
            entry: entry.clone(),
            message: format!("{field}.hashes.{alg}: {e}; fix or regenerate the lock file"),
        })?;
        digests.push(digest);
    }
    if !digests.iter().any(|d| d.algorithm >= Algorithm::Sha256) {
        return Err(LockError::BadDigest {
            at: at.clone(),
            entry: entry.clone(),
            message: format!(
                "{field}.hashes has no sha256, sha384 or sha512 hash (found: {}); strata needs one to verify the file; {REGENERATE}",
                if table.is_empty() {
                    "none".to_string()
                } else {
                    table.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        });
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn run(text: &str, filter: &Filter) -> Result<LoadOutcome, LockError> {
        let lines = crate::ctx::LineIndex::new(text);
        parse(Ctx::new(Path::new("pylock.toml"), text, &lines), filter)
    }

    fn err(text: &str) -> String {
        run(text, &Filter::default()).unwrap_err().to_string()
    }

    fn lock(packages: &str) -> String {
        format!("lock-version = \"1.0\"\ncreated-by = \"test\"\n\n{packages}")
    }

    #[test]
    fn wheels_and_sdist_become_pip_artifacts() {
        let text = lock(&format!(
            r#"[[packages]]
name = "attrs"
version = "25.1.0"
sdist = {{ url = "http://127.0.0.1:8080/files/attrs-25.1.0.tar.gz", size = 10, hashes = {{ sha256 = "{SHA_A}" }} }}
wheels = [
  {{ name = "attrs-25.1.0-py3-none-any.whl", upload-time = 2025-01-25T11:30:10.164985+00:00, url = "http://127.0.0.1:8080/files/x", size = 63152, hashes = {{ sha256 = "{SHA_A}", md5 = "00" }} }},
]
"#
        ));
        let out = run(&text, &Filter::default()).unwrap();
        assert_eq!(out.artifacts.len(), 2);
        let wheel = &out.artifacts[0];
        assert_eq!(wheel.filename, "attrs-25.1.0-py3-none-any.whl");
        assert_eq!(wheel.path, "deps/pip/attrs-25.1.0-py3-none-any.whl");
        assert_eq!(wheel.urls, ["http://127.0.0.1:8080/files/x"]);
        assert_eq!(wheel.size, Some(63152));
        assert_eq!(wheel.digests.len(), 1, "md5 is ignored");
        assert_eq!(wheel.details, Details::Pip { wheel: true });
        assert_eq!(wheel.origin.line, Some(9));
        let sdist = &out.artifacts[1];
        assert_eq!(sdist.filename, "attrs-25.1.0.tar.gz");
        assert_eq!(sdist.version.as_deref(), Some("25.1.0"));
        assert_eq!(sdist.details, Details::Pip { wheel: false });
        assert_eq!(sdist.origin.line, Some(7));
    }

    #[test]
    fn file_name_from_url_is_percent_decoded() {
        let text = lock(&format!(
            "[[packages]]\nname = \"a\"\nsdist = {{ url = \"http://127.0.0.1/a%2Bb-1.0.tar.gz#frag\", hashes = {{ sha512 = \"{}\" }} }}\n",
            "b".repeat(128)
        ));
        let out = run(&text, &Filter::default()).unwrap();
        assert_eq!(out.artifacts[0].filename, "a+b-1.0.tar.gz");
        assert_eq!(out.artifacts[0].version, None);
    }

    #[test]
    fn archive_with_url_is_fetched_and_wheel_detected() {
        let text = lock(&format!(
            "[[packages]]\nname = \"a\"\narchive = {{ url = \"http://127.0.0.1/a-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{SHA_A}\" }} }}\n"
        ));
        let out = run(&text, &Filter::default()).unwrap();
        assert_eq!(out.artifacts[0].details, Details::Pip { wheel: true });
    }

    #[test]
    fn platform_filter_skips_foreign_wheels_but_keeps_sdists() {
        let wheel = |file: &str| {
            format!("{{ url = \"http://127.0.0.1/{file}\", hashes = {{ sha256 = \"{SHA_A}\" }} }}")
        };
        let text = lock(&format!(
            "[[packages]]\nname = \"numpy\"\nversion = \"2.2.3\"\nsdist = {}\nwheels = [{}, {}, {}, {}]\n",
            wheel("numpy-2.2.3.tar.gz"),
            wheel("numpy-2.2.3-cp312-cp312-win_amd64.whl"),
            wheel("numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            wheel("numpy-2.2.3-cp312-cp312-manylinux_2_17_aarch64.whl"),
            wheel("numpy-2.2.3-cp312-cp312-macosx_14_0_x86_64.whl"),
        ));
        let filter = Filter {
            arches: vec!["amd64".into()],
            ..Filter::default()
        };
        let out = run(&text, &filter).unwrap();
        let names: Vec<&str> = out.artifacts.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "numpy-2.2.3.tar.gz"
            ]
        );
        assert_eq!(out.skipped.len(), 3);
        assert!(
            out.skipped
                .iter()
                .all(|s| matches!(s.reason, crate::SkipReason::NotSelected(_)))
        );
        assert_eq!(run(&text, &Filter::default()).unwrap().artifacts.len(), 5);
        // A package with only foreign wheels and no sdist is named, not silently dropped.
        let text = lock(&format!(
            "[[packages]]\nname = \"macos-only\"\nversion = \"1.0\"\nwheels = [{}]\n",
            wheel("macos_only-1.0-cp312-cp312-macosx_14_0_arm64.whl"),
        ));
        let out = run(&text, &filter).unwrap();
        assert!(out.artifacts.is_empty());
        let last = out.skipped.last().unwrap();
        assert_eq!(last.name, "macos-only");
        assert!(
            matches!(&last.reason, crate::SkipReason::NoFileSelected(why) if why.contains("no wheel matches")),
            "{last:?}"
        );
    }

    #[test]
    fn unfetchable_packages_error_or_skip() {
        let text = lock(
            "[[packages]]\nname = \"local\"\ndirectory = { path = \"./src\" }\n\n\
             [[packages]]\nname = \"git\"\nvcs = { type = \"git\", url = \"http://127.0.0.1/r.git\", commit-id = \"abc\" }\n\n\
             [[packages]]\nname = \"pathonly\"\nsdist = { path = \"dist/p-1.tar.gz\", hashes = { sha256 = \"x\" } }\n\n\
             [[packages]]\nname = \"nothing\"\n",
        );
        let msg = err(&text);
        assert!(
            msg.starts_with(
                "pylock.toml:4:1: package `local`: is a local source tree (`directory`)"
            ),
            "{msg}"
        );
        assert!(msg.contains("--skip-unfetchable"), "{msg}");
        let out = run(
            &text,
            &Filter {
                skip_unfetchable: true,
                ..Filter::default()
            },
        )
        .unwrap();
        assert!(out.artifacts.is_empty());
        let skipped: Vec<&str> = out.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(skipped, ["local", "git", "pathonly sdist", "nothing"]);
        assert_eq!(out.skipped[1].origin.line, Some(8));
    }

    #[test]
    fn error_table() {
        let h = format!("hashes = {{ sha256 = \"{SHA_A}\" }}");
        let cases: Vec<(String, &str)> = vec![
            (
                "lock-version = \"1.0\"\n[[packages]\n".into(),
                "pylock.toml:2:",
            ),
            (
                "created-by = \"x\"\npackages = []\n".into(),
                "pylock.toml: `lock-version` is missing",
            ),
            (
                "lock-version = \"2.0\"\npackages = []\n".into(),
                "pylock.toml:1:16: pylock.toml lock-version `2.0` is not supported",
            ),
            (
                "lock-version = \"1.0\"\n".into(),
                "pylock.toml: `packages` is missing",
            ),
            (
                lock("[[packages]]\nversion = \"1\"\n"),
                "pylock.toml:4:1: missing field `name`",
            ),
            (
                lock("[[packages]]\nname = \"foo\"\nwheels = [{ size = 3 }]\n"),
                "pylock.toml:6:11: package `foo`: `wheels[0].url` is missing",
            ),
            (
                lock(
                    "[[packages]]\nname = \"foo\"\nsdist = { url = \"http://127.0.0.1/f-1.tar.gz\" }\n",
                ),
                "pylock.toml:6:9: package `foo`: `sdist.hashes` is missing",
            ),
            (
                lock(
                    "[[packages]]\nname = \"foo\"\nsdist = { url = \"http://127.0.0.1/f-1.tar.gz\", hashes = { md5 = \"00\" } }\n",
                ),
                "package `foo`: sdist.hashes has no sha256, sha384 or sha512 hash (found: md5)",
            ),
            (
                lock(
                    "[[packages]]\nname = \"foo\"\nsdist = { url = \"http://127.0.0.1/f-1.tar.gz\", hashes = { sha256 = \"abc\" } }\n",
                ),
                "package `foo`: sdist.hashes.sha256: `abc` is not a sha256 digest",
            ),
            (
                lock(&format!(
                    "[[packages]]\nname = \"foo\"\nsdist = {{ name = \"../evil.tar.gz\", url = \"http://127.0.0.1/f\", {h} }}\n"
                )),
                "pylock.toml:6:9: package `foo`: the file name `../evil.tar.gz` contains a path separator",
            ),
            (
                lock(&format!(
                    "[[packages]]\nname = \"foo\"\nsdist = {{ url = \"http://127.0.0.1/x/..%2F..%2Fetc%2Fpasswd\", {h} }}\n"
                )),
                "would escape its directory; refusing to write outside the output directory",
            ),
            (
                lock(&format!(
                    "[[packages]]\nname = \"foo\"\nwheels = [{{ url = \"http://127.0.0.1/foo.whl\", {h} }}]\n"
                )),
                "package `foo`: wheels[0]: `foo.whl` is not a valid wheel file name",
            ),
            (
                lock(&format!(
                    "[[packages]]\nname = \"foo\"\nsdist = {{ url = \"ftp://127.0.0.1/f.tar.gz\", {h} }}\n"
                )),
                "package `foo`: `ftp://127.0.0.1/f.tar.gz` is a ftp: URL, not http(s)",
            ),
            (
                lock(&format!(
                    "[[packages]]\nname = \"foo\"\ndirectory = {{ path = \".\" }}\nsdist = {{ url = \"http://127.0.0.1/f.tar.gz\", {h} }}\n"
                )),
                "pylock.toml:4:1: package `foo`: has more than one source (directory, sdist/wheels)",
            ),
        ];
        for (text, want) in cases {
            let msg = err(&text);
            assert!(msg.contains(want), "\n{text}\n got: {msg}\nwant: {want}");
        }
    }
}
