//! Helpers for tests that drive real RPM tooling: building tiny noarch packages with
//! rpmbuild, writing rpms.lock.yaml for them, and installing with a real dnf.
//!
//! Tests that need a tool call [`require`] first: without the tool they print SKIP and pass,
//! unless `STRATA_TEST_REQUIRE_ALL=1`, where a missing tool fails the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether every `tools` is on PATH; prints SKIP (or panics under STRATA_TEST_REQUIRE_ALL=1)
/// when one is not.
pub fn require(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!(
                    "{test}: `{tool}` is missing and STRATA_TEST_REQUIRE_ALL=1 (scripts/setup-debian.sh test installs it)"
                );
            }
            eprintln!("SKIP {test}: `{tool}` is not installed (scripts/setup-debian.sh test)");
            return false;
        }
    }
    true
}

/// A package to build.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub version: String,
    pub requires: Vec<String>,
    /// Bytes of incompressible payload in /usr/share/<name>/blob (makes the package large
    /// compared with its header).
    pub payload: usize,
}

impl Spec {
    pub fn new(name: &str, version: &str) -> Spec {
        Spec {
            name: name.into(),
            version: version.into(),
            requires: Vec::new(),
            payload: 0,
        }
    }

    pub fn requires(mut self, dep: &str) -> Spec {
        self.requires.push(dep.into());
        self
    }

    pub fn payload(mut self, bytes: usize) -> Spec {
        self.payload = bytes;
        self
    }

    pub fn file_name(&self) -> String {
        format!("{}-{}-1.noarch.rpm", self.name, self.version)
    }
}

/// Builds `spec` with rpmbuild under `work` and returns the package's bytes.
pub fn build(work: &Path, spec: &Spec) -> Vec<u8> {
    let top = work.join("rpmbuild");
    std::fs::create_dir_all(&top).unwrap();
    let requires: String = spec
        .requires
        .iter()
        .map(|r| format!("Requires: {r}\n"))
        .collect();
    let payload = if spec.payload > 0 {
        format!(
            "head -c {} /dev/urandom > %{{buildroot}}/usr/share/{}/blob\n",
            spec.payload, spec.name
        )
    } else {
        String::new()
    };
    let text = format!(
        "Name: {n}\nVersion: {v}\nRelease: 1\nSummary: Test package {n} <&>\nLicense: MIT\nBuildArch: noarch\n{requires}\
         %description\nTest package {n}, built by strata's tests.\n\
         %install\nmkdir -p %{{buildroot}}/usr/share/{n} %{{buildroot}}/usr/bin\n\
         echo {n}-{v} > %{{buildroot}}/usr/share/{n}/version.txt\n\
         printf '#!/bin/sh\\necho {n}\\n' > %{{buildroot}}/usr/bin/{n}-hello\n{payload}\
         %files\n/usr/share/{n}\n%attr(0755,root,root) /usr/bin/{n}-hello\n\
         %changelog\n* Mon Jan 01 2024 Tester <t@example.invalid> - {v}-1\n- built for a test\n",
        n = spec.name,
        v = spec.version,
    );
    let spec_path = work.join(format!("{}.spec", spec.name));
    std::fs::write(&spec_path, text).unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", work.join("rpms").display()))
        .args(["--define", "_build_id_links none", "--quiet", "-bb"])
        .arg(&spec_path)
        .output()
        .expect("rpmbuild runs");
    assert!(
        out.status.success(),
        "rpmbuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(work.join("rpms/noarch").join(spec.file_name())).unwrap()
}

/// One entry of an rpms.lock.yaml.
pub struct LockEntry<'a> {
    pub repoid: &'a str,
    pub url: String,
    pub spec: &'a Spec,
    pub bytes: &'a [u8],
}

/// An rpms.lock.yaml with every entry under arch `x86_64`.
pub fn rpms_lock(entries: &[LockEntry<'_>]) -> String {
    let mut text = String::from(
        "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n",
    );
    for e in entries {
        text.push_str(&format!(
            "  - url: {}\n    repoid: {}\n    size: {}\n    checksum: sha256:{}\n    name: {}\n    evr: {}-1\n    sourcerpm: {}-{}-1.src.rpm\n",
            e.url,
            e.repoid,
            e.bytes.len(),
            super::common::sha256_hex(e.bytes),
            e.spec.name,
            e.spec.version,
            e.spec.name,
            e.spec.version,
        ));
    }
    text.push_str("  source: []\n  module_metadata: []\n");
    text
}

/// `dnf install` into a fresh installroot from the repo files in `reposdir`, with only
/// `repos` enabled. Returns the installroot.
pub fn dnf_install(
    work: &Path,
    reposdir: &Path,
    repos: &[&str],
    packages: &[&str],
) -> (PathBuf, Output) {
    let root = work.join("installroot");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(work.join("dnf-log")).unwrap();
    let mut cmd = Command::new("dnf");
    cmd.args(["-y", "-q", "--installroot"])
        .arg(&root)
        .args([
            "--releasever",
            "1",
            "--nogpgcheck",
            "--setopt=install_weak_deps=False",
        ])
        .arg(format!("--setopt=reposdir={}", reposdir.display()))
        .arg(format!(
            "--setopt=cachedir={}",
            work.join("dnf-cache").display()
        ))
        .arg(format!(
            "--setopt=logdir={}",
            work.join("dnf-log").display()
        ))
        .arg("--disablerepo=*");
    for r in repos {
        cmd.arg(format!("--enablerepo={r}"));
    }
    cmd.arg("install").args(packages);
    let out = cmd.output().expect("dnf runs");
    eprintln!(
        "--- dnf: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (root, out)
}

/// `rpm --root ROOT -q PACKAGES`.
pub fn rpm_query(root: &Path, packages: &[&str]) -> Output {
    Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("-q")
        .args(packages)
        .output()
        .expect("rpm runs")
}
