//! Rewriting `package-lock.json` so that npm installs from the output tree.
//!
//! Hermeto (`hermeto/core/package_managers/javascript/npm/resolver.py`,
//! `_update_package_lock_with_local_paths`) replaces the `resolved` field of every downloaded
//! entry of `packages` with `file://${output_dir}/deps/npm/<archive>` and stores the whole
//! rewritten lockfile as a project file template; `inject-files` later substitutes
//! `${output_dir}`. Archive names are `<name>-<version>.tgz` with a leading `@` dropped and `/`
//! turned into `-` (`@s/n` → `s-n-1.0.0.tgz`). The legacy `dependencies` tree of v2 lockfiles
//! is left alone, as Hermeto leaves it (npm ≥ 7 reads `packages`).
//!
//! strata keeps the rest of the file as npm wrote it: key order, the indent npm detected, raw
//! UTF-8, and a final newline.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::template::{self, OUTPUT_DIR_PLACEHOLDER};

/// Why a lockfile could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum NpmRewriteError {
    /// The text is not JSON.
    #[error("the lockfile is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document has no `packages` object (lockfileVersion 1).
    #[error(
        "the lockfile has no `packages` object; strata needs lockfileVersion 2 or 3 \
         (run `npm install --lockfile-version 3` to upgrade it)"
    )]
    NoPackages,
    /// An artifact's lock key is not in `packages`: the lockfile changed since it was read.
    #[error(
        "`packages` has no entry `{0}`; the lockfile changed after strata read it, run the \
         command again"
    )]
    MissingEntry(String),
}

/// The archive name Hermeto gives an npm registry tarball: `<name>-<version>.tgz`, without a
/// leading `@`, with `/` replaced by `-`.
pub fn npm_archive_name(name: &str, version: &str) -> String {
    let file = format!("{name}-{version}.tgz");
    file.strip_prefix('@').unwrap_or(&file).replace('/', "-")
}

/// Rewrites `resolved` of each entry of `packages` named in `files` (lock key such as
/// `node_modules/@s/n` → file name under `deps/npm/`) to
/// `file://<for_output_dir>/deps/npm/<file>`, keeping everything else as it was.
///
/// `for_output_dir` may be a path (`/cachi2/output`) or the `${output_dir}` placeholder.
pub fn rewrite_npm_lockfile(
    json_text: &str,
    files: &BTreeMap<String, String>,
    for_output_dir: &str,
) -> Result<String, NpmRewriteError> {
    let mut doc: serde_json::Value = serde_json::from_str(json_text)?;
    let packages = doc
        .get_mut("packages")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or(NpmRewriteError::NoPackages)?;
    for (key, file) in files {
        let entry = packages
            .get_mut(key)
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| NpmRewriteError::MissingEntry(key.clone()))?;
        let url = format!("file://{for_output_dir}/deps/npm/{file}");
        entry.insert("resolved".to_owned(), serde_json::Value::String(url));
    }
    Ok(to_npm_json(&doc, &detect_indent(json_text)))
}

/// The project file template for a lockfile: the rewrite with the `${output_dir}` placeholder,
/// every other `$` escaped so that Hermeto's and strata's `inject-files` give back the
/// original characters.
pub fn npm_lockfile_template(
    json_text: &str,
    files: &BTreeMap<String, String>,
) -> Result<String, NpmRewriteError> {
    rewrite_npm_lockfile(&template::escape(json_text), files, OUTPUT_DIR_PLACEHOLDER)
}

/// The indent of the first indented line (npm keeps the indent it finds), two spaces if none.
fn detect_indent(text: &str) -> String {
    text.lines()
        .map(|l| &l[..l.len() - l.trim_start_matches([' ', '\t']).len()])
        .find(|ws| !ws.is_empty())
        .unwrap_or("  ")
        .to_owned()
}

fn to_npm_json(doc: &serde_json::Value, indent: &str) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    doc.serialize(&mut ser)
        .expect("a JSON value always serialises");
    buf.push(b'\n');
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        for (name, version, want) in [
            ("is-positive", "1.0.0", "is-positive-1.0.0.tgz"),
            ("@types/react", "18.2.18", "types-react-18.2.18.tgz"),
            ("@s/n", "1.0.0-rc.1", "s-n-1.0.0-rc.1.tgz"),
        ] {
            assert_eq!(npm_archive_name(name, version), want);
        }
    }

    #[test]
    fn indent_detection() {
        assert_eq!(detect_indent("{\n  \"a\": 1\n}\n"), "  ");
        assert_eq!(detect_indent("{\n\t\"a\": 1\n}\n"), "\t");
        assert_eq!(detect_indent("{\"a\":1}"), "  ");
    }

    #[test]
    fn errors_are_specific() {
        let files = BTreeMap::from([("node_modules/x".to_owned(), "x-1.tgz".to_owned())]);
        assert!(matches!(
            rewrite_npm_lockfile("{", &files, "/o"),
            Err(NpmRewriteError::Json(_))
        ));
        assert!(matches!(
            rewrite_npm_lockfile(r#"{"dependencies":{}}"#, &files, "/o"),
            Err(NpmRewriteError::NoPackages)
        ));
        assert!(matches!(
            rewrite_npm_lockfile(r#"{"packages":{}}"#, &files, "/o"),
            Err(NpmRewriteError::MissingEntry(k)) if k == "node_modules/x"
        ));
    }
}
