//! `package-lock.json` / `npm-shrinkwrap.json`, lockfileVersion 2 and 3 (the `packages` map).
//!
//! Skipped without a trace: the root `""` entry, `link: true` entries (workspaces, `file:`
//! directory links), `inBundle: true` entries (bundled dependencies, which ship inside their
//! parent's tarball) and local packages (keys outside any `node_modules/`, such as workspace
//! members). A `node_modules/` entry without `resolved` (a lockfile written with
//! `omit-lockfile-registry-resolved`, or hand-edited) is unfetchable, as is one whose
//! `resolved` is not http(s) (git, `file:` tarballs, `github:` shorthands): an error unless
//! skipped, never a silently missing dependency.
//!
//! File names follow Hermeto (`hermeto/core/package_managers/javascript/npm/resolver.py`):
//! a registry tarball (URL path `.../<name>/-/<file>.tgz`) becomes `<name>-<version>.tgz` with a
//! leading `@` dropped and `/` replaced by `-` (`@s/n` → `s-n-<version>.tgz`); any other https
//! tarball becomes `external-<name>/<name>-external-<alg>-<hex>.tgz` with the strongest
//! `integrity` hash. Hermeto recognises "registry" by host name; strata by the URL shape, so
//! private registries and mirrors get the registry layout too.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use indexmap::IndexMap;
use serde::Deserialize;
use url::Url;

use crate::artifact::{Algorithm, Artifact, Details, Digest, Ecosystem};
use crate::ctx::{Ctx, http_url, output_path, safe_file_name, safe_relative_path};
use crate::error::{Entry, Location, LockError, strip_position_suffix};
use crate::filter::Filter;
use crate::outcome::LoadOutcome;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageLock {
    lockfile_version: Option<serde_json::Value>,
    packages: Option<IndexMap<String, NpmEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NpmEntry {
    name: Option<String>,
    version: Option<String>,
    resolved: Option<String>,
    integrity: Option<String>,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    in_bundle: bool,
}

/// Entries that are not downloads of their own (see the module docs).
fn is_not_a_download(key: &str, entry: &NpmEntry) -> bool {
    let local_package = !key.starts_with("node_modules/") && !key.contains("/node_modules/");
    key.is_empty() || entry.link || entry.in_bundle || local_package && entry.resolved.is_none()
}

const REGENERATE: &str =
    "regenerate it with npm >= 7 (`npm install --package-lock-only --lockfile-version 3`)";

/// Parses a `package-lock.json` or `npm-shrinkwrap.json`.
pub(crate) fn parse(ctx: Ctx<'_>, filter: &Filter) -> Result<LoadOutcome, LockError> {
    let lock: PackageLock = serde_json::from_str(ctx.text).map_err(|e| LockError::Malformed {
        at: Location::at(ctx.file, e.line(), e.column()),
        entry: Entry::none(),
        message: format!(
            "{}; fix the JSON or {REGENERATE}",
            strip_position_suffix(&e.to_string())
        ),
    })?;
    let packages = check_version(ctx, &lock)?;
    let mut out = LoadOutcome::default();
    // Entries come in document order, so each key is searched for after the previous one:
    // one pass over the text for the whole lockfile.
    let mut cursor = 0;
    for (key, entry) in packages {
        let offset = ctx.find(&format!("\"{key}\""), cursor);
        cursor = offset.map_or(cursor, |o| o + key.len());
        if is_not_a_download(key, entry) {
            continue;
        }
        let origin = ctx.origin(offset);
        let result = artifact(ctx.at_opt(offset), key, entry, origin.clone());
        out.take(result, key, &origin, filter.skip_unfetchable)?;
    }
    Ok(out)
}

/// Accepts lockfileVersion 2 and 3 (with `packages`); explains how to upgrade anything else.
fn check_version<'l>(
    ctx: Ctx<'_>,
    lock: &'l PackageLock,
) -> Result<&'l IndexMap<String, NpmEntry>, LockError> {
    let at = ctx.at_opt(ctx.find("\"lockfileVersion\"", 0));
    let version = lock
        .lockfile_version
        .as_ref()
        .and_then(serde_json::Value::as_u64);
    match (version, &lock.packages) {
        (Some(2 | 3), Some(packages)) => Ok(packages),
        (Some(1) | None, _) | (Some(2 | 3), None) => Err(LockError::UnsupportedVersion {
            at,
            message: format!(
                "lockfileVersion {} without a `packages` map is not supported (it was written by npm 6 or older); {REGENERATE}",
                lock.lockfile_version
                    .as_ref()
                    .map_or("(missing)".to_string(), |v| v.to_string())
            ),
        }),
        (Some(other), _) => Err(LockError::UnsupportedVersion {
            at,
            message: format!(
                "lockfileVersion {other} is not supported (strata reads 2 and 3); {REGENERATE} or upgrade strata"
            ),
        }),
    }
}

fn artifact(
    at: Location,
    key: &str,
    entry: &NpmEntry,
    origin: crate::Origin,
) -> Result<Artifact, LockError> {
    let label = Entry::new(format!("package `{key}`"));
    let Some(resolved) = entry.resolved.as_deref() else {
        return Err(LockError::Unfetchable {
            at,
            entry: label,
            reason: format!(
                "has no `resolved` URL (written with omit-lockfile-registry-resolved?); {REGENERATE} and `omit-lockfile-registry-resolved` off"
            ),
        });
    };
    let url = http_url(resolved, &at, &label)?;
    let name = entry
        .name
        .clone()
        .unwrap_or_else(|| name_from_key(key).to_owned());
    let Some(integrity) = entry.integrity.clone() else {
        return Err(LockError::BadDigest {
            at,
            entry: label,
            message: format!(
                "has no `integrity`, so strata cannot verify `{resolved}`; {REGENERATE}"
            ),
        });
    };
    let digests = parse_sri(&integrity).map_err(|e| LockError::BadDigest {
        at: at.clone(),
        entry: label.clone(),
        message: format!("integrity: {e}; {REGENERATE}"),
    })?;
    let Some(version) = entry.version.clone() else {
        return Err(LockError::MissingField {
            at,
            entry: label,
            field: "version".into(),
            hint: REGENERATE.into(),
        });
    };
    let relative = if is_registry_tarball(&url) {
        let filename = registry_file_name(&name, &version);
        safe_file_name(&filename, &at, &label)?;
        filename
    } else {
        let strongest = digests
            .iter()
            .max_by_key(|d| d.algorithm)
            .expect("parse_sri returns at least one");
        format!(
            "external-{name}/{name}-external-{}-{}.tgz",
            strongest.algorithm,
            strongest.hex()
        )
    };
    let parts = safe_relative_path(&relative, &at, &label)?;
    Ok(Artifact {
        ecosystem: Ecosystem::Npm,
        name,
        version: Some(version),
        filename: parts.last().expect("split yields one part").to_string(),
        path: output_path(Ecosystem::Npm.dir_name(), &parts),
        urls: vec![url.to_string()],
        size: None,
        digests,
        arch: None,
        repo_id: None,
        origin,
        details: Details::Npm {
            lock_key: key.to_owned(),
            integrity,
        },
    })
}

/// The package name a `packages` key stands for: what follows the last `node_modules/`
/// (`node_modules/a/node_modules/@s/n` → `@s/n`), or the key itself for workspace paths.
fn name_from_key(key: &str) -> &str {
    key.rsplit_once("node_modules/")
        .map_or(key, |(_, name)| name)
}

/// Hermeto's registry tarball name: `<name>-<version>.tgz`, leading `@` dropped, `/` → `-`.
fn registry_file_name(name: &str, version: &str) -> String {
    format!("{name}-{version}.tgz")
        .trim_start_matches('@')
        .replace('/', "-")
}

/// Whether the URL has the npm registry tarball shape `.../<name>/-/<file>.tgz`.
fn is_registry_tarball(url: &Url) -> bool {
    let segments: Vec<&str> = url.path().split('/').collect();
    matches!(segments.as_slice(), [.., dash, file] if *dash == "-" && file.ends_with(".tgz"))
}

/// Parses a Subresource Integrity string (`sha512-<base64> sha1-<base64>`, options after `?`
/// ignored) into every digest strata can verify; unknown algorithms are ignored, as SRI says.
pub(crate) fn parse_sri(integrity: &str) -> Result<Vec<Digest>, String> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut digests: Vec<Digest> = Vec::new();
    for token in integrity.split_whitespace() {
        let Some((alg, value)) = token.split_once('-') else {
            continue;
        };
        let Ok(algorithm) = alg.parse::<Algorithm>() else {
            continue;
        };
        let value = value.split_once('?').map_or(value, |(v, _)| v);
        let bytes = engine
            .decode(value)
            .map_err(|e| format!("`{token}` is not valid base64 ({e})"))?;
        let digest = Digest::from_bytes(algorithm, &bytes).map_err(|_| {
            format!(
                "`{token}` holds {} bytes, but a {algorithm} digest has {}",
                bytes.len(),
                algorithm.len()
            )
        })?;
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    if digests.is_empty() {
        return Err(format!(
            "`{integrity}` has no sha1, sha256, sha384 or sha512 hash"
        ));
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    // sha512 and sha1 of the empty string, in SRI base64.
    const SHA512_EMPTY: &str =
        "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==";
    const SHA1_EMPTY: &str = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=";

    fn run(text: &str, filter: &Filter) -> Result<LoadOutcome, LockError> {
        let lines = crate::ctx::LineIndex::new(text);
        parse(
            Ctx::new(Path::new("package-lock.json"), text, &lines),
            filter,
        )
    }

    fn entry(resolved: &str, version: &str) -> String {
        format!(
            r#"{{ "version": "{version}", "resolved": "{resolved}", "integrity": "sha512-{SHA512_EMPTY}" }}"#
        )
    }

    #[test]
    fn sri_with_several_hashes_yields_all_supported() {
        let d = parse_sri(&format!(
            "sha1-{SHA1_EMPTY} sha512-{SHA512_EMPTY}?opt md5-xyz foo"
        ))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].to_string(),
            "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(d[1].algorithm, Algorithm::Sha512);
        assert!(d[1].hex().starts_with("cf83e1357eefb8bd"));
        assert_eq!(
            parse_sri("sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk").unwrap().len(),
            1,
            "padding is optional"
        );
        assert!(
            parse_sri("md5-abc")
                .unwrap_err()
                .contains("no sha1, sha256, sha384 or sha512")
        );
        assert!(
            parse_sri("sha512-!!!")
                .unwrap_err()
                .contains("not valid base64")
        );
        assert!(
            parse_sri(&format!("sha256-{SHA1_EMPTY}"))
                .unwrap_err()
                .contains("holds 20 bytes")
        );
    }

    #[test]
    fn registry_names_match_hermeto() {
        assert_eq!(registry_file_name("@s/n", "1.0.0"), "s-n-1.0.0.tgz");
        assert_eq!(registry_file_name("abbrev", "1.1.1"), "abbrev-1.1.1.tgz");
        assert_eq!(name_from_key("node_modules/a/node_modules/@s/n"), "@s/n");
        assert_eq!(name_from_key("node_modules/abbrev"), "abbrev");
        assert_eq!(name_from_key("packages/ws"), "packages/ws");
        assert!(is_registry_tarball(
            &Url::parse("http://127.0.0.1/@s/n/-/n-1.0.0.tgz").unwrap()
        ));
        assert!(!is_registry_tarball(
            &Url::parse("http://127.0.0.1/archive/v1.tar.gz").unwrap()
        ));
    }

    #[test]
    fn v3_lockfile_entries_become_artifacts() {
        let text = format!(
            r#"{{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {{
    "": {{ "name": "app", "version": "1.0.0", "workspaces": ["packages/*"] }},
    "node_modules/@scope/pkg": {},
    "node_modules/abbrev": {},
    "node_modules/ws": {{ "resolved": "packages/ws", "link": true }},
    "packages/ws": {{ "name": "ws", "version": "0.1.0" }},
    "node_modules/abbrev/node_modules/bundled": {{ "version": "1.0.0", "inBundle": true }},
    "node_modules/other/node_modules/abbrev": {},
    "node_modules/alias": {{ "name": "real-name", "version": "2.0.0", "resolved": "http://127.0.0.1:4873/real-name/-/real-name-2.0.0.tgz", "integrity": "sha1-{SHA1_EMPTY} sha512-{SHA512_EMPTY}" }},
    "node_modules/ext": {}
  }}
}}"#,
            entry("http://127.0.0.1:4873/@scope/pkg/-/pkg-1.2.3.tgz", "1.2.3"),
            entry("http://127.0.0.1:4873/abbrev/-/abbrev-1.1.1.tgz", "1.1.1"),
            entry("http://127.0.0.1:4873/abbrev/-/abbrev-1.1.1.tgz", "1.1.1"),
            entry("https://127.0.0.1:8443/archive/ext.tar.gz", "3.0.0"),
        );
        let out = parse_merged(&text);
        let paths: Vec<&str> = out.iter().map(|a| a.path.as_str()).collect();
        let hex = &out[3].store_digest().hex().to_string();
        assert_eq!(
            paths,
            [
                "deps/npm/scope-pkg-1.2.3.tgz",
                "deps/npm/abbrev-1.1.1.tgz",
                "deps/npm/real-name-2.0.0.tgz",
                &format!("deps/npm/external-ext/ext-external-sha512-{hex}.tgz"),
            ]
        );
        assert_eq!(out[0].name, "@scope/pkg");
        assert_eq!(out[0].filename, "scope-pkg-1.2.3.tgz");
        assert_eq!(out[0].origin.line, Some(5));
        assert_eq!(out[2].digests.len(), 2);
        assert_eq!(out[3].filename, format!("ext-external-sha512-{hex}.tgz"));
        match &out[1].details {
            Details::Npm {
                lock_key,
                integrity,
            } => {
                assert_eq!(lock_key, "node_modules/abbrev");
                assert_eq!(integrity, &format!("sha512-{SHA512_EMPTY}"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn parse_merged(text: &str) -> Vec<Artifact> {
        crate::parse(Path::new("package-lock.json"), text, &Filter::default()).unwrap()
    }

    #[test]
    fn scoped_external_layout_is_nested_like_hermeto() {
        let text = format!(
            r#"{{ "lockfileVersion": 2, "packages": {{ "node_modules/@s/n": {} }} }}"#,
            entry("https://127.0.0.1/t/n.tgz", "1.0.0")
        );
        let out = run(&text, &Filter::default()).unwrap();
        let a = &out.artifacts[0];
        assert!(
            a.path
                .starts_with("deps/npm/external-@s/n/@s/n-external-sha512-"),
            "{}",
            a.path
        );
        assert!(a.filename.starts_with("n-external-sha512-"));
    }

    #[test]
    fn non_http_resolved_is_unfetchable_unless_skipped() {
        let text = r#"{
  "lockfileVersion": 3,
  "packages": {
    "node_modules/g": { "version": "1.0.0", "resolved": "git+ssh://git@127.0.0.1/g.git#0123456789abcdef" },
    "node_modules/f": { "version": "1.0.0", "resolved": "file:vendor/f-1.0.0.tgz" },
    "node_modules/f/node_modules/b": { "version": "1.0.0", "inBundle": true },
    "packages/member": { "name": "member", "version": "0.1.0" },
    "node_modules/u": { "version": "2.0.0", "integrity": "sha512-AAAA" }
  }
}"#;
        // The first offending entry in document order is reported.
        let msg = run(text, &Filter::default()).unwrap_err().to_string();
        assert!(
            msg.starts_with("package-lock.json:4:5: package `node_modules/g`: `git+ssh://git@127.0.0.1/g.git#0123456789abcdef` is a git+ssh: URL, not http(s)"),
            "{msg}"
        );
        let out = run(
            text,
            &Filter {
                skip_unfetchable: true,
                ..Filter::default()
            },
        )
        .unwrap();
        assert!(out.artifacts.is_empty());
        // git, file: and the entry without `resolved`; the bundled one and the workspace
        // member are not downloads at all.
        let skipped: Vec<&str> = out.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            skipped,
            ["node_modules/g", "node_modules/f", "node_modules/u"]
        );
        let text = r#"{ "lockfileVersion": 3, "packages": {
    "node_modules/u": { "version": "2.0.0", "integrity": "sha512-AAAA" } } }"#;
        let msg = run(text, &Filter::default()).unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "package-lock.json:2:5: package `node_modules/u`: has no `resolved` URL"
            ),
            "{msg}"
        );
    }

    #[test]
    fn error_table() {
        let cases: Vec<(String, &str)> = vec![
            ("{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n}".into(), "package-lock.json:4:1: EOF while parsing an object"),
            (
                "{\n  \"lockfileVersion\": 1,\n  \"dependencies\": {}\n}".into(),
                "package-lock.json:2:3: lockfileVersion 1 without a `packages` map is not supported",
            ),
            ("{ \"name\": \"x\" }".into(), "lockfileVersion (missing) without a `packages` map"),
            ("{ \"lockfileVersion\": 4, \"packages\": {} }".into(), "lockfileVersion 4 is not supported (strata reads 2 and 3)"),
            (
                "{ \"lockfileVersion\": 3, \"packages\": { \"node_modules/a\": { \"version\": \"1\", \"resolved\": \"http://127.0.0.1/a/-/a-1.tgz\" } } }".into(),
                "package `node_modules/a`: has no `integrity`",
            ),
            (
                format!("{{ \"lockfileVersion\": 3, \"packages\": {{ \"node_modules/a\": {{ \"resolved\": \"http://127.0.0.1/a/-/a-1.tgz\", \"integrity\": \"sha512-{SHA512_EMPTY}\" }} }} }}"),
                "package `node_modules/a`: `version` is missing",
            ),
            (
                "{ \"lockfileVersion\": 3, \"packages\": { \"node_modules/a\": { \"version\": \"1\", \"resolved\": \"http://127.0.0.1/a/-/a-1.tgz\", \"integrity\": \"sha512-abc\" } } }".into(),
                "integrity: `sha512-abc` holds 2 bytes",
            ),
            (
                format!("{{ \"lockfileVersion\": 3, \"packages\": {{ \"node_modules/a\": {{ \"name\": \"a/../..\", {} }} }}", &entry("http://127.0.0.1/x.tgz", "1")[1..]),
                "package `node_modules/a`: in `external-a/../../a/../..-external-sha512-",
            ),
            ("{ \"lockfileVersion\": 3, \"packages\": { \"node_modules/a\": { \"link\": \"yes\" } } }".into(), "invalid type: string \"yes\", expected a boolean"),
        ];
        for (text, want) in cases {
            let msg = run(&text, &Filter::default()).unwrap_err().to_string();
            assert!(msg.contains(want), "\n{text}\n got: {msg}\nwant: {want}");
        }
    }

    #[test]
    fn v1_message_says_how_to_regenerate() {
        let msg = run(
            "{\"lockfileVersion\": 1, \"dependencies\": {}}",
            &Filter::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("npm install --package-lock-only --lockfile-version 3"),
            "{msg}"
        );
    }
}
