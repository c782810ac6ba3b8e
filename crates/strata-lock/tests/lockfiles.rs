//! End-to-end: realistic lockfiles on disk through the public API.

use std::path::{Path, PathBuf};

use strata_lock::{
    Algorithm, Details, Ecosystem, Filter, LockError, RpmKind, SkipReason, load, load_all,
    load_all_with_skipped, load_with_skipped,
};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn paths(artifacts: &[strata_lock::Artifact]) -> Vec<&str> {
    artifacts.iter().map(|a| a.path.as_str()).collect()
}

fn skip_unfetchable() -> Filter {
    Filter {
        skip_unfetchable: true,
        ..Filter::default()
    }
}

#[test]
fn pylock_fixture_with_arch_filter() {
    let filter = Filter {
        arches: vec!["amd64".into()],
        skip_unfetchable: true,
        ..Filter::default()
    };
    let out = load_with_skipped(&fixture("good/pylock.toml"), &filter).unwrap();
    assert_eq!(
        paths(&out.artifacts),
        [
            "deps/pip/certifi-2025.1.31-py3-none-any.whl",
            "deps/pip/certifi-2025.1.31.tar.gz",
            "deps/pip/charset_normalizer-3.4.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "deps/pip/charset_normalizer-3.4.1-cp312-cp312-musllinux_1_2_x86_64.whl",
            "deps/pip/charset_normalizer-3.4.1-py3-none-any.whl",
            "deps/pip/charset_normalizer-3.4.1.tar.gz",
        ]
    );
    let x86 = &out.artifacts[2];
    assert_eq!(x86.name, "charset-normalizer");
    assert_eq!(x86.size, Some(143017));
    assert_eq!(x86.store_digest().algorithm, Algorithm::Sha512);
    assert_eq!(x86.origin.line, Some(22));
    assert!(x86.origin.lockfile.ends_with("good/pylock.toml"));

    let not_selected = out
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::NotSelected(_)))
        .count();
    assert_eq!(not_selected, 3, "mac, aarch64 and windows wheels");
    let unfetchable: Vec<&str> = out
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::Unfetchable(_)))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(unfetchable, ["myapp"]);
}

#[test]
fn pylock_directory_package_fails_without_skip() {
    let err = load(&fixture("good/pylock.toml"), &Filter::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LockError::Unfetchable { .. }));
    assert!(
        msg.contains("good/pylock.toml:28:1: package `myapp`: is a local source tree"),
        "{msg}"
    );
}

#[test]
fn npm_fixture_dedupes_and_skips_links() {
    let out = load(&fixture("good/package-lock.json"), &Filter::default()).unwrap();
    assert_eq!(
        paths(&out),
        [
            "deps/npm/babel-helper-string-parser-7.25.9.tgz",
            "deps/npm/debug-4.4.0.tgz",
            "deps/npm/ms-2.1.3.tgz",
        ]
    );
    assert_eq!(out[0].name, "@babel/helper-string-parser");
    assert_eq!(
        out[1].digests.len(),
        2,
        "sha512 and sha1 from one SRI string"
    );
    assert_eq!(out[1].store_digest().algorithm, Algorithm::Sha512);
    assert!(out.iter().all(|a| a.size.is_none()));
    assert!(
        matches!(&out[2].details, Details::Npm { lock_key, .. } if lock_key == "node_modules/debug/node_modules/ms")
    );
}

#[test]
fn rpm_fixture_layout_and_arch_filter() {
    let all = load(&fixture("good/rpms.lock.yaml"), &Filter::default()).unwrap();
    assert_eq!(
        paths(&all),
        [
            "deps/rpm/aarch64/ubi-9-baseos-rpms/bash-5.1.8-9.el9.aarch64.rpm",
            "deps/rpm/aarch64/ubi-9-baseos-rpms/tzdata-2024b-2.el9.noarch.rpm",
            "deps/rpm/x86_64/ubi-9-baseos-rpms/bash-5.1.8-9.el9.x86_64.rpm",
            "deps/rpm/x86_64/ubi-9-baseos-rpms/tzdata-2024b-2.el9.noarch.rpm",
            "deps/rpm/x86_64/ubi-9-baseos-source/bash-5.1.8-9.el9.src.rpm",
            "deps/rpm/x86_64/ubi-9-appstream-rpms/1b2c-modules.yaml.gz",
        ]
    );
    let lines: Vec<Option<usize>> = all.iter().map(|a| a.origin.line).collect();
    assert_eq!(
        lines,
        [Some(7), Some(14), Some(25), Some(32), Some(40), Some(47)]
    );
    assert!(matches!(
        all[4].details,
        Details::Rpm {
            kind: RpmKind::Source,
            ..
        }
    ));
    assert!(all.iter().all(|a| a.ecosystem == Ecosystem::Rpm));

    let x86 = load(
        &fixture("good/rpms.lock.yaml"),
        &Filter {
            arches: vec!["x86_64".into()],
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(x86.len(), 4);
    assert!(x86.iter().all(|a| a.arch.as_deref() == Some("x86_64")));
}

#[test]
fn generic_fixture() {
    let out = load(&fixture("good/artifacts.lock.yaml"), &Filter::default()).unwrap();
    assert_eq!(
        paths(&out),
        [
            "deps/generic/ansible-collection-1.2.3.tar.gz",
            "deps/generic/bin/jq",
            "deps/generic/commons-lang3-3.17.0.jar",
        ]
    );
    assert_eq!(
        out[2].urls,
        [
            "http://127.0.0.1:8765/maven2/org/apache/commons/commons-lang3/3.17.0/commons-lang3-3.17.0.jar"
        ]
    );
}

#[test]
fn load_all_combines_every_format() {
    let files = [
        "good/pylock.toml",
        "good/package-lock.json",
        "good/rpms.lock.yaml",
        "good/artifacts.lock.yaml",
    ]
    .map(fixture);
    let out = load_all_with_skipped(&files, &skip_unfetchable()).unwrap();
    assert_eq!(out.artifacts.len(), 9 + 3 + 6 + 3);
    for eco in [
        Ecosystem::Pip,
        Ecosystem::Npm,
        Ecosystem::Rpm,
        Ecosystem::Generic,
    ] {
        assert!(out.artifacts.iter().any(|a| a.ecosystem == eco), "{eco}");
    }
    // The same lockfile twice is harmless: identical artifacts merge.
    let twice = load_all(
        &[
            fixture("good/artifacts.lock.yaml"),
            fixture("good/artifacts.lock.yaml"),
        ],
        &Filter::default(),
    )
    .unwrap();
    assert_eq!(twice.len(), 3);
}

#[test]
fn load_all_rejects_one_path_with_two_digests() {
    let err = load_all(
        &[
            fixture("good/artifacts.lock.yaml"),
            fixture("conflict/artifacts.lock.yaml"),
        ],
        &Filter::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LockError::Conflict { .. }));
    assert!(msg.contains("conflict/artifacts.lock.yaml:4: `deps/generic/ansible-collection-1.2.3.tar.gz` is also declared at"), "{msg}");
    assert!(
        msg.contains("good/artifacts.lock.yaml:5 with a different digest"),
        "{msg}"
    );
}

#[test]
fn bad_fixtures_name_file_line_and_column() {
    let cases = [
        (
            "bad/pylock.toml",
            "bad/pylock.toml:8:5: package `foo`: `wheels[0].url` is missing",
        ),
        (
            "bad/rpms.lock.yaml",
            "bad/rpms.lock.yaml:6:10: x86_64 package `evil-1-1.x86_64.rpm`: repoid: the file name `../../../etc` contains a path separator",
        ),
        (
            "bad/package-lock.json",
            "bad/package-lock.json:4:3: lockfileVersion 1 without a `packages` map is not supported",
        ),
        (
            "bad/artifacts.lock.yaml",
            "bad/artifacts.lock.yaml:4:19: artifacts[0]: in `../outside.tar.gz`: the file name `..` would escape its directory",
        ),
    ];
    for (file, want) in cases {
        let err = load(&fixture(file), &skip_unfetchable()).unwrap_err();
        assert!(err.is_input_error());
        let msg = err.to_string();
        assert!(msg.contains(want), "\n got: {msg}\nwant: {want}");
    }
}

#[test]
fn unknown_lockfile_name_is_rejected_before_reading() {
    let err = load(Path::new("/nonexistent/poetry.lock"), &Filter::default()).unwrap_err();
    assert!(matches!(err, LockError::UnknownFormat { .. }));
}
