//! The one model of a locked artifact that every lockfile parser yields.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The package ecosystem an artifact belongs to; decides its place in the output tree.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Python wheels and sdists from `pylock.toml` (`deps/pip/`).
    Pip,
    /// npm registry tarballs from `package-lock.json` (`deps/npm/`).
    Npm,
    /// RPMs, source RPMs and module metadata from `rpms.lock.yaml` (`deps/rpm/`).
    Rpm,
    /// Plain files from Hermeto's `artifacts.lock.yaml` (`deps/generic/`).
    Generic,
}

impl Ecosystem {
    /// The directory name under `deps/` in Hermeto's output layout.
    pub fn dir_name(self) -> &'static str {
        match self {
            Ecosystem::Pip => "pip",
            Ecosystem::Npm => "npm",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Generic => "generic",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// A hash algorithm strata can verify, weakest first (so `Ord` picks the strongest as max).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SHA-1: only found in legacy npm `integrity` fields.
    Sha1,
    /// SHA-256: the common case (PEP 751, RPM lockfiles, generic artifacts).
    Sha256,
    /// SHA-384 (SRI).
    Sha384,
    /// SHA-512 (npm SRI).
    Sha512,
}

impl Algorithm {
    /// The lower-case name used in `alg:hex` strings and store paths.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the digest in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Ok(Algorithm::Sha1),
            "sha256" => Ok(Algorithm::Sha256),
            "sha384" => Ok(Algorithm::Sha384),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(format!(
                "unsupported hash algorithm `{other}` (strata verifies sha1, sha256, sha384 and sha512)"
            )),
        }
    }
}

/// A digest: an algorithm and the lower-case hex of the hash value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The hash algorithm.
    pub algorithm: Algorithm,
    /// Lower-case hex, exactly `2 * algorithm.len()` characters.
    hex: String,
}

impl Digest {
    /// Builds a digest from an algorithm and hex, checking length and alphabet.
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, String> {
        let hex = hex.to_ascii_lowercase();
        if hex.len() != algorithm.len() * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{hex}` is not a {algorithm} digest ({} hex digits expected)",
                algorithm.len() * 2
            ));
        }
        Ok(Digest { algorithm, hex })
    }

    /// Builds a digest from raw hash bytes.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Digest, String> {
        Digest::new(algorithm, &hex::encode(bytes))
    }

    /// The lower-case hex of the hash value.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = String;
    /// Parses `alg:hex` (as in rpms.lock.yaml and artifacts.lock.yaml).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not a checksum of the form `alg:hex`"))?;
        Digest::new(alg.parse()?, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where in a lockfile an artifact was declared, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// The lockfile path as the user gave it.
    pub lockfile: PathBuf,
    /// 1-based line of the entry, when the format lets us know it.
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.lockfile.display()),
            None => write!(f, "{}", self.lockfile.display()),
        }
    }
}

/// What kind of RPM lockfile entry an artifact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RpmKind {
    /// A binary package (`arches[].packages[]`).
    Binary,
    /// A source package (`arches[].source[]`).
    Source,
    /// Module metadata (`arches[].module_metadata[]`).
    ModuleMetadata,
}

/// Ecosystem-specific facts that downstream consumers (SBOM, repodata, npm injection) need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Details {
    /// A Python distribution file.
    Pip {
        /// `true` for a wheel, `false` for an sdist.
        wheel: bool,
    },
    /// An npm package tarball.
    Npm {
        /// The key of the entry in `packages` (e.g. `node_modules/@s/n`).
        lock_key: String,
        /// The `integrity` string exactly as the lockfile had it.
        integrity: String,
    },
    /// An RPM lockfile entry.
    Rpm {
        /// Binary, source or module metadata.
        kind: RpmKind,
        /// `epoch:version-release` (epoch omitted when absent).
        evr: Option<String>,
        /// The source RPM this binary was built from.
        sourcerpm: Option<String>,
    },
    /// A generic artifact.
    Generic,
}

/// One file that a lockfile pins: everything needed to download, verify and place it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// The ecosystem, which selects the `deps/<eco>/` directory.
    pub ecosystem: Ecosystem,
    /// Package name as the ecosystem spells it (`@scope/name` for npm).
    pub name: String,
    /// Version, when the lockfile gives one.
    pub version: Option<String>,
    /// The file name in the output tree (a single path component, validated).
    pub filename: String,
    /// Download URLs, most preferred first (at least one).
    pub urls: Vec<String>,
    /// Size in bytes, when the lockfile gives one.
    pub size: Option<u64>,
    /// Every digest the lockfile gives (at least one).
    pub digests: Vec<Digest>,
    /// Architecture for RPMs (`x86_64`, `noarch`...); for wheels, not set.
    pub arch: Option<String>,
    /// RPM repository id.
    pub repo_id: Option<String>,
    /// Path of the file relative to the output directory, `/`-separated, e.g. `deps/pip/x.whl`.
    pub path: String,
    /// Where the artifact was declared.
    pub origin: Origin,
    /// Ecosystem-specific facts.
    pub details: Details,
}

impl Artifact {
    /// The strongest digest, which keys the artifact in the content-addressed store.
    pub fn store_digest(&self) -> &Digest {
        self.digests
            .iter()
            .max_by_key(|d| d.algorithm)
            .expect("an artifact always has at least one digest")
    }
}

/// Checks that `name` is a safe single path component: not empty, no `/` or `\`, not `.`/`..`,
/// no NUL, and no leading `-`-free restriction beyond that.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the file name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("the file name `{name}` would escape its directory"));
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') {
        return Err(format!(
            "the file name `{name}` contains a path separator and would escape its directory"
        ));
    }
    Ok(())
}

/// Checks that `component` is a safe directory name (repo ids, arches) in the same way.
pub fn check_path_component(component: &str, what: &str) -> Result<(), String> {
    check_file_name(component).map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parses_and_rejects() {
        let d: Digest = format!("sha256:{}", "AB".repeat(32)).parse().unwrap();
        assert_eq!(d.algorithm, Algorithm::Sha256);
        assert_eq!(d.hex(), "ab".repeat(32));
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            format!("md5:{}", "ab".repeat(16))
                .parse::<Digest>()
                .is_err()
        );
        assert!("nocolon".parse::<Digest>().is_err());
        assert!(
            format!("sha256:{}", "zz".repeat(32))
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn file_names_that_escape_are_rejected() {
        for bad in ["", ".", "..", "a/b", "../x", "/etc/passwd", "a\\b", "a\0b"] {
            assert!(check_file_name(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in ["x.whl", "..x", "a..b", "@x"] {
            assert!(check_file_name(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
