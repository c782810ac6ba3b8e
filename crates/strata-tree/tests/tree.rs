//! The output tree: layout, traversal and conflict errors, lookup/readdir at 50,000 entries.

mod common;

use strata_lock::Artifact;
use strata_tree::{
    EnvFormat, Node, NodeId, Tree, TreeError, TreeOptions, env_vars, format_env, split_path,
};

fn names(tree: &Tree, path: &str) -> Vec<String> {
    let id = tree
        .resolve(path)
        .unwrap_or_else(|| panic!("{path} missing"));
    tree.children(id)
        .unwrap()
        .map(|e| e.name.to_owned())
        .collect()
}

#[test]
fn layout_of_the_golden_set() {
    let artifacts = common::golden_set();
    let opts = TreeOptions {
        for_output_dir: Some("/cachi2/output".into()),
        ..TreeOptions::default()
    };
    let tree = Tree::build(&artifacts, &opts).unwrap();
    assert_eq!(names(&tree, ""), [".build-config.json", "bom.json", "deps"]);
    assert_eq!(names(&tree, "deps"), ["generic", "npm", "pip", "rpm"]);
    assert_eq!(
        names(&tree, "deps/npm"),
        [
            "debug-4.3.4.tgz",
            "ms-2.0.0.tgz",
            "ms-2.1.3.tgz",
            "types-node-20.1.0.tgz"
        ]
    );
    assert_eq!(
        names(&tree, "deps/rpm/x86_64"),
        [
            "repos.d",
            "strata-abc123",
            "ubi-9-appstream",
            "ubi-9-baseos",
            "ubi-9-baseos-source"
        ]
    );
    let repo = tree.resolve("deps/rpm/x86_64/repos.d/strata.repo").unwrap();
    let Some(Node::Generated(bytes)) = tree.node(repo) else {
        panic!("repo file is generated")
    };
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.starts_with(
        "[strata-abc123]\nbaseurl = file:///cachi2/output/deps/rpm/x86_64/strata-abc123\n\
         name = Packages unaffiliated with an official repository\ngpgcheck = 1\n\n"
    ));
    assert!(text.contains("[ubi-9-baseos]\nbaseurl = file:///cachi2/output/deps/rpm/x86_64/ubi-9-baseos\ngpgcheck = 1\n"));

    // every artifact is reachable at its path, with its index and size
    for (i, a) in artifacts.iter().enumerate() {
        let id = tree.resolve(&a.path).unwrap();
        assert_eq!(tree.node(id), Some(&Node::Artifact(i)));
        assert_eq!(tree.path(id).unwrap(), a.path);
        assert_eq!(tree.file_size(id, &artifacts), a.size);
        assert_eq!(tree.name(id), Some(a.filename.as_str()));
    }
    // parents come before children; the root is its own parent
    assert_eq!(tree.parent(tree.root()), Some(NodeId::ROOT));
    for e in tree.iter().skip(1) {
        assert!(tree.parent(e.id).unwrap() < e.id);
    }
    // without --for-output-dir the repo files are left to inject-files
    let tree = Tree::build(&artifacts, &TreeOptions::default()).unwrap();
    assert!(tree.resolve("deps/rpm/x86_64/repos.d").is_none());
    // pip artifacts give pip's variables
    let vars = env_vars(tree.build_config(), "/cachi2/output").unwrap();
    assert_eq!(
        format_env(&vars, EnvFormat::Env),
        "export PIP_FIND_LINKS=/cachi2/output/deps/pip\nexport PIP_NO_INDEX=true\n"
    );
}

#[test]
fn no_pip_no_variables() {
    let tree = Tree::build(&[common::generic("f", "aa")], &TreeOptions::default()).unwrap();
    assert!(tree.build_config().environment_variables.is_empty());
    let json = tree.build_config().to_json();
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        "{\n  \"environment_variables\": [],\n  \"project_files\": []\n}"
    );
}

fn with_path(path: &str) -> Artifact {
    let mut a = common::generic("x", "aa");
    a.path = path.to_owned();
    a
}

#[test]
fn bad_paths_are_rejected() {
    for bad in [
        "",
        "/etc/passwd",
        "deps/../../etc/passwd",
        "deps/./x",
        "deps//x",
        "deps/generic/",
        "..",
        "deps/a\\b",
        "deps/a\0b",
    ] {
        let err = Tree::build(&[with_path(bad)], &TreeOptions::default()).unwrap_err();
        assert!(
            matches!(&err, TreeError::InvalidPath { path, .. } if path == bad),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("artifacts.lock.yaml:1"), "{err}");
    }
    let long = format!("deps/{}", "x".repeat(256));
    assert!(Tree::build(&[with_path(&long)], &TreeOptions::default()).is_err());
    assert_eq!(
        split_path("deps/pip/a.whl").unwrap(),
        ["deps", "pip", "a.whl"]
    );
}

#[test]
fn conflicts_are_rejected() {
    let cases: Vec<(Vec<Artifact>, &str, &str)> = vec![
        // a file where a directory is needed, both orders
        (
            vec![with_path("deps/generic/a"), with_path("deps/generic/a/b")],
            "deps/generic/a",
            "a file is where a directory is needed",
        ),
        (
            vec![with_path("deps/generic/a/b"), with_path("deps/generic/a")],
            "deps/generic/a",
            "a directory is where a file is needed",
        ),
        // two different artifacts at one path
        (
            vec![common::generic("f", "aa"), common::generic("f", "bb")],
            "deps/generic/f",
            "two different files",
        ),
        // an artifact where a generated file goes
        (
            vec![with_path("bom.json")],
            "bom.json",
            "two different files",
        ),
    ];
    for (artifacts, path, reason) in cases {
        let err = Tree::build(&artifacts, &TreeOptions::default()).unwrap_err();
        match &err {
            TreeError::Conflict { path: p, .. } => assert_eq!(p, path, "{err}"),
            other => panic!("expected a conflict at {path}, got {other}"),
        }
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn the_same_content_twice_is_one_file() {
    let a = common::npm_in(
        "a/package-lock.json",
        "ms",
        "2.1.3",
        "node_modules/ms",
        "24",
    );
    let b = common::npm_in(
        "b/package-lock.json",
        "ms",
        "2.1.3",
        "node_modules/ms",
        "24",
    );
    let tree = Tree::build(&[a, b], &TreeOptions::default()).unwrap();
    let id = tree.resolve("deps/npm/ms-2.1.3.tgz").unwrap();
    assert_eq!(tree.node(id), Some(&Node::Artifact(0)));
    assert_eq!(
        tree.children(tree.resolve("deps/npm").unwrap())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn fifty_thousand_entries() {
    const N: usize = 50_000;
    // 40,000 wheels in one directory plus 10,000 RPMs over 4 arches × 25 repos.
    let mut artifacts = Vec::with_capacity(N);
    for i in 0..40_000 {
        let file = format!("pkg{i:05}-1.0-py3-none-any.whl");
        artifacts.push(common::pip(&format!("pkg{i:05}"), "1.0", &file, "ab"));
    }
    for i in 0..10_000 {
        let arch = ["aarch64", "ppc64le", "s390x", "x86_64"][i % 4];
        let repo = format!("repo{:02}", (i / 4) % 25);
        let file = format!("p{i:05}-1-1.{arch}.rpm");
        artifacts.push(common::rpm(
            &format!("p{i:05}"),
            "1-1",
            arch,
            &repo,
            &file,
            strata_lock::RpmKind::Binary,
            "cd",
        ));
    }
    // Shuffle deterministically: ids must not depend on input order.
    let mut shuffled = artifacts.clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let opts = TreeOptions {
        for_output_dir: Some("/o".into()),
        ..TreeOptions::default()
    };
    let tree = Tree::build(&artifacts, &opts).unwrap();
    let tree2 = Tree::build(&shuffled, &opts).unwrap();
    // root, deps, pip, rpm, 4 arches, 4×(25 repos + repos.d + repo file), files, 2 generated
    assert_eq!(tree.len(), 1 + 1 + 2 + 4 + 4 * 27 + N + 2);
    assert_eq!(tree2.len(), tree.len());

    let pip = tree.resolve("deps/pip").unwrap();
    let kids = tree.children(pip).unwrap();
    assert_eq!(kids.len(), 40_000);
    let listed: Vec<&str> = kids.clone().map(|e| e.name).collect();
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "readdir is sorted");
    // readdir from an offset, as FUSE asks for it
    let e = kids.clone().nth(31_234).unwrap();
    assert_eq!(e.name, "pkg31234-1.0-py3-none-any.whl");
    assert_eq!(
        kids.get(39_999).unwrap().name,
        "pkg39999-1.0-py3-none-any.whl"
    );
    assert!(kids.get(40_000).is_none());

    for (i, a) in artifacts.iter().enumerate() {
        let id = tree.resolve(&a.path).unwrap();
        assert_eq!(tree.node(id), Some(&Node::Artifact(i)));
        let id2 = tree2.resolve(&a.path).unwrap();
        assert_eq!(id, id2, "ids do not depend on artifact order");
        let parent = tree.parent(id).unwrap();
        assert_eq!(tree.lookup(parent, &a.filename), Some(id));
    }
    assert_eq!(tree.lookup(pip, "nope.whl"), None);
    assert_eq!(tree.lookup(NodeId(u64::MAX), "x"), None);
    assert_eq!(tree.node(NodeId(0)), None);
    assert!(tree.children(tree.resolve("bom.json").unwrap()).is_none());
    assert_eq!(
        names(&tree, "deps/rpm/s390x").len(),
        26,
        "25 repos and repos.d"
    );
}
