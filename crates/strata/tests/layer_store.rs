//! `strata layer-store` with the real consumers: buildah on overlay storage configured with
//! the store as its additional layer store, images pushed zstd:chunked by buildah to a real
//! loopback registry (Debian's docker-registry), a real FUSE mount.

mod common;
#[path = "common/fuse.rs"]
mod fuse;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fuse::{have, mount_source, require, require_fuse, wait_until};
use common::{run, strata};
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
    buildah(
        &publisher,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--format",
            "oci",
            "--compression-format",
            "zstd:chunked",
            "base:local",
            &format!("docker://{base}"),
        ],
    );
    buildah(
        &publisher,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--format",
            "oci",
            "--compression-format",
            "gzip",
            "base:local",
            &format!("docker://{gzip}"),
        ],
    );
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
