//! `strata lint` end to end on the seed Containerfiles: formats, `--fail-on`, exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn lint(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("lint")
        .args(args)
        .arg("-f")
        .arg(file)
        .env_remove("STRATA_LOG")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn seed000_proof_of_concept_fails_with_merged_package_db() {
    let out = lint(&["--format", "json"], &fixture("seed000-poc/Containerfile"));
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let findings = v.as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v:#}");
    assert_eq!(findings[0]["rule"], "merged-package-db");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["line"], 12);
    assert!(findings[0]["message"].as_str().unwrap().contains("vscode"));
    assert!(!findings[0]["fix"].as_str().unwrap().is_empty());
}

#[test]
fn seed000_good_layout_is_clean() {
    let out = lint(
        &["--format", "json", "--fail-on", "warning"],
        &fixture("seed000-good/Containerfile"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out), Value::Array(vec![]));
}

#[test]
fn fail_on_decides_the_exit_code() {
    let f = fixture("seed001/Dockerfile");
    assert_eq!(
        lint(&[], &f).status.code(),
        Some(0),
        "only a warning (unpinned tag)"
    );
    let out = lint(&["--fail-on", "warning"], &f);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Dockerfile:2: warning[unpinned-base]"),
        "{text}"
    );
    assert!(text.contains("fix: pin it"), "{text}");
}

#[test]
fn sarif_output() {
    let out = lint(
        &["--format", "sarif"],
        &fixture("seed000-poc/Containerfile"),
    );
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "strata");
    assert!(run["tool"]["driver"]["rules"].as_array().unwrap().len() >= 8);
    assert_eq!(run["results"][0]["ruleId"], "merged-package-db");
    assert_eq!(run["results"][0]["level"], "error");
    assert_eq!(
        run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        12
    );
}

#[test]
fn copy_of_an_ignored_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let pin = "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    fs::write(
        dir.path().join("Containerfile"),
        format!("FROM {pin}\nCOPY app.py secrets.env /app/\n"),
    )
    .unwrap();
    fs::write(dir.path().join("app.py"), "").unwrap();
    fs::write(dir.path().join("secrets.env"), "").unwrap();
    fs::write(dir.path().join(".dockerignore"), "*.env\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["lint", "--format", "json", "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v[0]["rule"], "copy-ignored-file");
    assert!(v[0]["message"].as_str().unwrap().contains("secrets.env"));
    // Containerfile.dockerignore takes precedence over .dockerignore.
    fs::write(dir.path().join("Containerfile.dockerignore"), "*.md\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["lint", "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unreadable_or_unparseable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Containerfile");
    fs::write(&bad, "FROM alpine\nRUN <<EOF\n").unwrap();
    let out = lint(&[], &bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Containerfile:2"));
    let out = lint(&[], &dir.path().join("missing"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_layered_example_lints_clean_given_its_base_image_arg() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/layered");
    let context = dir.to_str().unwrap();
    let run = |file: &str, extra: &[&str]| {
        let args: Vec<&str> = ["--format", "json", "--context", context]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        lint(&args, &dir.join(file))
    };
    for file in ["Dockerfile.base", "Dockerfile.monolithic"] {
        let out = run(file, &[]);
        assert_eq!(out.status.code(), Some(0), "{file}");
        assert_eq!(json(&out), Value::Array(vec![]), "{file}");
    }
    let pinned = format!("BASE_IMAGE=base@sha256:{}", "0".repeat(64));
    for file in ["Dockerfile.tooling", "Dockerfile"] {
        let out = run(file, &["--build-arg", &pinned]);
        assert_eq!(json(&out), Value::Array(vec![]), "{file}");
        // Without the arg, FROM ${BASE_IMAGE} is blank: an input error naming the line.
        let out = run(file, &[]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--build-arg"), "{err}");
    }
}

#[test]
fn a_script_copied_only_to_be_run_is_a_note_that_does_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    fs::write(
        &file,
        "FROM scratch\nCOPY install.sh /usr/local/sbin/install\nRUN [\"sh\", \"/usr/local/sbin/install\"]\n",
    )
    .unwrap();
    let out = lint(&["--format", "json", "--fail-on", "warning"], &file);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v[0]["rule"], "script-copied-to-run", "{v:#}");
    assert_eq!(v[0]["severity"], "info");
    assert_eq!(v[0]["line"], 2);
    assert!(
        v[0]["fix"]
            .as_str()
            .unwrap()
            .contains("--mount=type=bind,source=install.sh,target=/usr/local/sbin/install")
    );
}
