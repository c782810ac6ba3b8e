//! `strata layer-store` with the real consumers: buildah on overlay storage configured with
//! the store as its additional layer store, images pushed zstd:chunked by buildah to a real
//! loopback registry (Debian's docker-registry), a real FUSE mount.

mod common;
#[path = "common/fuse.rs"]
mod fuse;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{run, strata};
use fuse::{have, mount_source, require, require_fuse, wait_until};
use strata_registry::testing::TestRegistry;

/// A containers-storage config on overlay under `dir/name`, with `store` as its additional
/// layer store when given; returns the path for `CONTAINERS_STORAGE_CONF`.
fn storage_conf(dir: &Path, name: &str, store: Option<&Path>) -> PathBuf {
    let root = dir.join(name);
    let conf = dir.join(format!("{name}.conf"));
    let mut text = format!(
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
        root.display()
    );
    if let Some(store) = store {
        text += &format!(
            "[storage.options]\nadditionallayerstores = [\"{}:ref\"]\n",
            store.display()
        );
    }
    std::fs::write(&conf, text).unwrap();
    conf
}

/// buildah with a storage config; panics (with its output) unless it succeeds.
fn buildah(conf: &Path, args: &[&str]) -> String {
    let out = Command::new("buildah")
        .env("CONTAINERS_STORAGE_CONF", conf)
        .args(args)
        .output()
        .expect("buildah runs");
    assert!(
        out.status.success(),
        "buildah {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Pushes a local image to a loopback registry as zstd:chunked (OCI), as a lazily pullable
/// image is published.
fn push_zstd_chunked(conf: &Path, local: &str, reference: &str) {
    push_oci(conf, local, reference, "zstd:chunked");
}

/// Pushes a local image to a loopback registry as an OCI image with `compression`.
fn push_oci(conf: &Path, local: &str, reference: &str, compression: &str) {
    buildah(
        conf,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--format",
            "oci",
            "--compression-format",
            compression,
            local,
            &format!("docker://{reference}"),
        ],
    );
}

/// Removes every container and image of a storage and unmounts what is left under it.
fn wipe(conf: &Path, root: &Path) {
    let _ = Command::new("buildah")
        .env("CONTAINERS_STORAGE_CONF", conf)
        .args(["rm", "--all"])
        .output();
    let _ = Command::new("buildah")
        .env("CONTAINERS_STORAGE_CONF", conf)
        .args(["rmi", "--all", "--force"])
        .output();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "grep -o ' {}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
            root.display()
        ))
        .status();
}

/// A running `strata layer-store`, stopped with SIGTERM on drop.
struct LayerStore {
    child: Child,
    mountpoint: PathBuf,
}

impl LayerStore {
    fn start(mountpoint: &Path, cache: &Path) -> LayerStore {
        let child = strata()
            .args(["layer-store", "--cache-dir"])
            .arg(cache)
            .arg(mountpoint)
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata layer-store starts");
        let store = LayerStore {
            child,
            mountpoint: mountpoint.to_path_buf(),
        };
        assert!(
            wait_until(Duration::from_secs(20), || mount_source(mountpoint)
                .is_some()),
            "the layer store is mounted"
        );
        store
    }

    fn stats(&self) -> serde_json::Value {
        let text = std::fs::read(self.mountpoint.join(".strata-layer-store.json")).unwrap();
        serde_json::from_slice(&text).unwrap()
    }

    /// SIGTERM; returns the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let out = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("true runs"),
        )
        .wait_with_output()
        .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

impl Drop for LayerStore {
    fn drop(&mut self) {
        // SAFETY: as in `stop`.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        if mount_source(&self.mountpoint).is_some() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

fn prerequisites() -> bool {
    require_fuse()
        && require("buildah (apt-get install buildah)", have("buildah"))
        && require(
            "/bin/busybox (apt-get install busybox-static)",
            Path::new("/bin/busybox").exists(),
        )
}

/// The base image's Containerfile: busybox, an 8 MiB file with its checksum, then a layer
/// that deletes a file (a whiteout), replaces a directory (opaque) and hard-links busybox.
const BASE: &str = "FROM scratch
COPY busybox /bin/busybox
RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]
RUN mkdir -p /data /opt/cache /etc && head -c 8388608 /dev/urandom > /data/big \
 && sha256sum /data/big > /data/big.sha256 && echo gone > /etc/gone && echo old > /opt/cache/old
RUN rm /etc/gone && rm -rf /opt/cache && mkdir /opt/cache && echo new > /opt/cache/new \
 && ln /bin/busybox /bin/bb2
";

#[test]
fn buildah_builds_from_a_zstd_chunked_image_reading_only_the_files_it_opens() {
    if !prerequisites() {
        return;
    }
    // Two registries: containers/image remembers a blob's other compressions and would push
    // the zstd:chunked blobs again as the "gzip" image if they were in the same one.
    let (Some(registry), Some(other)) = (TestRegistry::start(), TestRegistry::start()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(ctx.join("Containerfile"), BASE).unwrap();

    // Publish the base from one storage, zstd:chunked; and a gzip copy.
    let publisher = storage_conf(dir.path(), "publisher", None);
    let base = format!("{}/lazy:base", registry.host);
    let gzip = format!("{}/lazy:base-gzip", other.host);
    buildah(
        &publisher,
        &[
            "bud",
            "-q",
            "--layers",
            "--network=host",
            "-t",
            "base:local",
            ctx.to_str().unwrap(),
        ],
    );
    push_zstd_chunked(&publisher, "base:local", &base);
    push_oci(&publisher, "base:local", &gzip, "gzip");
    // Pushed again under another tag, the blobs are reused and their TOC annotations lost.
    let again = format!("{}/lazy:again", registry.host);
    push_zstd_chunked(&publisher, "base:local", &again);
    wipe(&publisher, &dir.path().join("publisher"));

    // A fresh runner whose storage takes layers from the store.
    let mountpoint = dir.path().join("layers");
    let store = LayerStore::start(&mountpoint, &dir.path().join("cache"));
    let runner = storage_conf(dir.path(), "runner", Some(&mountpoint));
    buildah(&runner, &["pull", "-q", "--tls-verify=false", &base]);
    let pulled = store.stats();
    assert_eq!(
        pulled["layers_served"], 4,
        "every layer served lazily: {pulled}"
    );
    assert_eq!(
        pulled["files_fetched"], 0,
        "a pull fetches no file content: {pulled}"
    );
    assert!(
        pulled["layer_bytes"].as_u64().unwrap() > 8 << 20,
        "{pulled}"
    );

    // A container sees the layers merged: whiteout, opaque directory, hard link, symlinks.
    let c = buildah(&runner, &["from", "--pull-never", &base]);
    let seen = buildah(
        &runner,
        &[
            "run",
            &c,
            "--",
            "sh",
            "-c",
            "test ! -e /etc/gone && ls /opt/cache && cat /opt/cache/new && [ /bin/bb2 -ef /bin/busybox ] && echo linked && readlink /bin/ls",
        ],
    );
    assert_eq!(seen, "new\nnew\nlinked\n/bin/busybox");
    let small = store.stats();
    assert!(
        small["bytes_fetched"].as_u64().unwrap() < 4 << 20,
        "the 8 MiB file was not fetched: {small}"
    );
    // Reading the big file fetches it, and its content is what was built.
    let checked = buildah(
        &runner,
        &["run", &c, "--", "sha256sum", "-c", "/data/big.sha256"],
    );
    assert_eq!(checked, "/data/big: OK");
    let big = store.stats();
    assert!(big["bytes_fetched"].as_u64().unwrap() > 8 << 20, "{big}");
    assert_eq!(big["failures"], 0, "{big}");

    // A build FROM the lazy image, pushed, then pulled and run on storage without the store.
    std::fs::write(
        ctx.join("Containerfile.app"),
        format!(
            "FROM {base}\nRUN cat /opt/cache/new > /app.txt && busybox | head -c 7 >> /app.txt\n"
        ),
    )
    .unwrap();
    let app = format!("{}/lazy:app", registry.host);
    buildah(
        &runner,
        &[
            "bud",
            "-q",
            "--tls-verify=false",
            "--network=host",
            "-f",
            ctx.join("Containerfile.app").to_str().unwrap(),
            "-t",
            &app,
            ctx.to_str().unwrap(),
        ],
    );
    buildah(&runner, &["push", "-q", "--tls-verify=false", &app]);
    let plain = storage_conf(dir.path(), "plain", None);
    buildah(&plain, &["pull", "-q", "--tls-verify=false", &app]);
    let c2 = buildah(&plain, &["from", "--pull-never", &app]);
    assert_eq!(
        buildah(
            &plain,
            &[
                "run",
                &c2,
                "--",
                "sh",
                "-c",
                "cat /app.txt; sha256sum -c /data/big.sha256"
            ]
        ),
        "new\nBusyBox/data/big: OK"
    );
    wipe(&plain, &dir.path().join("plain"));

    // Layers without TOC annotations are found by their blobs' footers.
    let client = strata_registry::Registry::new(
        strata_registry::RepoRef::parse(&format!("{}/lazy", registry.host)).unwrap(),
        false,
    )
    .unwrap();
    let bare = client.get_manifest("again").unwrap().unwrap().json();
    assert!(
        bare["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.get("annotations").is_none()),
        "containers/image reused the blobs without annotations: {bare}"
    );
    let before = store.stats();
    buildah(&runner, &["pull", "-q", "--tls-verify=false", &again]);
    let after = store.stats();
    assert_eq!(
        after["layers_served"].as_u64().unwrap() - before["layers_served"].as_u64().unwrap(),
        4,
        "{after}"
    );
    let c4 = buildah(&runner, &["from", "--pull-never", &again]);
    assert_eq!(
        buildah(&runner, &["run", &c4, "--", "cat", "/opt/cache/new"]),
        "new"
    );

    // gzip layers are not served: containers-storage pulls them itself, and they work.
    let before = store.stats();
    buildah(&runner, &["pull", "-q", "--tls-verify=false", &gzip]);
    let after = store.stats();
    let refused =
        after["layers_refused"].as_u64().unwrap() - before["layers_refused"].as_u64().unwrap();
    assert!(refused >= 1, "gzip layers are refused: {after}");
    let c3 = buildah(&runner, &["from", "--pull-never", &gzip]);
    assert_eq!(
        buildah(&runner, &["run", &c3, "--", "cat", "/opt/cache/new"]),
        "new"
    );

    wipe(&runner, &dir.path().join("runner"));
    let (code, stderr) = store.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("layers served lazily"), "{stderr}");
    assert!(mount_source(&mountpoint).is_none(), "unmounted on SIGTERM");
}

#[test]
fn a_mountpoint_that_cannot_be_made_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = run(strata().arg("layer-store").arg(file.join("sub")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sub"));
    let out = run(strata().args(["layer-store", "--threads"]));
    assert_eq!(out.status.code(), Some(2));
}

/// `git` in `dir`, with an identity; panics on failure.
fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `strata ARGS --json` in `dir` with a storage config; the build record's statuses.
fn strata_build(dir: &Path, conf: &Path, args: &[&str]) -> Vec<(String, String)> {
    let out = run(strata()
        .current_dir(dir)
        .args(args)
        .args(["--json", "--engine", "buildah"])
        .env("CONTAINERS_STORAGE_CONF", conf)
        .env_remove("GITHUB_OUTPUT"));
    assert!(
        out.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let record: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap()).expect("record JSON");
    record["images"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["status"].as_str().unwrap().to_string()))
        .collect()
}

/// `strata build` with `push-compression = "zstd:chunked"` publishes lazily pullable images;
/// a fresh runner whose storage uses the layer store then reuses the unchanged base by its
/// input key without copying its layers, and builds the changed app on it.
#[test]
fn strata_build_publishes_zstd_chunked_and_a_fresh_runner_reuses_the_base_lazily() {
    if !prerequisites() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("project");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::copy("/bin/busybox", p.join("busybox")).unwrap();
    std::fs::write(
        p.join("strata.toml"),
        format!(
            "registry = \"{}/set\"\n[build]\nnetwork = \"host\"\npush-compression = \"zstd:chunked\"\n\
             [image.base]\nfile = \"Dockerfile.base\"\ntags = [\"{{registry}}:base-stable\"]\n\
             [image.app]\nfile = \"Dockerfile\"\nfrom = \"base\"\ntags = [\"{{registry}}:app-{{short_sha}}\"]\n",
            registry.host
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("Dockerfile.base"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN head -c 4194304 /dev/urandom > /opt-data\n",
    )
    .unwrap();
    std::fs::write(
        p.join("Dockerfile"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\nRUN cat /app.txt > /built\n",
    )
    .unwrap();
    std::fs::write(p.join("app.txt"), "one\n").unwrap();
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-qm", "first"]);

    let first = storage_conf(d.path(), "first", None);
    let built = strata_build(&p, &first, &["build", "--all", "--push"]);
    assert_eq!(
        built,
        [
            ("app".into(), "built".into()),
            ("base".into(), "built".into())
        ]
    );
    wipe(&first, &d.path().join("first"));
    let client = strata_registry::Registry::new(
        strata_registry::RepoRef::parse(&format!("{}/set", registry.host)).unwrap(),
        false,
    )
    .unwrap();
    let stable = client.get_manifest("base-stable").unwrap().unwrap();
    // Every layer zstd:chunked, with its table of contents annotated: the user-facing tag is
    // the key tag's manifest, copied in the registry (an engine push of the tag would reuse
    // the blobs, and containers/image 5.23 then drops those annotations).
    let key_tags: Vec<String> = client
        .list_tags()
        .unwrap()
        .into_iter()
        .filter(|t| t.starts_with("sk-"))
        .collect();
    let key_digests: Vec<String> = key_tags
        .iter()
        .map(|t| client.head_manifest(t).unwrap().unwrap())
        .collect();
    assert!(
        key_digests.contains(&stable.digest),
        "base-stable ({}) is one of the key tags' manifests {key_tags:?} {key_digests:?}",
        stable.digest
    );
    for layer in stable.json()["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        // containers/image 5.23 writes the io.containers name; later ones io.github.containers.
        assert!(
            [
                "io.containers.zstd-chunked.manifest-checksum",
                "io.github.containers.zstd-chunked.manifest-checksum"
            ]
            .iter()
            .any(|k| layer["annotations"].get(k).is_some()),
            "the TOC annotation survives in the user-facing tag: {layer}"
        );
    }

    std::fs::write(p.join("app.txt"), "two\n").unwrap();
    git(&p, &["commit", "-qam", "app change"]);
    let mountpoint = d.path().join("layers");
    let store = LayerStore::start(&mountpoint, &d.path().join("cache"));
    let runner = storage_conf(d.path(), "runner", Some(&mountpoint));
    let second = strata_build(&p, &runner, &["build", "--base", "HEAD~1", "--push"]);
    assert_eq!(
        second,
        [
            ("app".into(), "built".into()),
            ("base".into(), "reused".into())
        ]
    );
    let stats = store.stats();
    assert_eq!(
        stats["layers_served"], 1,
        "the base (one layer: buildah bud without --layers) came from the store: {stats}"
    );
    assert!(
        stats["bytes_fetched"].as_u64().unwrap() < 3 << 20,
        "the 4 MiB file the app build does not read stayed in the registry: {stats}"
    );
    wipe(&runner, &d.path().join("runner"));
}

#[test]
fn push_compression_needs_a_daemonless_engine() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("strata.toml"),
        "[build]\npush-compression = \"zstd:chunked\"\n[image.a]\nfile = \"Dockerfile\"\n",
    )
    .unwrap();
    std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = run(strata()
        .current_dir(d.path())
        .args(["build", "--all", "--engine", "docker"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("push-compression") && stderr.contains("buildah"),
        "{stderr}"
    );
}

/// A registry that serves wrong bytes for a file's range: the open fails with EIO, the
/// failure is counted, and nothing enters the cache; the TOC (intact) still served the pull.
#[test]
fn wrong_bytes_from_the_registry_fail_the_open_and_leave_no_cache_entry() {
    if !prerequisites() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    let data = common::payload(1 << 20, 7);
    std::fs::write(ctx.join("data.bin"), &data).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    let publisher = storage_conf(dir.path(), "publisher", None);
    let image = format!("{}/bad:v1", registry.host);
    buildah(
        &publisher,
        &[
            "bud",
            "-q",
            "--layers",
            "-t",
            "bad:local",
            ctx.to_str().unwrap(),
        ],
    );
    push_zstd_chunked(&publisher, "bad:local", &image);
    wipe(&publisher, &dir.path().join("publisher"));

    // Flip bytes in the middle of the data layer's blob, where data.bin's frames are.
    let client = strata_registry::Registry::new(
        strata_registry::RepoRef::parse(&format!("{}/bad", registry.host)).unwrap(),
        false,
    )
    .unwrap();
    let manifest = client.get_manifest("v1").unwrap().unwrap().json();
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let hex = layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = registry.dir.path().join(format!(
        "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&blob, &bytes).unwrap();

    let mountpoint = dir.path().join("layers");
    let cache = dir.path().join("cache");
    let store = LayerStore::start(&mountpoint, &cache);
    let runner = storage_conf(dir.path(), "runner", Some(&mountpoint));
    buildah(&runner, &["pull", "-q", "--tls-verify=false", &image]);
    let c = buildah(&runner, &["from", "--pull-never", &image]);
    let read = Command::new("buildah")
        .env("CONTAINERS_STORAGE_CONF", &runner)
        .args(["run", &c, "--", "/bin/busybox", "cat", "/data.bin"])
        .output()
        .unwrap();
    assert!(!read.status.success(), "reading the corrupted file fails");
    assert!(
        String::from_utf8_lossy(&read.stderr).contains("Input/output error"),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let stats = store.stats();
    assert!(stats["failures"].as_u64().unwrap() >= 1, "{stats}");
    let entry = |bytes: &[u8]| {
        let digest = common::sha256_hex(bytes);
        cache.join(format!("v1/objects/sha256/{}/{digest}", &digest[..2]))
    };
    assert!(
        !entry(&data).exists(),
        "no cache entry for the file whose bytes were wrong"
    );
    // busybox, intact in its own layer, was fetched, verified and kept.
    assert_eq!(
        buildah(&runner, &["run", &c, "--", "/bin/busybox", "echo", "ok"]),
        "ok"
    );
    assert!(entry(&std::fs::read("/bin/busybox").unwrap()).exists());
    wipe(&runner, &dir.path().join("runner"));
    let (code, stderr) = store.stop();
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("fetching a file's content failed"),
        "{stderr}"
    );
}

/// buildah's layer cache keys a RUN on its text, not on the files it bind-mounts from the
/// context: strata refuses cache-from/cache-to on such an image before building anything.
#[test]
fn a_buildah_layer_cache_over_context_bind_mounts_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("strata.toml"),
        "[image.a]\nfile = \"Dockerfile\"\ncache-from = [\"127.0.0.1:5000/cache\"]\n",
    )
    .unwrap();
    std::fs::write(
        p.join("Dockerfile"),
        "FROM scratch\nRUN --mount=type=bind,source=install.sh,target=/i.sh sh /i.sh\n",
    )
    .unwrap();
    std::fs::write(p.join("install.sh"), "true\n").unwrap();
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "one"]);
    let out = run(strata()
        .current_dir(p)
        .args(["build", "--all", "--engine", "buildah"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strata.toml:3")
            && stderr.contains("Dockerfile:2 bind-mounts `install.sh`")
            && stderr.contains("COPY them instead"),
        "{stderr}"
    );
}
