//! `strata plan`'s offline cache prediction against real BuildKit.
//!
//! For a table of edits (file contents, ignored files, mtimes, modes, owners, globs,
//! directories, bind mounts, `.dockerignore` re-includes, build args, proxy args, `ENV` and
//! `RUN` lines, stages read with `COPY --from`), a multi-stage Dockerfile is built with
//! BuildKit (`docker build --progress=plain`) before and after the edit; every stage whose
//! steps all print `CACHED` is a hit, any other a miss. `strata plan --format json` is run on
//! the same context before and after (with a shared stat cache), and a stage whose `cache_key`
//! changed is a predicted miss. The two must agree for every case, except where the case
//! documents a known difference (and then the difference must be exactly the documented one, so
//! a change on either side is noticed).
//!
//! Needs a Docker engine (`STRATA_DOCKER_HOST`, set by `scripts/test.sh` from
//! `scripts/start-dockerd.sh`), Debian's client `/usr/bin/docker` (BuildKit built in) and a
//! static busybox (`/bin/busybox`, from `busybox-static`): base images cannot be pulled, so
//! the base stage is `FROM scratch` + busybox. Without them the test prints SKIP, or fails when
//! `STRATA_TEST_REQUIRE_ALL=1`.
//!
//! The base stage copies a per-run nonce, so no state of this run can hit cache entries left
//! by an earlier run; within a run every edited state is distinct, and each `RUN` that feeds
//! another stage appends a random uuid to its output, so a re-run stage always changes what
//! its dependants copy (BuildKit's content-based cut-off is exercised by one case only).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;

const DOCKER: &str = "/usr/bin/docker";
const BUSYBOX: &str = "/bin/busybox";

const DOCKERFILE: &str = r#"FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
COPY nonce /nonce

FROM base AS lib
COPY src/a.txt /lib/a.txt
RUN cat /lib/a.txt /proc/sys/kernel/random/uuid > /lib/out

FROM base AS gen
RUN echo generated > /gen

FROM base AS tree
COPY src /tree/
RUN ls -R /tree > /treelist && cat /proc/sys/kernel/random/uuid >> /treelist

FROM base AS mnt
ENV MODE=one
RUN --mount=type=bind,source=src/sub,target=/m ls -R /m > /mnt.out && cat /proc/sys/kernel/random/uuid >> /mnt.out

FROM base AS app
ARG USED=1
ARG UNUSED=1
RUN echo "$USED" > /used && cat /proc/sys/kernel/random/uuid >> /used
COPY src/*.txt /app/
COPY --from=lib /lib/out /app/lib
COPY --from=gen /gen /app/gen
RUN ls /app > /list && cat /proc/sys/kernel/random/uuid >> /list

FROM base AS final
COPY --from=app /list /list
COPY --from=tree /treelist /treelist
COPY --from=mnt /mnt.out /mnt.out
RUN cat /list /treelist /mnt.out > /all
"#;

const STAGES: [&str; 7] = ["base", "lib", "gen", "tree", "mnt", "app", "final"];

/// Prints SKIP and returns `None`, or panics under `STRATA_TEST_REQUIRE_ALL=1`.
fn missing(what: &str) -> Option<String> {
    if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("prerequisite missing: {what} (STRATA_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("SKIP buildkit_agreement: {what}");
    None
}

/// The DOCKER_HOST of a working engine, if there is one.
fn docker_host() -> Option<String> {
    let Ok(host) = std::env::var("STRATA_DOCKER_HOST") else {
        return missing("STRATA_DOCKER_HOST is not set (run scripts/start-dockerd.sh)");
    };
    if !Path::new(DOCKER).is_file() {
        return missing("/usr/bin/docker (Debian's docker.io client) is missing");
    }
    if !Path::new(BUSYBOX).is_file() {
        return missing("/bin/busybox (busybox-static) is missing");
    }
    let ok = Command::new(DOCKER)
        .arg("version")
        .env("DOCKER_HOST", &host)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return missing(&format!("no Docker engine answers at {host}"));
    }
    Some(host)
}

/// One build's verdict per stage: `true` for a hit (every step `CACHED`).
type Verdicts = BTreeMap<String, bool>;

/// Which stages BuildKit served entirely from its cache, from `--progress=plain` output.
fn parse_progress(out: &str) -> Verdicts {
    let mut stage_of: BTreeMap<String, String> = BTreeMap::new();
    let mut cached: BTreeSet<String> = BTreeSet::new();
    for line in out.lines() {
        let Some((id, rest)) = line.split_once(' ') else {
            continue;
        };
        if !id.starts_with('#') {
            continue;
        }
        if rest.trim() == "CACHED" {
            cached.insert(id.to_string());
        } else if let Some(label) = rest.strip_prefix('[')
            && let Some((head, _)) = label.split_once(']')
            && let Some((stage, pos)) = head.split_once(' ')
            && pos.contains('/')
        {
            stage_of.insert(id.to_string(), stage.to_string());
        }
    }
    let mut v = Verdicts::new();
    for (id, stage) in stage_of {
        let hit = cached.contains(&id);
        let e = v.entry(stage).or_insert(true);
        *e = *e && hit;
    }
    v
}

struct Fixture {
    host: String,
    ctx: PathBuf,
    cache: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn build(&self, build_args: &[&str]) -> Verdicts {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "--network=host", "--progress=plain"]);
        for a in build_args {
            cmd.args(["--build-arg", a]);
        }
        cmd.arg("-f")
            .arg(self.ctx.join("Dockerfile"))
            .arg(&self.ctx);
        let out = cmd.output().expect("running docker build");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker build failed:\n{text}");
        let v = parse_progress(&text);
        for s in STAGES {
            assert!(
                v.contains_key(s),
                "stage {s} missing from BuildKit's progress:\n{text}"
            );
        }
        v
    }

    fn plan(&self, build_args: &[&str]) -> BTreeMap<String, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.env("STRATA_CACHE_DIR", &self.cache)
            .env_remove("STRATA_LOG")
            .args(["plan", "--format", "json", "-f"])
            .arg(self.ctx.join("Dockerfile"))
            .arg("--context")
            .arg(&self.ctx);
        for a in build_args {
            cmd.args(["--build-arg", a]);
        }
        let out = cmd.output().expect("running strata plan");
        assert!(
            out.status.success(),
            "strata plan failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
        v["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["cache_key"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ctx.join(rel)
    }
}

fn write_old(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    let old = SystemTime::now() - Duration::from_secs(120);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

/// A fresh nonce for the base stage: every later state is new to BuildKit's cache.
fn write_nonce(ctx: &Path) {
    let nonce = format!(
        "{}-{}\n",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    write_old(&ctx.join("nonce"), &nonce);
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn edit_dockerfile(f: &Fixture, from: &str, to: &str) {
    let p = f.path("Dockerfile");
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "Dockerfile has no `{from}`");
    fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

/// One row of the table.
struct Case {
    name: &'static str,
    /// Build args of the "after" build (the "before" build has none).
    args: &'static [&'static str],
    edit: fn(&Fixture),
    undo: fn(&Fixture),
    /// Stages BuildKit re-runs (all others hit).
    misses: &'static [&'static str],
    /// Stages where strata is known to differ from BuildKit, with why.
    known_difference: Option<(&'static [&'static str], &'static str)>,
}

fn nothing(_: &Fixture) {}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no edit",
            args: &[],
            edit: nothing,
            undo: nothing,
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "edit a copied file",
            args: &[],
            edit: |f| write_old(&f.path("src/a.txt"), "a edited\n"),
            undo: |f| write_old(&f.path("src/a.txt"), "a\n"),
            misses: &["lib", "tree", "app", "final"],
            known_difference: None,
        },
        Case {
            name: "edit an ignored file",
            args: &[],
            edit: |f| write_old(&f.path("src/notes.ignored"), "changed\n"),
            undo: |f| write_old(&f.path("src/notes.ignored"), "notes\n"),
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "touch a copied file (mtime only)",
            args: &[],
            edit: |f| {
                fs::File::options()
                    .write(true)
                    .open(f.path("src/b.txt"))
                    .unwrap()
                    .set_modified(SystemTime::now() - Duration::from_secs(30))
                    .unwrap()
            },
            undo: nothing,
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "chmod a copied file",
            args: &[],
            edit: |f| chmod(&f.path("src/b.txt"), 0o755),
            undo: |f| chmod(&f.path("src/b.txt"), 0o644),
            misses: &["tree", "app", "final"],
            known_difference: None,
        },
        Case {
            // Only root can chown; elsewhere the case degenerates to "no edit".
            name: "chown a copied file",
            args: &[],
            edit: |f| {
                let _ = std::os::unix::fs::chown(f.path("src/b.txt"), Some(1234), Some(1234));
            },
            undo: |f| {
                let _ = std::os::unix::fs::chown(f.path("src/b.txt"), Some(0), Some(0));
            },
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "add a file a COPY glob matches",
            args: &[],
            edit: |f| write_old(&f.path("src/c.txt"), "c\n"),
            undo: |f| fs::remove_file(f.path("src/c.txt")).unwrap(),
            misses: &["tree", "app", "final"],
            known_difference: None,
        },
        Case {
            name: "add a file only a directory COPY selects",
            args: &[],
            edit: |f| write_old(&f.path("src/c.md"), "c\n"),
            undo: |f| fs::remove_file(f.path("src/c.md")).unwrap(),
            misses: &["tree", "final"],
            known_difference: None,
        },
        Case {
            name: "add an empty directory under a copied directory",
            args: &[],
            edit: |f| fs::create_dir(f.path("src/empty")).unwrap(),
            undo: |f| fs::remove_dir(f.path("src/empty")).unwrap(),
            misses: &["tree", "final"],
            known_difference: None,
        },
        Case {
            name: "chmod a copied directory",
            args: &[],
            edit: |f| chmod(&f.path("src/sub"), 0o700),
            undo: |f| chmod(&f.path("src/sub"), 0o755),
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "replace a copied file by a symlink",
            args: &[],
            edit: |f| {
                fs::remove_file(f.path("src/sub/d.txt")).unwrap();
                std::os::unix::fs::symlink("../a.txt", f.path("src/sub/d.txt")).unwrap();
            },
            undo: |f| {
                fs::remove_file(f.path("src/sub/d.txt")).unwrap();
                write_old(&f.path("src/sub/d.txt"), "d\n");
            },
            misses: &["tree", "mnt", "final"],
            known_difference: None,
        },
        Case {
            name: "add a file under a bind-mounted directory",
            args: &[],
            edit: |f| write_old(&f.path("src/sub/e.txt"), "e\n"),
            undo: |f| fs::remove_file(f.path("src/sub/e.txt")).unwrap(),
            misses: &["tree", "mnt", "final"],
            known_difference: None,
        },
        Case {
            name: "re-include an ignored file with a ! pattern",
            args: &[],
            edit: |f| {
                write_old(
                    &f.path(".dockerignore"),
                    "**/*.ignored\n!src/notes.ignored\n",
                )
            },
            undo: |f| write_old(&f.path(".dockerignore"), "**/*.ignored\n"),
            misses: &["tree", "final"],
            known_difference: None,
        },
        Case {
            name: "edit an ENV line",
            args: &[],
            edit: |f| edit_dockerfile(f, "ENV MODE=one", "ENV MODE=two"),
            undo: |f| edit_dockerfile(f, "ENV MODE=two", "ENV MODE=one"),
            misses: &["mnt", "final"],
            known_difference: None,
        },
        Case {
            name: "change an ARG used after its declaration",
            args: &["USED=2"],
            edit: nothing,
            undo: nothing,
            misses: &["app", "final"],
            known_difference: None,
        },
        Case {
            name: "change an ARG declared but never used",
            args: &["UNUSED=2"],
            edit: nothing,
            undo: nothing,
            misses: &["app", "final"],
            known_difference: None,
        },
        Case {
            name: "pass a build arg nothing declares",
            args: &["NOT_DECLARED=2"],
            edit: nothing,
            undo: nothing,
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "change a proxy build arg",
            args: &["HTTP_PROXY=http://127.0.0.1:9", "no_proxy=example.invalid"],
            edit: nothing,
            undo: nothing,
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "edit a comment in the Dockerfile",
            args: &[],
            edit: |f| edit_dockerfile(f, "FROM base AS gen\n", "FROM base AS gen\n# a comment\n"),
            undo: |f| edit_dockerfile(f, "FROM base AS gen\n# a comment\n", "FROM base AS gen\n"),
            misses: &[],
            known_difference: None,
        },
        Case {
            name: "edit a RUN line",
            args: &[],
            edit: |f| edit_dockerfile(f, "/lib/out\n", "/lib/out && true\n"),
            undo: |f| edit_dockerfile(f, "/lib/out && true\n", "/lib/out\n"),
            misses: &["lib", "app", "final"],
            known_difference: None,
        },
        Case {
            name: "edit a stage others COPY --from (its output changes)",
            args: &[],
            edit: |f| edit_dockerfile(f, "echo generated >", "echo generated again >"),
            undo: |f| edit_dockerfile(f, "echo generated again >", "echo generated >"),
            misses: &["gen", "app", "final"],
            known_difference: None,
        },
        Case {
            name: "edit a stage others COPY --from (its output stays the same)",
            args: &[],
            edit: |f| edit_dockerfile(f, "echo generated >", "echo 'generated' >"),
            undo: |f| edit_dockerfile(f, "echo 'generated' >", "echo generated >"),
            misses: &["gen"],
            known_difference: Some((
                &["app", "final"],
                "BuildKit keys COPY --from by the content it copies, known only after the \
                 source stage ran; strata keys it by the source stage's key",
            )),
        },
    ]
}

#[test]
fn plan_predicts_buildkit_cache_hits() {
    let Some(host) = docker_host() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("src/sub")).unwrap();
    fs::copy(BUSYBOX, ctx.join("busybox")).unwrap();
    write_nonce(&ctx);
    write_old(&ctx.join("Dockerfile"), DOCKERFILE);
    write_old(&ctx.join(".dockerignore"), "**/*.ignored\n");
    write_old(&ctx.join("src/a.txt"), "a\n");
    write_old(&ctx.join("src/b.txt"), "b\n");
    write_old(&ctx.join("src/sub/d.txt"), "d\n");
    write_old(&ctx.join("src/notes.ignored"), "notes\n");
    for p in ["src/a.txt", "src/b.txt", "src/sub/d.txt"] {
        chmod(&ctx.join(p), 0o644);
    }
    chmod(&ctx.join("src/sub"), 0o755);
    let f = Fixture {
        host,
        cache: tmp.path().join("cache"),
        ctx,
        _tmp: tmp,
    };

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        let mut attempt = 0;
        let (before, after, bk) = loop {
            // Re-establish the pristine state in BuildKit's cache right before each edit:
            // other tests share the engine and may prune its cache at any time.
            f.build(&[]);
            let before = f.plan(&[]);
            (case.edit)(&f);
            let after = f.plan(case.args);
            let bk = f.build(case.args);
            (case.undo)(&f);
            // No case touches the base stage: if BuildKit re-ran it, its cache was pruned
            // between the two builds. Retry once from a new nonce (the edited state may now
            // be cached, so the same nonce would not do).
            if bk["base"] || attempt == 1 {
                break (before, after, bk);
            }
            eprintln!(
                "{}: BuildKit's cache was pruned meanwhile; retrying",
                case.name
            );
            attempt += 1;
            write_nonce(&f.ctx);
        };

        let mut row = Vec::new();
        for s in STAGES {
            let strata_miss = before.get(s) != after.get(s);
            let buildkit_miss = !bk[s];
            let expected_miss = case.misses.contains(&s);
            let known = case.known_difference.is_some_and(|(st, _)| st.contains(&s));
            row.push(format!(
                "{s}:{}{}",
                if buildkit_miss { "miss" } else { "hit" },
                if strata_miss == buildkit_miss {
                    ""
                } else {
                    "(strata differs)"
                }
            ));
            if buildkit_miss != expected_miss {
                failures.push(format!(
                    "{}: stage {s}: BuildKit {} but the table expects {}",
                    case.name,
                    if buildkit_miss { "missed" } else { "hit" },
                    if expected_miss { "a miss" } else { "a hit" },
                ));
            }
            if (strata_miss != buildkit_miss) != known {
                failures.push(format!(
                    "{}: stage {s}: strata predicts {}, BuildKit {}{}",
                    case.name,
                    if strata_miss { "a miss" } else { "a hit" },
                    if buildkit_miss { "missed" } else { "hit" },
                    if known {
                        " (a documented difference that no longer holds)"
                    } else {
                        ""
                    },
                ));
            }
        }
        report.push(format!("{:<58} {}", case.name, row.join(" ")));
        if let Some((_, why)) = case.known_difference {
            report.push(format!("{:<58} known difference: {why}", ""));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
