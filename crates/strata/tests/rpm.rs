//! RPM repositories for real: packages built with rpmbuild, served from a loopback upstream,
//! fetched by strata, installed by a real dnf; and `strata epochs` from lockfiles and from
//! live repos made by createrepo_c.

mod common;
mod rpmkit;

use std::path::Path;
use std::process::Command;

use common::{run, strata};
use rpmkit::{LockEntry, Spec, build, dnf_install, require, rpm_query, rpms_lock};
use strata_upstream::UpstreamBuilder;

struct Fixture {
    specs: Vec<(&'static str, Spec, Vec<u8>)>,
}

/// alpha (apps) requires beta >= 2.0 (base); gamma (apps) is large and not installed.
fn fixture(work: &Path) -> Fixture {
    let specs = vec![
        ("apps", Spec::new("alpha", "1.0").requires("beta >= 2.0")),
        ("base", Spec::new("beta", "2.0")),
        ("apps", Spec::new("gamma", "3.0").payload(256 << 10)),
    ];
    Fixture {
        specs: specs
            .into_iter()
            .map(|(repo, spec)| {
                let bytes = build(work, &spec);
                (repo, spec, bytes)
            })
            .collect(),
    }
}

impl Fixture {
    fn serve(&self) -> strata_upstream::Upstream {
        let mut b = UpstreamBuilder::new();
        for (repo, spec, bytes) in &self.specs {
            b = b.file(&format!("{repo}/{}", spec.file_name()), bytes.clone());
        }
        b.start().unwrap()
    }

    fn lock(&self, up: &strata_upstream::Upstream) -> String {
        let entries: Vec<LockEntry<'_>> = self
            .specs
            .iter()
            .map(|(repo, spec, bytes)| LockEntry {
                repoid: repo,
                url: up.url(&format!("{repo}/{}", spec.file_name())),
                spec,
                bytes,
            })
            .collect();
        rpms_lock(&entries)
    }
}

#[test]
fn fetch_writes_repodata_that_dnf_installs_from() {
    if !require(
        "fetch_writes_repodata_that_dnf_installs_from",
        &["rpmbuild", "dnf", "rpm"],
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let fx = fixture(work.path());
    let up = fx.serve();
    let lock = work.path().join("rpms.lock.yaml");
    std::fs::write(&lock, fx.lock(&up)).unwrap();
    let out = work.path().join("out");
    let cache = work.path().join("cache");
    let result = run(strata()
        .args(["fetch", "--format", "json", "-o"])
        .arg(&out)
        .arg("--cache-dir")
        .arg(&cache)
        .arg(&lock)
        .env("STRATA_LOG", "info"));
    assert!(result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("0 repos from cache, 2 generated"));
    for repo in ["apps", "base"] {
        let repomd = out.join(format!("deps/rpm/x86_64/{repo}/repodata/repomd.xml"));
        assert!(repomd.is_file(), "{} exists", repomd.display());
    }
    let repo_file =
        std::fs::read_to_string(out.join("deps/rpm/x86_64/repos.d/strata.repo")).unwrap();
    let abs = std::path::absolute(&out).unwrap();
    assert!(repo_file.contains(&format!(
        "[apps]\nbaseurl = file://{}/deps/rpm/x86_64/apps\n",
        abs.display()
    )));

    let (root, dnf) = dnf_install(
        work.path(),
        &out.join("deps/rpm/x86_64/repos.d"),
        &["apps", "base"],
        &["alpha"],
    );
    assert!(dnf.status.success(), "dnf install alpha failed");
    let q = rpm_query(&root, &["alpha", "beta"]);
    assert_eq!(
        String::from_utf8_lossy(&q.stdout),
        "alpha-1.0-1.noarch\nbeta-2.0-1.noarch\n"
    );
    assert!(root.join("usr/share/alpha/version.txt").is_file());
    assert!(
        rpm_query(&root, &["gamma"]).status.code() != Some(0),
        "gamma was not asked for"
    );

    // A second fetch of the same lockfile into another directory reuses the cached repodata.
    let again = work.path().join("again");
    let result = run(strata()
        .args(["fetch", "-o"])
        .arg(&again)
        .arg("--cache-dir")
        .arg(&cache)
        .arg(&lock)
        .env("STRATA_LOG", "info"));
    assert!(result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("2 repos from cache, 0 generated"));
    let a = std::fs::read(out.join("deps/rpm/x86_64/apps/repodata/repomd.xml")).unwrap();
    let b = std::fs::read(again.join("deps/rpm/x86_64/apps/repodata/repomd.xml")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn fake_rpms_get_a_warning_not_a_failure() {
    let work = tempfile::tempdir().unwrap();
    let files = common::Files::new(1, 100);
    let up = files.serve(UpstreamBuilder::new()).start().unwrap();
    let locks = files.write_lockfiles(work.path(), &up);
    let out = work.path().join("out");
    let result = run(strata()
        .args(["fetch", "-o"])
        .arg(&out)
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .arg(&locks[2]));
    assert!(result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("no repodata for deps/rpm/x86_64/baseos: tool0 1.0-1"),
        "{err}"
    );
}

fn epochs(args: &[&str], lock: &Path) -> String {
    let out = run(strata().arg("epochs").args(args).arg(lock));
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn epochs_from_a_lockfile() {
    let work = tempfile::tempdir().unwrap();
    let lock = work.path().join("rpms.lock.yaml");
    let entry = |repo: &str, file: &str, hex: char| {
        format!(
            "  - url: http://127.0.0.1:1/{repo}/{file}\n    repoid: {repo}\n    checksum: sha256:{}\n",
            hex.to_string().repeat(64)
        )
    };
    let write = |entries: &[String]| {
        std::fs::write(
            &lock,
            format!(
                "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n{}",
                entries.concat()
            ),
        )
        .unwrap()
    };
    write(&[
        entry("vscode", "code-1-1.x86_64.rpm", 'a'),
        entry("ms-edge", "edge-1-1.x86_64.rpm", 'b'),
    ]);
    let env = epochs(&[], &lock);
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 2, "{env}");
    assert!(lines[0].starts_with("MS_EDGE_CACHE_EPOCH="), "{env}");
    assert!(lines[1].starts_with("VSCODE_CACHE_EPOCH="), "{env}");

    write(&[
        entry("ms-edge", "edge-1-1.x86_64.rpm", 'b'),
        entry("vscode", "code-1-1.x86_64.rpm", 'a'),
    ]);
    assert_eq!(epochs(&[], &lock), env, "reordering changes nothing");

    write(&[
        entry("vscode", "code-1-2.x86_64.rpm", 'c'),
        entry("ms-edge", "edge-1-1.x86_64.rpm", 'b'),
    ]);
    let changed = epochs(&[], &lock);
    let changed: Vec<&str> = changed.lines().collect();
    assert_eq!(changed[0], lines[0], "edge unchanged");
    assert_ne!(changed[1], lines[1], "vscode changed");

    let args = epochs(&["--format", "args"], &lock);
    assert_eq!(
        args,
        format!("--build-arg {} --build-arg {}\n", changed[0], changed[1])
    );
    let json: serde_json::Value =
        serde_json::from_str(&epochs(&["--format", "json"], &lock)).unwrap();
    assert_eq!(json[1]["repoid"], "vscode");
    assert_eq!(json[1]["name"], "VSCODE_CACHE_EPOCH");

    let gh = work.path().join("gh-output");
    std::fs::write(&gh, "before=1\n").unwrap();
    let out = run(strata()
        .args(["epochs", "--format", "github"])
        .arg(&lock)
        .env("GITHUB_OUTPUT", &gh));
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&gh).unwrap(),
        format!("before=1\n{}\n{}\n", changed[0], changed[1])
    );

    let bad = run(strata()
        .args(["epochs"])
        .arg(work.path().join("nope/rpms.lock.yaml")));
    assert_eq!(bad.status.code(), Some(2));
    let usage = run(strata().args(["epochs", "--repo", "x=ftp://h/", "--package", "a"]));
    assert_eq!(usage.status.code(), Some(2));
}

/// A createrepo_c repository under `root/<repo>` holding `rpms`.
fn createrepo(root: &Path, repo: &str, rpms: &[(&Spec, &[u8])], compress: &str) {
    let dir = root.join(repo);
    if !rpms.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (spec, bytes) in rpms {
        std::fs::write(dir.join(spec.file_name()), bytes).unwrap();
    }
    let out = Command::new("createrepo_c")
        .args(["-q", "--general-compress-type", compress])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn live_epochs_follow_the_named_packages() {
    if !require(
        "live_epochs_follow_the_named_packages",
        &["rpmbuild", "createrepo_c"],
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    let alpha1 = Spec::new("alpha", "1.0");
    let alpha2 = Spec::new("alpha", "1.1");
    let beta = Spec::new("beta", "2.0");
    let other = Spec::new("other", "1.0");
    let (a1, a2, b, o) = (
        build(work.path(), &alpha1),
        build(work.path(), &alpha2),
        build(work.path(), &beta),
        build(work.path(), &other),
    );
    createrepo(&served, "apps", &[(&alpha1, &a1), (&other, &o)], "xz");
    createrepo(&served, "base", &[(&beta, &b)], "xz");
    let up = UpstreamBuilder::new().dir(&served).start().unwrap();
    let live = |packages: &[&str]| {
        let mut cmd = strata();
        cmd.args(["epochs", "--cache-dir"])
            .arg(work.path().join("cache"))
            .arg("--repo")
            .arg(format!("apps={}", up.url("apps")))
            .arg("--repo")
            .arg(format!("base={}/", up.url("base")))
            .arg("--package")
            .args(packages);
        run(&mut cmd)
    };
    let first = live(&["alpha", "beta"]);
    assert!(first.status.success());
    let first = String::from_utf8(first.stdout).unwrap();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 2, "{first}");
    assert!(lines[0].starts_with("APPS_CACHE_EPOCH=") && lines[1].starts_with("BASE_CACHE_EPOCH="));

    // A package we did not name changes: nothing changes.
    let other2 = Spec::new("other", "2.0");
    let o2 = build(work.path(), &other2);
    createrepo(&served, "apps", &[(&alpha1, &a1), (&other2, &o2)], "gz");
    let same = String::from_utf8(live(&["alpha", "beta"]).stdout).unwrap();
    assert_eq!(
        same, first,
        "unnamed packages and the compression do not matter"
    );

    // alpha updates: only apps changes.
    createrepo(&served, "apps", &[(&alpha2, &a2), (&other2, &o2)], "xz");
    let after = String::from_utf8(live(&["alpha", "beta"]).stdout).unwrap();
    let after: Vec<&str> = after.lines().collect();
    assert_ne!(after[0], lines[0]);
    assert_eq!(after[1], lines[1]);

    let missing = live(&["alpha", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no repo has `nosuch`"));
}

/// Repodata from `Range` reads of the headers alone: byte-identical to what a fetch generates
/// from whole packages, at a fraction of the bytes, and a real dnf installs from it.
#[test]
fn range_reads_build_the_same_repodata_from_headers_only() {
    if !require(
        "range_reads_build_the_same_repodata_from_headers_only",
        &["rpmbuild", "dnf", "rpm"],
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let fx = fixture(work.path());
    let up = fx.serve();
    let lock = work.path().join("rpms.lock.yaml");
    std::fs::write(&lock, fx.lock(&up)).unwrap();
    let artifacts = strata_lock::load(&lock, &Default::default()).unwrap();
    let total: u64 = artifacts.iter().map(|a| a.size.unwrap()).sum();

    let store = strata_store::Store::open(work.path().join("range-cache")).unwrap();
    let fetcher = strata_store::Fetcher::new(store.clone(), Default::default()).unwrap();
    let cache = strata_rpm::RepodataCache::new(store.clone());
    let stats = strata_rpm::HeaderStats::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = work.path().join("lazy");
    for repo in strata_rpm::group_repos(&artifacts) {
        let (data, how) = rt
            .block_on(strata_rpm::ensure_repodata(
                &fetcher, &cache, &repo, 8, &stats,
            ))
            .unwrap();
        assert_eq!(how, strata_rpm::Obtained::Generated);
        for f in &data.files {
            let dest = out.join(repo.dir()).join(&f.path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, cache.read(f).unwrap()).unwrap();
        }
    }
    let sent = up.stats().bytes_sent;
    eprintln!("range reads: {sent} bytes of {total} package bytes");
    assert_eq!(stats.ranged.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert!(sent * 4 < total, "{sent} of {total}: headers only");
    for a in &artifacts {
        assert!(
            !store.contains(a.store_digest()),
            "no package was downloaded"
        );
    }

    // The same lockfile fetched eagerly generates byte-identical repodata.
    let eager = work.path().join("eager");
    let result = run(strata()
        .args(["fetch", "-o"])
        .arg(&eager)
        .arg("--cache-dir")
        .arg(work.path().join("eager-cache"))
        .arg(&lock));
    assert!(result.status.success());
    for repo in ["apps", "base"] {
        let rel = format!("deps/rpm/x86_64/{repo}/repodata/repomd.xml");
        assert_eq!(
            std::fs::read(out.join(&rel)).unwrap(),
            std::fs::read(eager.join(&rel)).unwrap(),
            "{rel}"
        );
    }

    // dnf installs from the header-built repodata once the packages are there.
    for a in &artifacts {
        std::fs::copy(eager.join(&a.path), out.join(&a.path)).unwrap();
    }
    let reposdir = work.path().join("repos.d");
    std::fs::create_dir_all(&reposdir).unwrap();
    std::fs::write(
        reposdir.join("strata.repo"),
        strata_tree::rpm_repo_file("x86_64", ["apps", "base"], out.to_str().unwrap()),
    )
    .unwrap();
    let (root, dnf) = dnf_install(work.path(), &reposdir, &["apps", "base"], &["alpha"]);
    assert!(dnf.status.success());
    assert!(rpm_query(&root, &["alpha", "beta"]).status.success());
}

/// Our primary metadata agrees with createrepo_c's on every package's identity.
#[test]
fn primary_agrees_with_createrepo_c() {
    if !require(
        "primary_agrees_with_createrepo_c",
        &["rpmbuild", "createrepo_c"],
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let fx = fixture(work.path());
    let dir = work.path().join("cr");
    std::fs::create_dir_all(&dir).unwrap();
    let mut ours = Vec::new();
    for (_, spec, bytes) in &fx.specs {
        std::fs::write(dir.join(spec.file_name()), bytes).unwrap();
        ours.push(strata_rpm::repodata::RepoPackage {
            header: strata_rpm::header::parse(bytes).unwrap(),
            location: spec.file_name(),
            sha256: common::sha256_hex(bytes),
            size: bytes.len() as u64,
        });
    }
    createrepo(work.path(), "cr", &[], "gz");
    let repomd = std::fs::read(dir.join("repodata/repomd.xml")).unwrap();
    let entries = strata_rpm::live::parse_repomd(&repomd).unwrap();
    let primary = strata_rpm::live::primary_entry(&entries).unwrap();
    let theirs = std::fs::read(dir.join(&primary.href)).unwrap();
    let theirs = strata_rpm::live::decompress(&primary.href, &theirs).unwrap();
    let mut theirs = strata_rpm::live::parse_primary(&theirs).unwrap();
    let files = strata_rpm::generate(&ours, &[]);
    let mine = strata_rpm::live::decompress(&files[0].path, &files[0].bytes).unwrap();
    let mut mine = strata_rpm::live::parse_primary(&mine).unwrap();
    theirs.sort();
    mine.sort();
    assert_eq!(mine, theirs);
}

/// Measurement, not a check: `STRATA_MEASURE_RPMS=<dir of .rpm files> cargo test -p strata
/// --test rpm measure -- --ignored --nocapture` times createrepo_c against strata's native
/// generator, from whole packages and from `Range`-read headers over loopback.
#[test]
#[ignore]
fn measure_repodata_generation() {
    let Some(dir) = std::env::var_os("STRATA_MEASURE_RPMS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let work = tempfile::tempdir().unwrap();
    let up = UpstreamBuilder::new().dir(&dir).start().unwrap();
    let mut lock = String::from(
        "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n",
    );
    let mut total = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rpm") {
            let bytes = std::fs::read(&p).unwrap();
            total += bytes.len();
            let name = p.file_name().unwrap().to_str().unwrap();
            lock.push_str(&format!(
                "  - url: {}\n    repoid: m\n    size: {}\n    checksum: sha256:{}\n",
                up.url(name),
                bytes.len(),
                common::sha256_hex(&bytes)
            ));
        }
    }
    let lockfile = work.path().join("rpms.lock.yaml");
    std::fs::write(&lockfile, lock).unwrap();
    let artifacts = strata_lock::load(&lockfile, &Default::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let time = |label: &str, f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        eprintln!("{label}: {:?}", t.elapsed());
    };
    let copy = work.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
    }
    time("createrepo_c (whole packages on local disk)", &mut || {
        assert!(
            Command::new("createrepo_c")
                .arg("-q")
                .arg(&copy)
                .status()
                .unwrap()
                .success()
        );
    });
    let store = strata_store::Store::open(work.path().join("c1")).unwrap();
    let fetcher = strata_store::Fetcher::new(store.clone(), Default::default()).unwrap();
    let cache = strata_rpm::RepodataCache::new(store.clone());
    let stats = strata_rpm::HeaderStats::default();
    let repos = strata_rpm::group_repos(&artifacts);
    up.reset_stats();
    time(
        "strata, Range reads of headers over loopback (cold)",
        &mut || {
            rt.block_on(strata_rpm::ensure_repodata(
                &fetcher, &cache, &repos[0], 16, &stats,
            ))
            .unwrap();
        },
    );
    eprintln!("  bytes read: {} of {total}", up.stats().bytes_sent);
    time("strata, cache hit", &mut || {
        assert!(cache.lookup(&repos[0].key()).is_some());
    });
    let store2 = strata_store::Store::open(work.path().join("c2")).unwrap();
    let fetcher2 = strata_store::Fetcher::new(store2.clone(), Default::default()).unwrap();
    rt.block_on(async {
        for a in &artifacts {
            fetcher2.ensure(a, &strata_store::NoProgress).await.unwrap();
        }
    });
    let cache2 = strata_rpm::RepodataCache::new(store2);
    time(
        "strata, headers of whole packages in the store",
        &mut || {
            rt.block_on(strata_rpm::ensure_repodata(
                &fetcher2, &cache2, &repos[0], 16, &stats,
            ))
            .unwrap();
        },
    );
}
