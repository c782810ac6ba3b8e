//! `strata fetch` end to end: real processes against a real loopback upstream.

mod common;
#[path = "common/fuse.rs"]
mod fuse;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use strata_upstream::{Fault, UpstreamBuilder};

#[test]
fn fetches_every_lockfile_kind_into_the_hermeto_layout() {
    let files = Files::new(3, 20_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let out = dir.path().join("out");
    let result = run(fetch_json(&dir.path().join("cache"), &out).args(&lockfiles));
    assert_eq!(result.status.code(), Some(0));
    let summary = json(&result);
    assert_eq!(summary["artifacts"], files.count());
    assert_eq!(summary["downloaded"], files.count());
    assert_eq!(summary["from_cache"], 0);
    assert_eq!(summary["failed"].as_array().unwrap().len(), 0);
    for (path, bytes) in files.expected_outputs() {
        assert_eq!(
            std::fs::read(out.join(&path)).unwrap_or_default(),
            bytes,
            "{path}"
        );
    }
    let bom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bom.json")).unwrap()).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    let purls: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(
        purls.len(),
        files.count(),
        "a purl for every component: {purls:?}"
    );
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:pypi/pkg0@1.0")),
        "{purls:?}"
    );
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:npm/mod0@1.0.0")),
        "{purls:?}"
    );
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:rpm/") && p.contains("tool0@1.0-1")),
        "{purls:?}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(".build-config.json")).unwrap()).unwrap();
    let vars = config["environment_variables"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "PIP_FIND_LINKS"),
        "{config}"
    );
    assert!(vars.iter().any(|v| v["name"] == "PIP_NO_INDEX"), "{config}");
    assert_eq!(
        config["project_files"].as_array().unwrap().len(),
        1,
        "the npm lockfile is a project file"
    );
}

#[test]
fn a_warm_fetch_links_from_the_cache_and_downloads_nothing() {
    let files = Files::new(2, 50_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let cache = dir.path().join("cache");
    let fetch = |out: &str| run(fetch_json(&cache, &dir.path().join(out)).args(&lockfiles));
    assert_eq!(fetch("one").status.code(), Some(0));
    let requests = up.stats().total_requests;
    let warm = fetch("two");
    assert_eq!(warm.status.code(), Some(0));
    let summary = json(&warm);
    assert_eq!(summary["downloaded"], 0);
    assert_eq!(summary["from_cache"], files.count());
    assert_eq!(
        up.stats().total_requests,
        requests,
        "no request reached the upstream"
    );
    for (path, _) in files.expected_outputs() {
        let a = std::fs::metadata(dir.path().join("one").join(&path)).unwrap();
        let b = std::fs::metadata(dir.path().join("two").join(&path)).unwrap();
        assert_eq!(
            a.ino(),
            b.ino(),
            "{path} is a hard link to the same store entry"
        );
    }
}

/// Every file under `root` (relative path → bytes), for comparing output trees.
fn tree_bytes(root: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_plan_cache_gives_the_same_tree_and_any_doubt_falls_back() {
    let files = Files::new(2, 30_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // RPM plans are never cached (their repo files depend on the output directory).
    let lockfiles: Vec<_> = files
        .write_lockfiles(&dir.path().join("src"), &up)
        .into_iter()
        .filter(|l| !l.ends_with("rpms.lock.yaml"))
        .collect();
    assert!(lockfiles.len() >= 3, "{lockfiles:?}");
    let cache = dir.path().join("cache");
    let derived = cache.join("v1/derived");
    let fetch = |out: &str| {
        let o = run(fetch_json(&cache, &dir.path().join(out)).args(&lockfiles));
        assert_eq!(o.status.code(), Some(0), "{out}");
        json(&o)
    };
    let cold = fetch("cold");
    let plans: Vec<_> = std::fs::read_dir(&derived).unwrap().collect();
    assert_eq!(plans.len(), 1, "one plan cached for one set of inputs");
    let plan = plans[0].as_ref().unwrap().path();
    let reference = tree_bytes(&dir.path().join("cold"));
    assert!(reference.contains_key("bom.json") && reference.contains_key(".build-config.json"));

    let warm = fetch("warm");
    assert_eq!(tree_bytes(&dir.path().join("warm")), reference);
    for field in ["artifacts", "bytes", "skipped"] {
        assert_eq!(warm[field], cold[field], "{field}");
    }
    assert_eq!(warm["from_cache"], files.count() - files.rpms.len());
    assert_eq!(warm["downloaded"], 0);

    // A damaged plan is a miss: the full path runs and rewrites it.
    std::fs::write(&plan, b"{\"artifacts\": 1}\ngarbage").unwrap();
    fetch("damaged");
    assert_eq!(tree_bytes(&dir.path().join("damaged")), reference);
    fetch("after-damage");
    assert_eq!(tree_bytes(&dir.path().join("after-damage")), reference);

    // An artifact's entry gone from the store: the plan cannot finish, the full path
    // downloads it. (Named by the wheel's digest: the store also holds the generated
    // bom.json and .build-config.json, whose loss costs no download, and which of them
    // a directory listing returns first depends on the upstream's port.)
    let requests = up.stats().total_requests;
    let hex = sha256_hex(&files.wheels[0].1);
    let gone = cache.join("v1/objects/sha256").join(&hex[..2]).join(&hex);
    std::fs::remove_file(&gone).unwrap();
    let refilled = fetch("refilled");
    assert_eq!(refilled["downloaded"], 1);
    assert_eq!(up.stats().total_requests, requests + 1);
    assert_eq!(tree_bytes(&dir.path().join("refilled")), reference);

    // Changed lockfile bytes are a different plan.
    let generic = lockfiles
        .iter()
        .find(|l| l.ends_with("artifacts.lock.yaml"))
        .unwrap();
    let text = std::fs::read_to_string(generic).unwrap();
    std::fs::write(generic, format!("{text}\n# edited\n")).unwrap();
    fetch("edited");
    assert_eq!(std::fs::read_dir(&derived).unwrap().count(), 2);
    assert_eq!(tree_bytes(&dir.path().join("edited")), reference);
}

/// A fetch of [`Files`] whose first wheel the upstream serves wrongly (`spoil` gets the
/// builder and that wheel's URL path): exit 1 and exactly one failure, checked here.
struct OneBadWheel {
    files: Files,
    up: strata_upstream::Upstream,
    bad: String,
    dir: tempfile::TempDir,
    out: std::path::PathBuf,
    failure: serde_json::Value,
}

fn fetch_with_one_bad_wheel(
    spoil: impl FnOnce(UpstreamBuilder, &str) -> UpstreamBuilder,
) -> OneBadWheel {
    let files = Files::new(2, 10_000);
    let bad = format!("pypi/{}", files.wheels[0].0);
    let up = spoil(files.serve(UpstreamBuilder::new()), &bad)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let out = dir.path().join("out");
    let result = run(fetch_json(&dir.path().join("cache"), &out).args(&lockfiles));
    assert_eq!(result.status.code(), Some(1));
    let summary = json(&result);
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{summary}");
    let failure = failed[0].clone();
    assert_eq!(failure["path"], format!("deps/pip/{}", files.wheels[0].0));
    assert_eq!(failure["urls"][0], up.url(&bad));
    assert!(
        !out.join("deps/pip").join(&files.wheels[0].0).exists(),
        "nothing of the bad artifact"
    );
    OneBadWheel {
        files,
        up,
        bad,
        dir,
        out,
        failure,
    }
}

#[test]
fn a_checksum_mismatch_fails_that_artifact_only_and_keeps_nothing_of_it() {
    let run_ = fetch_with_one_bad_wheel(|b, bad| b.fault(bad, Fault::WrongBytes));
    let (files, f, out) = (&run_.files, &run_.failure, &run_.out);
    assert_eq!(
        f["expected"],
        format!("sha256:{}", sha256_hex(&files.wheels[0].1))
    );
    assert!(f["actual"].as_str().unwrap().starts_with("sha256:"));
    assert_ne!(f["actual"], f["expected"]);
    for (path, bytes) in files.expected_outputs().into_iter().skip(1) {
        assert_eq!(
            std::fs::read(out.join(&path)).unwrap(),
            bytes,
            "{path} still completes"
        );
    }
    assert!(
        !out.join("bom.json").exists(),
        "an incomplete output is not marked complete"
    );
    let verify = run(strata()
        .args(["cache", "--cache-dir"])
        .arg(run_.dir.path().join("cache"))
        .arg("verify"));
    assert_eq!(verify.status.code(), Some(0));
    assert_eq!(run_.up.requests(&run_.bad), 1, "a mismatch is not retried");
}

#[test]
fn a_body_of_the_wrong_length_names_both_digests() {
    // An upstream answering with an error page instead of the wheel: longer than the locked
    // size. The failure still names the URL, the expected and the actual digest.
    let page = b"<html>503 Service Unavailable, please retry later</html>".repeat(300);
    let run_ = fetch_with_one_bad_wheel(|b, bad| b.file(bad, page.clone()));
    let wheel = &run_.files.wheels[0].1;
    assert_eq!(
        run_.failure["expected"],
        format!("sha256:{} ({} bytes)", sha256_hex(wheel), wheel.len())
    );
    assert_eq!(
        run_.failure["actual"],
        format!("sha256:{} ({} bytes)", sha256_hex(&page), page.len())
    );
}

#[test]
fn malformed_lockfiles_exit_2_with_file_and_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "pylock.toml",
            "lock-version = \"1.0\"\n[[packages]]\nname = \"x\"\nversion = [\n",
            "pylock.toml:",
        ),
        (
            "package-lock.json",
            "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"node_modules/a\": {\"version\": 1,}\n",
            "package-lock.json:",
        ),
        (
            "rpms.lock.yaml",
            "lockfileVersion: 1\narches:\n  - arch: x86_64\n    packages: [\n",
            "rpms.lock.yaml:",
        ),
        (
            "artifacts.lock.yaml",
            "metadata:\n  version: \"1.0\"\nartifacts:\n  - download_url: http://127.0.0.1:1/x\n    filename: ../../escape\n    checksum: sha256:00\n",
            "artifacts.lock.yaml:",
        ),
    ];
    for (name, text, needle) in cases {
        let src = dir.path().join(format!("case-{name}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(name), text).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let result = run(strata()
            .args(["fetch", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg("-o")
            .arg(&out)
            .arg(src.join(name)));
        assert_eq!(result.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(needle), "{name}: names the file: {stderr}");
        assert!(
            stderr
                .split(needle)
                .nth(1)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
            "{name}: names the line: {stderr}"
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
}

#[test]
fn unknown_lockfile_names_and_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("poetry.lock"), "").unwrap();
    let result = run(strata()
        .args(["fetch", "-o"])
        .arg(dir.path().join("o"))
        .arg(dir.path().join("poetry.lock")));
    assert_eq!(result.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("pylock.toml"),
        "lists the accepted names"
    );
    let result = run(strata().args(["fetch", "--no-such-flag", "x"]));
    assert_eq!(result.status.code(), Some(2));
    // A mistyped architecture or Python tag would silently filter out every wheel.
    for (flag, value, says) in [
        ("--arch", "x86-46", "unknown architecture `x86-46`"),
        ("--python-tag", "python3", "`python3` is not a Python tag"),
    ] {
        let result = run(strata()
            .args(["fetch", flag, value, "-o"])
            .arg(dir.path().join("o"))
            .arg(dir.path().join("poetry.lock")));
        assert_eq!(result.status.code(), Some(2), "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&result.stderr).contains(says),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    assert!(!dir.path().join("o").exists(), "nothing written");
}

#[test]
fn quiet_prints_nothing_on_success_and_the_summary_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("artifacts.lock.yaml");
    std::fs::write(&lock, "metadata:\n  version: \"1.0\"\nartifacts: []\n").unwrap();
    let fetch = |quiet: bool| {
        let mut cmd = strata();
        if quiet {
            cmd.arg("-q");
        }
        run(cmd
            .args(["fetch", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg("-o")
            .arg(dir.path().join("out"))
            .arg(&lock))
    };
    let loud = fetch(false);
    assert_eq!(loud.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&loud.stderr).contains("fetched 0 artifacts"));
    let quiet = fetch(true);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "-q: only errors"
    );
}

#[test]
fn transient_upstream_failures_are_retried() {
    let files = Files::new(1, 5_000);
    let flaky = format!("generic/{}", files.generic[0].0);
    let stalled = format!("rpm/{}", files.rpms[0].0);
    let up = files
        .serve(UpstreamBuilder::new())
        .fault(
            &flaky,
            Fault::Status {
                code: 503,
                times: 2,
            },
        )
        .fault(
            &stalled,
            Fault::StallTimes {
                after_bytes: 1000,
                times: 1,
            },
        )
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let result = run(strata()
        .args([
            "fetch",
            "--format",
            "json",
            "--read-timeout",
            "1",
            "--cache-dir",
        ])
        .arg(dir.path().join("cache"))
        .arg("-o")
        .arg(dir.path().join("out"))
        .args(&lockfiles));
    assert_eq!(result.status.code(), Some(0));
    assert_eq!(up.requests(&flaky), 3);
    assert_eq!(up.requests(&stalled), 2);
}

#[test]
fn four_concurrent_processes_on_one_cache_download_each_digest_once() {
    let files = Files::new(5, 200_000);
    let up = files
        .serve(UpstreamBuilder::new())
        .latency(Duration::from_millis(50))
        .rate_limit(4_000_000)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let cache = dir.path().join("cache");
    let children: Vec<_> = (0..4)
        .map(|i| {
            fetch_json(&cache, &dir.path().join(format!("out{i}")))
                .args(&lockfiles)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut downloaded = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        downloaded += json(&out)["downloaded"].as_u64().unwrap();
    }
    assert_eq!(
        downloaded,
        files.count() as u64,
        "each digest downloaded by exactly one process"
    );
    let stats = up.stats();
    for (path, s) in &stats.paths {
        assert_eq!(s.get, 1, "{path} was requested {} times", s.get);
    }
    assert_eq!(stats.paths.len(), files.count());
    for i in 0..4 {
        for (path, bytes) in files.expected_outputs() {
            assert_eq!(
                std::fs::read(dir.path().join(format!("out{i}")).join(&path)).unwrap(),
                bytes
            );
        }
    }
}

#[test]
fn kill_9_mid_download_leaves_a_sound_cache_and_the_rerun_succeeds() {
    // One download at a time, so a kill lands with some entries committed and one partial:
    // early (inside the first file) and late (inside the third).
    for kill_after in [500_000, 7_500_000] {
        let files = Files::new(1, 3_000_000);
        let up = files
            .serve(UpstreamBuilder::new())
            .rate_limit(4_000_000)
            .start()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
        let cache = dir.path().join("cache");
        let out = dir.path().join("out");
        let mut child = strata()
            .args(["fetch", "--jobs", "1", "--cache-dir"])
            .arg(&cache)
            .arg("-o")
            .arg(&out)
            .args(&lockfiles)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while up.stats().bytes_sent < kill_after {
            assert!(std::time::Instant::now() < deadline, "the download started");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let committed = files_under(&cache.join("v1/objects"));
        let expected_committed = (kill_after / 3_000_000) as usize;
        assert!(
            committed >= expected_committed && committed < files.count(),
            "killed after {kill_after} bytes: {committed} entries committed"
        );
        assert!(
            std::fs::read_dir(cache.join("v1/tmp")).unwrap().count() >= 1,
            "the killed process left its partial download behind"
        );
        // Every committed entry is whole and right; opening the store cleans the leftovers.
        let verify = run(strata()
            .args(["cache", "--cache-dir"])
            .arg(&cache)
            .args(["verify", "--format", "json"]));
        assert_eq!(verify.status.code(), Some(0));
        let report = json(&verify);
        assert_eq!(report["checked"], committed as u64, "{report}");
        assert_eq!(report["corrupt"].as_array().unwrap().len(), 0, "{report}");
        assert_eq!(
            std::fs::read_dir(cache.join("v1/tmp")).unwrap().count(),
            0,
            "leftovers of the killed process are cleaned"
        );
        // The re-run downloads only what was not committed.
        up.reset_stats();
        let rerun = run(fetch_json(&cache, &out).args(&lockfiles));
        assert_eq!(rerun.status.code(), Some(0));
        let summary = json(&rerun);
        assert_eq!(summary["downloaded"], (files.count() - committed) as u64);
        assert_eq!(summary["from_cache"], committed as u64);
        for (path, bytes) in files.expected_outputs() {
            assert_eq!(std::fs::read(out.join(&path)).unwrap(), bytes, "{path}");
        }
        let verify = run(strata()
            .args(["cache", "--cache-dir"])
            .arg(&cache)
            .arg("verify"));
        assert_eq!(verify.status.code(), Some(0));
    }
}

/// Regular files under `dir`, recursively (0 when it does not exist).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

#[test]
fn http_proxy_from_the_environment_is_used() {
    let files = Files::new(1, 4_000);
    // The proxy is a second upstream that serves the same paths; the lockfile URLs point at a
    // port where nothing listens, so the fetch can only succeed through the proxy.
    let proxy = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dead = UpstreamBuilder::new().start().unwrap();
    let dead_url = dead.url("");
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &proxy);
    for lf in &lockfiles {
        let text = std::fs::read_to_string(lf)
            .unwrap()
            .replace(&proxy.url(""), &dead_url);
        std::fs::write(lf, text).unwrap();
    }
    let result = run(strata()
        .env("HTTP_PROXY", proxy.url(""))
        .env("http_proxy", proxy.url(""))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args(["fetch", "--format", "json", "--retries", "0", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .arg("-o")
        .arg(dir.path().join("out"))
        .args(&lockfiles));
    assert_eq!(result.status.code(), Some(0));
    assert_eq!(proxy.stats().total_requests, files.count() as u64);
    let no_proxy = run(strata()
        .env("HTTP_PROXY", proxy.url(""))
        .env("NO_PROXY", "127.0.0.1")
        .args(["fetch", "--format", "json", "--retries", "0", "--cache-dir"])
        .arg(dir.path().join("cache2"))
        .arg("-o")
        .arg(dir.path().join("out2"))
        .args(&lockfiles));
    assert_eq!(
        no_proxy.status.code(),
        Some(1),
        "NO_PROXY bypasses the proxy, and the direct URL is dead"
    );
}

#[test]
fn netrc_credentials_are_sent_and_never_printed() {
    let files = Files::new(1, 3_000);
    let up = files
        .serve(UpstreamBuilder::new())
        .require_basic_auth("builder", "s3cr3t-pw")
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let fetch = |netrc: &std::path::Path, out: &str| {
        run(strata()
            .env("NETRC", netrc)
            .args([
                "fetch",
                "--format",
                "json",
                "--retries",
                "0",
                "-v",
                "--cache-dir",
            ])
            .arg(dir.path().join(format!("cache-{out}")))
            .arg("-o")
            .arg(dir.path().join(out))
            .args(&lockfiles))
    };
    let none = dir.path().join("missing-netrc");
    let denied = fetch(&none, "denied");
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        json(&denied)["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("401")
    );
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login builder password s3cr3t-pw\n",
    )
    .unwrap();
    let allowed = fetch(&netrc, "allowed");
    assert_eq!(allowed.status.code(), Some(0));
    for out in [&denied, &allowed] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("s3cr3t-pw"), "the password is never printed");
    }
}

#[test]
fn credentials_in_lockfile_urls_are_redacted_from_messages() {
    let files = Files::new(1, 3_000);
    let bad = format!("pypi/{}", files.wheels[0].0);
    let up = files
        .serve(UpstreamBuilder::new())
        .fault(&bad, Fault::WrongBytes)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let pylock = &lockfiles[0];
    let text = std::fs::read_to_string(pylock)
        .unwrap()
        .replace("http://127.0.0.1", "http://me:tok3n-value@127.0.0.1");
    std::fs::write(pylock, text).unwrap();
    let out = run(fetch_json(&dir.path().join("cache"), &dir.path().join("out")).arg(pylock));
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("checksum mismatch"), "{all}");
    assert!(!all.contains("tok3n-value"), "{all}");

    let generic = &lockfiles[3];
    let text = std::fs::read_to_string(generic)
        .unwrap()
        .replace("http://127.0.0.1", "http://me:tok3n-value@127.0.0.1");
    std::fs::write(generic, text).unwrap();
    let out_dir = dir.path().join("out-generic");
    let ok = run(strata()
        .args(["fetch", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .arg("-o")
        .arg(&out_dir)
        .arg(generic));
    assert_eq!(ok.status.code(), Some(0));
    let bom = std::fs::read_to_string(out_dir.join("bom.json")).unwrap();
    assert!(bom.contains("download_url=http://127.0.0.1"), "{bom}");
    assert!(
        !bom.contains("tok3n-value"),
        "the SBOM never carries credentials: {bom}"
    );
}

#[test]
fn arch_filter_and_unfetchable_entries() {
    let wheels = [
        "native-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
        "native-1.0-cp312-cp312-macosx_11_0_arm64.whl",
        "native-1.0-cp312-cp312-win_amd64.whl",
        "pure-2.0-py3-none-any.whl",
    ];
    let mut builder = UpstreamBuilder::new();
    let mut pylock = String::from("lock-version = \"1.0\"\ncreated-by = \"t\"\n");
    let up_files: Vec<(String, Vec<u8>)> = wheels
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), payload(1000 + i, 90 + i as u32)))
        .collect();
    for (name, bytes) in &up_files {
        builder = builder.file(&format!("w/{name}"), bytes.clone());
    }
    let up = builder.start().unwrap();
    for pkg in ["native", "pure"] {
        pylock.push_str(&format!(
            "\n[[packages]]\nname = \"{pkg}\"\nversion = \"{}\"\nwheels = [\n",
            if pkg == "pure" { "2.0" } else { "1.0" }
        ));
        for (name, bytes) in up_files.iter().filter(|(n, _)| n.starts_with(pkg)) {
            pylock.push_str(&format!(
                "  {{ url = \"{}\", hashes = {{ sha256 = \"{}\" }} }},\n",
                up.url(&format!("w/{name}")),
                sha256_hex(bytes)
            ));
        }
        pylock.push_str("]\n");
    }
    pylock.push_str(
        "\n[[packages]]\nname = \"local\"\nversion = \"0.1\"\ndirectory = { path = \"./local\" }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pylock.toml"), &pylock).unwrap();
    let fetch = |extra: &[&str], out: &str| {
        run(fetch_json(&dir.path().join("cache"), &dir.path().join(out))
            .args(extra)
            .arg(dir.path().join("pylock.toml")))
    };
    let refused = fetch(&["--arch", "x86_64"], "refused");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a directory package is not downloadable"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("local") && stderr.contains("--skip-unfetchable"),
        "{stderr}"
    );
    assert!(!dir.path().join("refused").exists());

    let ok = fetch(&["--arch", "amd64", "--skip-unfetchable"], "out");
    assert_eq!(ok.status.code(), Some(0));
    let summary = json(&ok);
    assert_eq!(summary["skipped"][0]["name"], "local", "{summary}");
    let mut got: Vec<String> = std::fs::read_dir(dir.path().join("out/deps/pip"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![wheels[0].to_string(), wheels[4].to_string()],
        "only x86_64 Linux and pure wheels"
    );
    // No s390x wheel and no sdist: the package is named in the summary, not dropped unseen.
    let s390x = fetch(&["--arch", "s390x", "--skip-unfetchable"], "s390x");
    assert_eq!(s390x.status.code(), Some(0));
    let summary = json(&s390x);
    let skipped = summary["skipped"].as_array().unwrap();
    let native = skipped.iter().find(|s| s["name"] == "native");
    assert!(
        native.is_some_and(|s| s["reason"].as_str().unwrap().contains("no wheel matches")),
        "{summary}"
    );
}

#[test]
fn shrinkwrap_and_named_pylock_files_are_read_like_their_plain_names() {
    let files = Files::new(2, 2_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = files.write_lockfiles(&dir.path().join("src"), &up);
    let renamed = dir.path().join("renamed");
    std::fs::create_dir_all(&renamed).unwrap();
    let mut lockfiles = Vec::new();
    for path in &plain {
        let name = match path.file_name().unwrap().to_str().unwrap() {
            "pylock.toml" => "pylock.web.toml",
            "package-lock.json" => "npm-shrinkwrap.json",
            other => other,
        };
        std::fs::copy(path, renamed.join(name)).unwrap();
        lockfiles.push(renamed.join(name));
    }
    let out = dir.path().join("out");
    let result = run(fetch_json(&dir.path().join("cache"), &out).args(&lockfiles));
    assert_eq!(result.status.code(), Some(0));
    for (path, bytes) in files.expected_outputs() {
        assert_eq!(std::fs::read(out.join(&path)).unwrap(), bytes, "{path}");
    }
    // `pylock.toml.bak` or `my-package-lock.json` are not lockfile names.
    for bad in ["pylock.toml.bak", "my-package-lock.json", "pylock..toml"] {
        std::fs::copy(&plain[0], dir.path().join(bad)).unwrap();
        let result = run(strata()
            .args(["fetch", "-o"])
            .arg(dir.path().join("never"))
            .arg(dir.path().join(bad)));
        assert_eq!(result.status.code(), Some(2), "{bad}");
    }
    assert!(!dir.path().join("never").exists());
}

/// Mounts a tmpfs of `size` at `dir` (root only); `None` (after a loud SKIP) when that is
/// impossible and STRATA_TEST_REQUIRE_ALL is unset.
fn small_tmpfs(dir: &Path, size: &str) -> Option<TmpfsGuard> {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
            "mounting a tmpfs needs root (STRATA_TEST_REQUIRE_ALL=1)"
        );
        eprintln!("SKIP: cannot mount a tmpfs (not root)");
        return None;
    }
    Some(TmpfsGuard(dir.to_path_buf()))
}

/// Unmounts its tmpfs when dropped.
struct TmpfsGuard(std::path::PathBuf);

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_cache_disk_fails_those_artifacts_with_exit_1_and_keeps_nothing_partial() {
    let files = Files::new(2, 300_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let cache = dir.path().join("cache");
    // Room for a few of the eight 300 KB artifacts, not all of them.
    let Some(_tmpfs) = small_tmpfs(&cache, "1m") else {
        return;
    };
    let out = dir.path().join("out");
    let result = run(fetch_json(&cache, &out)
        .args(["--jobs", "1"])
        .args(&lockfiles));
    assert_eq!(result.status.code(), Some(1));
    let summary = json(&result);
    let failed = summary["failed"].as_array().unwrap();
    assert!(!failed.is_empty(), "{summary}");
    for f in failed {
        assert!(
            f["error"].as_str().unwrap().contains("no space left"),
            "{f}"
        );
    }
    assert_eq!(
        summary["downloaded"].as_u64().unwrap() + failed.len() as u64,
        files.count() as u64,
        "{summary}"
    );
    assert_eq!(
        std::fs::read_dir(cache.join("v1/tmp")).unwrap().count(),
        0,
        "nothing partial is kept"
    );
    assert!(
        !out.join("bom.json").exists(),
        "an incomplete output is not marked complete"
    );
    let verify = run(strata()
        .args(["cache", "--cache-dir"])
        .arg(&cache)
        .arg("verify"));
    assert_eq!(verify.status.code(), Some(0));
}

#[test]
fn cache_dir_stats_and_gc_from_the_command_line() {
    let files = Files::new(1, 50_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let cache = dir.path().join("cache");
    let fetched = run(fetch_json(&cache, &dir.path().join("out")).args(&lockfiles));
    assert_eq!(fetched.status.code(), Some(0));
    let cache_cmd = |args: &[&str]| {
        run(strata()
            .args(["cache", "--cache-dir"])
            .arg(&cache)
            .args(args))
    };
    let printed = cache_cmd(&["dir"]);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        cache.to_str().unwrap()
    );
    // STRATA_CACHE_DIR is the default when no --cache-dir is given.
    let from_env = run(strata()
        .env("STRATA_CACHE_DIR", &cache)
        .args(["cache", "dir"]));
    assert_eq!(
        String::from_utf8_lossy(&from_env.stdout).trim(),
        cache.to_str().unwrap()
    );
    let stats = json(&cache_cmd(&["stats", "--format", "json"]));
    let entries = stats["entries"].as_u64().unwrap();
    assert!(entries >= files.count() as u64, "{stats}");
    let bytes = stats["bytes"].as_u64().unwrap();
    assert!(bytes >= 4 * 50_000, "{stats}");
    // A dry run removes nothing; a size cap then evicts until the cache fits.
    let dry = json(&cache_cmd(&[
        "gc",
        "--max-size",
        "60K",
        "--dry-run",
        "--format",
        "json",
    ]));
    assert!(dry["removed"].as_u64().unwrap() > 0, "{dry}");
    let after_dry = json(&cache_cmd(&["stats", "--format", "json"]));
    assert_eq!(after_dry["entries"].as_u64().unwrap(), entries);
    let gc = json(&cache_cmd(&["gc", "--max-size", "60K", "--format", "json"]));
    assert_eq!(gc["removed"], dry["removed"], "{gc}");
    let after = json(&cache_cmd(&["stats", "--format", "json"]));
    assert!(after["bytes"].as_u64().unwrap() <= 60 * 1024, "{after}");
    assert_eq!(
        after["entries"].as_u64().unwrap(),
        entries - gc["removed"].as_u64().unwrap()
    );
    // A bad size is an input error.
    assert_eq!(
        cache_cmd(&["gc", "--max-size", "10Q"]).status.code(),
        Some(2)
    );
}

#[test]
fn env_and_inject_files_from_the_command_line() {
    let files = Files::new(1, 2_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let out = dir.path().join("out");
    let fetched = run(fetch_json(&dir.path().join("cache"), &out).args(&lockfiles));
    assert_eq!(fetched.status.code(), Some(0));
    let env = run(strata()
        .args([
            "env",
            "--for-output-dir",
            "/cachi2/output",
            "--format",
            "json",
        ])
        .arg(&out));
    assert_eq!(env.status.code(), Some(0));
    let vars = json(&env);
    let value = |name: &str| {
        vars.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| v["value"].clone())
    };
    assert_eq!(
        value("PIP_FIND_LINKS"),
        Some("/cachi2/output/deps/pip".into()),
        "{vars}"
    );
    assert_eq!(value("PIP_NO_INDEX"), Some("true".into()), "{vars}");
    let sh = run(strata().arg("env").arg(&out));
    let text = String::from_utf8_lossy(&sh.stdout);
    assert!(
        text.contains(&format!("export PIP_FIND_LINKS={}/deps/pip", out.display())),
        "{text}"
    );
    // inject-files points the project's package-lock.json at the output's tarballs.
    let injected = run(strata()
        .args(["inject-files", "--for-output-dir", "/cachi2/output"])
        .arg(&out));
    assert_eq!(injected.status.code(), Some(0));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lockfiles[1]).unwrap()).unwrap();
    let resolved: Vec<&str> = lock["packages"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|p| p["resolved"].as_str())
        .collect();
    assert!(!resolved.is_empty());
    for r in resolved {
        assert!(r.starts_with("file:///cachi2/output/deps/npm/"), "{r}");
    }
    // Not an output directory: exit 2.
    let missing = run(strata().arg("env").arg(dir.path().join("nope")));
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn https_upstreams_are_verified_and_a_private_ca_is_trusted_through_ssl_cert_file() {
    let files = Files::new(1, 5_000);
    let up = files
        .serve(UpstreamBuilder::new().tls(true))
        .start()
        .unwrap();
    assert!(up.url("").starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);

    // The upstream's CA is in no trust store: every artifact fails, none is trusted blindly,
    // and the message says how to trust a private CA.
    let untrusted = run(
        fetch_json(&dir.path().join("cache"), &dir.path().join("out1"))
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .args(["--retries", "0"])
            .args(&lockfiles),
    );
    assert_eq!(untrusted.status.code(), Some(1));
    let summary = json(&untrusted);
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), files.count(), "{summary}");
    assert_eq!(summary["downloaded"], 0);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("SSL_CERT_FILE"), "{error}");

    // Trusted through SSL_CERT_FILE, as with curl and pip: the same fetch succeeds.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, up.ca_pem().unwrap()).unwrap();
    let out = dir.path().join("out2");
    let trusted = run(fetch_json(&dir.path().join("cache"), &out)
        .env("SSL_CERT_FILE", &ca)
        .args(&lockfiles));
    assert_eq!(trusted.status.code(), Some(0), "{}", json(&trusted));
    assert_eq!(json(&trusted)["downloaded"], files.count());
    for (path, bytes) in files.expected_outputs() {
        assert_eq!(std::fs::read(out.join(&path)).unwrap(), bytes, "{path}");
    }
}

#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_gets_plain_lines() {
    // `script` (util-linux, in every Debian) runs the fetch on a pseudo-terminal and copies
    // what it draws to its own stdout.
    if !fuse::require("script (util-linux)", fuse::have("script")) {
        return;
    }
    let files = Files::new(2, 150_000);
    // ~1 s of downloading: long enough for the bar to be drawn several times.
    let up = files
        .serve(UpstreamBuilder::new())
        .rate_limit(400_000)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let command_line = |cache: &str, out: &str| {
        let mut words = vec![
            env!("CARGO_BIN_EXE_strata").to_string(),
            "fetch".into(),
            "--cache-dir".into(),
            dir.path().join(cache).display().to_string(),
            "-o".into(),
            dir.path().join(out).display().to_string(),
        ];
        words.extend(lockfiles.iter().map(|l| l.display().to_string()));
        words
    };
    let on_tty = run(Command::new("script")
        .args(["-qfec", &command_line("c1", "o1").join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("STRATA_LOG")
        .env_remove("CI"));
    assert_eq!(on_tty.status.code(), Some(0));
    let drawn = String::from_utf8_lossy(&on_tty.stdout);
    assert!(
        drawn.contains("artifacts") && drawn.contains('\r') && drawn.contains("\x1b[2K"),
        "a bar redrawn in place: {drawn:?}"
    );
    assert!(
        drawn.contains(&format!("/{} artifacts", files.count())),
        "{drawn:?}"
    );
    assert!(dir.path().join("o1/bom.json").exists());

    let words = command_line("c2", "o2");
    let piped = run(strata().args(&words[1..]));
    assert_eq!(piped.status.code(), Some(0));
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "no control characters in a log: {err:?}"
    );
    assert!(
        err.contains("artifacts"),
        "the summary is still there: {err:?}"
    );
}
