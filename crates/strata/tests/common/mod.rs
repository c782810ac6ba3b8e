//! Shared helpers for the CLI tests: payloads served by a real loopback upstream and lockfiles
//! of every supported format pointing at it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use sha2::Digest as _;
use strata_upstream::{Upstream, UpstreamBuilder};

/// The strata binary under test.
pub fn strata() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env_remove("STRATA_CACHE_DIR")
        .env_remove("STRATA_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// `strata fetch --format json --cache-dir CACHE -o OUT`; add lockfiles and flags.
pub fn fetch_json(cache: &Path, out: &Path) -> Command {
    let mut cmd = strata();
    cmd.args(["fetch", "--format", "json", "--cache-dir"])
        .arg(cache)
        .arg("-o")
        .arg(out);
    cmd
}

/// Deterministic pseudo-random content.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

pub fn sha512_sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One file of each ecosystem, `per_kind` of each.
pub struct Files {
    pub wheels: Vec<(String, Vec<u8>)>,
    pub npm: Vec<(String, Vec<u8>)>,
    pub rpms: Vec<(String, Vec<u8>)>,
    pub generic: Vec<(String, Vec<u8>)>,
}

impl Files {
    pub fn new(per_kind: usize, size: usize) -> Files {
        let mk = |kind: u32, name: &dyn Fn(usize) -> String| {
            (0..per_kind)
                .map(|i| (name(i), payload(size + i, kind * 1000 + i as u32)))
                .collect()
        };
        Files {
            wheels: mk(1, &|i| format!("pkg{i}-1.0-py3-none-any.whl")),
            npm: mk(2, &|i| format!("mod{i}")),
            rpms: mk(3, &|i| format!("tool{i}-1.0-1.x86_64.rpm")),
            generic: mk(4, &|i| format!("blob{i}.bin")),
        }
    }

    /// Serves every file at its upstream path.
    pub fn serve(&self, mut builder: UpstreamBuilder) -> UpstreamBuilder {
        for (name, bytes) in &self.wheels {
            builder = builder.file(&format!("pypi/{name}"), bytes.clone());
        }
        for (name, bytes) in &self.npm {
            builder = builder.file(&format!("npm/{name}/-/{name}-1.0.0.tgz"), bytes.clone());
        }
        for (name, bytes) in &self.rpms {
            builder = builder.file(&format!("rpm/{name}"), bytes.clone());
        }
        for (name, bytes) in &self.generic {
            builder = builder.file(&format!("generic/{name}"), bytes.clone());
        }
        builder
    }

    /// Writes pylock.toml, package-lock.json, rpms.lock.yaml and artifacts.lock.yaml into `dir`.
    pub fn write_lockfiles(&self, dir: &Path, up: &Upstream) -> Vec<PathBuf> {
        std::fs::create_dir_all(dir).unwrap();
        let mut pylock = String::from("lock-version = \"1.0\"\ncreated-by = \"strata-tests\"\n");
        for (i, (name, bytes)) in self.wheels.iter().enumerate() {
            pylock.push_str(&format!(
                "\n[[packages]]\nname = \"pkg{i}\"\nversion = \"1.0\"\nwheels = [{{ url = \"{}\", size = {}, hashes = {{ sha256 = \"{}\" }} }}]\n",
                up.url(&format!("pypi/{name}")),
                bytes.len(),
                sha256_hex(bytes)
            ));
        }
        let mut packages = serde_json::Map::new();
        packages.insert(
            "".into(),
            serde_json::json!({"name": "app", "version": "1.0.0"}),
        );
        for (name, bytes) in &self.npm {
            packages.insert(
                format!("node_modules/{name}"),
                serde_json::json!({
                    "version": "1.0.0",
                    "resolved": up.url(&format!("npm/{name}/-/{name}-1.0.0.tgz")),
                    "integrity": sha512_sri(bytes),
                }),
            );
        }
        let npm = serde_json::json!({"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": packages});
        let mut rpms = String::from(
            "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n",
        );
        for (name, bytes) in &self.rpms {
            let pkg = name.split('-').next().unwrap();
            rpms.push_str(&format!(
                "  - url: {}\n    repoid: baseos\n    size: {}\n    checksum: sha256:{}\n    name: {pkg}\n    evr: 1.0-1\n    sourcerpm: {pkg}-1.0-1.src.rpm\n",
                up.url(&format!("rpm/{name}")),
                bytes.len(),
                sha256_hex(bytes)
            ));
        }
        rpms.push_str("  source: []\n  module_metadata: []\n");
        let mut generic = String::from("metadata:\n  version: \"1.0\"\nartifacts:\n");
        for (name, bytes) in &self.generic {
            generic.push_str(&format!(
                "  - download_url: {}\n    checksum: sha256:{}\n",
                up.url(&format!("generic/{name}")),
                sha256_hex(bytes)
            ));
        }
        let files = [
            ("pylock.toml", pylock),
            (
                "package-lock.json",
                serde_json::to_string_pretty(&npm).unwrap() + "\n",
            ),
            ("rpms.lock.yaml", rpms),
            ("artifacts.lock.yaml", generic),
        ];
        files
            .into_iter()
            .map(|(name, text)| {
                let path = dir.join(name);
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect()
    }

    /// Every (output path, content) pair the fetch must produce.
    pub fn expected_outputs(&self) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        out.extend(
            self.wheels
                .iter()
                .map(|(n, b)| (format!("deps/pip/{n}"), b.as_slice())),
        );
        out.extend(
            self.npm
                .iter()
                .map(|(n, b)| (format!("deps/npm/{n}-1.0.0.tgz"), b.as_slice())),
        );
        out.extend(
            self.rpms
                .iter()
                .map(|(n, b)| (format!("deps/rpm/x86_64/baseos/{n}"), b.as_slice())),
        );
        out.extend(
            self.generic
                .iter()
                .map(|(n, b)| (format!("deps/generic/{n}"), b.as_slice())),
        );
        out
    }

    pub fn count(&self) -> usize {
        self.wheels.len() + self.npm.len() + self.rpms.len() + self.generic.len()
    }
}

/// Runs a command and returns its output, printing stderr for debugging failures.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("strata runs");
    eprintln!(
        "--- stderr of {cmd:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Parses stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
