//! Cache keys: which edits bust which stages. Each case builds a real context directory,
//! plans it, applies one edit, plans again and compares the stage keys.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use strata_graph::context::HashOptions;
use strata_graph::plan::{Plan, PlanRequest, make_plan};
use strata_graph::stages::BuildOptions;

const DOCKERFILE: &str = "\
FROM alpine:3 AS base
RUN apk add --no-cache python3

FROM base AS deps
COPY requirements.txt /app/
RUN pip install -r /app/requirements.txt

FROM base AS assets
ARG THEME=light
RUN echo building $THEME assets
COPY assets/ /assets/

FROM scratch AS docs
COPY docs/*.txt /docs/

FROM deps AS app
COPY src/ /app/src/
RUN --mount=type=bind,from=assets,source=/assets,target=/mnt cp -r /mnt /app/assets
COPY --from=docs /docs/ /app/docs/
";

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "Dockerfile", DOCKERFILE);
    write(r, "requirements.txt", "flask==3.0\n");
    write(r, "assets/logo.svg", "<svg/>");
    write(r, "src/main.py", "print('hi')\n");
    write(r, "src/util.py", "X = 1\n");
    write(r, "docs/a.txt", "a\n");
    write(r, "docs/b.md", "b\n");
    write(r, "notes/todo.txt", "later\n");
    write(r, "src/secret.key", "k\n");
    write(r, ".dockerignore", "src/*.key\n*.md\n");
    dir
}

fn plan(root: &Path, args: &[(&str, &str)], target: Option<&str>) -> Plan {
    let req = PlanRequest {
        dockerfile: root.join("Dockerfile"),
        context: root.to_path_buf(),
        options: BuildOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            target: target.map(str::to_string),
        },
        hash: HashOptions::default(),
    };
    make_plan(&req).unwrap()
}

fn keys(p: &Plan) -> BTreeMap<String, String> {
    p.stages
        .iter()
        .map(|s| (s.name.clone(), s.cache_key.clone()))
        .collect()
}

/// The stages whose keys differ.
fn busted(a: &Plan, b: &Plan) -> Vec<String> {
    let (ka, kb) = (keys(a), keys(b));
    ka.iter()
        .filter(|(n, k)| kb.get(*n) != Some(k))
        .map(|(n, _)| n.clone())
        .collect()
}

type Edit = fn(&Path);

#[test]
fn which_edits_bust_which_stages() {
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "edit a copied source file",
            |r| write(r, "src/main.py", "print('bye')\n"),
            &["app"],
        ),
        (
            "edit requirements",
            |r| write(r, "requirements.txt", "flask==3.1\n"),
            &["app", "deps"],
        ),
        (
            "add a file under a copied dir",
            |r| write(r, "src/new.py", ""),
            &["app"],
        ),
        (
            "delete a copied file",
            |r| fs::remove_file(r.join("src/util.py")).unwrap(),
            &["app"],
        ),
        // assets is read by app through a RUN --mount from=assets.
        (
            "edit an asset",
            |r| write(r, "assets/logo.svg", "<svg></svg>"),
            &["app", "assets"],
        ),
        (
            "edit a file matched by a glob",
            |r| write(r, "docs/a.txt", "A\n"),
            &["app", "docs"],
        ),
        (
            "edit a file the glob does not match",
            |r| write(r, "docs/b.md", "B\n"),
            &[],
        ),
        (
            "edit a file nothing copies",
            |r| write(r, "notes/todo.txt", "now\n"),
            &[],
        ),
        (
            "edit an ignored file",
            |r| write(r, "src/secret.key", "other\n"),
            &[],
        ),
        (
            "mtime-only change",
            |r| {
                let f = fs::File::options()
                    .write(true)
                    .open(r.join("src/main.py"))
                    .unwrap();
                f.set_modified(SystemTime::now() - Duration::from_secs(86400))
                    .unwrap();
            },
            &[],
        ),
        (
            "mode change",
            |r| {
                fs::set_permissions(r.join("src/main.py"), fs::Permissions::from_mode(0o755))
                    .unwrap()
            },
            &["app"],
        ),
        (
            "ignore a copied file",
            |r| write(r, ".dockerignore", "src/*.key\n*.md\nsrc/util.py\n"),
            &["app"],
        ),
        (
            "rewrite the same content",
            |r| write(r, "src/main.py", "print('hi')\n"),
            &[],
        ),
        (
            "edit a RUN command",
            |r| {
                let t = DOCKERFILE.replace("pip install -r", "pip install --no-deps -r");
                write(r, "Dockerfile", &t)
            },
            &["app", "deps"],
        ),
        (
            "edit the base image tag",
            |r| {
                write(
                    r,
                    "Dockerfile",
                    &DOCKERFILE.replace("alpine:3", "alpine:3.20"),
                )
            },
            &["app", "assets", "base", "deps"],
        ),
    ];
    for (name, edit, want) in cases {
        let dir = setup();
        let before = plan(dir.path(), &[], None);
        edit(dir.path());
        let after = plan(dir.path(), &[], None);
        assert_eq!(busted(&before, &after), *want, "{name}");
    }
}

#[test]
fn symlink_target_counts() {
    let dir = setup();
    std::os::unix::fs::symlink("main.py", dir.path().join("src/link.py")).unwrap();
    let before = plan(dir.path(), &[], None);
    fs::remove_file(dir.path().join("src/link.py")).unwrap();
    std::os::unix::fs::symlink("util.py", dir.path().join("src/link.py")).unwrap();
    let after = plan(dir.path(), &[], None);
    assert_eq!(busted(&before, &after), ["app"]);
}

#[test]
fn build_args_bust_only_after_declaration_and_proxies_never() {
    let dir = setup();
    let base = plan(dir.path(), &[], None);
    // THEME is declared in `assets` only; app reads assets through a mount, so it follows.
    let themed = plan(dir.path(), &[("THEME", "dark")], None);
    assert_eq!(busted(&base, &themed), ["app", "assets"]);
    // The default value and the same value given explicitly are one key.
    let same = plan(dir.path(), &[("THEME", "light")], None);
    assert!(busted(&base, &same).is_empty());
    // Undeclared proxy args go through BuildKit's ProxyEnv, which is not in the cache key.
    for proxy in [
        "HTTP_PROXY",
        "https_proxy",
        "NO_PROXY",
        "ALL_PROXY",
        "ftp_proxy",
    ] {
        let p = plan(dir.path(), &[(proxy, "http://proxy:3128")], None);
        assert!(busted(&base, &p).is_empty(), "{proxy}");
    }
    // An arg nobody declares changes nothing and is reported.
    let p = plan(dir.path(), &[("UNUSED", "1")], None);
    assert!(busted(&base, &p).is_empty());
    assert!(p.notes.iter().any(|n| n.contains("UNUSED")));
}

#[test]
fn arg_busts_from_its_declaration_not_before() {
    let text = "FROM alpine\nRUN echo one\nARG V=1\nRUN echo two\nRUN echo three\n";
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", text);
    let a = plan(dir.path(), &[], None);
    let b = plan(dir.path(), &[("V", "2")], None);
    let (sa, sb) = (&a.stages[0].steps, &b.stages[0].steps);
    assert_eq!(
        sa[0].cache_key, sb[0].cache_key,
        "RUN before the ARG keeps its key"
    );
    assert_eq!(
        sa[1].cache_key, sb[1].cache_key,
        "the ARG itself makes no step"
    );
    assert_ne!(
        sa[2].cache_key, sb[2].cache_key,
        "the first RUN after the ARG busts"
    );
    assert_ne!(
        sa[3].cache_key, sb[3].cache_key,
        "and so does everything after it"
    );
}

#[test]
fn declared_proxy_arg_is_an_ordinary_arg() {
    // BuildKit adds a declared ARG's value to the RUN environment, proxies included.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        "FROM alpine\nARG HTTP_PROXY\nRUN wget -q http://x\n",
    );
    let a = plan(dir.path(), &[], None);
    let b = plan(dir.path(), &[("HTTP_PROXY", "http://p:1")], None);
    assert_ne!(a.stages[0].cache_key, b.stages[0].cache_key);
}

#[test]
fn copy_flags_are_in_the_key() {
    let variants = [
        "COPY src/ /app/\n",
        "COPY --chmod=755 src/ /app/\n",
        "COPY --chown=1000:1000 src/ /app/\n",
        "COPY --link src/ /app/\n",
        "COPY --exclude=*.pyc src/ /app/\n",
        "COPY src/ /srv/\n",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for v in variants {
        let dir = setup();
        write(dir.path(), "Dockerfile", &format!("FROM alpine\n{v}"));
        assert!(
            seen.insert(plan(dir.path(), &[], None).stages[0].cache_key.clone()),
            "{v}"
        );
    }
}

#[test]
fn exclude_flag_drops_files_from_the_key() {
    let dir = setup();
    write(
        dir.path(),
        "Dockerfile",
        "FROM alpine\nCOPY --exclude=util.py src/ /app/\n",
    );
    let a = plan(dir.path(), &[], None);
    write(dir.path(), "src/util.py", "X = 2\n");
    assert!(busted(&a, &plan(dir.path(), &[], None)).is_empty());
}

#[test]
fn exclude_patterns_are_relative_to_the_copied_source() {
    // BuildKit matches --exclude against paths below each copied source (fsutil's copier):
    // `*.md` with `docs/` skips docs/a.md; a context-root form `docs/a.md` would name
    // docs/docs/a.md and skips nothing; a file source is never excluded by its own name.
    for (copy, file, excluded) in [
        ("COPY --exclude=*.md docs/ /d/", "docs/a.md", true),
        ("COPY --exclude=docs/a.md docs/ /d/", "docs/a.md", false),
        ("COPY --exclude=*/*.md . /d/", "docs/a.md", true),
        ("COPY --exclude=*.md d* /d/", "docs/a.md", true),
        ("COPY --exclude=*.md docs/a.md /d/", "docs/a.md", false),
        (
            "COPY --exclude=*.md docs/ docs/a.md /d/",
            "docs/a.md",
            false,
        ),
    ] {
        let dir = setup();
        write(dir.path(), "docs/a.md", "1\n");
        write(dir.path(), ".dockerignore", "");
        write(dir.path(), "Dockerfile", &format!("FROM alpine\n{copy}\n"));
        let a = plan(dir.path(), &[], None);
        write(dir.path(), file, "2\n");
        let b = plan(dir.path(), &[], None);
        assert_eq!(busted(&a, &b).is_empty(), excluded, "{copy}");
    }
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let dir = setup();
    // Dockerfile.dockerignore replaces .dockerignore: src/secret.key is no longer ignored.
    write(dir.path(), "Dockerfile.dockerignore", "*.md\n");
    let a = plan(dir.path(), &[], None);
    write(dir.path(), "src/secret.key", "other\n");
    assert_eq!(busted(&a, &plan(dir.path(), &[], None)), ["app"]);
}

#[test]
fn target_pruning_skips_unneeded_stages_and_their_files() {
    let dir = setup();
    let p = plan(dir.path(), &[], Some("deps"));
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["base", "deps"]);
    assert_eq!(p.pruned, ["assets", "docs", "app"]);
    assert_eq!(
        p.context.files_selected, 1,
        "only requirements.txt is hashed"
    );
}

#[test]
fn stat_cache_rereads_only_changed_files() {
    let dir = setup();
    let cache = tempfile::tempdir().unwrap();
    let req = PlanRequest {
        dockerfile: dir.path().join("Dockerfile"),
        context: dir.path().to_path_buf(),
        options: BuildOptions::default(),
        hash: HashOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            threads: 4,
        },
    };
    // Files written in the same instant as a scan are not trusted (racy-clean rule): age them.
    let old = SystemTime::now() - Duration::from_secs(60);
    for f in [
        "requirements.txt",
        "assets/logo.svg",
        "src/main.py",
        "src/util.py",
        "docs/a.txt",
    ] {
        let file = fs::File::options()
            .write(true)
            .open(dir.path().join(f))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let first = make_plan(&req).unwrap();
    assert_eq!(first.context.files_hashed, 5);
    assert_eq!(first.context.stat_cache_hits, 0);
    let second = make_plan(&req).unwrap();
    assert_eq!(second.context.files_hashed, 0);
    assert_eq!(second.context.stat_cache_hits, 5);
    assert_eq!(keys(&first), keys(&second));
    write(dir.path(), "src/main.py", "print('changed')\n");
    let third = make_plan(&req).unwrap();
    assert_eq!(third.context.files_hashed, 1);
    assert_eq!(busted(&second, &third), ["app"]);
    // A stale cache entry (same stat, other digest) cannot survive a content change, because
    // the write changed mtime/ctime; the keys agree with a cache-less run.
    let uncached = plan(dir.path(), &[], None);
    assert_eq!(keys(&third), keys(&uncached));
}

#[test]
fn directories_count_by_presence_not_mode() {
    // BuildKit (checked in crates/strata/tests/buildkit_agreement.rs): a new empty directory
    // under a copied directory busts the COPY; a directory's mode does not.
    let dir = setup();
    let a = plan(dir.path(), &[], None);
    fs::create_dir(dir.path().join("src/empty")).unwrap();
    let b = plan(dir.path(), &[], None);
    assert_eq!(busted(&a, &b), ["app"]);
    fs::set_permissions(
        dir.path().join("src/empty"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    assert!(busted(&b, &plan(dir.path(), &[], None)).is_empty());
    // A directory no COPY selects changes nothing.
    fs::create_dir(dir.path().join("notes/more")).unwrap();
    assert!(busted(&b, &plan(dir.path(), &[], None)).is_empty());
}

#[test]
fn ignore_depth_shortcut_agrees_with_full_matching() {
    use strata_dockerfile::dockerignore::{Matcher, parse};
    use strata_graph::context::{IgnoreRules, hash_context};
    let dir = setup();
    let r = dir.path();
    write(r, "a/b/c.txt", "1");
    write(r, "a/x.log", "2");
    write(r, "top.log", "3");
    write(r, "a/b/deep.log", "4");
    let sources = vec![".".to_string()];
    for text in [
        "*.log\n",
        "*/*.log\n",
        "a/b\n",
        "**/*.log\n",
        "a\n!a/x.log\n",
        "/top.log\n./a/b/c.txt\n",
        "a/*/deep.log\n",
        "[a]/x.log\n",
    ] {
        let patterns = parse(text);
        let matcher = Matcher::new(&patterns).unwrap();
        let full = hash_context(
            r,
            &IgnoreRules::from_matcher(matcher.clone()),
            &sources,
            &HashOptions::default(),
        )
        .unwrap();
        let fast = hash_context(
            r,
            &IgnoreRules::new(matcher, &patterns),
            &sources,
            &HashOptions::default(),
        )
        .unwrap();
        assert_eq!(full.0, fast.0, "patterns {text:?}");
        assert_eq!(full.1, fast.1, "patterns {text:?}");
    }
}

#[test]
fn a_corrupt_stat_cache_is_ignored_and_rewritten() {
    let dir = setup();
    let cache = tempfile::tempdir().unwrap();
    let req = PlanRequest {
        dockerfile: dir.path().join("Dockerfile"),
        context: dir.path().to_path_buf(),
        options: BuildOptions::default(),
        hash: HashOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            threads: 2,
        },
    };
    let old = SystemTime::now() - Duration::from_secs(60);
    for f in [
        "requirements.txt",
        "assets/logo.svg",
        "src/main.py",
        "src/util.py",
        "docs/a.txt",
    ] {
        let file = fs::File::options()
            .write(true)
            .open(dir.path().join(f))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    let first = make_plan(&req).unwrap();
    let path = strata_graph::context::stat_cache_path(cache.path(), dir.path());
    let good = fs::read(&path).unwrap();
    for bad in [
        b"garbage".to_vec(),
        good[..good.len() - 7].to_vec(),
        [&good[..20], &u64::MAX.to_le_bytes()[..], &good[28..]].concat(),
    ] {
        fs::write(&path, &bad).unwrap();
        let p = make_plan(&req).unwrap();
        assert_eq!(p.context.stat_cache_hits, 0);
        assert_eq!(keys(&p), keys(&first));
        assert_eq!(fs::read(&path).unwrap(), good, "rewritten as before");
    }
}
