//! `strata mount` end to end: real FUSE mounts, real processes, a real loopback upstream,
//! and real clients (cat, sha256sum, pip, npm, buildah).

mod common;
#[path = "common/fuse.rs"]
mod fuse;
mod rpmkit;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use fuse::*;
use strata_upstream::{Fault, UpstreamBuilder};

const FOR: &str = "/cachi2/output";

/// Lockfiles of every kind (`per_kind` files each) served by a fresh upstream.
fn setup(per_kind: usize, dir: &Path) -> (Files, strata_upstream::Upstream, Vec<PathBuf>) {
    let files = Files::new(per_kind, 20_000);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let lockfiles = files.write_lockfiles(&dir.join("src"), &up);
    (files, up, lockfiles)
}

#[test]
fn the_mount_is_the_fetch_tree_and_downloads_only_on_open() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(3, dir.path());
    let out = dir.path().join("out");
    let fetched = run(strata()
        .args(["fetch", "--for-output-dir", FOR, "--cache-dir"])
        .arg(dir.path().join("eager-cache"))
        .arg("-o")
        .arg(&out)
        .args(&lockfiles));
    assert_eq!(fetched.status.code(), Some(0));

    let mnt = dir.path().join("mnt");
    let m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--for-output-dir", FOR],
    );
    // Mounting tried to read the (fake) RPMs' headers for repodata; count from here.
    up.reset_stats();
    let listed = list_files(&mnt);
    let eager = list_files(&out);
    let paths = |l: &[(String, u64)]| l.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&listed), paths(&eager), "same paths as strata fetch");
    for ((path, size), (_, eager_size)) in listed.iter().zip(&eager) {
        // Sizes the lockfile knows are right before any download; unknown ones read as 0.
        assert!(
            *size == *eager_size || *size == 0,
            "{path}: {size} vs {eager_size}"
        );
    }
    assert_eq!(
        up.stats().total_requests,
        0,
        "listing and stat never download"
    );

    for (path, _) in &eager {
        assert_eq!(
            std::fs::read(mnt.join(path)).unwrap(),
            std::fs::read(out.join(path)).unwrap(),
            "{path}"
        );
        assert_eq!(
            sha256sum(&mnt.join(path)),
            sha256sum(&out.join(path)),
            "{path}"
        );
    }
    assert_eq!(
        list_files(&mnt),
        eager,
        "after opening, every size is the real one"
    );
    for (path, _) in files.expected_outputs() {
        let url_path = upstream_path(&files, &path);
        assert_eq!(up.requests(&url_path), 1, "{url_path} downloaded once");
    }
    let cat = Command::new("cat")
        .arg(mnt.join("bom.json"))
        .output()
        .unwrap();
    assert_eq!(cat.stdout, std::fs::read(out.join("bom.json")).unwrap());
    assert_eq!(m.umount(), Some(0));
    assert!(mount_source(&mnt).is_none(), "unmounted");
    assert!(
        m.log().contains(&format!("{} downloaded", files.count())),
        "{}",
        m.log()
    );
}

/// The lockfiles but `rpms.lock.yaml`, whose (fake) packages a mount reads the headers of
/// when it starts, for repodata.
fn without_rpms(lockfiles: Vec<PathBuf>) -> Vec<PathBuf> {
    lockfiles
        .into_iter()
        .filter(|l| !l.ends_with("rpms.lock.yaml"))
        .collect()
}

/// The upstream URL path of an output path of [`Files`].
fn upstream_path(files: &Files, out_path: &str) -> String {
    let name = out_path.rsplit('/').next().unwrap();
    if out_path.starts_with("deps/pip/") {
        format!("pypi/{name}")
    } else if out_path.starts_with("deps/npm/") {
        let module = files
            .npm
            .iter()
            .find(|(m, _)| name == format!("{m}-1.0.0.tgz"))
            .map(|(m, _)| m.clone())
            .unwrap();
        format!("npm/{module}/-/{name}")
    } else if out_path.starts_with("deps/rpm/") {
        format!("rpm/{name}")
    } else {
        format!("generic/{name}")
    }
}

#[test]
fn wrong_bytes_fail_the_open_with_eio_and_the_mount_keeps_serving() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_files, up, lockfiles) = setup(2, dir.path());
    up.set_fault("generic/blob0.bin", Some(Fault::WrongBytes));
    let mnt = dir.path().join("mnt");
    let m = Mount::start(&mnt, &dir.path().join("cache"), &lockfiles, &[]);
    let err = std::fs::read(mnt.join("deps/generic/blob0.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_eio()), "{err}");
    assert!(std::fs::read(mnt.join("deps/generic/blob1.bin")).is_ok());
    assert!(std::fs::metadata(mnt.join("deps/pip")).is_ok());
    up.set_fault("generic/blob0.bin", None);
    assert!(
        std::fs::read(mnt.join("deps/generic/blob0.bin")).is_ok(),
        "a later open retries"
    );
    let log = m.log();
    assert!(
        log.contains("blob0.bin") && log.contains("checksum mismatch"),
        "{log}"
    );
    assert!(
        log.contains(&up.url("generic/blob0.bin")),
        "the URL is logged: {log}"
    );
}

fn libc_eio() -> i32 {
    5
}

#[test]
fn two_mounts_on_one_store_download_each_digest_once() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(4, 200_000);
    let up = files
        .serve(UpstreamBuilder::new())
        .latency(Duration::from_millis(50))
        .start()
        .unwrap();
    let lockfiles = files.write_lockfiles(&dir.path().join("src"), &up);
    let cache = dir.path().join("cache");
    let a = Mount::start(&dir.path().join("a"), &cache, &lockfiles, &[]);
    let b = Mount::start(&dir.path().join("b"), &cache, &lockfiles, &[]);
    up.reset_stats(); // the RPM header reads of mounting
    let readers: Vec<_> = [&a.path, &b.path, &a.path, &b.path]
        .into_iter()
        .map(|root| {
            let root = root.clone();
            let paths: Vec<String> = files
                .expected_outputs()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            std::thread::spawn(move || {
                paths
                    .iter()
                    .map(|p| std::fs::read(root.join(p)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for r in readers {
        let got = r.join().unwrap();
        for (bytes, (path, want)) in got.iter().zip(files.expected_outputs()) {
            assert_eq!(bytes.as_slice(), want, "{path}");
        }
    }
    for (path, _) in files.expected_outputs() {
        let url_path = upstream_path(&files, &path);
        assert_eq!(up.requests(&url_path), 1, "{url_path}");
    }
}

#[test]
fn daemon_umount_and_recovery_after_kill_9() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(1, dir.path());
    let mnt = dir.path().join("mnt");
    let cache = dir.path().join("cache");
    let m = Mount::start(&mnt, &cache, &lockfiles, &[]);
    let pid = mount_pid(&mnt).unwrap();
    assert_eq!(m.umount(), Some(0));
    assert!(mount_source(&mnt).is_none());
    assert!(!process_alive(pid), "the daemon exited");

    let _m = Mount::start(&mnt, &cache, &lockfiles, &[]);
    let pid = mount_pid(&mnt).unwrap();
    let again = run(strata()
        .args(["mount", "--cache-dir"])
        .arg(&cache)
        .arg(&mnt)
        .args(&lockfiles));
    assert_eq!(again.status.code(), Some(2), "a live mount is not replaced");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
    let dead = std::fs::read(mnt.join("bom.json")).unwrap_err();
    assert!(
        matches!(dead.raw_os_error(), Some(107 | 103)),
        "ENOTCONN or ECONNABORTED: {dead}"
    );
    let m = Mount::start(&mnt, &cache, &lockfiles, &[]);
    assert_ne!(mount_pid(&mnt), Some(pid));
    let (path, want) = &files.expected_outputs()[0];
    assert_eq!(std::fs::read(mnt.join(path)).unwrap(), *want);
    assert_eq!(m.umount(), Some(0));
}

#[test]
fn sigterm_unmounts_a_foreground_mount_and_logs_a_summary() {
    a_signal_unmounts_a_foreground_mount("TERM");
}

#[test]
fn sighup_unmounts_a_foreground_mount_and_logs_a_summary() {
    a_signal_unmounts_a_foreground_mount("HUP");
}

/// `kill -<signal>` of a foreground `strata mount` unmounts it: exit 0 and a summary.
fn a_signal_unmounts_a_foreground_mount(signal: &str) {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(1, dir.path());
    let mnt = dir.path().join("mnt");
    let mut child = strata()
        .args(["mount", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .arg(&mnt)
        .args(&lockfiles)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || mount_pid(&mnt).is_some()));
    let (path, want) = &files.expected_outputs()[0];
    assert_eq!(std::fs::read(mnt.join(path)).unwrap(), *want);
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(mount_source(&mnt).is_none());
    assert!(
        stderr.contains("unmounted") && stderr.contains("1 downloaded"),
        "{stderr}"
    );
}

#[test]
fn a_recorded_profile_is_prefetched_in_the_background() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let profile = dir.path().join("profile.jsonl");
    let mnt = dir.path().join("mnt");
    let record = ["--record", profile.to_str().unwrap()];
    let m = Mount::start(&mnt, &dir.path().join("cache1"), &lockfiles, &record);
    let wanted = [
        "deps/generic/blob1.bin",
        "deps/pip/pkg0-1.0-py3-none-any.whl",
    ];
    for p in wanted {
        std::fs::read(mnt.join(p)).unwrap();
    }
    assert_eq!(m.umount(), Some(0));
    let text = std::fs::read_to_string(&profile).unwrap();
    let recorded: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recorded.len(), 2, "{text}");
    assert_eq!(recorded[0]["path"], wanted[0]);
    assert_eq!(recorded[0]["source"], "download");
    assert!(
        recorded[0]["wait_ms"].is_u64() && recorded[1]["t_ms"].is_u64(),
        "{text}"
    );

    up.reset_stats();
    let prefetch = ["--prefetch", profile.to_str().unwrap()];
    let _m = Mount::start(&mnt, &dir.path().join("cache2"), &lockfiles, &prefetch);
    let urls: Vec<String> = wanted.iter().map(|p| upstream_path(&files, p)).collect();
    assert!(
        wait_until(Duration::from_secs(10), || urls
            .iter()
            .all(|u| up.requests(u) == 1)),
        "the profile's files are fetched without any open"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(up.stats().total_requests, 2, "and nothing else");
    for p in wanted {
        std::fs::read(mnt.join(p)).unwrap();
    }
    assert_eq!(up.stats().total_requests, 2, "opens are then cache hits");
}

#[test]
fn a_profile_prefetch_runs_ahead_with_twice_the_slots_and_more_when_an_open_waits() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(2, 20_000);
    let up = files
        .serve(UpstreamBuilder::new().latency(Duration::from_millis(1500)))
        .start()
        .unwrap();
    let lockfiles = without_rpms(files.write_lockfiles(&dir.path().join("src"), &up));
    let outputs: Vec<_> = files
        .expected_outputs()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("deps/rpm/"))
        .collect();
    assert!(outputs.len() >= 6, "{}", outputs.len());
    let profile = dir.path().join("profile.jsonl");
    let lines: Vec<String> = outputs
        .iter()
        .enumerate()
        .map(|(i, (path, _))| serde_json::json!({"path": path, "t_ms": i * 10}).to_string())
        .collect();
    std::fs::write(&profile, lines.join("\n") + "\n").unwrap();
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--jobs", "1", "--prefetch", profile.to_str().unwrap()],
    );
    // --jobs 1: the profile gets 2 slots; the open of its last file waits on its own slot
    // and gives the prefetch a third one, so 4 requests are in flight at once.
    let (last, want) = outputs.last().unwrap().clone();
    let path = mnt.join(&last);
    let reader = std::thread::spawn(move || std::fs::read(path).unwrap());
    assert_eq!(reader.join().unwrap(), want, "{last}");
    let max = up.stats().max_concurrent_requests;
    assert_eq!(max, 4, "requests in flight at once");
    assert!(
        wait_until(Duration::from_secs(30), || up.stats().total_requests
            == outputs.len() as u64),
        "the whole profile is fetched, each file once"
    );
}

#[test]
fn prefetch_all_fetches_everything() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--prefetch", "all"],
    );
    let want = files.count() - files.rpms.len();
    assert!(wait_until(Duration::from_secs(10), || {
        up.stats().total_requests == want as u64
    }));
}

/// The count before ` {what}` in a daemon's unmount summary (`3 prefetched`, ...).
fn summary_count(log: &str, what: &str) -> u64 {
    let summary = log
        .lines()
        .find(|l| l.starts_with("strata: unmounted "))
        .unwrap_or_else(|| panic!("no summary in the log: {log}"));
    let (before, _) = summary
        .split_once(&format!(" {what}"))
        .unwrap_or_else(|| panic!("no `{what}` in the summary: {summary}"));
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn prefetch_failures_count_as_failed_and_cached_files_not_as_prefetched() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let cache = dir.path().join("cache");
    let mnt = dir.path().join("mnt");
    let (missing, cached, fresh) = (
        "deps/generic/blob0.bin",
        "deps/pip/pkg0-1.0-py3-none-any.whl",
        "deps/pip/pkg1-1.0-py3-none-any.whl",
    );
    let m = Mount::start(&mnt, &cache, &lockfiles, &[]);
    std::fs::read(mnt.join(cached)).unwrap();
    assert_eq!(m.umount(), Some(0));
    drop(m);
    std::fs::remove_dir_all(cache.join("logs")).unwrap();
    up.set_fault(
        &upstream_path(&files, missing),
        Some(Fault::Status {
            code: 404,
            times: 1000,
        }),
    );
    let profile = dir.path().join("profile.jsonl");
    let lines: Vec<String> = [missing, cached, fresh]
        .iter()
        .map(|p| serde_json::json!({"path": p, "t_ms": 0}).to_string())
        .collect();
    std::fs::write(&profile, lines.join("\n") + "\n").unwrap();
    up.reset_stats();
    let m = Mount::start(
        &mnt,
        &cache,
        &lockfiles,
        &["--prefetch", profile.to_str().unwrap()],
    );
    assert!(
        wait_until(Duration::from_secs(20), || m
            .log()
            .contains("prefetch finished")),
        "{}",
        m.log()
    );
    assert!(up.requests(&upstream_path(&files, missing)) >= 1);
    assert_eq!(up.requests(&upstream_path(&files, cached)), 0, "cached");
    assert_eq!(up.requests(&upstream_path(&files, fresh)), 1);
    assert_eq!(m.umount(), Some(0));
    let log = m.log();
    assert_eq!(summary_count(&log, "failed"), 1, "the 404: {log}");
    assert_eq!(
        summary_count(&log, "prefetched"),
        1,
        "only the real download, not the cached file: {log}"
    );
    assert_eq!(summary_count(&log, "downloaded"), 1, "{log}");
}

#[test]
fn prefetch_all_yields_to_an_open_of_a_file_it_has_not_reached() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 21 files of ~20 kB at 20 kB/s per connection: ~1 s each; with --jobs 8 the
    // prefetch of all runs 2 at a time, ~10 s for everything.
    let files = Files::new(7, 20_000);
    let up = files
        .serve(UpstreamBuilder::new().rate_limit(20_000))
        .start()
        .unwrap();
    let lockfiles = without_rpms(files.write_lockfiles(&dir.path().join("src"), &up));
    let outputs: Vec<(String, usize)> = files
        .expected_outputs()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("deps/rpm/"))
        .map(|(p, b)| (p, b.len()))
        .collect();
    assert_eq!(outputs.len(), 21);
    let demand = "deps/pip/pkg6-1.0-py3-none-any.whl";
    let prefetched: Vec<(String, usize)> = outputs
        .iter()
        .filter(|(p, _)| p != demand)
        .map(|(p, n)| (upstream_path(&files, p), *n))
        .collect();
    // Per prefetch file: (requests, bytes sent, size).
    let progress = || {
        let stats = up.stats();
        prefetched
            .iter()
            .map(|(u, n)| {
                let p = stats
                    .paths
                    .get(&format!("/{u}"))
                    .cloned()
                    .unwrap_or_default();
                (p.get, p.bytes_sent, *n as u64)
            })
            .collect::<Vec<_>>()
    };
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--jobs", "8", "--prefetch", "all"],
    );
    // Open while two prefetch downloads are in flight, each less than half done.
    assert!(
        wait_until(Duration::from_secs(20), || {
            progress()
                .iter()
                .filter(|(get, sent, size)| *get == 1 && *sent < size / 2)
                .count()
                == 2
        }),
        "two prefetch downloads in flight: {:?}",
        progress()
    );
    let demand_url = upstream_path(&files, demand);
    assert_eq!(up.requests(&demand_url), 0, "{demand} not prefetched yet");
    let want = files.wheels[6].1.clone();
    assert_eq!(std::fs::read(mnt.join(demand)).unwrap(), want);
    // The open did not queue behind the prefetch: when it returned, the upstream had sent
    // only a few of the 20 other files (behind the prefetch it would be most of them).
    let served = progress().iter().filter(|(_, s, n)| s == n).count();
    assert!(
        served <= 5,
        "{served} prefetch files served before the open"
    );
    assert_eq!(up.requests(&demand_url), 1);
    // While the open waited, the later of the two prefetch downloads was cancelled (it is
    // requested a second time once no open waits); the earlier one went on.
    assert!(
        wait_until(Duration::from_secs(60), || progress()
            .iter()
            .all(|(get, s, n)| *get >= 1 && s >= n)),
        "the prefetch goes on and fetches everything: {:?}",
        progress()
    );
    let again: Vec<_> = progress().into_iter().filter(|(g, _, _)| *g > 1).collect();
    assert_eq!(
        again.len(),
        1,
        "exactly one prefetch download yielded to the open and started again: {:?}",
        progress()
    );
}

#[test]
fn pip_installs_a_wheel_from_the_mount() {
    if !require_fuse() || !require("python3 with pip", pip_ok()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wheel = tiny_wheel("strata_demo", "1.0", "from-the-mount", dir.path());
    let bytes = std::fs::read(&wheel).unwrap();
    let name = wheel.file_name().unwrap().to_str().unwrap().to_owned();
    let up = UpstreamBuilder::new()
        .file(&format!("pypi/{name}"), bytes.clone())
        .start()
        .unwrap();
    let lock = dir.path().join("pylock.toml");
    std::fs::write(
        &lock,
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"t\"\n[[packages]]\nname = \"strata-demo\"\nversion = \"1.0\"\nwheels = [{{ url = \"{}\", hashes = {{ sha256 = \"{}\" }} }}]\n",
            up.url(&format!("pypi/{name}")),
            sha256_hex(&bytes)
        ),
    )
    .unwrap();
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(&mnt, &dir.path().join("cache"), &[lock], &[]);
    let target = dir.path().join("site");
    let out = run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--find-links",
        ])
        .arg(mnt.join("deps/pip"))
        .arg("--target")
        .arg(&target)
        .arg("strata_demo"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let check = Command::new("python3")
        .args(["-c", "import strata_demo; print(strata_demo.VALUE)"])
        .env("PYTHONPATH", &target)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "from-the-mount"
    );
    assert_eq!(up.requests(&format!("pypi/{name}")), 1);
}

fn pip_ok() -> bool {
    Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn npm_installs_offline_from_tarballs_in_the_mount() {
    if !require_fuse() || !require("npm", have("npm")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tgz = tiny_npm_tarball("strata-demo-pkg", "1.0.0", "from-the-mount", dir.path());
    let bytes = std::fs::read(&tgz).unwrap();
    let url_path = "npm/strata-demo-pkg/-/strata-demo-pkg-1.0.0.tgz";
    let up = UpstreamBuilder::new()
        .file(url_path, bytes.clone())
        .start()
        .unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let lock = src.join("package-lock.json");
    let lock_json = serde_json::json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"strata-demo-pkg": "1.0.0"}},
            "node_modules/strata-demo-pkg": {
                "version": "1.0.0", "resolved": up.url(url_path), "integrity": sha512_sri(&bytes)
            }
        }
    });
    std::fs::write(&lock, serde_json::to_string_pretty(&lock_json).unwrap()).unwrap();
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(&mnt, &dir.path().join("cache"), &[lock], &[]);
    let in_mount = mnt.join("deps/npm/strata-demo-pkg-1.0.0.tgz");
    assert!(in_mount.exists(), "{:?}", list_files(&mnt));

    // npm ci from a lockfile whose `resolved` points into the mount, as inject-files writes it.
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let dep = format!("file:{}", in_mount.display());
    std::fs::write(
        app.join("package.json"),
        serde_json::json!({"name": "app", "version": "1.0.0", "dependencies": {"strata-demo-pkg": dep}}).to_string(),
    )
    .unwrap();
    let npm = |args: &[&str]| {
        run(Command::new("npm")
            .args(args)
            .args(["--offline", "--no-audit", "--no-fund", "--cache"])
            .arg(dir.path().join("npm-cache"))
            .current_dir(&app))
    };
    let install = npm(&["install"]);
    assert!(
        install.status.success(),
        "npm install: {}",
        String::from_utf8_lossy(&install.stdout)
    );
    std::fs::remove_dir_all(app.join("node_modules")).unwrap();
    let ci = npm(&["ci"]);
    assert!(
        ci.status.success(),
        "npm ci: {}",
        String::from_utf8_lossy(&ci.stdout)
    );
    let check = Command::new("node")
        .args(["-e", "console.log(require('strata-demo-pkg'))"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "from-the-mount"
    );
    assert_eq!(up.requests(url_path), 1);
}

#[test]
fn buildah_bud_reads_the_mount_through_a_volume() {
    if !require_fuse()
        || !require("buildah", have("buildah"))
        || !require(
            "busybox-static (/bin/busybox)",
            Path::new("/bin/busybox").exists(),
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(1, dir.path());
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--allow-other", "--for-output-dir", FOR],
    );
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sha256sum\", \"/cachi2/output/deps/generic/blob0.bin\"]\n\
         RUN [\"/bin/busybox\", \"cat\", \"/cachi2/output/.build-config.json\"]\n",
    )
    .unwrap();
    let root = dir.path().join("storage");
    let out = run(Command::new("buildah")
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "bud",
            "--isolation",
            "chroot",
            "-v",
        ])
        .arg(format!("{}:{FOR}:ro", mnt.display()))
        .arg("-f")
        .arg(ctx.join("Containerfile"))
        .arg(&ctx));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "buildah bud: {stdout}");
    let want = sha256_hex(&files.generic[0].1);
    assert!(
        stdout.contains(&want),
        "the build saw the artifact's bytes: {stdout}"
    );
    assert!(stdout.contains("PIP_FIND_LINKS"), "{stdout}");
}

#[test]
fn a_slow_download_blocks_only_its_own_open() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let mnt = dir.path().join("mnt");
    let _m = Mount::start(&mnt, &dir.path().join("cache"), &lockfiles, &[]);
    let cached = mnt.join("deps/generic/blob1.bin");
    std::fs::read(&cached).unwrap();
    up.set_fault(
        "generic/blob0.bin",
        Some(Fault::Slow {
            bytes_per_sec: 8_000,
        }),
    );
    let slow_path = mnt.join("deps/generic/blob0.bin");
    let started = std::time::Instant::now();
    let slow = std::thread::spawn(move || std::fs::read(slow_path).unwrap());
    assert!(wait_until(Duration::from_secs(5), || up
        .requests("generic/blob0.bin")
        == 1));
    let quick = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(std::fs::read(&cached).unwrap(), files.generic[1].1);
        std::fs::metadata(mnt.join("deps/pip/pkg1-1.0-py3-none-any.whl")).unwrap();
        assert!(std::fs::read_dir(mnt.join("deps/npm")).unwrap().count() > 0);
    }
    assert!(
        quick.elapsed() < Duration::from_millis(1000),
        "cached opens, stats and listings took {:?} during a slow download",
        quick.elapsed()
    );
    assert_eq!(slow.join().unwrap(), files.generic[0].1);
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the slow open really waited"
    );
}

#[test]
fn reads_without_passthrough_serve_the_same_bytes() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(2, dir.path());
    let mnt = dir.path().join("mnt");
    let m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--no-passthrough"],
    );
    for (path, want) in files.expected_outputs() {
        assert_eq!(std::fs::read(mnt.join(&path)).unwrap(), want, "{path}");
        assert_eq!(
            std::fs::metadata(mnt.join(&path)).unwrap().len(),
            want.len() as u64
        );
    }
    assert!(!m.log().contains("passthrough"), "{}", m.log());
}

/// The `N reads served by strata` of a daemon's unmount summary.
fn reads_served(log: &str) -> u64 {
    let (before, _) = log
        .split_once(" reads served by strata")
        .unwrap_or_else(|| panic!("no summary in the log: {log}"));
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn without_passthrough_files_without_a_lockfile_size_are_page_cached_once_fetched() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(2, dir.path());
    let cache = dir.path().join("cache");
    let mnt = dir.path().join("mnt");
    let outputs = files.expected_outputs();
    // Every file read once (the first pass downloads them)...
    let m = Mount::start(&mnt, &cache, &lockfiles, &["--no-passthrough"]);
    for (path, want) in &outputs {
        assert_eq!(&std::fs::read(mnt.join(path)).unwrap(), want, "{path}");
    }
    assert_eq!(m.umount(), Some(0));
    let once = reads_served(&m.log());
    drop(m);
    // ...then, on a fresh mount of the same cache, four times: the later passes come from the
    // page cache for every file, with or without a size in its lockfile (no FOPEN_DIRECT_IO).
    let m = Mount::start(&mnt, &cache, &lockfiles, &["--no-passthrough"]);
    for pass in 0..4 {
        for (path, want) in &outputs {
            assert_eq!(
                &std::fs::read(mnt.join(path)).unwrap(),
                want,
                "{path} #{pass}"
            );
            assert_eq!(
                std::fs::metadata(mnt.join(path)).unwrap().len(),
                want.len() as u64,
                "{path}: the real size once fetched"
            );
        }
    }
    assert_eq!(m.umount(), Some(0));
    let four = reads_served(&m.log());
    assert!(
        four <= once + 2,
        "4 passes took {four} daemon reads, 1 pass {once}: later passes were not cached"
    );
}

/// The running kernel's (major, minor) version, from `uname(2)`'s release (`6.18.44-...`).
fn kernel_version() -> (u32, u32) {
    // SAFETY: `uname` fills the zeroed struct it is given; the release is NUL-terminated.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        assert_eq!(libc::uname(&mut u), 0, "uname");
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether this kernel and these privileges allow FUSE passthrough: Linux >= 6.9 (where
/// FUSE_PASSTHROUGH came in) and root (the kernel requires CAP_SYS_ADMIN to register a
/// backing file). Derived from `uname` and our uid, never from what the daemon reports.
fn passthrough_possible() -> bool {
    kernel_version() >= (6, 9) && is_root()
}

#[test]
fn with_passthrough_artifact_reads_bypass_strata() {
    if !require_fuse() {
        return;
    }
    let expected = passthrough_possible();
    if !expected {
        // Passthrough is optional by design ("where the kernel and privileges allow it"):
        // without it only the weaker check below runs, even under STRATA_TEST_REQUIRE_ALL.
        let note = if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
            "WARNING (STRATA_TEST_REQUIRE_ALL=1)"
        } else {
            "NOTE"
        };
        eprintln!(
            "{note}: FUSE passthrough cannot be used here (kernel {:?} < 6.9 or not root); \
             only checking that reads are served by strata instead",
            kernel_version()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(1, dir.path());
    let mnt = dir.path().join("mnt");
    let m = Mount::start(&mnt, &dir.path().join("cache"), &lockfiles, &[]);
    let reported = m.log().contains(", passthrough)");
    for (path, want) in files.expected_outputs() {
        assert_eq!(std::fs::read(mnt.join(&path)).unwrap(), want, "{path}");
    }
    assert_eq!(m.umount(), Some(0));
    let log = m.log();
    let reads = reads_served(&log);
    if expected {
        // Every artifact was read in full, and not one read reached the daemon.
        assert!(
            reported,
            "Linux >= 6.9 as root: the mount must use passthrough: {log}"
        );
        assert_eq!(reads, 0, "artifact reads reached strata: {log}");
    } else {
        assert!(!reported, "passthrough reported where impossible: {log}");
        assert!(reads > 0, "{log}");
    }
}

#[test]
fn a_daemon_that_cannot_start_reports_why_with_exit_2() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pylock.toml");
    std::fs::write(&bad, "this is not toml = = =").unwrap();
    let mnt = dir.path().join("mnt");
    let out = run(strata()
        .args(["mount", "--daemon", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .arg(&mnt)
        .arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pylock.toml"));
    assert!(mount_source(&mnt).is_none());
}

/// rpmbuild-built packages in two repos, served by the upstream; the mount shows
/// `repodata/` for both (generated from header-only Range reads before the mount is ready)
/// and a real dnf installs from the mount, downloading only the packages it installs.
#[test]
fn dnf_installs_from_the_mount_and_downloads_only_what_it_installs() {
    if !require_fuse()
        || !rpmkit::require(
            "dnf_installs_from_the_mount_and_downloads_only_what_it_installs",
            &["rpmbuild", "dnf", "rpm"],
        )
    {
        return;
    }
    use rpmkit::{LockEntry, Spec};
    let work = tempfile::tempdir().unwrap();
    // alpha (apps) requires beta >= 2.0 (base); gamma (apps) is large and not installed.
    let specs: Vec<(&str, Spec, Vec<u8>)> = [
        ("apps", Spec::new("alpha", "1.0").requires("beta >= 2.0")),
        ("base", Spec::new("beta", "2.0")),
        ("apps", Spec::new("gamma", "3.0").payload(256 << 10)),
    ]
    .into_iter()
    .map(|(repo, spec)| {
        let bytes = rpmkit::build(work.path(), &spec);
        (repo, spec, bytes)
    })
    .collect();
    let mut b = UpstreamBuilder::new();
    for (repo, spec, bytes) in &specs {
        b = b.file(&format!("{repo}/{}", spec.file_name()), bytes.clone());
    }
    let up = b.start().unwrap();
    let entries: Vec<LockEntry<'_>> = specs
        .iter()
        .map(|(repo, spec, bytes)| LockEntry {
            repoid: repo,
            url: up.url(&format!("{repo}/{}", spec.file_name())),
            spec,
            bytes,
        })
        .collect();
    let lock = work.path().join("rpms.lock.yaml");
    std::fs::write(&lock, rpmkit::rpms_lock(&entries)).unwrap();
    let sent = |repo: &str, spec: &Spec| {
        up.stats()
            .paths
            .get(&format!("/{repo}/{}", spec.file_name()))
            .map_or(0, |p| p.bytes_sent)
    };

    let mnt = work.path().join("mnt");
    let cache = work.path().join("cache");
    let m = Mount::start(&mnt, &cache, std::slice::from_ref(&lock), &[]);
    assert!(
        m.log().contains("generated from package headers"),
        "{}",
        m.log()
    );
    for (repo, spec, bytes) in &specs {
        if spec.file_name().starts_with("gamma") {
            // The small packages fit in the first Range read; gamma's payload is not read.
            assert!(
                sent(repo, spec) < bytes.len() as u64 / 2,
                "{}: only headers read at mount",
                spec.file_name()
            );
        }
        let repomd = mnt.join(format!("deps/rpm/x86_64/{repo}/repodata/repomd.xml"));
        assert!(repomd.is_file(), "{} exists", repomd.display());
    }
    up.reset_stats();
    let (root, dnf) = rpmkit::dnf_install(
        work.path(),
        &mnt.join("deps/rpm/x86_64/repos.d"),
        &["apps", "base"],
        &["alpha"],
    );
    assert!(
        dnf.status.success(),
        "dnf install alpha from the mount failed"
    );
    let q = rpmkit::rpm_query(&root, &["alpha", "beta"]);
    assert_eq!(
        String::from_utf8_lossy(&q.stdout),
        "alpha-1.0-1.noarch\nbeta-2.0-1.noarch\n"
    );
    for (repo, spec, bytes) in &specs {
        let want = if spec.file_name().starts_with("gamma") {
            0
        } else {
            bytes.len() as u64
        };
        assert_eq!(
            sent(repo, spec),
            want,
            "{}: downloaded only if installed",
            spec.file_name()
        );
    }
    assert_eq!(m.umount(), Some(0));
    drop(m);

    // A second mount of the same cache has the repodata at once: nothing is read upstream.
    up.reset_stats();
    let m = Mount::start(&mnt, &cache, std::slice::from_ref(&lock), &[]);
    assert!(m.log().contains(": cached ("), "{}", m.log());
    assert_eq!(up.stats().total_requests, 0);
    assert!(
        mnt.join("deps/rpm/x86_64/base/repodata/repomd.xml")
            .is_file()
    );
}

/// The unprivileged user the non-root tests run strata as.
const NOBODY: u32 = 65534;

/// Whether this process runs as root (needed to run commands as another user).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// `program` run as uid/gid [`NOBODY`] without supplementary groups, with `HOME` at `home`.
fn as_nobody(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .args(["--clear-groups", "--"])
        .arg(program)
        .env("HOME", home)
        .env_remove("STRATA_CACHE_DIR")
        .env_remove("STRATA_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// `strata` run as [`NOBODY`].
fn strata_as_nobody(home: &Path) -> Command {
    as_nobody(env!("CARGO_BIN_EXE_strata"), home)
}

/// What an unprivileged FUSE mount needs: root here (to switch users), a setuid-root
/// `fusermount3`, and a `/dev/fuse` that [`NOBODY`] may open read-write (mode 0666, which
/// udev's default rules set; a devtmpfs without udev leaves it 0600).
fn require_unprivileged_fuse(home: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let setuid = std::fs::metadata("/usr/bin/fusermount3")
        .is_ok_and(|m| m.uid() == 0 && m.mode() & 0o4000 != 0);
    let dev_fuse = is_root()
        && as_nobody("sh", home)
            .args(["-c", "exec 3<>/dev/fuse"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    require_fuse()
        && require("root (to run strata as uid 65534)", is_root())
        && require("setuid-root /usr/bin/fusermount3", setuid)
        && require("/dev/fuse read-write for uid 65534 (mode 0666)", dev_fuse)
}

/// A directory tree [`NOBODY`] can reach: the tempdir (0700 when made by root) opened up,
/// with `cache` and `mnt` owned by that user.
fn nobody_dirs(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (cache, mnt) = (dir.join("cache"), dir.join("mnt"));
    for d in [&cache, &mnt] {
        std::fs::create_dir_all(d).unwrap();
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    (cache, mnt)
}

/// The uid a process runs as.
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_unprivileged_user_mounts_unmounts_and_recovers_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    if !require_unprivileged_fuse(dir.path()) {
        return;
    }
    let (cache, mnt) = nobody_dirs(dir.path());
    let (files, _up, lockfiles) = setup(1, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let (path, want) = files.expected_outputs()[0].clone();
    let home = dir.path();
    // Unmounts (as root) whatever a failed assertion leaves mounted.
    let guard = Mount {
        path: mnt.clone(),
        cache: cache.clone(),
    };
    let mount = || {
        run(strata_as_nobody(home)
            .args(["mount", "--daemon", "--cache-dir"])
            .arg(&cache)
            .arg(&mnt)
            .args(&lockfiles))
    };
    let read = || run(as_nobody("cat", home).arg(mnt.join(&path))).stdout;
    let umount = || run(strata_as_nobody(home).arg("umount").arg(&mnt));

    assert_eq!(mount().status.code(), Some(0));
    let pid = mount_pid(&mnt).expect("mounted");
    assert_eq!(process_uid(pid), Some(NOBODY), "the daemon is unprivileged");
    assert_eq!(read(), want, "{path}");
    let out = umount();
    assert_eq!(
        out.status.code(),
        Some(0),
        "strata umount as the mounting user"
    );
    assert!(mount_source(&mnt).is_none(), "unmounted");
    assert!(wait_until(Duration::from_secs(10), || !process_alive(pid)));

    // kill -9 leaves a dead mount; the next mount by the same user detaches it.
    assert_eq!(mount().status.code(), Some(0));
    let pid = mount_pid(&mnt).unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
    let out = mount();
    assert_eq!(out.status.code(), Some(0), "a new mount after kill -9");
    assert!(
        guard.log().contains("detached a stale mount"),
        "{}",
        guard.log()
    );
    assert_ne!(mount_pid(&mnt), Some(pid));
    assert_eq!(read(), want, "{path}");

    // SIGTERM: the daemon unmounts itself through fusermount3 and logs its summary.
    let pid = mount_pid(&mnt).unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !process_alive(pid)));
    assert!(mount_source(&mnt).is_none(), "SIGTERM unmounted");
    assert!(guard.log().contains("strata: unmounted"), "{}", guard.log());
}

/// How many mounts are stacked at `mountpoint`.
fn mounts_at(mountpoint: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.split(' ').nth(4).map(Path::new) == Some(mountpoint))
        .count()
}

#[test]
fn a_mountpoint_named_through_a_symlink_or_dot_dot_is_found() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, _up, lockfiles) = setup(1, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let cache = dir.path().join("cache");
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (mnt, via_link) = (real.join("mnt"), link.join("mnt"));
    let via_dot_dot = real.join("../link/mnt");
    // The guard unmounts the real path; mounting goes through the symlink.
    let _guard = Mount {
        path: mnt.clone(),
        cache: cache.clone(),
    };
    let mount = |at: &Path| {
        run(strata()
            .args(["mount", "--daemon", "--cache-dir"])
            .arg(&cache)
            .arg(at)
            .args(&lockfiles))
    };
    assert_eq!(mount(&via_link).status.code(), Some(0));
    let pid = mount_pid(&mnt).expect("mounted at the real path");
    let again = mount(&via_dot_dot);
    assert_eq!(again.status.code(), Some(2), "a live mount is found");
    assert_eq!(mounts_at(&mnt), 1, "and not mounted over");

    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
    let out = mount(&via_link);
    assert_eq!(out.status.code(), Some(0), "the stale mount is detached");
    assert_eq!(mounts_at(&mnt), 1, "one live mount, the stale one gone");
    let (path, want) = &files.expected_outputs()[0];
    assert_eq!(std::fs::read(via_link.join(path)).unwrap(), *want);

    let out = run(strata().arg("umount").arg(&via_dot_dot));
    assert_eq!(out.status.code(), Some(0), "strata umount through `..`");
    assert_eq!(mounts_at(&mnt), 0);
}

#[test]
fn record_keeps_a_failed_first_open_and_the_later_success_on_the_ready_clock() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    up.set_fault("generic/blob0.bin", Some(Fault::WrongBytes));
    let profile = dir.path().join("profile.jsonl");
    let mnt = dir.path().join("mnt");
    let spawned = std::time::Instant::now();
    let m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--record", profile.to_str().unwrap()],
    );
    let ready = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let (blob0, blob1) = ("deps/generic/blob0.bin", "deps/generic/blob1.bin");
    let asked = spawned.elapsed().as_millis() as u64;
    let err = std::fs::read(mnt.join(blob0)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_eio()), "{err}");
    up.set_fault("generic/blob0.bin", None);
    std::fs::read(mnt.join(blob0)).expect("a later open succeeds");
    std::fs::read(mnt.join(blob1)).unwrap();
    std::fs::read(mnt.join(blob0)).unwrap();
    assert_eq!(m.umount(), Some(0));

    let text = std::fs::read_to_string(&profile).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [(blob0, "failed"), (blob0, "download"), (blob1, "download")],
        "{text}"
    );
    assert!(lines[0].get("size").is_none(), "{text}");
    let t_ms = lines[0]["t_ms"].as_u64().unwrap();
    // The clock starts when the mount is ready: after `spawned`, before `ready`.
    let slept = asked - ready.duration_since(spawned).as_millis() as u64;
    assert!(
        (slept..=asked).contains(&t_ms),
        "t_ms {t_ms} of an open asked {slept} ms after --daemon returned, {asked} ms after it started"
    );
}

/// Sends `signal` to process `pid`.
fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill -{signal} {pid}");
}

/// Waits until the daemon `pid` is gone, then checks it left no mount at `m` and logged its
/// unmount summary.
fn assert_cleanly_unmounted(m: &Mount, pid: u32, what: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || !process_alive(pid)),
        "{what}: the daemon exits"
    );
    assert!(mount_source(&m.path).is_none(), "{what}: unmounted");
    let log = m.log();
    assert!(
        log.contains("strata: unmounted") && log.contains(" opens ("),
        "{what}: summary logged: {log}"
    );
}

#[test]
fn sigterm_right_after_a_daemon_mounts_unmounts_cleanly() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_files, _up, lockfiles) = setup(1, dir.path());
    let lockfiles = without_rpms(lockfiles);
    // Right after `strata mount --daemon` returns.
    let m = Mount::start(
        &dir.path().join("mnt"),
        &dir.path().join("cache"),
        &lockfiles,
        &[],
    );
    let pid = mount_pid(&m.path).unwrap();
    send_signal(pid, libc::SIGTERM);
    assert_cleanly_unmounted(&m, pid, "after --daemon returned");
    // As soon as the mount exists, before the daemon has even reported it ready.
    for round in 0..5 {
        let m = Mount {
            path: dir.path().join(format!("mnt{round}")),
            cache: dir.path().join(format!("cache{round}")),
        };
        let mut child = strata()
            .args(["mount", "--daemon", "--cache-dir"])
            .arg(&m.cache)
            .arg(&m.path)
            .args(&lockfiles)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(pid) = mount_pid(&m.path) {
                break pid;
            }
            assert!(std::time::Instant::now() < deadline, "never mounted");
        };
        send_signal(pid, libc::SIGTERM);
        assert_eq!(child.wait().unwrap().code(), Some(0), "round {round}");
        assert_cleanly_unmounted(&m, pid, &format!("round {round}"));
    }
}

#[test]
fn downloads_failing_after_their_retries_fail_their_opens_with_eio_and_are_logged() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let (blob0, wheel0) = (
        "deps/generic/blob0.bin",
        "deps/pip/pkg0-1.0-py3-none-any.whl",
    );
    let (blob0_url, wheel0_url) = (upstream_path(&files, blob0), upstream_path(&files, wheel0));
    let forever = |code| {
        Some(Fault::Status {
            code,
            times: u32::MAX,
        })
    };
    up.set_fault(&blob0_url, forever(503));
    up.set_fault(&wheel0_url, forever(404));
    let mnt = dir.path().join("mnt");
    let m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--retries", "1"],
    );
    for path in [blob0, wheel0] {
        let err = std::fs::read(mnt.join(path)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc_eio()), "{path}: {err}");
    }
    assert_eq!(
        up.requests(&blob0_url),
        2,
        "a 503 is retried --retries times"
    );
    assert_eq!(up.requests(&wheel0_url), 1, "a 404 is not retried");
    let others = files
        .expected_outputs()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("deps/rpm/") && p != blob0 && p != wheel0);
    for (path, want) in others {
        assert_eq!(std::fs::read(mnt.join(&path)).unwrap(), want, "{path}");
    }
    let log = m.log();
    for (name, url, code) in [
        ("blob0.bin", &blob0_url, "503"),
        ("pkg0-1.0-py3-none-any.whl", &wheel0_url, "404"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("open failed with EIO") && l.contains(&up.url(url)))
            .unwrap_or_else(|| panic!("no EIO line with {url}: {log}"));
        assert!(line.contains(name) && line.contains(code), "{line}");
    }
}

#[test]
fn an_open_fails_with_eio_after_open_timeout_while_the_download_goes_on() {
    if !require_fuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, up, lockfiles) = setup(2, dir.path());
    let lockfiles = without_rpms(lockfiles);
    let (blob0, want) = files.generic[0].clone();
    let url = format!("generic/{blob0}");
    let size = want.len() as u64;
    // About 4 s for the whole file, on one connection.
    up.set_fault(
        &url,
        Some(Fault::Slow {
            bytes_per_sec: size / 4,
        }),
    );
    let mnt = dir.path().join("mnt");
    let m = Mount::start(
        &mnt,
        &dir.path().join("cache"),
        &lockfiles,
        &["--open-timeout", "1", "--segments", "1"],
    );
    let path = mnt.join("deps/generic").join(&blob0);
    let started = std::time::Instant::now();
    let err = std::fs::read(&path).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc_eio()), "{err}");
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(3)).contains(&waited),
        "the open failed after {waited:?}"
    );
    let (blob1, want1) = &files.generic[1];
    assert_eq!(
        std::fs::read(mnt.join("deps/generic").join(blob1)).unwrap(),
        *want1
    );
    let log = m.log();
    assert!(
        log.lines().any(|l| l.contains("open timeout of 1s")
            && l.contains(&blob0)
            && l.contains(&up.url(&url))),
        "{log}"
    );
    let sent = || {
        up.stats()
            .paths
            .get(&format!("/{url}"))
            .map_or(0, |p| p.bytes_sent)
    };
    assert!(
        wait_until(Duration::from_secs(15), || sent() == size),
        "the download went on after the open gave up ({} of {size} bytes)",
        sent()
    );
    assert_eq!(std::fs::read(&path).unwrap(), want, "then the file opens");
    assert_eq!(up.requests(&url), 1, "from that same download");
}
