//! `strata affected` run as the binary on a real git repository: the text, JSON and GitHub
//! output formats (with `$GITHUB_OUTPUT` appended to) and the exit status for a bad --base.

use std::path::Path;
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
}

/// base → tooling → app, as in strata-layers' tests/affected_git.rs; then a second commit
/// that changes only the tooling's context, so tooling and app are affected and base is not.
fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    write(
        p,
        "strata.toml",
        r#"[image.base]
file = "Dockerfile.base"
[image.tooling]
file = "Dockerfile.tooling"
from = "base"
[image.app]
file = "Dockerfile"
from = "tooling"
"#,
    );
    write(
        p,
        "Dockerfile.base",
        "FROM scratch\nCOPY packages/ /packages/\n",
    );
    write(p, "packages/list.txt", "a\n");
    write(
        p,
        "Dockerfile.tooling",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tools/ /opt/tools/\n",
    );
    write(p, "tools/t.sh", "echo t\n");
    write(
        p,
        "Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src/ /app/src\n",
    );
    write(p, "src/main.py", "print(1)\n");
    commit(p, "one");
    write(p, "tools/t.sh", "echo t2\n");
    commit(p, "two");
    d
}

fn strata(dir: &Path, args: &[&str], github_output: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.current_dir(dir).args(args).env_remove("GITHUB_OUTPUT");
    if let Some(f) = github_output {
        c.env("GITHUB_OUTPUT", f);
    }
    c.output().expect("run strata")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// An object's keys, sorted (the order serde_json keeps depends on its features).
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

const TOOLING_REASON: &str = "COPY tools/ /opt/tools/ (Dockerfile.tooling:3)";

#[test]
fn text_format_lists_images_parents_first_with_reasons() {
    let d = project();
    let out = ok(&strata(d.path(), &["affected", "--base", "HEAD~1"], None));
    assert_eq!(
        out,
        format!(
            "base: not affected\n\
             tooling: affected\n  tools/t.sh → {TOOLING_REASON}\n\
             app: affected\n  tools/t.sh → built from image tooling, which is affected\n"
        )
    );
}

#[test]
fn json_format_has_images_and_changes() {
    let d = project();
    let out = ok(&strata(
        d.path(),
        &["affected", "--base", "HEAD~1", "--format", "json"],
        None,
    ));
    assert_eq!(out.lines().count(), 1, "one JSON document: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(keys(&v), ["changes", "images"]);
    assert_eq!(v["changes"], serde_json::json!(["tooling", "app"]));
    let images = v["images"].as_object().unwrap();
    assert_eq!(keys(&v["images"]), ["app", "base", "tooling"]);
    for (name, image) in images {
        assert_eq!(keys(image), ["affected", "reasons"], "{name}");
        assert!(image["affected"].is_boolean(), "{name}");
        for r in image["reasons"].as_array().unwrap() {
            assert_eq!(keys(r), ["because", "path"], "{name}: {r}");
            assert!(r["path"].is_string() && r["because"].is_string(), "{r}");
        }
    }
    assert_eq!(
        v["images"]["base"],
        serde_json::json!({"affected": false, "reasons": []})
    );
    assert_eq!(
        v["images"]["tooling"],
        serde_json::json!({"affected": true, "reasons": [
            {"path": "tools/t.sh", "because": TOOLING_REASON}
        ]})
    );
    assert_eq!(
        v["images"]["app"],
        serde_json::json!({"affected": true, "reasons": [
            {"path": "tools/t.sh", "because": "built from image tooling, which is affected"}
        ]})
    );
}

#[test]
fn github_format_appends_to_github_output() {
    let d = project();
    let outputs = d.path().join("github-output");
    let before = "earlier-step=kept\nmulti<<EOF\nline\nEOF\n";
    std::fs::write(&outputs, before).unwrap();
    let want = "app=true\nbase=false\ntooling=true\nchanges=[\"tooling\",\"app\"]\n";
    let out = ok(&strata(
        d.path(),
        &["affected", "--base", "HEAD~1", "--format", "github"],
        Some(&outputs),
    ));
    assert_eq!(out, want, "stdout");
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        format!("{before}{want}"),
        "appended after the existing content"
    );
    // A second step appends again; nothing is rewritten.
    ok(&strata(
        d.path(),
        &["affected", "--base", "HEAD", "--format", "github"],
        Some(&outputs),
    ));
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        format!("{before}{want}app=false\nbase=false\ntooling=false\nchanges=[]\n")
    );
    // Created when it does not exist yet.
    let fresh = d.path().join("fresh-output");
    ok(&strata(
        d.path(),
        &["affected", "--base", "HEAD~1", "--format", "github"],
        Some(&fresh),
    ));
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), want);
}

#[test]
fn bad_base_revision_exits_2() {
    let d = project();
    for format in ["text", "json", "github"] {
        let outputs = d.path().join("github-output");
        std::fs::write(&outputs, "before=1\n").unwrap();
        let o = strata(
            d.path(),
            &["affected", "--base", "no-such-rev", "--format", format],
            Some(&outputs),
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{format}: {stderr}");
        assert!(o.stdout.is_empty(), "{format}: nothing on stdout");
        assert!(
            stderr.contains("--base no-such-rev: no such commit"),
            "{format}: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&outputs).unwrap(),
            "before=1\n",
            "{format}: $GITHUB_OUTPUT untouched"
        );
    }
}
