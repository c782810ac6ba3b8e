//! A generated Containerfile built by a real engine (BuildKit in Docker's dockerd), apt
//! flavour on a debootstrapped Debian base: two download stages and a binary fetch stage run
//! concurrently, and the image has every package installed in one transaction plus the
//! verified binary.
//!
//! Needs STRATA_DOCKER_HOST (scripts/test.sh starts a dockerd and sets it), Debian's docker
//! client, dpkg-deb and debootstrap (scripts/debian-base.sh builds and caches the base). Without
//! them the test prints SKIP, or fails under STRATA_TEST_REQUIRE_ALL=1.

mod common;
mod rpmkit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{run, sha256_hex, strata};
use strata_upstream::UpstreamBuilder;

const DOCKER: &str = "/usr/bin/docker";

fn skip_or_fail(why: &str) {
    if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("engine_generate: {why} and STRATA_TEST_REQUIRE_ALL=1");
    }
    eprintln!("SKIP engine_generate: {why}");
}

fn docker(host: &str) -> Command {
    let mut cmd = Command::new(DOCKER);
    cmd.env("DOCKER_HOST", host).env("DOCKER_BUILDKIT", "1");
    cmd
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The debootstrapped base, imported once per engine.
fn base_image(host: &str) -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian-base.sh");
    let out = Command::new("bash").arg(script).output().unwrap();
    if !out.status.success() {
        skip_or_fail(&format!(
            "no Debian base: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    let tarball = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let stem = tarball.file_stem().unwrap().to_str().unwrap();
    let image = format!("strata-test/{stem}:latest");
    let exists = docker(host)
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    if !exists.status.success() {
        ok(
            &docker(host)
                .arg("import")
                .arg(&tarball)
                .arg(&image)
                .output()
                .unwrap(),
            "docker import",
        );
    }
    Some(image)
}

/// A `.deb` built with dpkg-deb: `/usr/share/<name>/version` holds `<name> <version>`.
fn deb(work: &Path, name: &str, version: &str) -> (String, Vec<u8>) {
    let root = work.join(format!("deb-{name}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Tester <t@example.invalid>\nDescription: strata test package {name}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join(format!("usr/share/{name}/version")),
        format!("{name} {version}\n"),
    )
    .unwrap();
    let file = format!("{name}_{version}_all.deb");
    let out = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(work.join(&file))
        .output()
        .unwrap();
    ok(&out, "dpkg-deb");
    (file.clone(), std::fs::read(work.join(file)).unwrap())
}

/// A flat apt repository under `apt/` (`deb [trusted=yes] <root url> apt/`): Packages and an
/// unsigned Release.
fn apt_repo(debs: &[(&str, &str, &str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut packages = String::new();
    let mut files = Vec::new();
    for (name, version, file, bytes) in debs {
        packages.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Tester <t@example.invalid>\nFilename: apt/{file}\nSize: {}\nSHA256: {}\nDescription: strata test package {name}\n\n",
            bytes.len(),
            sha256_hex(bytes)
        ));
        files.push((file.to_string(), bytes.clone()));
    }
    let release = format!(
        "Origin: strata-test\nLabel: strata-test\nDate: Mon, 01 Jan 2024 00:00:00 UTC\nArchitectures: all amd64 arm64\nSHA256:\n {} {} Packages\n",
        sha256_hex(packages.as_bytes()),
        packages.len()
    );
    files.push(("Packages".into(), packages.into_bytes()));
    files.push(("Release".into(), release.into_bytes()));
    files
}

/// Each vertex of BuildKit's plain progress: (id, name, seconds from its `DONE` line).
/// (The plain printer interleaves and defers output, so line order says nothing about start
/// times; the durations are exact.)
fn vertices(log: &str) -> Vec<(String, String, f64)> {
    let mut names: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some((id, rest)) = line.split_once(' ') else {
            continue;
        };
        if rest.starts_with('[') && !names.iter().any(|(i, _)| i == id) {
            names.push((id.to_owned(), rest.to_owned()));
        }
        if let Some(secs) = rest.strip_prefix("DONE ").and_then(|d| d.strip_suffix('s')) {
            let name = names
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            out.push((id.to_owned(), name, secs.parse().unwrap_or(0.0)));
        }
    }
    out
}

#[test]
fn generated_containerfile_builds_with_parallel_downloads() {
    let Ok(host) = std::env::var("STRATA_DOCKER_HOST") else {
        skip_or_fail("STRATA_DOCKER_HOST is not set (scripts/test.sh starts a dockerd)");
        return;
    };
    if !rpmkit::require("engine_generate", &["dpkg-deb", "debootstrap"]) {
        return;
    }
    if !Path::new(DOCKER).is_file() {
        skip_or_fail("Debian's docker client (/usr/bin/docker) is missing");
        return;
    }
    let Some(base) = base_image(&host) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let debs: Vec<(&str, &str, String, Vec<u8>)> =
        [("hello-a", "1.0"), ("hello-b", "2.0"), ("hello-c", "3.0")]
            .into_iter()
            .map(|(n, v)| {
                let (file, bytes) = deb(work.path(), n, v);
                (n, v, file, bytes)
            })
            .collect();
    let repo = apt_repo(
        &debs
            .iter()
            .map(|(n, v, f, b)| (*n, *v, f.as_str(), b.clone()))
            .collect::<Vec<_>>(),
    );
    let tooldir = work.path().join("tool");
    std::fs::create_dir_all(tooldir.join("bin")).unwrap();
    std::fs::write(tooldir.join("bin/tool"), "#!/bin/sh\necho tool-ok\n").unwrap();
    ok(
        &Command::new("tar")
            .arg("-czf")
            .arg(work.path().join("tool.tar.gz"))
            .arg("-C")
            .arg(&tooldir)
            .arg("bin/tool")
            .output()
            .unwrap(),
        "tar",
    );
    let tool = std::fs::read(work.path().join("tool.tar.gz")).unwrap();
    // Every request waits, so a stage takes seconds and overlap is visible from both sides.
    let mut b = UpstreamBuilder::new().latency(Duration::from_millis(700));
    for (name, bytes) in &repo {
        b = b.file(&format!("apt/{name}"), bytes.clone());
    }
    let up = b.file("bin/tool.tar.gz", tool.clone()).start().unwrap();

    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("image.toml"),
        format!(
            "[image]\nfrom = \"{base}\"\npackage-manager = \"apt\"\n\n\
             [download.a]\npackages = [\"hello-a\"]\n\n[download.b]\npackages = [\"hello-b\"]\n\n\
             [install]\npackages = [\"hello-c\"]\n\n\
             [binary.tool]\nurl = \"{}\"\nsha256 = \"{}\"\nextract = \"bin/tool\"\ndest = \"/usr/local/bin/tool\"\n",
            up.url("bin/tool.tar.gz"),
            sha256_hex(&tool)
        ),
    )
    .unwrap();
    let generate = || {
        let r =
            run(strata()
                .current_dir(&ctx)
                .args(["generate", "image.toml", "-o", "Containerfile"]));
        assert!(r.status.success());
    };
    generate();
    // The base's apt sources point at the loopback repo: a hand-written custom region, kept
    // by a second generate.
    let file = ctx.join("Containerfile");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "# strata:begin custom base\n",
        &format!(
            "# strata:begin custom base\nRUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && \\\n    echo 'deb [trusted=yes] http://{}/ apt/' > /etc/apt/sources.list.d/strata-test.list\n",
            up.addr()
        ),
    );
    std::fs::write(&file, text).unwrap();
    generate();
    let containerfile = std::fs::read_to_string(&file).unwrap();
    assert!(
        containerfile.contains("strata-test.list"),
        "custom region kept"
    );
    eprintln!("--- Containerfile:\n{containerfile}");

    let tag = format!("strata-generate-test:{}", std::process::id());
    let started = std::time::Instant::now();
    let build = docker(&host)
        .args([
            "build",
            "--network=host",
            "--progress=plain",
            "--no-cache",
            "--target",
            "image",
        ])
        .args(["--build-arg", "A_CACHE_EPOCH=1", "-t", &tag, "-f"])
        .arg(&file)
        .arg(&ctx)
        .output()
        .unwrap();
    let wall = started.elapsed();
    let log = String::from_utf8_lossy(&build.stderr).into_owned();
    eprintln!("--- build log:\n{log}");
    ok(&build, "docker build");

    // Concurrency, as BuildKit reports it: the build took less wall time than its steps'
    // durations added up, by more than the parallel stages' overlap could be noise.
    let steps = vertices(&log);
    let stage_secs = |stage: &str| -> f64 {
        steps
            .iter()
            .filter(|(_, n, _)| n.starts_with(&format!("[{stage} ")))
            .map(|(_, _, s)| s)
            .sum()
    };
    let parallel: Vec<f64> = ["dl-a", "dl-b", "fetch-tool"]
        .iter()
        .map(|s| stage_secs(s))
        .collect();
    let serial: f64 = steps.iter().map(|(_, _, s)| s).sum();
    let wall = wall.as_secs_f64();
    eprintln!(
        "parallel stages {parallel:?} s; all steps one after another {serial:.1} s; wall {wall:.1} s"
    );
    assert!(
        parallel.iter().all(|s| *s >= 0.7),
        "each stage waited on the upstream: {parallel:?}"
    );
    let second_longest = {
        let mut p = parallel.clone();
        p.sort_by(f64::total_cmp);
        p[1]
    };
    assert!(
        wall < serial - 0.8 * second_longest,
        "download stages ran one after another: wall {wall:.1} s, steps {serial:.1} s, stages {parallel:?}"
    );
    // ...and as the server saw it.
    let stats = up.stats();
    assert!(
        stats.max_concurrent_requests >= 2,
        "requests never overlapped: {stats:?}"
    );

    let check = docker(&host)
        .args(["run", "--rm", "--network=host", &tag, "sh", "-c"])
        .arg(
            "dpkg-query -W -f='${Package} ${Version}\\n' hello-a hello-b hello-c && \
             /usr/local/bin/tool && test ! -e /tmp/debs && \
             test -z \"$(ls /var/lib/apt/lists | grep -v -e lock -e partial -e auxfiles)\" && echo clean",
        )
        .output()
        .unwrap();
    let _ = docker(&host).args(["rmi", "-f", &tag]).output();
    ok(&check, "docker run");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "hello-a 1.0\nhello-b 2.0\nhello-c 3.0\ntool-ok\nclean\n"
    );
}
