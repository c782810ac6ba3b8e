//! Helpers for tests that mount real FUSE filesystems with `strata mount`.
//!
//! Tests needing a prerequisite (FUSE, pip, npm, buildah) call [`require`]: it returns false
//! (the test prints SKIP and returns) unless `STRATA_TEST_REQUIRE_ALL=1`, where a missing
//! prerequisite fails the test instead.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{run, strata};

/// Whether a prerequisite is there; panics when it is not and all are required.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("prerequisite missing: {what} (STRATA_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("SKIP: prerequisite missing: {what}");
    false
}

/// Whether `program` runs (`program --version` exits 0).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// FUSE mounts are possible: `/dev/fuse` exists and we are root (strata mounts with the
/// mount syscall) or `fusermount3` is installed.
pub fn fuse_ok() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    Path::new("/dev/fuse").exists() && (root || have("fusermount3"))
}

/// [`require`] for FUSE.
pub fn require_fuse() -> bool {
    require("FUSE (/dev/fuse and root or fusermount3)", fuse_ok())
}

/// The strata mount source (`strata:<pid>`) at `mountpoint`, if mounted.
pub fn mount_source(mountpoint: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (Path::new(left.split(' ').nth(4)?) == mountpoint)
            .then(|| right.split(' ').nth(1).unwrap_or_default().to_owned())
    })
}

/// The pid of the daemon serving `mountpoint`.
pub fn mount_pid(mountpoint: &Path) -> Option<u32> {
    mount_source(mountpoint)?
        .strip_prefix("strata:")?
        .parse()
        .ok()
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A `strata mount --daemon`, unmounted (and, failing that, lazily detached) on drop.
pub struct Mount {
    pub path: PathBuf,
    pub cache: PathBuf,
}

impl Mount {
    /// Mounts `lockfiles` at `path` with `cache`, plus `extra` flags; panics on failure.
    pub fn start(path: &Path, cache: &Path, lockfiles: &[PathBuf], extra: &[&str]) -> Mount {
        let out = run(strata()
            .args(["mount", "--daemon", "--cache-dir"])
            .arg(cache)
            .args(extra)
            .arg(path)
            .args(lockfiles));
        assert_eq!(out.status.code(), Some(0), "strata mount --daemon failed");
        assert!(mount_pid(path).is_some(), "mounted at {}", path.display());
        Mount {
            path: path.to_path_buf(),
            cache: cache.to_path_buf(),
        }
    }

    /// `strata umount`; returns its exit code.
    pub fn umount(&self) -> Option<i32> {
        run(strata().arg("umount").arg(&self.path)).status.code()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        let dir = self.cache.join("logs");
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mount_source(&self.path).is_some() {
            let _ = strata().arg("umount").arg(&self.path).output();
        }
        if mount_source(&self.path).is_some() {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Every file under `root` as (relative path, size), sorted.
pub fn list_files(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// `sha256sum FILE`'s hash, computed by the real tool.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// A pure-Python wheel `name-version-py3-none-any.whl` whose module sets `VALUE = value`.
pub fn tiny_wheel(name: &str, version: &str, value: &str, dir: &Path) -> PathBuf {
    let file = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let script = r#"
import base64, hashlib, sys, zipfile
path, name, version, value = sys.argv[1:5]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"VALUE = {value!r}\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: strata-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for n, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{n},sha256={digest},{len(text.encode())}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(path, "w") as z:
    for n, text in files.items():
        z.writestr(n, text)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .args([name, version, value])
        .status()
        .unwrap();
    assert!(status.success(), "building the test wheel");
    file
}

/// `npm pack` of a tiny package `name@version` whose index.js exports `value`.
pub fn tiny_npm_tarball(name: &str, version: &str, value: &str, dir: &Path) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("package.json"),
        format!(r#"{{"name": "{name}", "version": "{version}", "main": "index.js"}}"#),
    )
    .unwrap();
    std::fs::write(
        src.join("index.js"),
        format!("module.exports = {value:?};\n"),
    )
    .unwrap();
    let out = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(dir)
        .current_dir(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}-{version}.tgz"))
}

/// Whether process `pid` runs (exists and is not a zombie waiting for a reaper).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}
