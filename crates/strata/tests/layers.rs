//! `strata build`, `strata report` and `strata gc` end to end with real engines and a real
//! registry: the Docker engine from scripts/start-dockerd.sh ($STRATA_DOCKER_HOST), buildah
//! and podman (vfs storage, chroot isolation), Debian's docker-registry on loopback.
//! Missing prerequisites print SKIP, or fail under STRATA_TEST_REQUIRE_ALL=1.

use std::path::Path;
use std::process::{Command, Output};

use strata_registry::testing::{TestRegistry, missing, push_image};

fn strata(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(dir)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("GITHUB_OUTPUT")
        .output()
        .expect("run strata")
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

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A three-image project FROM scratch with a static busybox; `nonce` makes its keys unique.
fn project(registry: &str, extra_build: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::copy("/bin/busybox", p.join("busybox")).unwrap();
    write(
        p,
        "strata.toml",
        &format!(
            r#"registry = "{registry}"
[build]
network = "host"
{extra_build}
[image.base]
file = "Dockerfile.base"
tags = ["{{registry}}:base-{{short_sha}}", "{{registry}}:base-stable"]
[image.tooling]
file = "Dockerfile.tooling"
from = "base"
tags = ["{{registry}}:tooling-{{short_sha}}", "{{registry}}:tooling-stable"]
[image.app]
file = "Dockerfile"
from = "tooling"
from-arg = "TOOLING_IMAGE"
tags = ["{{registry}}:app-{{short_sha}}", "{{registry}}:latest"]
[retention]
keep = [{{ tags = "app-*", newest = 1 }}]
protect = ["*-stable", "latest"]
"#
        ),
    );
    write(
        p,
        "Dockerfile.base",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY nonce /etc/nonce\n",
    );
    write(p, "nonce", &nonce);
    write(
        p,
        "Dockerfile.tooling",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tools/ /opt/tools/\nRUN cat /etc/nonce > /opt/tools/seen\n",
    );
    write(p, "tools/t.sh", "echo tool\n");
    write(
        p,
        "Dockerfile",
        "ARG TOOLING_IMAGE\nFROM ${TOOLING_IMAGE}\nCOPY src/ /app/\nRUN test -f /opt/tools/seen && cat /app/main.txt\n",
    );
    write(p, "src/main.txt", "v1\n");
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "one"]);
    d
}

fn record(dir: &Path, out: &str) -> serde_json::Value {
    let _ = dir;
    serde_json::from_str(out.lines().last().unwrap()).expect("record JSON")
}

fn statuses(r: &serde_json::Value) -> Vec<(String, String)> {
    r["images"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["status"].as_str().unwrap().to_string()))
        .collect()
}

fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The Docker tests share one engine, and one of them prunes its builder cache under the
/// others; Debian's dockerd 20.10 was seen to crash (a nil dereference in BuildKit's cache
/// manager, pulling cache from a registry) while they ran in parallel: they run one at a time.
static ONE_DOCKER_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The engine's DOCKER_HOST, and the turn of this test on it; `None` (SKIP, or a failure
/// under STRATA_TEST_REQUIRE_ALL=1) when there is no engine.
fn docker_host() -> Option<(String, std::sync::MutexGuard<'static, ()>)> {
    let host = std::env::var("STRATA_DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        missing(
            "STRATA_DOCKER_HOST is not set (scripts/start-dockerd.sh; scripts/test.sh sets it)",
        );
        return None;
    };
    if !Path::new("/usr/bin/docker").exists() || !Path::new("/bin/busybox").exists() {
        missing(
            "/usr/bin/docker or /bin/busybox missing (apt-get install docker.io busybox-static)",
        );
        return None;
    }
    let turn = ONE_DOCKER_TEST.lock().unwrap_or_else(|e| e.into_inner());
    Some((host, turn))
}

/// Removes every local image a build record names (local reference, key tag, tags): the
/// engine then looks like a fresh CI runner's, as far as this project goes.
fn forget_images(host: &str, repo: &str, r: &serde_json::Value) {
    for (name, i) in r["images"].as_object().unwrap() {
        let key = i["input_key"].as_str().unwrap();
        let short = &key["sha256:".len().."sha256:".len() + 24];
        Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", host)
            .args(["rmi", "-f", &format!("strata-local/{name}:{short}")])
            .args([format!("{repo}:sk-{short}")])
            .args(
                i["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap()),
            )
            .output()
            .unwrap();
    }
}

#[test]
fn docker_build_reuse_tags_push_report_and_gc() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-test", reg.host);
    let d = project(&repo, "");
    let p = d.path();
    let env = [("DOCKER_HOST", host.as_str())];

    // 1. Everything is built, in order, and pushed with key tags.
    let out = ok(&strata(
        p,
        &["build", "--all", "--push", "--json", "--jobs", "2"],
        &env,
    ));
    let r = record(p, &out);
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    assert!(r["success"].as_bool().unwrap());
    let base = &r["images"]["base"];
    let tooling = &r["images"]["tooling"];
    assert!(base["end_ms"].as_u64().unwrap() <= tooling["start_ms"].as_u64().unwrap());
    assert!(base["size"].as_u64().unwrap() > 500_000);
    assert!(base["layers"].as_u64().unwrap() >= 2);
    assert!(
        r["images"]["app"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let client = reg.client("layers-test");
    let tags = client.list_tags().unwrap();
    for t in ["base-stable", "tooling-stable", "latest"] {
        assert!(tags.iter().any(|x| x == t), "{t} in {tags:?}");
    }
    let key = r["images"]["app"]["input_key"].as_str().unwrap();
    let sk = format!("sk-{}", &key["sha256:".len().."sha256:".len() + 24]);
    assert!(tags.contains(&sk), "{sk} in {tags:?}");

    // 2. Same inputs: everything reused locally.
    let r = record(p, &ok(&strata(p, &["build", "--all", "--json"], &env)));
    assert_eq!(
        statuses(&r),
        s(&[("app", "reused"), ("base", "reused"), ("tooling", "reused")])
    );
    assert_eq!(r["images"]["app"]["reused_from"], "local");

    // 2b. --rebuild builds the named image although an image has its key; its prerequisite
    // is reused, and the image built on it outside the run is named as left on the old one.
    let o = strata(p, &["build", "--rebuild", "tooling", "--json"], &env);
    let r = record(p, &ok(&o));
    assert_eq!(statuses(&r), s(&[("base", "reused"), ("tooling", "built")]));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("rebuilding tooling whatever exists with their input keys")
            && log.contains("note: app stay on the images they were built on"),
        "{log}"
    );

    // 3. An app change: only app is affected and built; prerequisites are reused.
    write(p, "src/main.txt", "v2\n");
    git(p, &["commit", "-qam", "two"]);
    let o = strata(p, &["build", "--base", "HEAD~1", "--json"], &env);
    let r = record(p, &ok(&o));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "reused")])
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("[app] "),
        "prefixed logs"
    );
    assert_eq!(r["images"]["app"]["tags"].as_array().unwrap().len(), 2);
    assert_eq!(r["images"]["base"]["tags"].as_array().unwrap().len(), 0);

    // 4. A failing build applies no tags and exits 1.
    write(p, "src/main.txt", "v3\n");
    write(
        p,
        "Dockerfile",
        "ARG TOOLING_IMAGE\nFROM ${TOOLING_IMAGE}\nCOPY src/ /app/\nRUN false\n",
    );
    git(p, &["commit", "-qam", "three"]);
    let o = strata(p, &["build", "--all", "--json"], &env);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = record(p, &String::from_utf8_lossy(&o.stdout));
    assert_eq!(r["success"], false);
    assert_eq!(r["images"]["app"]["status"], "failed");
    assert!(r["images"]["base"]["tags"].as_array().unwrap().is_empty());
    let sha = String::from_utf8_lossy(
        &Command::new("git")
            .arg("-C")
            .arg(p)
            .args(["rev-parse", "--short=7", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let inspect = Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", &host)
        .args(["image", "inspect", &format!("{repo}:base-{sha}")])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "base must not be tagged after a failed run"
    );

    // 5. Records, report with a timeline.
    let html = p.join("report.html");
    let out = ok(&strata(
        p,
        &["report", "--html", html.to_str().unwrap()],
        &env,
    ));
    assert!(
        out.contains("run(s)") && out.contains("reuse (cache hit) rate"),
        "{out}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("app"));

    // 6. gc: dry run explains, --apply deletes only unprotected, unshared digests.
    let out = ok(&strata(p, &["gc", "--registry", &repo], &env));
    assert!(
        out.contains("protected by \"latest\"") && out.contains("would delete 0 tag(s)"),
        "{out}"
    );
    let before = client.list_tags().unwrap();
    ok(&strata(p, &["gc", "--registry", &repo, "--apply"], &env));
    let after = client.list_tags().unwrap();
    assert_eq!(
        before, after,
        "the only app-* tag shares its digest with `latest`: nothing goes"
    );
}

/// A tag of `reference` in `client`'s repository, pointing to the same manifest (the same
/// bytes, so the same digest), as `strata build --push` does with key tags.
fn also_tag(client: &strata_registry::Registry, reference: &str, tag: &str) -> String {
    let m = client.get_manifest(reference).unwrap().expect("manifest");
    client.put_manifest(tag, &m.media_type, &m.body).unwrap()
}

/// `strata gc` deleting for real: two `strata build --push` runs (the app's first image
/// superseded by the second, each with the key tag `sk-<key>` that build pushes beside its
/// tags) and synthetic images (an expired pr tag with a key tag, a fresh one, an expired one
/// sharing its manifest with a tag no rule decides, and a manifest left with only a key tag).
/// The dry run changes nothing and says what would go and why; `--apply --format json`
/// deletes exactly the superseded app image and the expired pr image, their key tags with
/// them, and nothing protected, kept or shared.
#[test]
fn docker_gc_apply_deletes_superseded_images_with_their_key_tags() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-gc", reg.host);
    let d = project(&repo, "");
    let p = d.path();
    let config = std::fs::read_to_string(p.join("strata.toml")).unwrap();
    let config = config.replace(
        r#"keep = [{ tags = "app-*", newest = 1 }]"#,
        r#"keep = [{ tags = "app-*", newest = 1 }, { tags = "pr-*", max-age = "7d" }]"#,
    );
    assert!(config.contains(r#"tags = "pr-*""#), "{config}");
    write(p, "strata.toml", &config);
    git(p, &["commit", "-qam", "retention for pr tags"]);
    let env = [("DOCKER_HOST", host.as_str())];
    let client = reg.client("layers-gc");
    let tag_of = |r: &serde_json::Value, image: &str, prefix: &str| -> String {
        r["images"][image]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().rsplit(':').next().unwrap().to_string())
            .find(|t| t.starts_with(prefix))
            .unwrap_or_else(|| panic!("a {prefix} tag of {image} in {r}"))
    };
    let key_tag_of = |r: &serde_json::Value, image: &str| -> String {
        let key = r["images"][image]["input_key"].as_str().unwrap();
        format!("sk-{}", &key["sha256:".len().."sha256:".len() + 24])
    };

    // Two pushed runs: the second builds only the changed app (base and tooling reused).
    let r1 = record(
        p,
        &ok(&strata(p, &["build", "--all", "--push", "--json"], &env)),
    );
    // Creation times are compared in whole seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(p, "src/main.txt", "v2\n");
    git(p, &["commit", "-qam", "app v2"]);
    let r2 = record(
        p,
        &ok(&strata(
            p,
            &["build", "--base", "HEAD~1", "--push", "--json"],
            &env,
        )),
    );
    assert_eq!(
        statuses(&r2),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "reused")])
    );
    let app1 = tag_of(&r1, "app", "app-");
    let app2 = tag_of(&r2, "app", "app-");
    let (sk_app1, sk_app2) = (key_tag_of(&r1, "app"), key_tag_of(&r2, "app"));
    let (sk_base, sk_tooling) = (key_tag_of(&r1, "base"), key_tag_of(&r1, "tooling"));
    let digest = |t: &str| {
        client
            .head_manifest(t)
            .unwrap()
            .unwrap_or_else(|| panic!("{t}"))
    };
    assert_eq!(
        digest(&app1),
        digest(&sk_app1),
        "build pushes the key tag beside the tags"
    );
    assert_eq!(digest(&app2), digest("latest"));
    assert_eq!(digest(&app2), digest(&sk_app2));
    assert_ne!(digest(&app1), digest(&app2));

    // Synthetic images, tagged the way build tags its images (a tag plus a key tag).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh = strata_layers::template::format_rfc3339(now - 3600);
    let old = "2020-01-01T00:00:00Z";
    let sk_pr1 = "sk-0000000000000000000000a1";
    let sk_pr2 = "sk-0000000000000000000000a2";
    let sk_orphan = "sk-0000000000000000000000b0";
    let pr1 = push_image(&client, "pr-1-old", "pr one", old, &[]);
    assert_eq!(also_tag(&client, "pr-1-old", sk_pr1), pr1);
    push_image(&client, "pr-2-new", "pr two", &fresh, &[]);
    also_tag(&client, "pr-2-new", sk_pr2);
    push_image(&client, "pr-3-shared", "pr three", old, &[]);
    also_tag(&client, "pr-3-shared", "release-3");
    push_image(&client, sk_orphan, "only a key tag", old, &[]);

    let before = client.list_tags().unwrap();
    let digests_before: Vec<(String, String)> =
        before.iter().map(|t| (t.clone(), digest(t))).collect();
    let gone_tags = [app1.as_str(), sk_app1.as_str(), "pr-1-old", sk_pr1];
    let gone_digests = {
        let mut v = vec![digest(&app1), pr1.clone()];
        v.sort();
        v
    };

    // Dry run: nothing goes; the output names each tag that would go and why.
    let out = ok(&strata(p, &["gc", "--registry", &repo], &env));
    let line = |tag: &str| -> String {
        out.lines()
            .find(|l| l.split_whitespace().any(|w| w == tag))
            .unwrap_or_else(|| panic!("a line for {tag} in:\n{out}"))
            .to_string()
    };
    let sk_app1_why =
        format!("key tag: goes with its digest (every other tag of it goes: \"{app1}\")");
    for (tag, why) in [
        (
            app1.as_str(),
            "number 2 of 2 by creation time, keeps the newest 1",
        ),
        (sk_app1.as_str(), sk_app1_why.as_str()),
        ("pr-1-old", "older than 1w"),
        (sk_pr1, "key tag: goes with its digest"),
    ] {
        let l = line(tag);
        assert!(l.trim_start().starts_with("would delete"), "{l}");
        assert!(l.contains(why), "{tag}: {why}\n{l}");
    }
    for (tag, why) in [
        (app2.as_str(), "number 1 of 2 by creation time"),
        (sk_app2.as_str(), "key tag: stays with its digest"),
        ("latest", "protected by \"latest\""),
        (sk_base.as_str(), "key tag: stays with its digest"),
        (sk_tooling.as_str(), "key tag: stays with its digest"),
        ("pr-2-new", "within 1w"),
        (
            sk_pr2,
            "key tag: stays with its digest, which \"pr-2-new\" keeps",
        ),
        (
            "pr-3-shared",
            "but kept: its digest is also tagged \"release-3\"",
        ),
        (sk_orphan, "only key tags point to this digest"),
    ] {
        let l = line(tag);
        assert!(l.trim_start().starts_with("keep"), "{l}");
        assert!(l.contains(why), "{tag}: {why}\n{l}");
    }
    assert!(
        out.contains("would delete 4 tag(s) in 2 manifest(s) (dry run: pass --apply to delete)"),
        "{out}"
    );
    assert_eq!(
        client.list_tags().unwrap(),
        before,
        "a dry run deletes nothing"
    );
    for (t, dg) in &digests_before {
        assert_eq!(&digest(t), dg, "{t} unchanged by the dry run");
    }

    // Apply: exactly the two manifests go, with every tag of theirs.
    let out = ok(&strata(
        p,
        &["gc", "--registry", &repo, "--apply", "--format", "json"],
        &env,
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("gc JSON");
    assert_eq!(v["applied"], true);
    assert_eq!(v["registry"], repo.as_str());
    assert_eq!(v["failed"], serde_json::json!([]));
    assert_eq!(v["delete_digests"], serde_json::json!(gone_digests));
    assert_eq!(v["deleted"], serde_json::json!(gone_digests));
    let mut said_deleted: Vec<&str> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["delete"] == true)
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    said_deleted.sort();
    let mut want = gone_tags.to_vec();
    want.sort();
    assert_eq!(said_deleted, want);

    // What the registry says now.
    for dg in &gone_digests {
        assert!(
            client.get_manifest(dg).unwrap().is_none(),
            "{dg} deleted from the registry"
        );
    }
    let after = client.list_tags().unwrap();
    let kept: Vec<String> = before
        .iter()
        .filter(|t| !gone_tags.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(after, kept, "exactly the doomed tags are gone");
    for (t, dg) in &digests_before {
        if gone_tags.contains(&t.as_str()) {
            assert!(client.head_manifest(t).unwrap().is_none(), "{t} is gone");
        } else {
            assert_eq!(&digest(t), dg, "{t} still points to its manifest");
            assert!(
                client.get_manifest(dg).unwrap().is_some(),
                "{t}: {dg} stays"
            );
        }
    }
    for t in [
        "base-stable",
        "tooling-stable",
        "latest",
        app2.as_str(),
        sk_app2.as_str(),
        sk_base.as_str(),
        sk_tooling.as_str(),
        "pr-2-new",
        sk_pr2,
        "pr-3-shared",
        "release-3",
        sk_orphan,
    ] {
        assert!(after.iter().any(|a| a == t), "{t} stays: {after:?}");
    }

    // A second run finds nothing more to delete.
    let out = ok(&strata(p, &["gc", "--registry", &repo, "--apply"], &env));
    assert!(out.contains("deleted 0 tag(s) in 0 manifest(s)"), "{out}");
    assert_eq!(client.list_tags().unwrap(), after);
}

/// A push that fails partway: base and tooling go to a working registry, the app's tags to
/// one that is not there (nothing listens on its port). Every image's content is pushed
/// before any tag is applied, so the app's failed content push leaves no user-facing tag
/// anywhere, locally or in the working registry, only the key tags of the images already
/// pushed; the record and the error name what was and was not applied; exit status 1.
/// A multi-arch image assembled from per-platform tags (as `docker manifest create` or
/// `buildx imagetools create` do): `latest` is an index listing the manifests that
/// `app-amd64-1` and `app-arm64-1` point to. The policy keeps only the newest `app-*` tag,
/// but deleting `app-arm64-1`'s manifest would break `latest` for arm64, so `gc --apply`
/// keeps it (saying why) and deletes only `app-old`, which no index lists.
#[test]
fn gc_keeps_the_manifests_a_kept_index_lists() {
    use strata_registry::client::{OCI_INDEX, OCI_MANIFEST};
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/multiarch", reg.host);
    let d = project(&repo, "");
    let p = d.path();
    let client = reg.client("multiarch");
    let old = push_image(&client, "app-old", "old", "2020-01-01T00:00:00Z", &[]);
    let arm = push_image(&client, "app-arm64-1", "arm", "2020-01-02T00:00:00Z", &[]);
    let amd = push_image(&client, "app-amd64-1", "amd", "2020-01-03T00:00:00Z", &[]);
    let entry = |digest: &str, arch: &str| {
        let size = client.get_manifest(digest).unwrap().unwrap().body.len();
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")]});
    let index_digest = client
        .put_manifest("latest", OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .unwrap();

    let out = ok(&strata(p, &["gc", "--registry", &repo], &[]));
    assert!(
        out.lines().any(|l| l.contains("keep")
            && l.contains("app-arm64-1")
            && l.contains("the index \"latest\" keeps lists this manifest")),
        "the dry run says why app-arm64-1 stays:\n{out}"
    );
    let out = ok(&strata(
        p,
        &["gc", "--registry", &repo, "--apply", "--format", "json"],
        &[],
    ));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["deleted"], serde_json::json!([old]), "{report}");
    assert_eq!(
        client.list_tags().unwrap(),
        ["app-amd64-1", "app-arm64-1", "latest"]
    );
    for digest in [&amd, &arm, &index_digest] {
        assert!(
            client.get_manifest(digest).unwrap().is_some(),
            "{digest} is still there"
        );
    }
}

#[test]
fn docker_push_failure_partway_applies_no_tags() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-partial", reg.host);
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}/gone", l.local_addr().unwrap().port())
    };
    let d = project(&repo, "");
    let p = d.path();
    let config = std::fs::read_to_string(p.join("strata.toml")).unwrap();
    let app_tags = r#"tags = ["{registry}:app-{short_sha}", "{registry}:latest"]"#;
    assert!(config.contains(app_tags), "{config}");
    write(
        p,
        "strata.toml",
        &config.replace(
            app_tags,
            &format!(r#"tags = ["{gone}:app-{{short_sha}}", "{gone}:latest"]"#),
        ),
    );
    git(p, &["commit", "-qam", "app in another registry"]);
    let env = [("DOCKER_HOST", host.as_str())];
    let o = strata(p, &["build", "--all", "--push", "--json"], &env);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let r = record(p, &String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    assert_eq!(r["success"], false);
    let key = |image: &str| {
        let k = r["images"][image]["input_key"].as_str().unwrap();
        format!("sk-{}", &k["sha256:".len().."sha256:".len() + 24])
    };
    let (sk_base, sk_tooling, sk_app) = (key("base"), key("tooling"), key("app"));
    let error = r["error"].as_str().expect("the record says why");
    for want in [
        format!("pushing the content of app as {gone}:{sk_app} failed: "),
        "No tag was applied, locally or in a registry.".to_string(),
        format!(
            "Applied: image content under key tags: {repo}:{sk_base}, {repo}:{sk_tooling}; local tags: none; pushed tags: none."
        ),
        format!(
            "Not applied: image content under key tags: {gone}:{sk_app}; local tags: {repo}:base-"
        ),
        format!("{repo}:base-stable, {repo}:tooling-"),
        format!("{gone}:latest; pushed tags: {repo}:base-"),
    ] {
        assert!(error.contains(&want), "{want}\nin: {error}");
    }
    assert!(stderr.contains(error), "the error is printed:\n{stderr}");
    // The working registry holds the content of base and tooling under key tags only.
    let mut tags = reg.client("layers-partial").list_tags().unwrap();
    tags.sort();
    let mut want = vec![sk_base.clone(), sk_tooling.clone()];
    want.sort();
    assert_eq!(tags, want, "no user-facing tag was pushed");
    // No user-facing tag was applied to the engine's images.
    for (name, i) in r["images"].as_object().unwrap() {
        assert_eq!(i["tags"], serde_json::json!([]), "{name}");
    }
    for reference in [
        format!("{repo}:base-stable"),
        format!("{repo}:tooling-stable"),
        format!("{gone}:latest"),
    ] {
        let inspect = Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &host)
            .args(["image", "inspect", &reference])
            .output()
            .unwrap();
        assert!(!inspect.status.success(), "{reference} must not be tagged");
    }
}

#[test]
fn docker_reuses_from_the_registry_on_a_clean_engine() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-cold", reg.host);
    let d = project(&repo, "");
    let p = d.path();
    let env = [("DOCKER_HOST", host.as_str())];
    let r = record(
        p,
        &ok(&strata(p, &["build", "--all", "--push", "--json"], &env)),
    );
    // Forget every local image of this project: a fresh CI runner.
    let forget = |r: &serde_json::Value| forget_images(&host, &repo, r);
    forget(&r);
    let exists = |reference: &str| {
        Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &host)
            .args(["image", "inspect", reference])
            .output()
            .unwrap()
            .status
            .success()
    };
    let r = record(p, &ok(&strata(p, &["build", "--all", "--json"], &env)));
    assert_eq!(
        statuses(&r),
        s(&[("app", "reused"), ("base", "reused"), ("tooling", "reused")])
    );
    assert_eq!(r["images"]["base"]["reused_from"], "registry");
    // An app change on a fresh runner: tooling is pulled (the app is built from it), base
    // is reused in the registry without a pull (its layers come with tooling's).
    forget(&r);
    write(p, "src/main.txt", "v2\n");
    git(p, &["commit", "-qam", "app"]);
    let out = strata(p, &["build", "--base", "HEAD~1", "--json"], &env);
    let r = record(p, &ok(&out));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "reused")])
    );
    assert_eq!(r["images"]["base"]["reused_from"], "registry");
    assert_eq!(r["images"]["tooling"]["reused_from"], "registry");
    let base_key = r["images"]["base"]["input_key"].as_str().unwrap();
    let base_short = &base_key["sha256:".len().."sha256:".len() + 24];
    assert!(
        !exists(&format!("{repo}:sk-{base_short}")),
        "base was pulled though nothing here is built from it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        r["images"]["base"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // The suspect benchmark row: a base change on a fresh runner, the previous commit's
    // images pushed. The base's key changed, so nothing is reused: all three are built.
    ok(&strata(p, &["build", "--all", "--push"], &env));
    forget(&r);
    // Unique content: a constant would match the key of an image that an earlier run of
    // this test left on a shared engine, and strata would rightly reuse it.
    let nonce = std::fs::read_to_string(p.join("nonce")).unwrap();
    write(p, "nonce", &format!("{nonce} changed\n"));
    git(p, &["commit", "-qam", "base"]);
    let out = strata(p, &["build", "--base", "HEAD~1", "--json"], &env);
    let r = record(p, &ok(&out));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tooling change on a fresh runner (builder cache pruned, no local images): BuildKit's
/// inline cache in the pushed `tooling-stable` image lets the build skip the tooling steps the
/// change does not reach, and `registry-cache = false` turns that off.
#[test]
fn docker_fresh_runner_reruns_only_the_steps_a_change_reaches() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-inline", reg.host);
    let d = project(&repo, "");
    let p = d.path();
    write(
        p,
        "Dockerfile.tooling",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n\
         COPY tools/one.sh /opt/tools/one.sh\nRUN sh /opt/tools/one.sh\n\
         COPY tools/two.sh /opt/tools/two.sh\nRUN sh /opt/tools/two.sh\n\
         RUN cat /etc/nonce > /opt/tools/seen\n",
    );
    write(p, "tools/one.sh", "echo STEP-ONE-RAN\n");
    write(p, "tools/two.sh", "echo STEP-TWO-RAN v1\n");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "two tool steps"]);
    let env = [("DOCKER_HOST", host.as_str())];
    let docker = |args: &[&str]| {
        Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &host)
            // Debian's client without buildx refuses `builder prune` under BuildKit.
            .env("DOCKER_BUILDKIT", "0")
            .args(args)
            .output()
            .unwrap()
    };
    // A fresh runner: no builder cache, none of this project's images.
    let fresh_runner = |r: &serde_json::Value| {
        forget_images(&host, &repo, r);
        let prune = docker(&["builder", "prune", "-af"]);
        assert!(
            prune.status.success(),
            "{}",
            String::from_utf8_lossy(&prune.stderr)
        );
    };
    let r = record(
        p,
        &ok(&strata(p, &["build", "--all", "--push", "--json"], &env)),
    );
    fresh_runner(&r);
    write(p, "tools/two.sh", "echo STEP-TWO-RAN v2\n");
    git(p, &["commit", "-qam", "tool two"]);
    let out = strata(p, &["build", "--base", "HEAD~1", "--push", "--json"], &env);
    let r = record(p, &ok(&out));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "built")])
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("STEP-TWO-RAN v2"),
        "the changed step ran:\n{log}"
    );
    assert!(
        !log.contains("STEP-ONE-RAN"),
        "the step before the change came from the registry's inline cache:\n{log}"
    );
    assert!(
        log.contains(&format!("layer cache from {repo}:tooling-stable")),
        "the build named its cache source:\n{log}"
    );

    // Turned off: the same situation re-runs every tooling step.
    fresh_runner(&r);
    let config = std::fs::read_to_string(p.join("strata.toml")).unwrap();
    write(
        p,
        "strata.toml",
        &config.replace("[build]\n", "[build]\nregistry-cache = false\n"),
    );
    write(p, "tools/two.sh", "echo STEP-TWO-RAN v3\n");
    git(p, &["commit", "-qam", "tool two again, no registry cache"]);
    let out = strata(p, &["build", "--base", "HEAD~1", "--json"], &env);
    ok(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("STEP-ONE-RAN"),
        "without the registry cache every step runs:\n{log}"
    );
}

fn daemonless(engine: &str) {
    let bin = format!("/usr/bin/{engine}");
    if !Path::new(&bin).exists() || !Path::new("/bin/busybox").exists() {
        missing(&format!(
            "{bin} missing (apt-get install {engine} busybox-static)"
        ));
        return;
    }
    let d = project(
        "127.0.0.1:1/unused",
        "storage-driver = \"vfs\"\nisolation = \"chroot\"",
    );
    let p = d.path();
    let args = [
        "build",
        "--all",
        "--json",
        "--no-registry-lookup",
        "--engine",
        engine,
    ];
    let r = record(p, &ok(&strata(p, &args, &[])));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    assert!(r["images"]["app"]["layers"].as_u64().unwrap() >= 3);
    let r = record(p, &ok(&strata(p, &args, &[])));
    assert_eq!(
        statuses(&r),
        s(&[("app", "reused"), ("base", "reused"), ("tooling", "reused")])
    );
    write(p, "tools/t.sh", "echo tool 2\n");
    let r = record(p, &ok(&strata(p, &args, &[])));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "built")])
    );
}

#[test]
fn buildah_build_and_reuse() {
    daemonless("buildah");
}

#[test]
fn podman_build_and_reuse() {
    daemonless("podman");
}

/// Layer cache settings an engine cannot honour fail before anything is built, with exit
/// status 2 and the `strata.toml` key and line: `docker build` (Docker 20.10 without buildx)
/// has no --cache-to and takes image references as --cache-from, buildah takes a repository
/// without a tag. No engine is needed: nothing runs.
#[test]
fn build_refuses_cache_settings_the_engine_cannot_honour() {
    let d = project("127.0.0.1:1/unused", "");
    let p = d.path();
    let config = std::fs::read_to_string(p.join("strata.toml")).unwrap();
    let anchor = "from-arg = \"TOOLING_IMAGE\"\n";
    assert!(config.contains(anchor), "{config}");
    let line = config[..config.find(anchor).unwrap()].lines().count() + 2;
    for (engine, setting, value, want) in [
        (
            "docker",
            "cache-to",
            "127.0.0.1:5000/cache",
            "has no --cache-to",
        ),
        (
            "docker",
            "cache-from",
            "type=registry,ref=127.0.0.1:5000/cache",
            "is buildx syntax",
        ),
        (
            "buildah",
            "cache-from",
            "127.0.0.1:5000/cache:latest",
            "names a tag or digest",
        ),
    ] {
        write(
            p,
            "strata.toml",
            &config.replace(anchor, &format!("{anchor}{setting} = [\"{value}\"]\n")),
        );
        let o = strata(
            p,
            &["build", "--all", "--no-registry-lookup", "--engine", engine],
            // No engine answers here: a check that ran after the engine would fail otherwise.
            &[
                ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
                ("STRATA_BUILDAH", "/nonexistent/buildah"),
            ],
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{engine} {setting}: {stderr}");
        let prefix = format!("strata.toml:{line}: image.app.{setting}: ");
        assert!(
            stderr.contains(&prefix) && stderr.contains(want),
            "{engine} {setting}: want {prefix}…{want} in:\n{stderr}"
        );
        assert!(!p.join(".strata/builds").exists(), "nothing was built");
    }
}

/// Whether buildah and a static busybox are installed (else SKIP, or a failure under
/// STRATA_TEST_REQUIRE_ALL=1).
fn buildah_and_busybox() -> bool {
    let ready = Path::new("/usr/bin/buildah").exists() && Path::new("/bin/busybox").exists();
    if !ready {
        missing("/usr/bin/buildah missing (apt-get install buildah busybox-static)");
    }
    ready
}

/// A containers-storage config for empty vfs storage under `dir/name` (a fresh runner for
/// buildah and podman); returns the config's path for `CONTAINERS_STORAGE_CONF`.
fn fresh_storage(dir: &Path, name: &str) -> String {
    let root = dir.join(name);
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}/graph\"\nrunroot = \"{}/run\"\n",
            root.display(),
            root.display()
        ),
    )
    .unwrap();
    conf.to_str().unwrap().to_string()
}

/// buildah with `cache-to` and `cache-from` a repository of a loopback registry: the first
/// build pushes its layer cache there, and a second build on fresh, empty local storage (a
/// fresh runner) takes every step from that cache: the app's RUN does not run again.
#[test]
fn buildah_layer_cache_in_a_registry_serves_a_fresh_runner() {
    if !buildah_and_busybox() {
        return;
    }
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let cache = format!("{}/layers-cache", reg.host);
    let d = project(
        "127.0.0.1:1/unused",
        "storage-driver = \"vfs\"\nisolation = \"chroot\"",
    );
    let p = d.path();
    let settings = format!("cache-from = [\"{cache}\"]\ncache-to = [\"{cache}\"]\n");
    let config = std::fs::read_to_string(p.join("strata.toml"))
        .unwrap()
        .replace("\ntags = [", &format!("\n{settings}tags = ["));
    assert_eq!(config.matches("cache-to =").count(), 3, "{config}");
    write(p, "strata.toml", &config);
    let marker = format!("APP-RUN-{}", std::process::id());
    write(p, "src/main.txt", &format!("{marker}\n"));
    git(p, &["commit", "-qam", "layer cache in the registry"]);
    // Each build on its own empty storage.
    let storage = |name: &str| fresh_storage(p, name);
    let args = [
        "build",
        "--all",
        "--json",
        "--no-registry-lookup",
        "--engine",
        "buildah",
    ];
    let first = storage("storage-1");
    let o = strata(p, &args, &[("CONTAINERS_STORAGE_CONF", first.as_str())]);
    let r = record(p, &ok(&o));
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    assert!(log.contains(&marker), "the app's RUN ran:\n{log}");
    assert!(
        log.contains(&format!("--> Pushing cache {cache}:")),
        "the layer cache went to the registry:\n{log}"
    );
    let tags = reg.client("layers-cache").list_tags().unwrap();
    assert!(tags.len() >= 3, "cache images in the registry: {tags:?}");

    let second = storage("storage-2");
    let o = strata(p, &args, &[("CONTAINERS_STORAGE_CONF", second.as_str())]);
    let r = record(p, &ok(&o));
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")]),
        "fresh storage: nothing to reuse locally"
    );
    assert!(
        log.contains(&format!("[app] --> Cache pulled from remote {cache}:")),
        "the app's steps came from the registry's layer cache:\n{log}"
    );
    assert!(
        !log.contains(&marker),
        "the app's RUN did not run again:\n{log}"
    );
}

/// A daemonless engine with a real registry, as on CI runners without dockerd: `--push`
/// sends the images and their key tags (`--tls-verify=false` for the loopback registry, the
/// digest read back from `--digestfile`), and runs on fresh, empty storage (a fresh runner)
/// reuse them by key from the registry: everything reused at first; after an app change the
/// tooling image is pulled to build the app on, and the base is reused without a pull.
fn daemonless_registry(engine: &str) {
    let bin = format!("/usr/bin/{engine}");
    if !Path::new(&bin).exists() || !Path::new("/bin/busybox").exists() {
        missing(&format!(
            "{bin} missing (apt-get install {engine} busybox-static)"
        ));
        return;
    }
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = format!("{}/layers-{engine}", reg.host);
    let d = project(&repo, "storage-driver = \"vfs\"\nisolation = \"chroot\"");
    let p = d.path();
    // Each run on its own empty storage: a fresh runner.
    let storage = |name: &str| fresh_storage(p, name);
    let run = |args: &[&str], conf: &str| {
        let mut all = args.to_vec();
        all.extend(["--json", "--engine", engine]);
        strata(p, &all, &[("CONTAINERS_STORAGE_CONF", conf)])
    };
    let first = storage("storage-1");
    let r = record(p, &ok(&run(&["build", "--all", "--push"], &first)));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    let client = reg.client(&format!("layers-{engine}"));
    let tags = client.list_tags().unwrap();
    for want in ["base-stable", "tooling-stable", "latest"] {
        assert!(tags.iter().any(|t| t == want), "{want} pushed: {tags:?}");
    }
    for name in ["base", "tooling", "app"] {
        let key = r["images"][name]["input_key"].as_str().unwrap();
        let key_tag = format!("sk-{}", &key["sha256:".len().."sha256:".len() + 24]);
        assert!(
            tags.contains(&key_tag),
            "{name}'s key tag {key_tag}: {tags:?}"
        );
        let pushed = r["images"][name]["digest"].as_str().unwrap_or_default();
        assert!(
            pushed.starts_with("sha256:"),
            "{name}: the pushed digest is recorded: {}",
            r["images"][name]
        );
        assert_eq!(
            client.head_manifest(&key_tag).unwrap().as_deref(),
            Some(pushed),
            "{name}: the key tag names the pushed manifest"
        );
        for reference in r["images"][name]["tags"].as_array().unwrap() {
            let tag = reference.as_str().unwrap().rsplit_once(':').unwrap().1;
            assert_eq!(
                client.head_manifest(tag).unwrap().as_deref(),
                Some(pushed),
                "{name}: its tag {tag} names the key tag's manifest"
            );
        }
    }

    let r = record(p, &ok(&run(&["build", "--all"], &storage("storage-2"))));
    assert_eq!(
        statuses(&r),
        s(&[("app", "reused"), ("base", "reused"), ("tooling", "reused")])
    );
    assert_eq!(r["images"]["app"]["reused_from"], "registry");

    write(p, "src/main.txt", "v2\n");
    git(p, &["commit", "-qam", "app"]);
    let out = run(&["build", "--base", "HEAD~1"], &storage("storage-3"));
    let r = record(p, &ok(&out));
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "reused")]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["images"]["tooling"]["reused_from"], "registry");
    assert_eq!(r["images"]["base"]["reused_from"], "registry");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("[tooling] reusing {repo}"))
                && l.ends_with("from the registry")),
        "tooling pulled from the registry:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("[base] reusing") && l.contains("not pulled")),
        "base reused without a pull:\n{log}"
    );
}

#[test]
fn buildah_pushes_and_reuses_from_a_registry_on_fresh_storage() {
    daemonless_registry("buildah");
}

#[test]
fn podman_pushes_and_reuses_from_a_registry_on_fresh_storage() {
    daemonless_registry("podman");
}

/// A registry that needs a login (HTTP Basic, `htpasswd`), with buildah logged in through
/// an auth file (`REGISTRY_AUTH_FILE`, what `buildah login` writes):
/// - with strata's own credentials wrong (`STRATA_REGISTRY_*` win over the file), its key
///   lookups warn, and every user-facing tag the registry will not copy for it is pushed by
///   the engine instead: the fallback path, and the push still lands;
/// - with the auth file alone, strata logs in as buildah does: a fresh runner reuses the
///   tooling image by key from the registry, the app's tags are registry-side copies;
/// - `strata gc` reads the same file, and without it fails saying how to log in.
#[test]
fn buildah_with_a_registry_that_needs_a_login() {
    if !buildah_and_busybox() {
        return;
    }
    let Some(reg) = TestRegistry::start_with_auth() else {
        return;
    };
    let repo = format!("{}/private", reg.host);
    let d = project(&repo, "storage-driver = \"vfs\"\nisolation = \"chroot\"");
    let p = d.path();
    let auth_file = p.join("auth.json");
    reg.write_auth_file(&auth_file);
    let auth_file = auth_file.to_str().unwrap();
    let home = p.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home = home.to_str().unwrap();
    let client = reg.client_logged_in("private");

    let conf = fresh_storage(p, "storage-1");
    let out = strata(
        p,
        &["build", "--all", "--push", "--json", "--engine", "buildah"],
        &[
            ("CONTAINERS_STORAGE_CONF", conf.as_str()),
            ("HOME", home),
            ("REGISTRY_AUTH_FILE", auth_file),
            ("STRATA_REGISTRY_USERNAME", "strata"),
            ("STRATA_REGISTRY_PASSWORD", "wrong"),
        ],
    );
    let r = record(p, &ok(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "built"), ("tooling", "built")])
    );
    assert!(
        log.contains("registry lookup in") && log.contains("HTTP 401"),
        "strata's lookups were refused:\n{log}"
    );
    assert!(
        log.contains("did not take") && log.contains("pushing it with the engine"),
        "the engine pushed the tags strata could not copy:\n{log}"
    );
    let tags = client.list_tags().unwrap();
    for want in ["base-stable", "tooling-stable", "latest"] {
        assert!(tags.iter().any(|t| t == want), "{want} pushed: {tags:?}");
    }

    write(p, "src/main.txt", "v2\n");
    git(p, &["commit", "-qam", "app"]);
    let conf = fresh_storage(p, "storage-2");
    let envs = [
        ("CONTAINERS_STORAGE_CONF", conf.as_str()),
        ("HOME", home),
        ("REGISTRY_AUTH_FILE", auth_file),
    ];
    let out = strata(
        p,
        &[
            "build", "--base", "HEAD~1", "--push", "--json", "--engine", "buildah",
        ],
        &envs,
    );
    let r = record(p, &ok(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        statuses(&r),
        s(&[("app", "built"), ("base", "reused"), ("tooling", "reused")]),
        "{log}"
    );
    assert_eq!(r["images"]["tooling"]["reused_from"], "registry");
    assert!(!log.contains("registry lookup in"), "{log}");
    assert!(!log.contains("pushing it with the engine"), "{log}");
    let app = &r["images"]["app"];
    let pushed = app["digest"].as_str().unwrap();
    for reference in app["tags"].as_array().unwrap() {
        let tag = reference.as_str().unwrap().rsplit_once(':').unwrap().1;
        assert_eq!(
            client.head_manifest(tag).unwrap().as_deref(),
            Some(pushed),
            "the app's tag {tag} is a copy of its key tag's manifest"
        );
    }

    let gc = ["gc", "--format", "json"];
    let listed = ok(&strata(
        p,
        &gc,
        &[("HOME", home), ("REGISTRY_AUTH_FILE", auth_file)],
    ));
    assert!(listed.contains("latest"), "{listed}");
    let refused = strata(p, &gc, &[("HOME", home)]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "gc without a login: {err}");
    assert!(
        err.contains("401") && err.contains("buildah login"),
        "{err}"
    );
}

/// A diamond (base → a, base → b) with `--jobs 2`: a and b, each with a RUN that sleeps two
/// seconds, build at the same time (their intervals in the record overlap). a's configured
/// build arg reaches its Dockerfile and its `target` stage, not the last one, is what is
/// built.
#[test]
fn docker_diamond_builds_siblings_in_parallel_with_args_and_target() {
    let Some((host, _turn)) = docker_host() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::copy("/bin/busybox", p.join("busybox")).unwrap();
    write(p, "nonce", &nonce);
    write(
        p,
        "strata.toml",
        r#"[build]
network = "host"
[image.base]
file = "Dockerfile.base"
[image.a]
file = "Dockerfile.a"
from = "base"
args = { GREETING = "hello from strata.toml" }
target = "picked"
[image.b]
file = "Dockerfile.b"
from = "base"
"#,
    );
    write(
        p,
        "Dockerfile.base",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY nonce /etc/nonce\n",
    );
    write(
        p,
        "Dockerfile.a",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS picked\nARG GREETING=unset\n\
         RUN echo \"$GREETING\" > /greeting && sleep 2\n\
         FROM picked AS last\nRUN echo last > /last-stage\n",
    );
    write(
        p,
        "Dockerfile.b",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo b > /b && sleep 2\n",
    );
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "diamond"]);
    let env = [("DOCKER_HOST", host.as_str())];
    let o = strata(
        p,
        &[
            "build",
            "--all",
            "--json",
            "--jobs",
            "2",
            "--no-registry-lookup",
        ],
        &env,
    );
    let r = record(p, &ok(&o));
    assert_eq!(
        statuses(&r),
        s(&[("a", "built"), ("b", "built"), ("base", "built")])
    );
    let span = |n: &str| {
        let i = &r["images"][n];
        (
            i["start_ms"].as_u64().unwrap(),
            i["end_ms"].as_u64().unwrap(),
        )
    };
    let (base, a, b) = (span("base"), span("a"), span("b"));
    assert!(
        base.1 <= a.0 && base.1 <= b.0,
        "a and b start after base: {base:?} {a:?} {b:?}"
    );
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "a {a:?} and b {b:?} ran at the same time"
    );
    // What a's image holds: the arg's value, and nothing from the stage after the target.
    let docker = |args: &[&str]| {
        Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &host)
            .args(args)
            .output()
            .unwrap()
    };
    let id = r["images"]["a"]["image_id"].as_str().unwrap();
    let created = docker(&["create", id, "/bin/true"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let cid = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let out = tempfile::tempdir().unwrap();
    let greeting = out.path().join("greeting");
    let cp = docker(&[
        "cp",
        &format!("{cid}:/greeting"),
        greeting.to_str().unwrap(),
    ]);
    let last = docker(&[
        "cp",
        &format!("{cid}:/last-stage"),
        out.path().to_str().unwrap(),
    ]);
    docker(&["rm", "-f", &cid]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&greeting).unwrap(),
        "hello from strata.toml\n"
    );
    assert!(
        !last.status.success(),
        "the stage after the target was not built into a"
    );
}
