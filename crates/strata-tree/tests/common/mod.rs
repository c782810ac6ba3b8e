//! Artifact builders shared by the integration tests (127.0.0.1 URLs only).
#![allow(dead_code)]

use std::path::PathBuf;

use strata_lock::{Algorithm, Artifact, Details, Digest, Ecosystem, Origin, RpmKind};

pub const BASE: &str = "http://127.0.0.1:8080";

pub fn digest(alg: Algorithm, fill: &str) -> Digest {
    Digest::new(alg, &fill.repeat(alg.len())).unwrap()
}

fn base(eco: Ecosystem, name: &str, version: Option<&str>, path: &str, lockfile: &str) -> Artifact {
    let filename = path.rsplit('/').next().unwrap().to_owned();
    Artifact {
        ecosystem: eco,
        name: name.to_owned(),
        version: version.map(str::to_owned),
        urls: vec![format!("{BASE}/{}/{filename}", eco.dir_name())],
        filename,
        size: Some(1234),
        digests: vec![digest(Algorithm::Sha256, "ab")],
        arch: None,
        repo_id: None,
        path: path.to_owned(),
        origin: Origin {
            lockfile: PathBuf::from(lockfile),
            line: Some(1),
        },
        details: Details::Generic,
    }
}

pub fn pip(name: &str, version: &str, filename: &str, fill: &str) -> Artifact {
    let mut a = base(
        Ecosystem::Pip,
        name,
        Some(version),
        &format!("deps/pip/{filename}"),
        "pylock.toml",
    );
    a.digests = vec![digest(Algorithm::Sha256, fill)];
    a.details = Details::Pip {
        wheel: filename.ends_with(".whl"),
    };
    a
}

pub fn npm(name: &str, version: &str, lock_key: &str, fill: &str) -> Artifact {
    npm_in("package-lock.json", name, version, lock_key, fill)
}

pub fn npm_in(lockfile: &str, name: &str, version: &str, lock_key: &str, fill: &str) -> Artifact {
    let file = strata_tree::npm_archive_name(name, version);
    let mut a = base(
        Ecosystem::Npm,
        name,
        Some(version),
        &format!("deps/npm/{file}"),
        lockfile,
    );
    a.size = None;
    a.digests = vec![digest(Algorithm::Sha512, fill)];
    a.details = Details::Npm {
        lock_key: lock_key.to_owned(),
        integrity: "sha512-test".to_owned(),
    };
    a
}

pub fn rpm(
    name: &str,
    evr: &str,
    arch: &str,
    repoid: &str,
    file: &str,
    kind: RpmKind,
    fill: &str,
) -> Artifact {
    let mut a = base(
        Ecosystem::Rpm,
        name,
        Some(evr),
        &format!("deps/rpm/{arch}/{repoid}/{file}"),
        "rpms.lock.yaml",
    );
    a.digests = vec![digest(Algorithm::Sha256, fill)];
    a.arch = Some(arch.to_owned());
    a.repo_id = Some(repoid.to_owned());
    a.details = Details::Rpm {
        kind,
        evr: Some(evr.to_owned()),
        sourcerpm: None,
    };
    a
}

pub fn generic(file: &str, fill: &str) -> Artifact {
    let mut a = base(
        Ecosystem::Generic,
        file,
        None,
        &format!("deps/generic/{file}"),
        "artifacts.lock.yaml",
    );
    a.digests = vec![digest(Algorithm::Sha256, fill)];
    a
}

/// The small mixed set the golden files describe.
pub fn golden_set() -> Vec<Artifact> {
    vec![
        pip(
            "Typing_Extensions",
            "4.12.2",
            "typing_extensions-4.12.2-py3-none-any.whl",
            "11",
        ),
        pip(
            "typing-extensions",
            "4.12.2",
            "typing_extensions-4.12.2.tar.gz",
            "12",
        ),
        npm("@types/node", "20.1.0", "node_modules/@types/node", "21"),
        npm("debug", "4.3.4", "node_modules/debug", "22"),
        npm("ms", "2.0.0", "node_modules/debug/node_modules/ms", "23"),
        npm("ms", "2.1.3", "node_modules/ms", "24"),
        rpm(
            "bash",
            "5.1.8-9.el9",
            "x86_64",
            "ubi-9-baseos",
            "bash-5.1.8-9.el9.x86_64.rpm",
            RpmKind::Binary,
            "31",
        ),
        rpm(
            "openssl",
            "1:3.0.7-27.el9",
            "x86_64",
            "ubi-9-baseos",
            "openssl-3.0.7-27.el9.x86_64.rpm",
            RpmKind::Binary,
            "32",
        ),
        rpm(
            "bash",
            "5.1.8-9.el9",
            "x86_64",
            "ubi-9-baseos-source",
            "bash-5.1.8-9.el9.src.rpm",
            RpmKind::Source,
            "33",
        ),
        rpm(
            "tzdata",
            "2024a-1.el9",
            "x86_64",
            "strata-abc123",
            "tzdata-2024a-1.el9.noarch.rpm",
            RpmKind::Binary,
            "34",
        ),
        rpm(
            "nodejs",
            "",
            "x86_64",
            "ubi-9-appstream",
            "modules.yaml",
            RpmKind::ModuleMetadata,
            "35",
        ),
        generic("archive.tar.gz", "41"),
    ]
}
