//! `strata plan` end to end: the real binary on the seed Containerfiles, real contexts, a
//! real git repository for `--compare`, and the exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn strata(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env("STRATA_CACHE_DIR", cache)
        .env_remove("STRATA_LOG")
        .env("NO_COLOR", "1");
    cmd
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// Makes every file under `dir` look a minute old, so the stat cache may trust it.
fn age(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            age(&p);
        } else {
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Seed 001's context: the builder Dockerfile, its .dockerignore and a small project.
fn seed001_context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::copy(fixture("seed001/Dockerfile"), r.join("Dockerfile")).unwrap();
    fs::copy(fixture("seed001/dockerignore"), r.join(".dockerignore")).unwrap();
    write(r, "app/pyproject.toml", "[project]\nname = \"app\"\n");
    write(r, "app/app.py", "print('factory')\n");
    write(r, "cdk8s/pyproject.toml", "[project]\nname = \"cdk8s\"\n");
    write(r, "cdk8s/main.py", "pass\n");
    write(r, "Taskfile.yaml", "version: '3'\n");
    write(r, "images.yaml", "images: []\n");
    write(r, "tests/test_app.py", "def test(): pass\n");
    write(r, "NOTES.md", "notes\n");
    dir
}

#[test]
fn seed000_good_layout_json_shape() {
    let cache = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "config/starship.toml", "add_newline = false\n");
    let out = strata(cache.path())
        .args(["plan", "--format", "json", "-f"])
        .arg(fixture("seed000-good/Containerfile"))
        .arg("--context")
        .arg(ctx.path())
        .output()
        .unwrap();
    let v = ok_json(out);
    let levels: Vec<Vec<String>> = v["levels"].as_array().unwrap().iter().map(names).collect();
    assert_eq!(
        levels,
        vec![
            vec!["base".to_string()],
            [
                "dl-vscode",
                "dl-edge",
                "dl-1password",
                "fetch-starship",
                "build-keyd"
            ]
            .map(String::from)
            .to_vec(),
            vec!["image".to_string()],
        ]
    );
    assert_eq!(names(&v["critical_path"]), ["base", "dl-vscode", "image"]);
    assert_eq!(v["max_parallelism"], 5);
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 7);
    let edge = &stages[2];
    assert_eq!(edge["name"], "dl-edge");
    assert_eq!(edge["index"], 2);
    assert_eq!(edge["base"], "base");
    assert_eq!(names(&edge["depends_on"]), ["base"]);
    assert_eq!(edge["level"], 1);
    let image = &stages[6];
    assert_eq!(
        names(&image["depends_on"]),
        [
            "base",
            "dl-vscode",
            "dl-edge",
            "dl-1password",
            "fetch-starship",
            "build-keyd"
        ]
    );
    let keys: std::collections::BTreeSet<&str> = stages
        .iter()
        .map(|s| s["cache_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 7, "every stage has its own key");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("sha256:") && k.len() == 71)
    );
    assert_eq!(v["context"]["files_selected"], 1, "only config/ is hashed");
    assert_eq!(stages[0]["base_pinned"], true);
}

#[test]
fn target_prunes_and_other_formats_render() {
    let cache = tempfile::tempdir().unwrap();
    let cf = fixture("seed000-good/Containerfile");
    let v = ok_json(
        strata(cache.path())
            .args(["plan", "--format", "json", "--target", "dl-edge", "-f"])
            .arg(&cf)
            .output()
            .unwrap(),
    );
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["base", "dl-edge"]);
    assert_eq!(v["pruned"].as_array().unwrap().len(), 5);

    for (format, want) in [
        ("text", "critical path: base → dl-vscode → image"),
        ("dot", "\"base\" -> \"dl-edge\";"),
        ("mermaid", "s0 --> s2"),
    ] {
        let out = strata(cache.path())
            .args(["plan", "--format", format, "-f"])
            .arg(&cf)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{format}");
        assert!(text.contains(want), "{format}: {text}");
    }
}

#[test]
fn seed001_edits_bust_the_documented_stages() {
    let cache = tempfile::tempdir().unwrap();
    let ctx = seed001_context();
    let plan = |args: &[&str]| {
        let v = ok_json(
            strata(cache.path())
                .args(["plan", "--format", "json", "--context"])
                .arg(ctx.path())
                .args(args)
                .output()
                .unwrap(),
        );
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["cache_key"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let busted = |a: &[(String, String)], b: &[(String, String)]| -> Vec<String> {
        a.iter()
            .zip(b)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, _)| x.0.clone())
            .collect()
    };
    let before = plan(&[]);
    // "Code change → rebuild only the application layer" (and runtime, built on it).
    write(ctx.path(), "app/app.py", "print('factory v2')\n");
    let code = plan(&[]);
    assert_eq!(busted(&before, &code), ["application", "runtime"]);
    // "Dependency change → stage 2-3".
    write(
        ctx.path(),
        "app/pyproject.toml",
        "[project]\nname = \"app2\"\n",
    );
    let deps = plan(&[]);
    assert_eq!(
        busted(&code, &deps),
        ["dependencies", "application", "runtime"]
    );
    // Ignored files (tests/, *.md) bust nothing.
    write(ctx.path(), "tests/test_app.py", "def test(): assert 0\n");
    write(ctx.path(), "NOTES.md", "more\n");
    assert!(busted(&deps, &plan(&[])).is_empty());
    // "Tool update → rebuild entire stack".
    let tool = plan(&["--build-arg", "TASK_VERSION=3.36.0"]);
    assert_eq!(
        busted(&deps, &tool),
        ["base-tools", "dependencies", "application", "runtime"]
    );
    // Proxy args never bust.
    assert!(
        busted(
            &deps,
            &plan(&["--build-arg", "HTTPS_PROXY=http://proxy:3128"])
        )
        .is_empty()
    );
}

#[test]
fn warm_run_uses_the_stat_cache() {
    let cache = tempfile::tempdir().unwrap();
    let ctx = seed001_context();
    age(ctx.path());
    let run = || {
        ok_json(
            strata(cache.path())
                .args(["plan", "--format", "json", "--context"])
                .arg(ctx.path())
                .output()
                .unwrap(),
        )
    };
    let cold = run();
    assert_eq!(cold["context"]["files_hashed"], 6);
    let warm = run();
    assert_eq!(warm["context"]["files_hashed"], 0);
    assert_eq!(warm["context"]["stat_cache_hits"], 6);
    assert_eq!(cold["stages"], warm["stages"]);
    assert!(
        cache.path().join("plan").is_dir(),
        "stat cache under the strata cache dir"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compare_with_a_git_revision_explains_misses() {
    let cache = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    // The context is a subdirectory of the repository, as in seed 001 (image-factory/).
    let ctx = repo.path().join("image-factory");
    fs::create_dir_all(&ctx).unwrap();
    let src = seed001_context();
    for f in [
        "Dockerfile",
        ".dockerignore",
        "app/pyproject.toml",
        "app/app.py",
        "cdk8s/pyproject.toml",
        "cdk8s/main.py",
        "Taskfile.yaml",
        "images.yaml",
        "tests/test_app.py",
    ] {
        write(&ctx, f, &fs::read_to_string(src.path().join(f)).unwrap());
    }
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);

    let compare = |rev: &str| {
        let v = ok_json(
            strata(cache.path())
                .args(["plan", "--format", "json", "--compare", rev, "--context"])
                .arg(&ctx)
                .output()
                .unwrap(),
        );
        v["compare"]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                    s["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Clean tree: everything hits.
    assert!(compare("HEAD").iter().all(|(_, s, _)| s == "unchanged"));

    // A code edit and an ignored-file edit in the working tree.
    write(&ctx, "app/app.py", "print('changed')\n");
    write(&ctx, "tests/test_app.py", "changed\n");
    let d = compare("HEAD");
    let status: Vec<(&str, &str)> = d.iter().map(|(n, s, _)| (n.as_str(), s.as_str())).collect();
    assert_eq!(
        status,
        [
            ("base-tools", "unchanged"),
            ("dependencies", "unchanged"),
            ("application", "changed"),
            ("runtime", "changed")
        ]
    );
    assert!(
        d[2].2
            .iter()
            .any(|r| r.contains("app/app.py") && r.contains("COPY")),
        "{:?}",
        d[2].2
    );
    assert!(
        d[3].2
            .iter()
            .any(|r| r.contains("base stage `application`")),
        "{:?}",
        d[3].2
    );

    // Commit a Dockerfile edit; compare the working tree with the previous commit.
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "code"]);
    let df = fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    write(
        &ctx,
        "Dockerfile",
        &df.replace("ARG TASK_VERSION=3.35.1", "ARG TASK_VERSION=3.36.0"),
    );
    let d = compare("HEAD~1");
    assert!(d.iter().all(|(_, s, _)| s == "changed"), "{d:?}");
    assert!(
        d[0].2.iter().any(|r| r.contains("TASK_VERSION")),
        "{:?}",
        d[0].2
    );

    // Text output says hit/MISS per stage.
    let out = strata(cache.path())
        .args(["plan", "--compare", "HEAD", "--context"])
        .arg(&ctx)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("4 of 4 stages would miss the cache"),
        "{text}"
    );

    // An unknown revision is bad input.
    let out = strata(cache.path())
        .args(["plan", "--compare", "no-such-rev", "--context"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such git revision"));
}

#[test]
fn bad_input_exits_2_and_names_file_and_line() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Containerfile",
        "FROM alpine\nRUN <<EOF\necho\n",
    );
    write(dir.path(), "Graph", "FROM alpine\nCOPY only-one\n");
    write(dir.path(), "Ok", "FROM alpine AS a\n");
    let cases: &[(&[&str], &str)] = &[
        (
            &["-f", "Containerfile"],
            "Containerfile:2: unterminated heredoc",
        ),
        (
            &["-f", "Graph"],
            "Graph:2: COPY requires at least two arguments",
        ),
        (&["-f", "missing"], "cannot read missing"),
        (
            &["-f", "Ok", "--target", "x"],
            "target stage `x` could not be found",
        ),
        (&["--build-arg", "=x"], "expected NAME=value"),
        (&["--context", "nowhere"], "not a directory"),
    ];
    for (args, want) in cases {
        let out = strata(cache.path())
            .current_dir(dir.path())
            .arg("plan")
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn help_teaches_with_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["plan", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("--compare v1.2.0"),
        "{text}"
    );
}
