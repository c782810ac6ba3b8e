//! The package-lock.json rewrite that inject-files applies (Hermeto:
//! `hermeto/core/package_managers/javascript/npm/resolver.py`,
//! `_update_package_lock_with_local_paths`; the expected text below is Hermeto's own template
//! from `golden/build-config.hermeto.json`, resolved as its `inject-files` resolves it).

use std::collections::BTreeMap;

use strata_tree::{BuildConfig, npm_lockfile_template, rewrite_npm_lockfile};

const LOCKFILE: &str = include_str!("golden/npm/package-lock.json");
const BUILD_CONFIG_HERMETO: &str = include_str!("golden/build-config.hermeto.json");

fn files() -> BTreeMap<String, String> {
    [
        ("node_modules/@types/node", "types-node-20.1.0.tgz"),
        ("node_modules/debug", "debug-4.3.4.tgz"),
        ("node_modules/debug/node_modules/ms", "ms-2.0.0.tgz"),
        ("node_modules/ms", "ms-2.1.3.tgz"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn matches_hermetos_inject_files_output() {
    let config = BuildConfig::from_json(BUILD_CONFIG_HERMETO.as_bytes()).unwrap();
    let want = config.project_files[0].resolve_content("/cachi2/output");
    let got = rewrite_npm_lockfile(LOCKFILE, &files(), "/cachi2/output").unwrap();
    assert_eq!(got, want);
    assert!(got.contains(r#""resolved": "file:///cachi2/output/deps/npm/types-node-20.1.0.tgz""#));
    assert!(got.contains(r#""resolved": "file:///cachi2/output/deps/npm/ms-2.0.0.tgz""#));
}

#[test]
fn only_resolved_lines_change() {
    let got = rewrite_npm_lockfile(LOCKFILE, &files(), "/tmp/hermeto-output").unwrap();
    let (old, new): (Vec<&str>, Vec<&str>) = (LOCKFILE.lines().collect(), got.lines().collect());
    assert_eq!(old.len(), new.len());
    let mut changed = 0;
    for (o, n) in old.iter().zip(&new) {
        if o != n {
            assert!(o.trim_start().starts_with("\"resolved\""), "{o}");
            assert!(n.contains("file:///tmp/hermeto-output/deps/npm/"), "{n}");
            changed += 1;
        }
    }
    assert_eq!(changed, 4);
    assert!(got.ends_with("}\n"));
}

#[test]
fn unlisted_entries_keep_their_url() {
    let mut f = files();
    f.remove("node_modules/ms");
    let got = rewrite_npm_lockfile(LOCKFILE, &f, "/o").unwrap();
    assert!(got.contains(r#""resolved": "http://127.0.0.1:8080/npm/ms/-/ms-2.1.3.tgz""#));
}

#[test]
fn indent_unicode_and_missing_newline_are_handled_like_npm() {
    let text = "{\n\t\"name\": \"ünï\",\n\t\"packages\": {\n\t\t\"node_modules/@s/n\": {\n\t\t\t\"version\": \"1.0.0\",\n\t\t\t\"resolved\": \"http://127.0.0.1/x.tgz\",\n\t\t\t\"zeta\": 1,\n\t\t\t\"alpha\": [1, 2]\n\t\t}\n\t}\n}";
    let files = BTreeMap::from([("node_modules/@s/n".to_owned(), "s-n-1.0.0.tgz".to_owned())]);
    let got = rewrite_npm_lockfile(text, &files, "/o").unwrap();
    let want = "{\n\t\"name\": \"ünï\",\n\t\"packages\": {\n\t\t\"node_modules/@s/n\": {\n\t\t\t\"version\": \"1.0.0\",\n\t\t\t\"resolved\": \"file:///o/deps/npm/s-n-1.0.0.tgz\",\n\t\t\t\"zeta\": 1,\n\t\t\t\"alpha\": [\n\t\t\t\t1,\n\t\t\t\t2\n\t\t\t]\n\t\t}\n\t}\n}\n";
    assert_eq!(got, want);
}

#[test]
fn entries_without_resolved_get_one() {
    let text = r#"{"packages": {"node_modules/a": {"version": "1.0.0"}}}"#;
    let files = BTreeMap::from([("node_modules/a".to_owned(), "a-1.0.0.tgz".to_owned())]);
    let got = rewrite_npm_lockfile(text, &files, "/o").unwrap();
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(
        v["packages"]["node_modules/a"]["resolved"],
        "file:///o/deps/npm/a-1.0.0.tgz"
    );
}

#[test]
fn dollar_signs_survive_the_template_round_trip() {
    let text = "{\n  \"packages\": {\n    \"node_modules/a\": {\n      \"resolved\": \"http://127.0.0.1/a.tgz\",\n      \"note\": \"costs $5 or ${output_dir} or $$\"\n    }\n  }\n}\n";
    let files = BTreeMap::from([("node_modules/a".to_owned(), "a-1.tgz".to_owned())]);
    let template = npm_lockfile_template(text, &files).unwrap();
    assert!(template.contains("file://${output_dir}/deps/npm/a-1.tgz"));
    let pf = strata_tree::ProjectFile {
        abspath: "/p/package-lock.json".into(),
        template,
    };
    let got = pf.resolve_content("/out");
    assert_eq!(got, rewrite_npm_lockfile(text, &files, "/out").unwrap());
    assert!(got.contains("costs $5 or ${output_dir} or $$"));
}
