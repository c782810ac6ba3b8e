//! `bom.json`: a CycloneDX 1.6 SBOM in the shape Hermeto writes.
//!
//! Followed from `hermeto/core/models/sbom.py` (`Sbom`, `Component`, `Annotation`,
//! `merge_component_properties`), `property_semantics.py` and the backends' `to_component`
//! code, serialised like `model_dump_json(indent=2, by_alias=True, exclude_none=True)`:
//!
//! - top level, in this order: `bomFormat`, `annotations` (only when there are any),
//!   `components`, `metadata.tools`, `specVersion: "1.6"`, `version: 1`; no timestamp outside
//!   annotations.
//! - a component: `bom-ref` (= purl), `name`, `purl`, `version` (omitted when none),
//!   `properties` (sorted by name then value, always with `hermeto:found_by`), `type`
//!   (`library`, `file` for generic artifacts), `externalReferences` (generic only:
//!   `{"url", "type": "distribution"}`).
//! - components sorted by purl; components with the same purl are merged (first one wins,
//!   properties merged: `hermeto:pip:package:binary` if any had it).
//! - one annotation per backend with components, in backend name order (generic, npm, pip,
//!   rpm): `{"subjects": [sorted bom-refs], "annotator": {"organization": {"name"}},
//!   "timestamp": "YYYY-MM-DDTHH:MM:SSZ", "text": "hermeto:backend:<name>"}`. The timestamp is
//!   a parameter ([`SbomOptions::timestamp`]); without one there are no annotations, so the
//!   SBOM is a pure function of the artifacts.
//!
//! Per ecosystem (what strata knows from lockfiles alone, without reading package headers):
//! - pip: name PEP 503-normalised, `pkg:pypi/<name>@<version>`, `hermeto:pip:package:binary`
//!   for wheels.
//! - npm: `pkg:npm/<lower-cased name, @ as %40>@<version>`.
//! - rpm: only packages and source packages (not module metadata); component version is the
//!   `version` part of the EVR, the purl version is `version-release`, qualifiers `arch`
//!   (`src` for source RPMs), `epoch` (when the EVR has one), `repository_id` (unless
//!   generated), `checksum`, and `download_url` only without a repository id. The purl
//!   namespace comes from the RPM Vendor header in Hermeto; strata leaves it out unless
//!   [`SbomOptions::rpm_namespace`] is set.
//! - generic: name = file name, no version, `type: file`, `pkg:generic/<name>?checksum=&
//!   download_url=`, and a `distribution` external reference.
//!
//! Properties must stay within Hermeto's `PropertyEnum`: `hermeto merge-sboms` rejects any
//! other property name, and rejects unknown component fields such as `hashes` (its pydantic
//! models forbid extras). That is why [`SbomOptions::include_hashes`] is off by default.

use std::collections::BTreeMap;

use serde::Serialize;
use strata_lock::{Algorithm, Artifact, Details, Ecosystem, RpmKind};

use crate::purl::{Purl, canonicalize_pypi_name};
use crate::rpm::is_generated_repoid;

/// Knobs for [`bom_json`]. The defaults describe strata honestly and keep Hermeto's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomOptions {
    /// Seconds since the Unix epoch for the per-backend annotations; `None` leaves annotations
    /// out (Hermeto stamps them with the time of the run).
    pub timestamp: Option<u64>,
    /// Value of the `hermeto:found_by` property (Hermeto writes `hermeto`).
    pub found_by: String,
    /// `metadata.tools[0]` vendor and name (Hermeto: `red hat`, `hermeto`).
    pub tool_vendor: String,
    /// See [`SbomOptions::tool_vendor`].
    pub tool_name: String,
    /// Organization named as annotator of the backend annotations (Hermeto: `red hat`).
    pub annotator: String,
    /// Add CycloneDX `hashes` to each component. Valid CycloneDX, but `hermeto merge-sboms`
    /// refuses components with fields its model lacks, so off by default.
    pub include_hashes: bool,
    /// Namespace for RPM purls (Hermeto derives it from the Vendor header: `redhat`, `fedora`,
    /// `suse`, ...). `None`: no namespace.
    pub rpm_namespace: Option<String>,
}

impl Default for SbomOptions {
    fn default() -> Self {
        SbomOptions {
            timestamp: None,
            found_by: "strata".to_owned(),
            tool_vendor: "strata".to_owned(),
            tool_name: "strata".to_owned(),
            annotator: "strata".to_owned(),
            include_hashes: false,
            rpm_namespace: None,
        }
    }
}

#[derive(Serialize)]
struct Sbom<'a> {
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<Annotation>,
    components: Components<'a>,
    metadata: Metadata<'a>,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    version: u32,
}

#[derive(Serialize)]
struct Metadata<'a> {
    tools: [Tool<'a>; 1],
}

#[derive(Serialize)]
struct Tool<'a> {
    vendor: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Annotation {
    subjects: Vec<String>,
    annotator: BTreeMap<&'static str, BTreeMap<&'static str, String>>,
    timestamp: String,
    text: String,
}

#[derive(Serialize, Clone)]
struct Component {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    purl: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    properties: Vec<Property>,
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(rename = "externalReferences", skip_serializing_if = "Option::is_none")]
    external_references: Option<Vec<ExternalReference>>,
}

#[derive(Serialize, Clone)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize, Clone)]
struct ExternalReference {
    url: String,
    #[serde(rename = "type")]
    ty: &'static str,
}

const FOUND_BY: &str = "hermeto:found_by";
const PIP_BINARY: &str = "hermeto:pip:package:binary";

fn cyclonedx_alg(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "SHA-1",
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha384 => "SHA-384",
        Algorithm::Sha512 => "SHA-512",
    }
}

/// The first digest as the lockfile gave it, `alg:hex` (Hermeto copies the lockfile string).
fn checksum(a: &Artifact) -> Option<String> {
    a.digests.first().map(ToString::to_string)
}

/// Splits an RPM `[epoch:]version-release` into (epoch, version-release, version).
fn split_evr(evr: &str) -> (Option<&str>, &str, &str) {
    let (epoch, vr) = match evr.split_once(':') {
        Some((e, vr)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (Some(e), vr),
        _ => (None, evr),
    };
    let version = vr.rsplit_once('-').map_or(vr, |(v, _)| v);
    (epoch, vr, version)
}

/// The architecture in an RPM file name `<n>-<v>-<r>.<arch>.rpm` (Hermeto reads the ARCH
/// header; the lockfile's arch is the *target* arch, so a `noarch` package would be mislabelled).
fn rpm_file_arch(filename: &str) -> Option<&str> {
    let stem = filename.strip_suffix(".rpm")?;
    let (rest, arch) = stem.rsplit_once('.')?;
    (rest.contains('-') && !arch.is_empty()).then_some(arch)
}

/// The SBOM component for one artifact, or `None` when Hermeto records none (RPM module
/// metadata).
fn component(a: &Artifact, opts: &SbomOptions) -> Option<Component> {
    let mut properties = Vec::new();
    let mut external_references = None;
    let mut ty = "library";
    let (name, version, purl) = match (&a.ecosystem, &a.details) {
        (Ecosystem::Pip, details) => {
            let name = canonicalize_pypi_name(&a.name);
            if matches!(details, Details::Pip { wheel: true }) {
                properties.push(Property {
                    name: PIP_BINARY.to_owned(),
                    value: "true".to_owned(),
                });
            }
            let purl = Purl::new("pypi", &name).version(a.version.as_deref());
            (name, a.version.clone(), purl)
        }
        (Ecosystem::Npm, _) => {
            let purl = Purl::new("npm", &a.name).version(a.version.as_deref());
            (a.name.clone(), a.version.clone(), purl)
        }
        (Ecosystem::Rpm, details) => {
            let (kind, evr) = match details {
                Details::Rpm { kind, evr, .. } => (*kind, evr.as_deref()),
                _ => (RpmKind::Binary, None),
            };
            if kind == RpmKind::ModuleMetadata {
                return None;
            }
            let evr = evr.or(a.version.as_deref()).unwrap_or("");
            let (epoch, vr, version) = split_evr(evr);
            let arch = if kind == RpmKind::Source {
                Some("src")
            } else {
                rpm_file_arch(&a.filename).or(a.arch.as_deref())
            };
            let repoid = a.repo_id.as_deref().filter(|r| !is_generated_repoid(r));
            let checksum = checksum(a);
            let purl = Purl::new("rpm", &a.name)
                .namespace(opts.rpm_namespace.as_deref())
                .version(Some(vr))
                .qualifier("epoch", epoch)
                .qualifier("arch", arch)
                .qualifier("repository_id", repoid)
                .qualifier("checksum", checksum.as_deref())
                .qualifier(
                    "download_url",
                    repoid
                        .is_none()
                        .then(|| a.urls.first().map(|u| without_credentials(u)))
                        .flatten()
                        .as_deref(),
                );
            let version = (!version.is_empty()).then(|| version.to_owned());
            (a.name.clone(), version, purl)
        }
        (Ecosystem::Generic, _) => {
            let name = a.path.rsplit('/').next().unwrap_or(&a.filename).to_owned();
            let url = a
                .urls
                .first()
                .map(|u| without_credentials(u))
                .unwrap_or_default();
            let checksum = checksum(a);
            let purl = Purl::new("generic", &name)
                .qualifier("download_url", Some(&url))
                .qualifier("checksum", checksum.as_deref());
            ty = "file";
            external_references = Some(vec![ExternalReference {
                url,
                ty: "distribution",
            }]);
            (name, None, purl)
        }
    };
    properties.push(Property {
        name: FOUND_BY.to_owned(),
        value: opts.found_by.clone(),
    });
    properties.sort();
    let purl = purl.to_string();
    let hashes = if opts.include_hashes {
        a.digests
            .iter()
            .map(|d| Hash {
                alg: cyclonedx_alg(d.algorithm),
                content: d.hex().to_owned(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(Component {
        bom_ref: purl.clone(),
        name,
        purl,
        version: version.filter(|v| !v.is_empty()),
        hashes,
        properties,
        ty,
        external_references,
    })
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC), as Hermeto's annotations are.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Merges the properties of components sharing a purl, as Hermeto's `PropertySet.merge` does
/// for the properties strata emits: `found_by` from the first, `pip:package:binary` if any.
fn merge(into: &mut Component, other: &Component) {
    for p in &other.properties {
        if p.name == PIP_BINARY && !into.properties.iter().any(|q| q.name == PIP_BINARY) {
            into.properties.push(p.clone());
            into.properties.sort();
        }
    }
}

/// The `bom.json` bytes for `artifacts`: deterministic for given artifacts and options.
pub fn bom_json(artifacts: &[Artifact], opts: &SbomOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_bom_json(artifacts, opts, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// Writes [`bom_json`]'s bytes to `out` as they are made. Held in memory at once are the
/// purls (for the order) and the components of one purl, not the whole SBOM or its text:
/// a 50,000-entry SBOM is tens of MB of text. `out` is buffered here.
pub fn write_bom_json<W: std::io::Write>(
    artifacts: &[Artifact],
    opts: &SbomOptions,
    out: W,
) -> std::io::Result<()> {
    // (purl, artifact) per component; a stable sort by purl keeps the first of equal purls
    // first, like Hermeto's groupby.
    let mut order: Vec<(String, usize)> = artifacts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| component(a, opts).map(|c| (c.purl, i)))
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let annotations = match opts.timestamp {
        None => Vec::new(),
        Some(ts) => annotations(artifacts, &order, opts, ts),
    };
    let sbom = Sbom {
        bom_format: "CycloneDX",
        annotations,
        components: Components {
            artifacts,
            opts,
            order: &order,
        },
        metadata: Metadata {
            tools: [Tool {
                vendor: &opts.tool_vendor,
                name: &opts.tool_name,
            }],
        },
        spec_version: "1.6",
        version: 1,
    };
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &sbom)?;
    std::io::Write::flush(&mut out)
}

/// One annotation per backend with components (the subjects: its sorted, distinct bom-refs,
/// which are the purls), in backend name order.
fn annotations(
    artifacts: &[Artifact],
    order: &[(String, usize)],
    opts: &SbomOptions,
    ts: u64,
) -> Vec<Annotation> {
    let mut per_backend: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (purl, i) in order {
        let subjects = per_backend
            .entry(artifacts[*i].ecosystem.dir_name())
            .or_default();
        // `order` is sorted, so a repeated purl of this backend is its last subject.
        if subjects.last() != Some(purl) {
            subjects.push(purl.clone());
        }
    }
    per_backend
        .into_iter()
        .map(|(backend, subjects)| Annotation {
            subjects,
            annotator: BTreeMap::from([(
                "organization",
                BTreeMap::from([("name", opts.annotator.clone())]),
            )]),
            timestamp: iso8601(ts),
            text: format!("hermeto:backend:{backend}"),
        })
        .collect()
}

/// The `components` array, made one purl at a time as it is serialised: the components of
/// equal purls (adjacent in `order`) merged into the first.
struct Components<'a> {
    artifacts: &'a [Artifact],
    opts: &'a SbomOptions,
    order: &'a [(String, usize)],
}

impl Serialize for Components<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let made = |i: usize| component(&self.artifacts[i], self.opts).expect("it had a purl");
        let merged = self.order.chunk_by(|a, b| a.0 == b.0).map(|group| {
            let mut first = made(group[0].1);
            for (_, i) in &group[1..] {
                merge(&mut first, &made(*i));
            }
            first
        });
        serializer.collect_seq(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_735_689_600, "2025-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(iso8601(secs), want);
        }
    }

    #[test]
    fn arch_from_rpm_file_name() {
        assert_eq!(
            rpm_file_arch("tzdata-2024a-1.el9.noarch.rpm"),
            Some("noarch")
        );
        assert_eq!(rpm_file_arch("bash-5.1.8-9.el9.x86_64.rpm"), Some("x86_64"));
        assert_eq!(rpm_file_arch("modules.yaml"), None);
        assert_eq!(rpm_file_arch("weird.rpm"), None);
    }

    #[test]
    fn evr_split() {
        assert_eq!(split_evr("1:2.3-4.el9"), (Some("1"), "2.3-4.el9", "2.3"));
        assert_eq!(split_evr("2.3-4.el9"), (None, "2.3-4.el9", "2.3"));
        assert_eq!(split_evr("2.3"), (None, "2.3", "2.3"));
    }
}

/// The URL without `user:password@`: an SBOM is published, credentials must never be in it.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod credential_tests {
    use super::without_credentials;

    #[test]
    fn credentials_are_stripped() {
        let cases = [
            ("http://u:p@127.0.0.1:8/a?x=@", "http://127.0.0.1:8/a?x=@"),
            ("https://tok@127.0.0.1/a", "https://127.0.0.1/a"),
            ("http://127.0.0.1/a@b", "http://127.0.0.1/a@b"),
            ("not a url", "not a url"),
        ];
        for (input, expected) in cases {
            assert_eq!(without_credentials(input), expected, "{input}");
        }
    }
}
