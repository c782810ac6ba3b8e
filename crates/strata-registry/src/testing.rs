//! Test support: a real registry (Debian's `docker-registry`, the CNCF distribution) on
//! loopback with deletes enabled and a temporary storage directory, and a way to push small
//! synthetic images with this crate's client.
//!
//! When `/usr/bin/docker-registry` (or `$STRATA_DOCKER_REGISTRY`) is missing,
//! [`TestRegistry::start`] returns `None` after printing a SKIP line, or panics when
//! `STRATA_TEST_REQUIRE_ALL=1`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::auth::Credentials;
use crate::client::{OCI_CONFIG, OCI_MANIFEST, Registry, RepoRef};

/// A running registry, stopped (and its storage removed) on drop.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Its storage and config.
    pub dir: tempfile::TempDir,
}

/// Whether missing prerequisites must fail tests (`STRATA_TEST_REQUIRE_ALL=1`).
pub fn require_all() -> bool {
    std::env::var("STRATA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Skips (prints SKIP, returns) or fails (under `STRATA_TEST_REQUIRE_ALL=1`) for a missing
/// prerequisite.
pub fn missing(what: &str) {
    if require_all() {
        panic!("prerequisite missing and STRATA_TEST_REQUIRE_ALL=1: {what}");
    }
    eprintln!("SKIP: {what}");
}

/// The user [`TestRegistry::start_with_auth`] accepts.
pub const TEST_USER: &str = "strata";
/// [`TEST_USER`]'s password.
pub const TEST_PASSWORD: &str = "strata-test-secret";
/// `htpasswd` line for [`TEST_USER`]: bcrypt (cost 4, so that checking it on every request
/// stays cheap) of [`TEST_PASSWORD`].
const TEST_HTPASSWD: &str = "strata:$2b$04$8iHKTr51zJFbHPlF3tQU9usQQytlvdorOl034wpOZCX5pVNIi3Mzm";

impl TestRegistry {
    /// Starts a registry on a free loopback port, or `None` (SKIP) when it is not installed.
    pub fn start() -> Option<TestRegistry> {
        TestRegistry::start_with(false)
    }

    /// Like [`TestRegistry::start`], but every request needs HTTP Basic auth as
    /// [`TEST_USER`] / [`TEST_PASSWORD`] (the registry's `htpasswd` access controller).
    pub fn start_with_auth() -> Option<TestRegistry> {
        TestRegistry::start_with(true)
    }

    fn start_with(auth: bool) -> Option<TestRegistry> {
        let bin = std::env::var("STRATA_DOCKER_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("/usr/bin/docker-registry"));
        if !bin.exists() {
            missing(&format!(
                "{} not found (apt-get install docker-registry)",
                bin.display()
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{TEST_HTPASSWD}\n")).expect("write htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        // The access log (one line per request, with its status) goes to stdout.
        let access = log.try_clone().expect("log");
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdout(access)
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let reg = TestRegistry { child, host, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&reg.host).is_ok() {
                return Some(reg);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {}: {}",
            reg.host,
            reg.log()
        );
    }

    /// The registry's log so far: its errors and one access-log line per request
    /// (`"HEAD /v2/app/manifests/v1 HTTP/1.1" 401 ...`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A client for `repo` in this registry.
    pub fn client(&self, repo: &str) -> Registry {
        Registry::new(
            RepoRef::parse(&format!("{}/{repo}", self.host)).expect("repo"),
            false,
        )
        .expect("client")
    }

    /// A client for `repo` that logs in as [`TEST_USER`] (for [`TestRegistry::start_with_auth`]).
    pub fn client_logged_in(&self, repo: &str) -> Registry {
        Registry::with_credentials(
            RepoRef::parse(&format!("{}/{repo}", self.host)).expect("repo"),
            false,
            Some(Credentials {
                username: TEST_USER.into(),
                password: TEST_PASSWORD.into(),
            }),
        )
        .expect("client")
    }

    /// Writes a containers auth file (the format `buildah login` writes) with this
    /// registry's [`TEST_USER`] login to `path`.
    pub fn write_auth_file(&self, path: &std::path::Path) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
        let json = serde_json::json!({"auths": {&self.host: {"auth": auth}}});
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).expect("write auth file");
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes a small synthetic image (one layer with `content`, config with `created` and
/// `labels`) and tags it; returns the manifest digest.
pub fn push_image(
    reg: &Registry,
    tag: &str,
    content: &str,
    created: &str,
    labels: &[(&str, &str)],
) -> String {
    let layer = content.as_bytes().to_vec();
    let layer_digest = reg.put_blob(&layer).expect("layer");
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = reg.put_blob(&config).expect("config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    reg.put_manifest(tag, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
        .expect("manifest")
}
