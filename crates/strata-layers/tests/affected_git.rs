//! `affected` on real git repositories built in temporary directories: modifications,
//! renames, deletions, a first commit, an all-zero base, a shallow clone and strata.toml edits.

use std::path::Path;
use std::process::Command;

use strata_layers::{LayersError, config};

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
        .unwrap();
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

const STRATA: &str = r#"inputs = ["ci/global.env"]
[image.base]
file = "Dockerfile.base"
[image.tooling]
file = "Dockerfile.tooling"
from = "base"
inputs = ["scripts/tooling/**"]
[image.app]
file = "Dockerfile"
from = "tooling"
"#;

fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    write(p, "strata.toml", STRATA);
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
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /app\n\nCOPY src/ /app/src\n",
    );
    write(p, "src/main.py", "print(1)\n");
    write(p, ".dockerignore", "**/*.pyc\n");
    write(p, "README.md", "hi\n");
    commit(p, "one");
    d
}

fn affected(dir: &Path, base: &str) -> Result<strata_layers::Affected, LayersError> {
    let c = config::load(&dir.join("strata.toml")).unwrap();
    strata_layers::affected(&c, base, "HEAD")
}

#[test]
fn app_change_names_instruction_and_line() {
    let d = project();
    write(d.path(), "src/main.py", "print(2)\n");
    commit(d.path(), "two");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["app"]);
    let json = serde_json::to_string(&a.images["app"]).unwrap();
    assert_eq!(
        json,
        r#"{"affected":true,"reasons":[{"path":"src/main.py","because":"COPY src/ /app/src (Dockerfile:5)"}]}"#
    );
    assert!(!a.images["base"].affected && a.images["base"].reasons.is_empty());
}

#[test]
fn ignored_and_unrelated_changes_affect_nothing() {
    let d = project();
    write(d.path(), "src/cache.pyc", "x");
    write(d.path(), "README.md", "changed\n");
    commit(d.path(), "two");
    assert!(affected(d.path(), "HEAD~1").unwrap().changes.is_empty());
}

#[test]
fn base_change_cascades_and_extra_inputs_count() {
    let d = project();
    write(d.path(), "packages/list.txt", "a\nb\n");
    commit(d.path(), "two");
    write(d.path(), "scripts/tooling/x.sh", "x\n");
    commit(d.path(), "three");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["tooling", "app"]);
    assert!(
        a.images["tooling"].reasons[0]
            .because
            .contains("inputs = [\"scripts/tooling/**\"] of image.tooling (strata.toml:7)")
    );
    let a = affected(d.path(), "HEAD~2").unwrap();
    assert_eq!(a.changes, vec!["base", "tooling", "app"]);
    assert_eq!(
        a.images["app"].reasons.last().unwrap().because,
        "built from image tooling, which is affected"
    );
}

#[test]
fn renames_and_deletions() {
    let d = project();
    git(d.path(), &["mv", "tools/t.sh", "misc-t.sh"]);
    commit(d.path(), "rename out");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["tooling", "app"]);
    assert!(
        a.images["tooling"].reasons[0]
            .because
            .ends_with("(renamed away)"),
        "{:?}",
        a.images["tooling"]
    );
    std::fs::remove_file(d.path().join("src/main.py")).unwrap();
    commit(d.path(), "delete");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["app"]);
    assert!(a.images["app"].reasons[0].because.ends_with("(deleted)"));
    // A renamed Dockerfile (and the config following it) affects the image.
    git(d.path(), &["mv", "Dockerfile", "Dockerfile.app"]);
    write(
        d.path(),
        "strata.toml",
        &STRATA.replace("file = \"Dockerfile\"\n", "file = \"Dockerfile.app\"\n"),
    );
    commit(d.path(), "rename dockerfile");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["app"]);
    assert!(
        a.images["app"]
            .reasons
            .iter()
            .any(|r| r.path == "strata.toml")
    );
    assert!(
        a.images["app"]
            .reasons
            .iter()
            .any(|r| r.path == "Dockerfile.app")
    );
}

#[test]
fn missing_dockerfile_is_input_error() {
    let d = project();
    std::fs::remove_file(d.path().join("Dockerfile.base")).unwrap();
    commit(d.path(), "oops");
    let e = affected(d.path(), "HEAD~1").unwrap_err();
    assert!(e.is_input());
    assert!(
        e.to_string().contains("Dockerfile.base does not exist"),
        "{e}"
    );
}

#[test]
fn first_commit_and_zero_sha_mean_everything() {
    let d = project();
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["base", "tooling", "app"]);
    let a = affected(d.path(), "0000000000000000000000000000000000000000").unwrap();
    assert_eq!(a.changes, vec!["base", "tooling", "app"]);
    let e = affected(d.path(), "no-such-branch").unwrap_err();
    assert!(
        e.is_input() && e.to_string().contains("no such commit"),
        "{e}"
    );
}

#[test]
fn shallow_clone_says_how_deep_to_fetch() {
    let d = project();
    for i in 0..4 {
        write(d.path(), "src/main.py", &format!("print({i})\n"));
        commit(d.path(), "more");
    }
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", d.path().display());
    let target = clone.path().join("c");
    git(
        clone.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "2",
            &url,
            target.to_str().unwrap(),
        ],
    );
    // Within depth: fine.
    assert_eq!(affected(&target, "HEAD~1").unwrap().changes, vec!["app"]);
    let e = affected(&target, "HEAD~3").unwrap_err();
    let msg = e.to_string();
    assert!(e.is_input());
    assert!(
        msg.contains("shallow clone")
            && msg.contains("git fetch --deepen=2")
            && msg.contains("--unshallow")
            && msg.contains("fetch-depth: 4"),
        "{msg}"
    );
    let first = git(d.path(), &["rev-list", "--max-parents=0", "HEAD"]);
    let msg = affected(&target, &first).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("git fetch --depth=1 origin {first}")),
        "{msg}"
    );
    // Deepening as told fixes it.
    git(&target, &["fetch", "-q", "--deepen=2"]);
    assert_eq!(affected(&target, "HEAD~3").unwrap().changes, vec!["app"]);
}

#[test]
fn strata_toml_settings_changes() {
    let d = project();
    write(
        d.path(),
        "strata.toml",
        &STRATA.replace(
            "inputs = [\"scripts/tooling/**\"]",
            "inputs = [\"scripts/tooling/**\"]\nargs = { V = \"2\" }",
        ),
    );
    commit(d.path(), "args");
    let a = affected(d.path(), "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["tooling", "app"]);
    // Tags only: nothing to rebuild.
    write(
        d.path(),
        "strata.toml",
        &format!(
            "{}tags = [\"x:{{sha}}\"]\n",
            std::fs::read_to_string(d.path().join("strata.toml")).unwrap()
        ),
    );
    commit(d.path(), "tags");
    assert!(affected(d.path(), "HEAD~1").unwrap().changes.is_empty());
    // Global inputs edited: everything.
    write(d.path(), "ci/global.env", "X=1\n");
    commit(d.path(), "global");
    assert_eq!(
        affected(d.path(), "HEAD~1").unwrap().changes,
        vec!["base", "tooling", "app"]
    );
}

#[test]
fn diverged_branch_compares_from_the_merge_base() {
    // main: one → base change; feature (from one): app change. What the pull request
    // changed is the app only, not main's later base change (as CI path filters see it).
    let d = project();
    let p = d.path();
    git(p, &["checkout", "-q", "-b", "feature"]);
    write(p, "src/main.py", "print(2)\n");
    commit(p, "feature: app");
    git(p, &["checkout", "-q", "main"]);
    write(p, "packages/list.txt", "a\nb\n");
    commit(p, "main: base");
    git(p, &["checkout", "-q", "feature"]);
    let a = affected(p, "main").unwrap();
    assert_eq!(a.changes, vec!["app".to_string()], "{a:?}");
    assert!(!a.images["base"].affected);
    // A base that is an ancestor of head still compares with itself.
    let a = affected(p, "HEAD~1").unwrap();
    assert_eq!(a.changes, vec!["app".to_string()]);
    // From main's side, the feature's app change is not main's.
    git(p, &["checkout", "-q", "main"]);
    let a = affected(p, "feature").unwrap();
    assert_eq!(
        a.changes,
        vec!["base".to_string(), "tooling".to_string(), "app".to_string()]
    );
    assert!(
        a.images["app"]
            .reasons
            .iter()
            .all(|r| r.path != "src/main.py"),
        "{a:?}"
    );
}
