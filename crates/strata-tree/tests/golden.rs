//! bom.json and .build-config.json against reference files produced by Hermeto's own code.
//!
//! `golden/bom.hermeto.json` and `golden/build-config.hermeto.json` were written by
//! `golden/gen_hermeto_golden.py`, which runs Hermeto's models (`hermeto/core/models/sbom.py`,
//! `hermeto/core/models/output.py`), its backends' component code (`generic/models.py`
//! `LockfileArtifactUrl.get_sbom_component`, `javascript/npm/main.py`
//! `_generate_component_list`, `rpm/main.py` `Package.to_component`, the pip `_make_purl`
//! logic of `python/pip/packages.py`), its npm lockfile rewrite (`javascript/npm/resolver.py`
//! `_update_package_lock_with_local_paths`) and `packageurl-python`, and serialises them as
//! `hermeto/interface/cli.py` `fetch_deps` does, for the artifacts of `common::golden_set()`.

mod common;

use std::path::PathBuf;

use strata_tree::{
    BOM_JSON, BUILD_CONFIG_JSON, Node, NpmProject, SbomOptions, Tree, TreeOptions, bom_json,
    build_config,
};

const BOM_HERMETO: &str = include_str!("golden/bom.hermeto.json");
const BUILD_CONFIG_HERMETO: &str = include_str!("golden/build-config.hermeto.json");
const LOCKFILE: &str = include_str!("golden/npm/package-lock.json");
/// 2025-01-01T00:00:00Z, the time the reference annotations carry.
const TS: u64 = 1_735_689_600;

fn hermeto_identity() -> SbomOptions {
    SbomOptions {
        timestamp: Some(TS),
        found_by: "hermeto".into(),
        tool_vendor: "red hat".into(),
        tool_name: "hermeto".into(),
        annotator: "red hat".into(),
        ..SbomOptions::default()
    }
}

fn npm_project() -> NpmProject {
    NpmProject {
        lockfile: PathBuf::from("package-lock.json"),
        abspath: PathBuf::from("/src/app/package-lock.json"),
        text: LOCKFILE.to_owned(),
    }
}

#[test]
fn bom_json_is_byte_identical_to_hermetos_with_hermetos_identity() {
    let got = bom_json(&common::golden_set(), &hermeto_identity());
    assert_eq!(String::from_utf8(got).unwrap(), BOM_HERMETO);
}

#[test]
fn bom_json_does_not_depend_on_artifact_order() {
    let mut set = common::golden_set();
    set.reverse();
    // The two pip files share a purl: Hermeto keeps the first one's fields and merges the
    // properties, so both orders give the same component.
    let got = bom_json(&set, &hermeto_identity());
    assert_eq!(String::from_utf8(got).unwrap(), BOM_HERMETO);
}

#[test]
fn build_config_is_byte_identical_to_hermetos() {
    let opts = TreeOptions {
        npm_projects: vec![npm_project()],
        ..TreeOptions::default()
    };
    let config = build_config(&common::golden_set(), &opts).unwrap();
    assert_eq!(
        String::from_utf8(config.to_json()).unwrap(),
        BUILD_CONFIG_HERMETO
    );
}

#[test]
fn strata_identity_and_no_timestamp_by_default() {
    let v: serde_json::Value =
        serde_json::from_slice(&bom_json(&common::golden_set(), &SbomOptions::default())).unwrap();
    assert!(
        v.get("annotations").is_none(),
        "no timestamp, no annotations"
    );
    assert_eq!(v["metadata"]["tools"][0]["name"], "strata");
    assert_eq!(v["specVersion"], "1.6");
    let components = v["components"].as_array().unwrap();
    assert_eq!(
        components.len(),
        10,
        "module metadata has no component, pip files merge"
    );
    for c in components {
        assert_eq!(c["bom-ref"], c["purl"]);
        assert!(c.get("hashes").is_none());
        let props = c["properties"].as_array().unwrap();
        assert!(
            props
                .iter()
                .any(|p| p["name"] == "hermeto:found_by" && p["value"] == "strata")
        );
    }
}

#[test]
fn hashes_on_request_use_cyclonedx_names() {
    let opts = SbomOptions {
        include_hashes: true,
        ..SbomOptions::default()
    };
    let v: serde_json::Value =
        serde_json::from_slice(&bom_json(&common::golden_set(), &opts)).unwrap();
    let npm = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purl"] == "pkg:npm/debug@4.3.4")
        .unwrap();
    assert_eq!(npm["hashes"][0]["alg"], "SHA-512");
    assert_eq!(npm["hashes"][0]["content"], "22".repeat(64));
}

#[test]
fn the_tree_serves_the_same_generated_bytes() {
    let artifacts = common::golden_set();
    let opts = TreeOptions {
        npm_projects: vec![npm_project()],
        sbom: hermeto_identity(),
        ..TreeOptions::default()
    };
    let tree = Tree::build(&artifacts, &opts).unwrap();
    let bytes = |path: &str| match tree.node(tree.resolve(path).unwrap()) {
        Some(Node::Generated(b)) => b.clone(),
        other => panic!("{path}: {other:?}"),
    };
    assert_eq!(std::str::from_utf8(&bytes(BOM_JSON)).unwrap(), BOM_HERMETO);
    assert_eq!(
        std::str::from_utf8(&bytes(BUILD_CONFIG_JSON)).unwrap(),
        BUILD_CONFIG_HERMETO
    );
}
