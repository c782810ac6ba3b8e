//! inject-files on a real directory (Hermeto: `hermeto/interface/cli.py` `inject_files` and
//! `hermeto/core/package_managers/rpm/main.py` `inject_files_post`).

mod common;

use std::fs;
use std::path::PathBuf;

use strata_tree::{
    BUILD_CONFIG_JSON, InjectError, NpmProject, TreeOptions, build_config, inject_files,
    load_npm_projects,
};

const LOCKFILE: &str = include_str!("golden/npm/package-lock.json");

#[test]
fn writes_lockfiles_and_repo_files_then_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("app");
    let out = tmp.path().join("output");
    fs::create_dir_all(&project).unwrap();
    fs::create_dir_all(out.join("deps/rpm/x86_64/ubi-9-baseos")).unwrap();
    fs::create_dir_all(out.join("deps/rpm/x86_64/strata-abc123")).unwrap();
    let lock = project.join("package-lock.json");
    fs::write(&lock, LOCKFILE).unwrap();

    let artifacts: Vec<_> = common::golden_set()
        .into_iter()
        .map(|mut a| {
            if a.ecosystem == strata_lock::Ecosystem::Npm {
                a.origin.lockfile = lock.clone();
            }
            a
        })
        .collect();
    let projects = load_npm_projects(&artifacts).unwrap();
    assert_eq!(
        projects,
        vec![NpmProject {
            lockfile: lock.clone(),
            abspath: fs::canonicalize(&lock).unwrap(),
            text: LOCKFILE.to_owned(),
        }]
    );
    let opts = TreeOptions {
        npm_projects: projects,
        ..TreeOptions::default()
    };
    let config = build_config(&artifacts, &opts).unwrap();
    fs::write(out.join(BUILD_CONFIG_JSON), config.to_json()).unwrap();

    let report = inject_files(&out, Some("/cachi2/output".as_ref())).unwrap();
    let written = fs::read_to_string(&lock).unwrap();
    assert!(written.contains("\"resolved\": \"file:///cachi2/output/deps/npm/ms-2.1.3.tgz\""));
    assert!(!written.contains("${output_dir}"));
    let repo = out.join("deps/rpm/x86_64/repos.d/strata.repo");
    assert_eq!(report.repo_files, vec![repo.clone()]);
    assert_eq!(report.project_files, vec![fs::canonicalize(&lock).unwrap()]);
    assert!(report.unchanged.is_empty());
    let repo_text = fs::read_to_string(&repo).unwrap();
    assert!(repo_text.contains("[ubi-9-baseos]\nbaseurl = file:///cachi2/output/deps/rpm/x86_64/ubi-9-baseos\ngpgcheck = 1\n"));
    assert!(!repo_text.contains("[repos.d]"));

    // a second run changes nothing (and so also works on a read-only mount)
    let again = inject_files(&out, Some("/cachi2/output".as_ref())).unwrap();
    assert_eq!(again.unchanged.len(), 2);
    // no temporary files are left behind
    let leftovers: Vec<PathBuf> = fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // the default for-output-dir is the output directory's own absolute path
    inject_files(&out, None).unwrap();
    let canon = fs::canonicalize(&out).unwrap();
    let written = fs::read_to_string(&lock).unwrap();
    assert!(written.contains(&format!(
        "file://{}/deps/npm/debug-4.3.4.tgz",
        canon.display()
    )));
}

#[test]
fn a_directory_without_build_config_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = inject_files(tmp.path(), None).unwrap_err();
    assert!(matches!(err, InjectError::NoBuildConfig(_)), "{err}");
    fs::write(tmp.path().join(BUILD_CONFIG_JSON), "{not json").unwrap();
    let err = inject_files(tmp.path(), None).unwrap_err();
    assert!(matches!(err, InjectError::BadBuildConfig { .. }), "{err}");
}

#[test]
fn reads_hermetos_own_build_config() {
    // A .build-config.json exactly as Hermeto wrote it (golden/build-config.hermeto.json) but
    // pointing at a temporary project.
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("proj/package-lock.json");
    let text = include_str!("golden/build-config.hermeto.json")
        .replace("/src/app/package-lock.json", target.to_str().unwrap());
    fs::write(tmp.path().join(BUILD_CONFIG_JSON), text).unwrap();
    let report = inject_files(tmp.path(), Some("/tmp/hermeto-output".as_ref())).unwrap();
    assert_eq!(report.project_files, vec![target.clone()]);
    let written = fs::read_to_string(&target).unwrap();
    assert!(written.contains("file:///tmp/hermeto-output/deps/npm/types-node-20.1.0.tgz"));
}
