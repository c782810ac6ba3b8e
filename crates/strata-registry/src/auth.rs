//! Registry credentials, found where the container engines keep them, so that the
//! `docker login`, `buildah login` or `podman login` a build needs anyway is all strata needs.
//!
//! Sources, first match wins:
//!
//! 1. `STRATA_REGISTRY_USERNAME` and `STRATA_REGISTRY_PASSWORD` (for every registry);
//! 2. the auth files, in containers-auth.json(5) order: `$REGISTRY_AUTH_FILE` (else
//!    `$XDG_RUNTIME_DIR/containers/auth.json`, else `/run/containers/<uid>/auth.json`),
//!    `$XDG_CONFIG_HOME/containers/auth.json`
//!    (else `~/.config/...`), `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`).
//!
//! `$REGISTRY_AUTH_FILE`, when set, is the only file read (as for the engines).
//!
//! Within one file: a `credHelpers` entry for the host, then the most specific `auths` key
//! (`host/namespace/repo`, `host/namespace`, `host`; Docker's `https://host/v1/` form is read
//! as `host`; Docker Hub's names `docker.io`, `index.docker.io` and `registry-1.docker.io`
//! are one registry), then the file's `credsStore`. A helper is `docker-credential-<name> get`, the
//! protocol Docker's credential helpers speak. Identity tokens (OAuth refresh tokens) are not
//! used.
//!
//! The matching is pure ([`lookup`]); reading files and running helpers is the edge.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret (errors and logs may show a client).
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where one auth file says a registry's credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Written in the file.
    Inline(Credentials),
    /// Kept by a credential helper: `docker-credential-<name>`.
    Helper(String),
}

/// Finds the credentials for `host` (`host[:port]`) and `repository` in the process
/// environment and the auth files; `None` means anonymous access.
pub fn credentials_for(host: &str, repository: &str) -> Option<Credentials> {
    if let (Ok(username), Ok(password)) = (
        std::env::var("STRATA_REGISTRY_USERNAME"),
        std::env::var("STRATA_REGISTRY_PASSWORD"),
    ) {
        return Some(Credentials { username, password });
    }
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    };
    auth_files(&var, uid).into_iter().find_map(|path| {
        let text = std::fs::read(&path).ok()?;
        let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
        match lookup(&config, host, repository)? {
            Found::Inline(c) => Some(c),
            Found::Helper(name) => {
                let helper = PathBuf::from(format!("docker-credential-{name}"));
                helper_servers(host)
                    .iter()
                    .find_map(|server| run_helper(&helper, server))
            }
        }
    })
}

/// The auth files to read, in order (see the module docs), given the environment (`var`)
/// and the user id. A file the user names (`REGISTRY_AUTH_FILE`) is the only one, as for
/// the engines, so strata never logs in as someone else than they do. Pure.
fn auth_files(var: &dyn Fn(&str) -> Option<PathBuf>, uid: Option<u32>) -> Vec<PathBuf> {
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        return vec![f];
    }
    let home = var("HOME");
    let mut files = Vec::new();
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    } else if let Some(uid) = uid {
        // Where the engines log in without XDG_RUNTIME_DIR (e.g. root on a CI runner).
        files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    }
    if let Some(config) =
        var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push(config.join("containers/auth.json"));
    }
    if let Some(docker) = var("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
    {
        files.push(docker.join("config.json"));
    }
    files
}

/// Docker Hub's names: auth files key it by any of them (`docker login` by
/// `https://index.docker.io/v1/`, `podman login` by `docker.io`), and its API answers on
/// `registry-1.docker.io`.
const DOCKER_HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// One name per registry: Docker Hub's names become `docker.io`.
fn canonical_host(host: &str) -> &str {
    if DOCKER_HUB.contains(&host) {
        "docker.io"
    } else {
        host
    }
}

/// What to ask a credential helper for: the key `docker login` stores Docker Hub under,
/// then podman's; any other registry by its host.
fn helper_servers(host: &str) -> Vec<String> {
    if canonical_host(host) == "docker.io" {
        vec!["https://index.docker.io/v1/".into(), "docker.io".into()]
    } else {
        vec![host.to_string()]
    }
}

/// What one parsed auth file says about `host` and `repository`. Pure.
pub fn lookup(config: &serde_json::Value, host: &str, repository: &str) -> Option<Found> {
    let host = canonical_host(host);
    if let Some(helper) = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(key, _)| normalise_key(key) == host))
        .and_then(|(_, n)| n.as_str())
        .filter(|n| !n.is_empty())
    {
        return Some(Found::Helper(helper.to_string()));
    }
    if let Some(auths) = config.get("auths").and_then(|a| a.as_object()) {
        let wanted = scopes(host, repository);
        let best = auths
            .iter()
            .filter_map(|(key, entry)| {
                let rank = wanted.iter().position(|w| *w == normalise_key(key))?;
                Some((rank, decode_entry(entry)?))
            })
            .min_by_key(|(rank, _)| *rank);
        if let Some((_, credentials)) = best {
            return Some(Found::Inline(credentials));
        }
    }
    config
        .get("credsStore")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(|n| Found::Helper(n.to_string()))
}

/// The `auths` keys that apply to a repository, most specific first:
/// `host/a/b`, `host/a`, `host`.
fn scopes(host: &str, repository: &str) -> Vec<String> {
    let mut out = vec![format!("{host}/{repository}")];
    let mut path = repository;
    while let Some((parent, _)) = path.rsplit_once('/') {
        out.push(format!("{host}/{parent}"));
        path = parent;
    }
    out.push(host.to_string());
    out
}

/// An `auths` key as a scope: Docker writes `https://host/v1/`; containers writes
/// `host[/path]`. Docker Hub's names become `docker.io`.
fn normalise_key(key: &str) -> String {
    let (host, path) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => (rest.split('/').next().unwrap_or(rest), ""),
        None => {
            let key = key.trim_end_matches('/');
            key.split_once('/').unwrap_or((key, ""))
        }
    };
    let host = canonical_host(host);
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

/// Credentials from an `auths` entry: `{"auth": base64("user:password")}`, or
/// `username`/`password` fields.
fn decode_entry(entry: &serde_json::Value) -> Option<Credentials> {
    let field = |k: &str| {
        entry
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(auth) = field("auth") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (username, password) = text.split_once(':')?;
        return Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    Some(Credentials {
        username: field("username")?.to_string(),
        password: field("password")?.to_string(),
    })
}

/// Asks a Docker credential helper (`program get`, the host on stdin) for `host`'s
/// credentials. A helper that fails, is missing or answers with an identity token gives
/// `None`.
pub fn run_helper(program: &Path, host: &str) -> Option<Credentials> {
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let username = v.get("Username")?.as_str()?;
    let secret = v.get("Secret")?.as_str()?;
    (username != "<token>" && !secret.is_empty()).then(|| Credentials {
        username: username.to_string(),
        password: secret.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn creds(u: &str, p: &str) -> Found {
        Found::Inline(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn the_most_specific_auths_key_wins() {
        let config = json!({"auths": {
            "reg.test:5000": {"auth": b64("host:h")},
            "reg.test:5000/team": {"auth": b64("team:t")},
            "reg.test:5000/team/app": {"auth": b64("app:a:with:colons")},
            "other.test": {"auth": b64("other:o")},
        }});
        for (repo, want) in [
            ("team/app", Some(creds("app", "a:with:colons"))),
            ("team/api", Some(creds("team", "t"))),
            ("team/app/sub", Some(creds("app", "a:with:colons"))),
            ("solo", Some(creds("host", "h"))),
        ] {
            assert_eq!(lookup(&config, "reg.test:5000", repo), want, "{repo}");
        }
        assert_eq!(lookup(&config, "reg.test", "team/app"), None);
        assert_eq!(lookup(&config, "nowhere.test", "x"), None);
    }

    #[test]
    fn docker_style_keys_and_fields_are_read() {
        let config = json!({"auths": {
            "https://reg.test/v1/": {"auth": b64("docker:d")},
            "http://plain.test:5000": {"username": "u", "password": "p"},
            "broken.test": {"auth": "%%% not base64"},
            "nocolon.test": {"auth": b64("justauser")},
            "empty.test": {},
        }});
        assert_eq!(lookup(&config, "reg.test", "a"), Some(creds("docker", "d")));
        assert_eq!(
            lookup(&config, "plain.test:5000", "a"),
            Some(creds("u", "p"))
        );
        for host in ["broken.test", "nocolon.test", "empty.test"] {
            assert_eq!(lookup(&config, host, "a"), None, "{host}");
        }
    }

    #[test]
    fn helpers_per_host_come_first_and_the_store_last() {
        let config = json!({
            "credHelpers": {"reg.test": "ecr-login"},
            "auths": {"reg.test": {"auth": b64("x:y")}, "inline.test": {"auth": b64("i:j")}},
            "credsStore": "secretservice",
        });
        assert_eq!(
            lookup(&config, "reg.test", "a"),
            Some(Found::Helper("ecr-login".into()))
        );
        assert_eq!(lookup(&config, "inline.test", "a"), Some(creds("i", "j")));
        assert_eq!(
            lookup(&config, "else.test", "a"),
            Some(Found::Helper("secretservice".into()))
        );
    }

    #[test]
    fn a_credential_helper_is_asked_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-strata-test");
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread host\ncase $host in\n  \
             reg.test:5000) echo '{\"ServerURL\":\"reg.test:5000\",\"Username\":\"robot\",\"Secret\":\"s3\"}' ;;\n  \
             token.test) echo '{\"Username\":\"<token>\",\"Secret\":\"refresh\"}' ;;\n  \
             *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            run_helper(&helper, "reg.test:5000"),
            Some(Credentials {
                username: "robot".into(),
                password: "s3".into()
            })
        );
        assert_eq!(run_helper(&helper, "token.test"), None);
        assert_eq!(run_helper(&helper, "unknown.test"), None);
        assert_eq!(
            run_helper(&dir.path().join("missing"), "reg.test:5000"),
            None
        );
    }

    #[test]
    fn docker_hub_is_one_registry_under_all_its_names() {
        let docker = json!({"auths": {"https://index.docker.io/v1/": {"auth": b64("d:1")}}});
        let podman = json!({"auths": {"docker.io": {"auth": b64("p:2")}}});
        let team = json!({"auths": {"docker.io": {"auth": b64("p:2")}, "docker.io/team": {"auth": b64("t:3")}}});
        for host in DOCKER_HUB {
            assert_eq!(
                lookup(&docker, host, "library/x"),
                Some(creds("d", "1")),
                "{host}"
            );
            assert_eq!(
                lookup(&podman, host, "library/x"),
                Some(creds("p", "2")),
                "{host}"
            );
            assert_eq!(
                lookup(&team, host, "team/app"),
                Some(creds("t", "3")),
                "{host}"
            );
        }
        let helper = json!({"credHelpers": {"docker.io": "desktop"}});
        assert_eq!(
            lookup(&helper, "registry-1.docker.io", "a"),
            Some(Found::Helper("desktop".into()))
        );
        assert_eq!(
            helper_servers("registry-1.docker.io"),
            vec!["https://index.docker.io/v1/", "docker.io"]
        );
        assert_eq!(helper_servers("reg.test:5000"), vec!["reg.test:5000"]);
    }

    #[test]
    fn auth_files_in_the_engines_order_and_a_named_file_alone() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        let named = env(&[("REGISTRY_AUTH_FILE", "/a.json"), ("HOME", "/h")]);
        assert_eq!(auth_files(&named, Some(0)), vec![PathBuf::from("/a.json")]);
        let full = env(&[
            ("XDG_RUNTIME_DIR", "/run/user/7"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dk"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            auth_files(&full, Some(7)),
            [
                "/run/user/7/containers/auth.json",
                "/cfg/containers/auth.json",
                "/dk/config.json"
            ]
            .map(PathBuf::from)
        );
        let bare = env(&[("HOME", "/root")]);
        assert_eq!(
            auth_files(&bare, Some(0)),
            [
                "/run/containers/0/auth.json",
                "/root/.config/containers/auth.json",
                "/root/.docker/config.json"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn credentials_never_print_their_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
