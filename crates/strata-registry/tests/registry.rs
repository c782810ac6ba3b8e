//! The client and retention against a real registry (Debian's docker-registry on loopback).

use strata_registry::retention::{Policy, TagInfo, decide};
use strata_registry::testing::{TestRegistry, push_image};

#[test]
fn client_round_trip_and_gc_by_digest() {
    let Some(server) = TestRegistry::start() else {
        return;
    };
    let reg = server.client("team/app");
    assert_eq!(reg.list_tags().unwrap(), Vec::<String>::new());
    let old = push_image(&reg, "pr-1-aaa", "one", "2020-01-01T00:00:00Z", &[]);
    // The same image under a protected tag: never deleted.
    let shared = push_image(&reg, "pr-2-bbb", "two", "2020-01-02T00:00:00Z", &[]);
    let same = push_image(&reg, "latest", "two", "2020-01-02T00:00:00Z", &[]);
    assert_eq!(shared, same);
    let new = push_image(
        &reg,
        "pr-3-ccc",
        "three",
        "2999-01-01T00:00:00Z",
        &[("dev.strata.input-key", "sha256:k")],
    );
    let m = reg.get_manifest("pr-1-aaa").unwrap().unwrap();
    assert_eq!(m.digest, old);
    assert_eq!(
        reg.head_manifest("pr-3-ccc").unwrap().as_deref(),
        Some(new.as_str())
    );
    assert_eq!(reg.created(&m).unwrap(), Some(1577836800));
    let cfg = reg
        .image_config(&reg.get_manifest("pr-3-ccc").unwrap().unwrap())
        .unwrap();
    assert_eq!(
        cfg.pointer("/config/Labels/dev.strata.input-key").unwrap(),
        "sha256:k"
    );
    assert!(reg.get_manifest("nope").unwrap().is_none());

    let policy: Policy = toml_policy();
    let mut infos = Vec::new();
    for t in reg.list_tags().unwrap() {
        let m = reg.get_manifest(&t).unwrap().unwrap();
        let created = reg.created(&m).unwrap();
        infos.push(TagInfo {
            tag: t,
            digest: m.digest,
            created,
        });
    }
    let now = 1_700_000_000;
    let d = decide(&policy, &infos, now);
    let doomed: Vec<&str> = d
        .iter()
        .filter(|d| d.delete)
        .map(|d| d.tag.as_str())
        .collect();
    assert_eq!(doomed, vec!["pr-1-aaa"]);
    for x in d.iter().filter(|d| d.delete) {
        reg.delete_manifest(&x.digest).unwrap();
    }
    assert_eq!(
        reg.list_tags().unwrap(),
        vec!["latest", "pr-2-bbb", "pr-3-ccc"]
    );
    assert!(reg.get_manifest(&old).unwrap().is_none());
}

fn toml_policy() -> Policy {
    use strata_registry::retention::{Glob, KeepRule};
    Policy {
        keep: vec![KeepRule {
            tags: Glob::new("pr-*").unwrap(),
            newest: None,
            max_age: Some(strata_registry::retention::Age::parse("7d").unwrap()),
        }],
        protect: vec![Glob::new("latest").unwrap()],
    }
}

/// A registry that needs a login (the `htpasswd` access controller, HTTP Basic): a logged-in
/// client pushes, reads, lists and deletes; an anonymous one gets a 401 whose error says how
/// to log in; wrong credentials are refused.
#[test]
fn basic_auth_registry() {
    let Some(server) = TestRegistry::start_with_auth() else {
        return;
    };
    let reg = server.client_logged_in("team/app");
    let digest = push_image(&reg, "v1", "content", "2024-01-01T00:00:00Z", &[]);
    assert_eq!(reg.list_tags().unwrap(), vec!["v1"]);
    assert_eq!(
        reg.head_manifest("v1").unwrap().as_deref(),
        Some(digest.as_str())
    );
    let layers = reg.get_manifest("v1").unwrap().unwrap().json()["layers"].clone();
    let layer = layers[0]["digest"].as_str().unwrap();
    assert_eq!(reg.get_blob(layer).unwrap(), b"content");

    let anonymous =
        strata_registry::Registry::with_credentials(reg.repo().clone(), false, None).unwrap();
    let err = anonymous.list_tags().unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("buildah login"), "{err}");
    let wrong = strata_registry::Registry::with_credentials(
        reg.repo().clone(),
        false,
        Some(strata_registry::Credentials {
            username: strata_registry::testing::TEST_USER.into(),
            password: "not-the-password".into(),
        }),
    )
    .unwrap();
    // Refused credentials are sent once per request, not retried: the first request goes
    // anonymous, then with the password (two 401s); the next one with the password alone.
    let refused = || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        server
            .log()
            .matches("\"HEAD /v2/team/app/manifests/v1 HTTP/1.1\" 401")
            .count()
    };
    let before = refused();
    assert_eq!(wrong.head_manifest("v1").unwrap_err().status(), Some(401));
    assert_eq!(refused() - before, 2, "{}", server.log());
    assert_eq!(wrong.head_manifest("v1").unwrap_err().status(), Some(401));
    assert_eq!(refused() - before, 3, "{}", server.log());

    reg.delete_manifest(&digest).unwrap();
    assert_eq!(reg.head_manifest("v1").unwrap(), None);
}
