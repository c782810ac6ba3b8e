//! The package indexes, as pure functions of the artifact list: which projects and versions
//! are locked ([`Catalog`]), PEP 503 / PEP 691 pages and npm packuments.
//!
//! Nothing here does I/O; the HTTP layer picks what to render and writes it out.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use strata_lock::{Algorithm, Artifact, Details, Ecosystem};

use crate::names::{encode_path, normalize_project};

/// What the lockfiles lock, indexed for the registries: pip projects by PEP 503 name and npm
/// packages by name, each with the indices of its artifacts.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pip: BTreeMap<String, Vec<usize>>,
    npm: BTreeMap<String, Vec<usize>>,
    npm_tarballs: HashMap<(String, String), usize>,
}

impl Catalog {
    /// Indexes `artifacts` (the same slice the tree was built from; indices refer to it).
    pub fn new(artifacts: &[Artifact]) -> Catalog {
        let mut c = Catalog::default();
        for (i, a) in artifacts.iter().enumerate() {
            match a.ecosystem {
                Ecosystem::Pip => c.pip.entry(normalize_project(&a.name)).or_default().push(i),
                Ecosystem::Npm => {
                    let versions = c.npm.entry(a.name.clone()).or_default();
                    // One artifact per version: the same version locked twice (two lockfiles)
                    // is the same tarball (the tree rejects different content at one path).
                    if !versions.iter().any(|&j| artifacts[j].version == a.version) {
                        versions.push(i);
                    }
                    for file in npm_tarball_names(a) {
                        c.npm_tarballs.entry((a.name.clone(), file)).or_insert(i);
                    }
                }
                Ecosystem::Rpm | Ecosystem::Generic => {}
            }
        }
        for files in c.pip.values_mut() {
            files.sort_by(|&x, &y| artifacts[x].filename.cmp(&artifacts[y].filename));
            files.dedup_by(|x, y| artifacts[*x].filename == artifacts[*y].filename);
        }
        for versions in c.npm.values_mut() {
            versions.sort_by(|&x, &y| {
                compare_versions(
                    artifacts[x].version.as_deref().unwrap_or(""),
                    artifacts[y].version.as_deref().unwrap_or(""),
                )
            });
        }
        c
    }

    /// Locked pip projects (PEP 503 names, sorted) with their artifact indices.
    pub fn pip_projects(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.pip.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The artifacts of a pip project, by any spelling of its name.
    pub fn pip_project(&self, name: &str) -> Option<&[usize]> {
        self.pip.get(&normalize_project(name)).map(Vec::as_slice)
    }

    /// Locked npm packages (sorted) with their artifact indices, lowest version first.
    pub fn npm_packages(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.npm.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The artifacts (one per version) of an npm package.
    pub fn npm_package(&self, name: &str) -> Option<&[usize]> {
        self.npm.get(name).map(Vec::as_slice)
    }

    /// The artifact of an npm tarball request (`<name>/-/<file>`): `file` is the canonical
    /// `<unscoped name>-<version>.tgz` or the last segment of the locked URL.
    pub fn npm_tarball(&self, name: &str, file: &str) -> Option<usize> {
        self.npm_tarballs
            .get(&(name.to_owned(), file.to_owned()))
            .copied()
    }
}

/// The file names an npm artifact answers to under `<name>/-/`: the registry's canonical
/// `<unscoped>-<version>.tgz` and the last segment of each locked URL.
fn npm_tarball_names(a: &Artifact) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(v) = &a.version {
        names.push(canonical_tarball(&a.name, v));
    }
    for url in &a.urls {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        if let Some(last) = path.rsplit('/').next()
            && !last.is_empty()
        {
            names.push(crate::names::percent_decode(last).unwrap_or_else(|| last.to_owned()));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The registry's tarball file name: `<name without scope>-<version>.tgz`.
pub fn canonical_tarball(name: &str, version: &str) -> String {
    let unscoped = name.rsplit('/').next().unwrap_or(name);
    format!("{unscoped}-{version}.tgz")
}

/// Orders versions the semver way where they parse (`1.2.10` > `1.2.9`, `1.0.0-rc.1` <
/// `1.0.0`), falling back to byte order.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (Vec<u64>, Option<&str>) {
        let v = v.split('+').next().unwrap_or(v);
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        (
            core.split('.').map(|p| p.parse().unwrap_or(0)).collect(),
            pre,
        )
    }
    let (ca, pa) = split(a);
    let (cb, pb) = split(b);
    ca.cmp(&cb)
        .then_with(|| match (pa, pb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.cmp(y),
        })
        .then_with(|| a.cmp(b))
}

/// The representations of a simple index page (PEP 503 HTML, PEP 691 JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFormat {
    /// `application/vnd.pypi.simple.v1+json`.
    Json,
    /// `application/vnd.pypi.simple.v1+html`.
    Html,
    /// `text/html` (legacy PEP 503 clients).
    LegacyHtml,
}

impl IndexFormat {
    /// The Content-Type to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            IndexFormat::Json => "application/vnd.pypi.simple.v1+json",
            IndexFormat::Html => "application/vnd.pypi.simple.v1+html",
            IndexFormat::LegacyHtml => "text/html; charset=utf-8",
        }
    }
}

/// PEP 691 content negotiation: the supported type with the highest `q` in `accept`
/// (ties go to JSON, then the versioned HTML); no header means legacy HTML; `None` when the
/// client accepts none of them (answer 406).
pub fn negotiate(accept: Option<&str>) -> Option<IndexFormat> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(IndexFormat::LegacyHtml);
    };
    let mut best: Option<(f32, u8, IndexFormat)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let candidates: &[(u8, IndexFormat)] =
            match mime.as_str() {
                "application/vnd.pypi.simple.v1+json"
                | "application/vnd.pypi.simple.latest+json" => &[(3, IndexFormat::Json)],
                "application/vnd.pypi.simple.v1+html"
                | "application/vnd.pypi.simple.latest+html" => &[(2, IndexFormat::Html)],
                "text/html" => &[(1, IndexFormat::LegacyHtml)],
                "*/*" | "text/*" => &[(0, IndexFormat::LegacyHtml)],
                _ => &[],
            };
        for &(rank, format) in candidates {
            if q <= 0.0 {
                continue;
            }
            if best.is_none_or(|(bq, br, _)| q > bq || (q == bq && rank > br)) {
                best = Some((q, rank, format));
            }
        }
    }
    best.map(|(_, _, f)| f)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The root page: every locked project.
pub fn simple_root<'a>(
    projects: impl Iterator<Item = &'a str>,
    format: IndexFormat,
    base: &str,
) -> String {
    let projects: Vec<&str> = projects.collect();
    match format {
        IndexFormat::Json => {
            let list: Vec<Value> = projects.iter().map(|p| json!({ "name": p })).collect();
            json!({ "meta": { "api-version": "1.0" }, "projects": list }).to_string()
        }
        IndexFormat::Html | IndexFormat::LegacyHtml => {
            let mut out = String::from(
                "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Simple index</title>\n</head>\n<body>\n",
            );
            for p in projects {
                out.push_str(&format!(
                    "<a href=\"{base}{}/\">{}</a><br>\n",
                    encode_path(p),
                    html_escape(p)
                ));
            }
            out.push_str("</body>\n</html>\n");
            out
        }
    }
}

/// The hash a PEP 503 link fragment carries: sha256 when locked, else the strongest.
fn fragment_digest(a: &Artifact) -> &strata_lock::Digest {
    a.digests
        .iter()
        .find(|d| d.algorithm == Algorithm::Sha256)
        .unwrap_or_else(|| a.store_digest())
}

/// A project page: every locked file of the project, linked at `files_base` + the artifact's
/// tree path, with its hashes.
pub fn simple_project(
    project: &str,
    files: &[&Artifact],
    format: IndexFormat,
    files_base: &str,
) -> String {
    let url = |a: &Artifact| format!("{files_base}{}", encode_path(&a.path));
    match format {
        IndexFormat::Json => {
            let list: Vec<Value> = files
                .iter()
                .map(|a| {
                    let hashes: serde_json::Map<String, Value> = a
                        .digests
                        .iter()
                        .map(|d| (d.algorithm.name().to_owned(), Value::from(d.hex())))
                        .collect();
                    json!({ "filename": a.filename, "url": url(a), "hashes": hashes })
                })
                .collect();
            json!({ "meta": { "api-version": "1.0" }, "name": project, "files": list }).to_string()
        }
        IndexFormat::Html | IndexFormat::LegacyHtml => {
            let title = html_escape(project);
            let mut out = format!(
                "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Links for {title}</title>\n</head>\n<body>\n<h1>Links for {title}</h1>\n"
            );
            for a in files {
                let d = fragment_digest(a);
                out.push_str(&format!(
                    "<a href=\"{}#{}={}\">{}</a><br>\n",
                    html_escape(&url(a)),
                    d.algorithm,
                    d.hex(),
                    html_escape(&a.filename)
                ));
            }
            out.push_str("</body>\n</html>\n");
            out
        }
    }
}

/// An npm packument with exactly the locked versions. `registry` is the registry's own URL
/// (no trailing `/`); tarballs are at `<registry>/<name>/-/<unscoped>-<version>.tgz`.
/// `dist.integrity` is the lockfile's `integrity` verbatim; `dist.shasum` is set when the
/// lockfile has a sha1.
pub fn packument(name: &str, versions: &[&Artifact], registry: &str) -> Value {
    let mut map = serde_json::Map::new();
    let mut latest: Option<&str> = None;
    for a in versions {
        let Some(version) = a.version.as_deref() else {
            continue;
        };
        let integrity = match &a.details {
            Details::Npm { integrity, .. } => integrity.clone(),
            _ => a.store_digest().to_string(),
        };
        let mut dist = serde_json::Map::new();
        dist.insert(
            "tarball".into(),
            Value::from(format!(
                "{registry}/{}/-/{}",
                name,
                encode_path(&canonical_tarball(name, version))
            )),
        );
        dist.insert("integrity".into(), Value::from(integrity));
        if let Some(sha1) = a.digests.iter().find(|d| d.algorithm == Algorithm::Sha1) {
            dist.insert("shasum".into(), Value::from(sha1.hex()));
        }
        map.insert(
            version.to_owned(),
            json!({ "name": name, "version": version, "dist": dist }),
        );
        let stable = !version.contains('-');
        if stable && latest.is_none_or(|l| compare_versions(version, l) == Ordering::Greater) {
            latest = Some(version);
        }
    }
    let latest = latest.or_else(|| versions.last().and_then(|a| a.version.as_deref()));
    let mut doc = json!({ "name": name, "versions": map });
    if let Some(latest) = latest {
        doc["dist-tags"] = json!({ "latest": latest });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_lock::{Digest, Origin};

    fn artifact(eco: Ecosystem, name: &str, version: &str, file: &str) -> Artifact {
        let sha256 = Digest::new(Algorithm::Sha256, &"ab".repeat(32)).unwrap();
        let sha512 = Digest::new(Algorithm::Sha512, &"cd".repeat(64)).unwrap();
        let (path, digests, details) = match eco {
            Ecosystem::Npm => (
                format!("deps/npm/{file}"),
                vec![sha512],
                Details::Npm {
                    lock_key: format!("node_modules/{name}"),
                    integrity: "sha512-zz==".into(),
                },
            ),
            _ => (
                format!("deps/pip/{file}"),
                vec![sha256],
                Details::Pip { wheel: true },
            ),
        };
        Artifact {
            ecosystem: eco,
            name: name.into(),
            version: Some(version.into()),
            filename: file.into(),
            urls: vec![format!("http://127.0.0.1:1/x/{name}/-/{file}")],
            size: None,
            digests,
            arch: None,
            repo_id: None,
            path,
            origin: Origin {
                lockfile: "l".into(),
                line: None,
            },
            details,
        }
    }

    #[test]
    fn negotiation_follows_pep_691() {
        let cases: &[(Option<&str>, Option<IndexFormat>)] = &[
            (None, Some(IndexFormat::LegacyHtml)),
            (Some(""), Some(IndexFormat::LegacyHtml)),
            (Some("text/html"), Some(IndexFormat::LegacyHtml)),
            (Some("*/*"), Some(IndexFormat::LegacyHtml)),
            (
                // pip
                Some(
                    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
                ),
                Some(IndexFormat::Json),
            ),
            (
                Some(
                    "application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json;q=0.5",
                ),
                Some(IndexFormat::Html),
            ),
            (
                Some("application/vnd.pypi.simple.latest+json"),
                Some(IndexFormat::Json),
            ),
            (
                Some("application/vnd.pypi.simple.v1+json;q=0, text/html"),
                Some(IndexFormat::LegacyHtml),
            ),
            (Some("application/xml"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn catalog_groups_by_normalized_name_and_tarball() {
        let artifacts = vec![
            artifact(
                Ecosystem::Pip,
                "Foo_Bar",
                "1.0",
                "Foo_Bar-1.0-py3-none-any.whl",
            ),
            artifact(Ecosystem::Pip, "foo.bar", "1.0", "foo.bar-1.0.tar.gz"),
            artifact(Ecosystem::Npm, "@s/n", "1.10.0", "s-n-1.10.0.tgz"),
            artifact(Ecosystem::Npm, "@s/n", "1.9.0", "s-n-1.9.0.tgz"),
            artifact(Ecosystem::Npm, "@s/n", "1.9.0", "s-n-1.9.0.tgz"),
        ];
        let c = Catalog::new(&artifacts);
        assert_eq!(
            c.pip_projects().map(|p| p.0).collect::<Vec<_>>(),
            ["foo-bar"]
        );
        assert_eq!(c.pip_project("FOO-bar").unwrap(), [0, 1]);
        assert_eq!(c.pip_project("foo__BAR").unwrap().len(), 2);
        assert!(c.pip_project("other").is_none());
        assert_eq!(
            c.npm_package("@s/n").unwrap(),
            [3, 2],
            "sorted by semver, deduplicated"
        );
        assert_eq!(c.npm_tarball("@s/n", "n-1.9.0.tgz"), Some(3));
        assert_eq!(
            c.npm_tarball("@s/n", "s-n-1.10.0.tgz"),
            Some(2),
            "URL basename"
        );
        assert_eq!(c.npm_tarball("@s/n", "n-2.0.0.tgz"), None);
        assert_eq!(c.npm_tarball("n", "n-1.9.0.tgz"), None);
    }

    #[test]
    fn version_order() {
        for (a, b, want) in [
            ("1.2.10", "1.2.9", Ordering::Greater),
            ("1.0.0-rc.1", "1.0.0", Ordering::Less),
            ("2.0.0", "10.0.0", Ordering::Less),
            ("1.0.0", "1.0.0", Ordering::Equal),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn project_pages() {
        let a = artifact(
            Ecosystem::Pip,
            "pkg",
            "1.0",
            "pkg-1.0+local-py3-none-any.whl",
        );
        let html = simple_project("pkg", &[&a], IndexFormat::Html, "/tree/");
        assert!(html.contains("<meta name=\"pypi:repository-version\" content=\"1.0\">"));
        assert!(html.contains(&format!(
            "<a href=\"/tree/deps/pip/pkg-1.0+local-py3-none-any.whl#sha256={}\">pkg-1.0+local-py3-none-any.whl</a>",
            "ab".repeat(32)
        )), "{html}");
        let json: Value =
            serde_json::from_str(&simple_project("pkg", &[&a], IndexFormat::Json, "/tree/"))
                .unwrap();
        assert_eq!(json["meta"]["api-version"], "1.0");
        assert_eq!(json["name"], "pkg");
        assert_eq!(json["files"][0]["hashes"]["sha256"], "ab".repeat(32));
        assert_eq!(
            json["files"][0]["url"],
            "/tree/deps/pip/pkg-1.0+local-py3-none-any.whl"
        );
        let root: Value = serde_json::from_str(&simple_root(
            ["a", "b-c"].into_iter(),
            IndexFormat::Json,
            "/simple/",
        ))
        .unwrap();
        assert_eq!(root["projects"][1]["name"], "b-c");
        let html = simple_root(["b-c"].into_iter(), IndexFormat::LegacyHtml, "/simple/");
        assert!(html.contains("<a href=\"/simple/b-c/\">b-c</a>"));
    }

    #[test]
    fn packuments_hold_only_locked_versions() {
        let v1 = artifact(Ecosystem::Npm, "@s/n", "1.0.0", "s-n-1.0.0.tgz");
        let v2 = artifact(
            Ecosystem::Npm,
            "@s/n",
            "2.0.0-beta.1",
            "s-n-2.0.0-beta.1.tgz",
        );
        let doc = packument("@s/n", &[&v1, &v2], "http://127.0.0.1:9/npm");
        assert_eq!(doc["name"], "@s/n");
        assert_eq!(
            doc["dist-tags"]["latest"], "1.0.0",
            "prereleases are not latest"
        );
        assert_eq!(doc["versions"].as_object().unwrap().len(), 2);
        assert_eq!(
            doc["versions"]["1.0.0"]["dist"]["tarball"],
            "http://127.0.0.1:9/npm/@s/n/-/n-1.0.0.tgz"
        );
        assert_eq!(doc["versions"]["1.0.0"]["dist"]["integrity"], "sha512-zz==");
        assert!(doc["versions"]["1.0.0"]["dist"].get("shasum").is_none());
    }
}
