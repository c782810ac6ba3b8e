//! Stage DAG, levels, critical path and target pruning, table-driven.

use std::collections::BTreeMap;

use strata_graph::GraphError;
use strata_graph::dag::schedule;
use strata_graph::stages::{Base, BuildOptions, DepKind, Graph, analyze};

fn graph(text: &str, target: Option<&str>, args: &[(&str, &str)]) -> Result<Graph, GraphError> {
    let df = strata_dockerfile::parse(text).expect("parses");
    let opts = BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        target: target.map(str::to_string),
    };
    analyze(&df, &opts)
}

fn names(g: &Graph, ids: &[usize]) -> Vec<String> {
    ids.iter().map(|&i| g.stages[i].name.clone()).collect()
}

struct Case {
    name: &'static str,
    text: &'static str,
    target: Option<&'static str>,
    levels: &'static [&'static [&'static str]],
    critical: &'static [&'static str],
    width: usize,
}

const SEED000: &str = "\
FROM fedora:40 AS base
FROM base AS dl-vscode
RUN dnf download code
FROM base AS dl-edge
RUN dnf download microsoft-edge-stable
FROM base AS fetch-starship
RUN curl -O https://example.com/starship.tgz
FROM base AS image
COPY --from=dl-vscode /rpms/ /tmp/rpms/
COPY --from=dl-edge /rpms/ /tmp/rpms/
COPY --from=fetch-starship /usr/bin/starship /usr/bin/
";

#[test]
fn levels_and_critical_paths() {
    let cases = [
        Case {
            name: "seed 000 fan-out/fan-in",
            text: SEED000,
            target: None,
            levels: &[
                &["base"],
                &["dl-vscode", "dl-edge", "fetch-starship"],
                &["image"],
            ],
            critical: &["base", "dl-vscode", "image"],
            width: 3,
        },
        Case {
            name: "linear chain (seed 001)",
            text: "FROM ubi9 AS a\nFROM a AS b\nFROM b AS c\nFROM c AS d\n",
            target: None,
            levels: &[&["a"], &["b"], &["c"], &["d"]],
            critical: &["a", "b", "c", "d"],
            width: 1,
        },
        Case {
            name: "unnamed stages are named by index; COPY --from=<index>",
            text: "FROM alpine\nRUN x\nFROM scratch\nCOPY --from=0 /x /x\n",
            target: None,
            levels: &[&["0"], &["1"]],
            critical: &["0", "1"],
            width: 1,
        },
        Case {
            name: "RUN --mount from= makes an edge",
            text: "FROM alpine AS tools\nFROM alpine AS app\nRUN --mount=type=bind,from=tools,source=/bin,target=/t ls /t\n",
            target: None,
            levels: &[&["tools"], &["app"]],
            critical: &["tools", "app"],
            width: 1,
        },
        Case {
            name: "longest path decides the level",
            text: "FROM a AS x\nFROM x AS y\nFROM scratch AS z\nCOPY --from=x / /x\nCOPY --from=y / /y\n",
            target: None,
            levels: &[&["x"], &["y"], &["z"]],
            critical: &["x", "y", "z"],
            width: 1,
        },
        Case {
            name: "--target prunes what it does not need",
            text: SEED000,
            target: Some("dl-edge"),
            levels: &[&["base"], &["dl-edge"]],
            critical: &["base", "dl-edge"],
            width: 1,
        },
        Case {
            name: "target names are case-insensitive",
            text: "FROM alpine AS Build\nFROM alpine AS other\n",
            target: Some("BUILD"),
            levels: &[&["build"]],
            critical: &["build"],
            width: 1,
        },
        Case {
            name: "image names that look like later stages stay images",
            text: "FROM later AS first\nFROM alpine AS later\n",
            target: None,
            levels: &[&["later"]],
            critical: &["later"],
            width: 1,
        },
    ];
    for c in cases {
        let g = graph(c.text, c.target, &[]).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let s = schedule(&g);
        let levels: Vec<Vec<String>> = s.levels.iter().map(|l| names(&g, l)).collect();
        let want: Vec<Vec<String>> = c
            .levels
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(levels, want, "{}: levels", c.name);
        assert_eq!(
            names(&g, &s.critical_path),
            c.critical,
            "{}: critical path",
            c.name
        );
        assert_eq!(s.max_parallelism, c.width, "{}: width", c.name);
    }
}

#[test]
fn global_args_expand_from_with_overrides() {
    let text = "ARG REG=registry.example\nARG TAG=40\nARG IMAGE=${REG}/fedora:${TAG}\nFROM ${IMAGE} AS base\nFROM base\n";
    let g = graph(text, None, &[]).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "registry.example/fedora:40".into(),
            pinned: false
        }
    );
    let g = graph(text, None, &[("TAG", "41")]).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "registry.example/fedora:41".into(),
            pinned: false
        }
    );
    let g = graph(text, None, &[("IMAGE", "alpine@sha256:abc")]).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "alpine@sha256:abc".into(),
            pinned: true
        }
    );
    // FROM ${X} can name a stage.
    let g = graph("ARG B=build\nFROM alpine AS build\nFROM ${B}\n", None, &[]).unwrap();
    assert_eq!(g.stages[1].base, Base::Stage(0));
    assert_eq!(g.stages[1].deps[0].kind, DepKind::From);
    // FROM scratch is a root.
    let g = graph("FROM scratch\n", None, &[]).unwrap();
    assert_eq!(g.stages[0].base, Base::Scratch);
}

#[test]
fn copy_from_expands_args_and_images_are_not_edges() {
    let g = graph(
        "FROM alpine AS a\nFROM alpine AS b\nARG SRC=a\nCOPY --from=${SRC} /x /x\nCOPY --from=busybox:1 /bin/sh /sh\n",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(g.stages[1].deps.len(), 1);
    assert_eq!(g.stages[1].deps[0].stage, 0);
    assert_eq!(g.stages[1].deps[0].kind, DepKind::CopyFrom);
    assert_eq!(g.stages[1].deps[0].line, 4);
}

#[test]
fn errors_name_the_line() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("RUN x\nFROM a\n", None, "line 1"),
        ("ARG X\nFROM ${X}\n", None, "line 2: base name"),
        ("FROM a AS x\nFROM b AS x\n", None, "duplicate stage name"),
        (
            "FROM a\nCOPY --from=0 /x /y\n",
            None,
            "refers to current or future",
        ),
        ("FROM a AS x\nFROM b\n", Some("nope"), "target stage `nope`"),
        (
            "FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n",
            None,
            "circular dependency",
        ),
        (
            "FROM a\nRUN --mount=type=cache ls\n",
            None,
            "line 2: bad --mount",
        ),
        ("ARG X=1\n", None, "no FROM"),
    ];
    for (text, target, want) in cases {
        let e = graph(text, *target, &[]).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}
