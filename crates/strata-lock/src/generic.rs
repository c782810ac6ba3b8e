//! `artifacts.lock.yaml`, Hermeto's generic fetcher lockfile
//! (`hermeto/core/package_managers/generic/models.py`).
//!
//! ```yaml
//! metadata: {version: "1.0"}          # or "2.0"
//! artifacts:
//! - download_url: https://...         # a URL artifact
//!   checksum: "sha256:<hex>"
//!   filename: optional/sub/path.tar.gz  # default: last URL path segment
//! - type: maven                       # a Maven artifact; URL and file name derived
//!   checksum: "sha256:<hex>"
//!   attributes: {repository_url, group_id, artifact_id, version, classifier?, type?: jar}
//! ```
//!
//! Files go to `deps/generic/<filename>`; as in Hermeto, `filename` may be a relative path
//! below `deps/generic/` but never escape it. Version 2.0 `auth` sections are rejected (strata
//! takes credentials from `.netrc` instead). Unknown keys are errors, as in Hermeto.

use serde::Deserialize;

use crate::artifact::{Artifact, Details, Digest, Ecosystem};
use crate::ctx::{Ctx, http_url, last_segment, output_path, safe_relative_path};
use crate::error::{Entry, Location, LockError};
use crate::filter::Filter;
use crate::outcome::LoadOutcome;
use crate::rpm::from_yaml;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericLock {
    metadata: Option<Metadata>,
    artifacts: Option<Vec<GenericEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    version: Option<serde_norway::Value>,
}

/// Either kind of entry; which fields must be set is checked after parsing, for clear messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericEntry {
    download_url: Option<String>,
    checksum: Option<String>,
    filename: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    attributes: Option<MavenAttributes>,
    auth: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MavenAttributes {
    repository_url: String,
    group_id: String,
    artifact_id: String,
    version: String,
    #[serde(default)]
    classifier: String,
    #[serde(rename = "type", default = "default_maven_type")]
    kind: String,
}

fn default_maven_type() -> String {
    "jar".into()
}

const FORMAT: &str =
    "see Hermeto's generic fetcher documentation for the artifacts.lock.yaml format";

/// Parses an `artifacts.lock.yaml`.
pub(crate) fn parse(ctx: Ctx<'_>, filter: &Filter) -> Result<LoadOutcome, LockError> {
    let lock: GenericLock = from_yaml(ctx, &format!("fix the YAML; {FORMAT}"))?;
    check_version(ctx, &lock)?;
    let entries = lock.artifacts.ok_or_else(|| LockError::MissingField {
        at: ctx.whole(),
        entry: Entry::none(),
        field: "artifacts".into(),
        hint: format!("list the files under `artifacts:`; {FORMAT}"),
    })?;
    let mut out = LoadOutcome::default();
    let mut cursor = 0;
    for (i, entry) in entries.iter().enumerate() {
        let needle = entry
            .download_url
            .as_deref()
            .or(entry.attributes.as_ref().map(|a| a.artifact_id.as_str()))
            .or(entry.checksum.as_deref())
            .unwrap_or_default();
        let offset = ctx.find(needle, cursor);
        if let Some(o) = offset {
            cursor = o;
        }
        let origin = ctx.origin(offset);
        let label = Entry::new(format!("artifacts[{i}]"));
        let result = artifact(ctx.at_opt(offset), &label, entry, origin.clone());
        out.take(result, needle, &origin, filter.skip_unfetchable)?;
    }
    Ok(out)
}

fn check_version(ctx: Ctx<'_>, lock: &GenericLock) -> Result<(), LockError> {
    let version = lock.metadata.as_ref().and_then(|m| m.version.as_ref());
    let Some(version) = version else {
        return Err(LockError::MissingField {
            at: ctx.whole(),
            entry: Entry::none(),
            field: "metadata.version".into(),
            hint: format!("start the file with `metadata: {{version: \"1.0\"}}`; {FORMAT}"),
        });
    };
    match version.as_str() {
        Some("1.0" | "2.0") => Ok(()),
        _ => Err(LockError::UnsupportedVersion {
            at: ctx.at_opt(ctx.find("version", 0)),
            message: format!(
                "artifacts.lock.yaml metadata.version `{}` is not supported (strata reads \"1.0\" and \"2.0\", as strings); {FORMAT}",
                serde_norway::to_string(version).unwrap_or_default().trim()
            ),
        }),
    }
}

fn artifact(
    at: Location,
    label: &Entry,
    entry: &GenericEntry,
    origin: crate::Origin,
) -> Result<Artifact, LockError> {
    let invalid = |message: String| LockError::Invalid {
        at: at.clone(),
        entry: label.clone(),
        message,
    };
    if entry.auth.is_some() {
        return Err(invalid(
            "`auth` is not supported by strata yet; remove it and put the credentials for this host in ~/.netrc".into(),
        ));
    }
    let (raw_url, default_name, name, version) = match (
        &entry.kind,
        &entry.attributes,
        &entry.download_url,
    ) {
        (None, None, Some(url)) => (url.clone(), None, None, None),
        (Some(kind), Some(attrs), None) if kind == "maven" => {
            let file = maven_file_name(attrs);
            (
                maven_url(attrs, &file),
                Some(file),
                Some(attrs.artifact_id.clone()),
                Some(attrs.version.clone()),
            )
        }
        (Some(kind), _, _) if kind != "maven" => {
            return Err(invalid(format!(
                "artifact type `{kind}` is not supported (strata reads URL artifacts and `type: maven`)"
            )));
        }
        (Some(_), None, _) => {
            return Err(LockError::MissingField {
                at,
                entry: label.clone(),
                field: "attributes".into(),
                hint: format!(
                    "a `type: maven` artifact needs repository_url, group_id, artifact_id and version; {FORMAT}"
                ),
            });
        }
        (None, None, None) => {
            return Err(LockError::MissingField {
                at,
                entry: label.clone(),
                field: "download_url".into(),
                hint: format!("give the URL to download the file from; {FORMAT}"),
            });
        }
        _ => {
            return Err(invalid(format!(
                "mixes `download_url` with `type`/`attributes`; use one or the other; {FORMAT}"
            )));
        }
    };
    let url = http_url(&raw_url, &at, label)?;
    let relative = match (&entry.filename, default_name) {
        (Some(given), _) if !given.is_empty() => given.clone(),
        (_, Some(maven)) => maven,
        _ => last_segment(&url).to_owned(),
    };
    let parts = safe_relative_path(&relative, &at, label)?;
    let Some(checksum) = &entry.checksum else {
        return Err(LockError::MissingField {
            at,
            entry: label.clone(),
            field: "checksum".into(),
            hint: format!("add `checksum: sha256:<hex>`; {FORMAT}"),
        });
    };
    let digest: Digest = checksum.parse().map_err(|e| LockError::BadDigest {
        at: at.clone(),
        entry: label.clone(),
        message: format!("checksum: {e}"),
    })?;
    Ok(Artifact {
        ecosystem: Ecosystem::Generic,
        name: name.unwrap_or_else(|| relative.clone()),
        version,
        filename: parts.last().expect("split yields one part").to_string(),
        path: output_path(Ecosystem::Generic.dir_name(), &parts),
        urls: vec![url.to_string()],
        size: None,
        digests: vec![digest],
        arch: None,
        repo_id: None,
        origin,
        details: Details::Generic,
    })
}

/// Hermeto's Maven file name: `<artifact_id>-<version>[-<classifier>].<extension>`.
fn maven_file_name(attrs: &MavenAttributes) -> String {
    let extension = match attrs.kind.as_str() {
        "maven-plugin" | "ejb" | "ejb-client" | "javadoc" | "javadoc-source" | "test-jar" => "jar",
        other => other,
    };
    let mut name = format!("{}-{}", attrs.artifact_id, attrs.version);
    if !attrs.classifier.is_empty() {
        name.push('-');
        name.push_str(&attrs.classifier);
    }
    format!("{name}.{extension}")
}

/// Hermeto's Maven URL: `<repository_url>/<group/as/path>/<artifact_id>/<version>/<file>`.
fn maven_url(attrs: &MavenAttributes, file: &str) -> String {
    format!(
        "{}/{}/{}/{}/{file}",
        attrs.repository_url.trim_end_matches('/'),
        attrs.group_id.replace('.', "/"),
        attrs.artifact_id,
        attrs.version
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SHA: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn run(text: &str) -> Result<LoadOutcome, LockError> {
        let lines = crate::ctx::LineIndex::new(text);
        parse(
            Ctx::new(Path::new("artifacts.lock.yaml"), text, &lines),
            &Filter::default(),
        )
    }

    fn lock(body: &str) -> String {
        format!("---\nmetadata:\n  version: \"1.0\"\nartifacts:\n{body}")
    }

    #[test]
    fn url_and_maven_artifacts() {
        let text = lock(&format!(
            "  - download_url: http://127.0.0.1:8080/files/tool-1.0.tar.gz
    checksum: {SHA}
  - download_url: http://127.0.0.1:8080/files/get?id=7
    filename: vendor/tool.bin
    checksum: {SHA}
  - type: maven
    filename: guava.jar
    attributes:
      repository_url: http://127.0.0.1:8080/maven2/
      group_id: com.google.guava
      artifact_id: guava
      version: 33.0.0-jre
    checksum: {SHA}
  - type: maven
    attributes:
      repository_url: http://127.0.0.1:8080/maven2
      group_id: org.example
      artifact_id: plugin
      version: '1.2'
      classifier: sources
      type: maven-plugin
    checksum: {SHA}
"
        ));
        let out = run(&text).unwrap().artifacts;
        let paths: Vec<&str> = out.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "deps/generic/tool-1.0.tar.gz",
                "deps/generic/vendor/tool.bin",
                "deps/generic/guava.jar",
                "deps/generic/plugin-1.2-sources.jar"
            ]
        );
        assert_eq!(out[0].name, "tool-1.0.tar.gz");
        assert_eq!(out[0].origin.line, Some(5));
        assert_eq!(out[1].filename, "tool.bin");
        assert_eq!(out[1].urls, ["http://127.0.0.1:8080/files/get?id=7"]);
        assert_eq!(
            out[2].urls,
            ["http://127.0.0.1:8080/maven2/com/google/guava/guava/33.0.0-jre/guava-33.0.0-jre.jar"]
        );
        assert_eq!(out[2].name, "guava");
        assert_eq!(out[2].version.as_deref(), Some("33.0.0-jre"));
        assert_eq!(
            out[3].urls,
            ["http://127.0.0.1:8080/maven2/org/example/plugin/1.2/plugin-1.2-sources.jar"]
        );
        assert_eq!(out[3].store_digest().to_string(), SHA);
    }

    #[test]
    fn version_two_without_auth_is_read() {
        let text = format!(
            "metadata:\n  version: '2.0'\nartifacts:\n- download_url: http://127.0.0.1/a\n  checksum: {SHA}\n"
        );
        assert_eq!(run(&text).unwrap().artifacts.len(), 1);
    }

    #[test]
    fn error_table() {
        let cases: Vec<(String, &str)> = vec![
            (
                "metadata: {version: \"1.0\"\nartifacts: []\n".into(),
                "artifacts.lock.yaml:2:1: did not find expected ',' or '}', while parsing a flow mapping; fix the YAML",
            ),
            (
                "metadata:\n  version: \"1.0\"\nartifacts:\n  - download_url: [1]\n".into(),
                "artifacts.lock.yaml:4:19: artifacts[0].download_url: invalid type: sequence",
            ),
            (
                "metadata:\n  version: 1.0\nartifacts: []\n".into(),
                "artifacts.lock.yaml:2:3: artifacts.lock.yaml metadata.version `1.0` is not supported",
            ),
            (
                "metadata:\n  version: \"3.0\"\nartifacts: []\n".into(),
                "metadata.version `'3.0'` is not supported",
            ),
            (
                "artifacts: []\n".into(),
                "artifacts.lock.yaml: `metadata.version` is missing",
            ),
            (
                "metadata:\n  version: \"1.0\"\n".into(),
                "artifacts.lock.yaml: `artifacts` is missing",
            ),
            (
                lock(&format!(
                    "  - download_url: http://127.0.0.1/a\n    checksums: {SHA}\n"
                )),
                "artifacts.lock.yaml:6:5: artifacts[0]: unknown field `checksums`",
            ),
            (
                lock("  - download_url: http://127.0.0.1/a\n"),
                "artifacts.lock.yaml:5:19: artifacts[0]: `checksum` is missing",
            ),
            (
                lock("  - download_url: http://127.0.0.1/a\n    checksum: sha256\n"),
                "artifacts[0]: checksum: `sha256` is not a checksum of the form `alg:hex`",
            ),
            (
                lock(&format!(
                    "  - download_url: http://127.0.0.1/a\n    filename: ../../etc/cron.d/x\n    checksum: {SHA}\n"
                )),
                "artifacts[0]: in `../../etc/cron.d/x`: the file name `..` would escape its directory",
            ),
            (
                lock(&format!(
                    "  - download_url: http://127.0.0.1/a\n    filename: /etc/passwd\n    checksum: {SHA}\n"
                )),
                "`/etc/passwd` is an absolute path",
            ),
            (
                lock(&format!("  - checksum: {SHA}\n")),
                "artifacts.lock.yaml:5:15: artifacts[0]: `download_url` is missing",
            ),
            (
                lock(&format!("  - type: npm\n    checksum: {SHA}\n")),
                "artifact type `npm` is not supported",
            ),
            (
                lock(&format!("  - type: maven\n    checksum: {SHA}\n")),
                "`attributes` is missing",
            ),
            (
                lock(&format!(
                    "  - download_url: http://127.0.0.1/a\n    type: maven\n    checksum: {SHA}\n"
                )),
                "`attributes` is missing",
            ),
            (
                lock(&format!(
                    "  - download_url: http://127.0.0.1/a\n    auth:\n      bearer:\n        value: $TOKEN\n    checksum: {SHA}\n"
                )),
                "`auth` is not supported by strata yet; remove it and put the credentials for this host in ~/.netrc",
            ),
            (
                lock(&format!(
                    "  - download_url: git://127.0.0.1/a\n    checksum: {SHA}\n"
                )),
                "`git://127.0.0.1/a` is a git: URL, not http(s)",
            ),
        ];
        for (text, want) in cases {
            let msg = run(&text).unwrap_err().to_string();
            assert!(msg.contains(want), "\n{text}\n got: {msg}\nwant: {want}");
        }
    }
}
