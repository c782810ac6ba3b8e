//! Lint rules: each with Dockerfiles that must and must not trigger it.

use strata_graph::lint::{Finding, Severity, lint};
use strata_graph::stages::{BuildOptions, analyze};

const SEED000_GOOD: &str = include_str!("../../strata/tests/fixtures/seed000-good/Containerfile");
const SEED000_POC: &str = include_str!("../../strata/tests/fixtures/seed000-poc/Containerfile");
const SEED001: &str = include_str!("../../strata/tests/fixtures/seed001/Dockerfile");

const PIN: &str = "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn run(text: &str, ignored: &[&str]) -> Vec<Finding> {
    let text = text.replace("PINNED", PIN);
    let df = strata_dockerfile::parse(&text).expect("parses");
    let graph = analyze(&df, &BuildOptions::default()).expect("graph");
    lint(&graph, &|s| ignored.contains(&s))
}

fn ids(findings: &[Finding]) -> Vec<(&'static str, usize)> {
    findings.iter().map(|f| (f.rule, f.line)).collect()
}

#[test]
fn seed_000_good_layout_has_no_findings() {
    let f = run(SEED000_GOOD, &[]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn seed_000_proof_of_concept_is_a_merged_package_db() {
    let f = run(SEED000_POC, &[]);
    assert_eq!(ids(&f), [("merged-package-db", 12)], "{f:#?}");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].message.contains("vscode"), "{}", f[0].message);
    assert!(f[0].fix.contains("dnf download"));
}

#[test]
fn seed_001_builder_only_warns_about_its_tag() {
    let f = run(SEED001, &[]);
    assert_eq!(ids(&f), [("unpinned-base", 2)], "{f:#?}");
}

#[test]
fn rules_positive_and_negative() {
    #[allow(clippy::type_complexity)]
    let cases: &[(&str, &str, &[(&str, usize)])] = &[
        // merged-package-db
        (
            "copying an installing stage's rpm db",
            "FROM PINNED AS a\nRUN dnf install -y x && dnf clean all\nFROM PINNED\nCOPY --from=a /var/lib/rpm /var/lib/rpm\n",
            &[("merged-package-db", 4)],
        ),
        (
            "root copy over own installs",
            "FROM PINNED AS a\nRUN apk add --no-cache x\nFROM PINNED\nRUN apk add --no-cache y\nCOPY --from=a / /\n",
            &[("merged-package-db", 5)],
        ),
        (
            "one root copy of a build stage is fine",
            "FROM PINNED AS a\nRUN apk add --no-cache x\nFROM scratch\nCOPY --from=a / /\n",
            &[],
        ),
        (
            "root copies of stages that install nothing are fine",
            "FROM PINNED AS a\nRUN make\nFROM PINNED AS b\nRUN make\nFROM PINNED\nCOPY --from=a / /\nCOPY --from=b / /\n",
            &[],
        ),
        (
            "copying package files is the fix",
            "FROM PINNED AS a\nRUN dnf download --destdir=/rpms x\nFROM PINNED\nCOPY --from=a /rpms/ /tmp/rpms/\nRUN dnf install -y /tmp/rpms/*.rpm && dnf clean all\n",
            &[],
        ),
        // context-copy-before-deps
        (
            "COPY . before pip install",
            "FROM PINNED\nWORKDIR /app\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n",
            &[("context-copy-before-deps", 3)],
        ),
        (
            "COPY . before npm ci",
            "FROM PINNED\nCOPY ./ /app/\nRUN cd /app && npm ci\n",
            &[("context-copy-before-deps", 2)],
        ),
        (
            "manifests first, then the code",
            "FROM PINNED\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\nRUN python -m compileall .\n",
            &[],
        ),
        // package-cache-left
        (
            "dnf without clean",
            "FROM PINNED\nRUN dnf install -y git\n",
            &[("package-cache-left", 2)],
        ),
        (
            "apt without lists removal",
            "FROM PINNED\nRUN apt-get update && apt-get install -y git\n",
            &[("package-cache-left", 2)],
        ),
        (
            "apk without --no-cache",
            "FROM PINNED\nRUN apk add git\n",
            &[("package-cache-left", 2)],
        ),
        (
            "pip with cache",
            "FROM PINNED\nRUN pip install flask\n",
            &[("package-cache-left", 2)],
        ),
        (
            "dnf clean all",
            "FROM PINNED\nRUN dnf install -y git && dnf clean all\n",
            &[],
        ),
        (
            "apt lists removed",
            "FROM PINNED\nRUN apt-get update && apt-get install -y git && rm -rf /var/lib/apt/lists/*\n",
            &[],
        ),
        (
            "apk --no-cache",
            "FROM PINNED\nRUN apk add --no-cache git\n",
            &[],
        ),
        (
            "pip --no-cache-dir",
            "FROM PINNED\nRUN pip install --no-cache-dir flask\n",
            &[],
        ),
        (
            "PIP_NO_CACHE_DIR env",
            "FROM PINNED\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n",
            &[],
        ),
        (
            "cache mount",
            "FROM PINNED\nRUN --mount=type=cache,target=/var/cache/dnf dnf install -y git\n",
            &[],
        ),
        // serial-downloads
        (
            "two downloads in one stage",
            "FROM PINNED\nRUN curl -fsSLO https://a.example/a.tgz\nRUN git clone https://b.example/b.git\n",
            &[("serial-downloads", 3)],
        ),
        (
            "downloads in one RUN",
            "FROM PINNED\nRUN wget https://a.example/a && wget https://b.example/b\n",
            &[("serial-downloads", 2)],
        ),
        (
            "a download and its checksum are one download",
            "FROM PINNED\nRUN curl -O https://a.example/a.tgz && curl -O https://a.example/a.tgz.sha256\n",
            &[],
        ),
        (
            "one download per stage",
            "FROM PINNED AS a\nRUN curl -O https://a.example/a\nFROM PINNED AS b\nRUN curl -O https://b.example/b\nFROM PINNED\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
            &[],
        ),
        // unused-arg
        (
            "unused stage ARG",
            "FROM PINNED\nARG VERSION=1\nRUN make\n",
            &[("unused-arg", 2)],
        ),
        (
            "used in RUN",
            "FROM PINNED\nARG VERSION=1\nRUN make V=$VERSION\n",
            &[],
        ),
        (
            "used with braces and modifiers",
            "FROM PINNED\nARG V\nRUN echo ${V:-x}\n",
            &[],
        ),
        (
            "used in COPY",
            "FROM PINNED\nARG SRC=a\nCOPY ${SRC} /x\n",
            &[],
        ),
        (
            "prefix of another name is not a use",
            "FROM PINNED\nARG V=1\nRUN echo $VERSION\n",
            &[("unused-arg", 2)],
        ),
        (
            "unused global ARG",
            "ARG G=1\nFROM PINNED\nRUN true\n",
            &[("unused-arg", 1)],
        ),
        (
            "global ARG used in FROM",
            "ARG TAG=x\nFROM alpine@sha256:${TAG}\n",
            &[],
        ),
        (
            "global ARG re-declared in a stage",
            "ARG G=1\nFROM PINNED\nARG G\nRUN echo $G\n",
            &[],
        ),
        (
            "proxy ARG is exempt",
            "FROM PINNED\nARG HTTP_PROXY\nRUN true\n",
            &[],
        ),
        // unreachable-stage
        (
            "stage nobody uses",
            "FROM PINNED AS old\nRUN true\nFROM PINNED AS new\nRUN true\n",
            &[("unreachable-stage", 1)],
        ),
        ("used via FROM", "FROM PINNED AS a\nFROM a\n", &[]),
        // unpinned-base
        ("tag", "FROM alpine:3.20\n", &[("unpinned-base", 1)]),
        ("no tag at all", "FROM alpine\n", &[("unpinned-base", 1)]),
        ("digest", "FROM PINNED\n", &[]),
        ("scratch", "FROM scratch\n", &[]),
        // copy-ignored-file
        (
            "ignored source",
            "FROM PINNED\nCOPY secret.env /app/\n",
            &[("copy-ignored-file", 2)],
        ),
        ("included source", "FROM PINNED\nCOPY app.py /app/\n", &[]),
        // script-copied-to-run
        (
            "installer copied then run with sh",
            "FROM PINNED\nCOPY scripts/install.sh /usr/local/sbin/install\nRUN sh -e /usr/local/sbin/install 1 2\n",
            &[("script-copied-to-run", 2)],
        ),
        (
            "into a directory, run directly, exec form",
            "FROM PINNED\nCOPY tools/setup.sh /opt/\nRUN [\"/opt/setup.sh\", \"--all\"]\n",
            &[("script-copied-to-run", 2)],
        ),
        (
            "sourced, quoted",
            "FROM PINNED\nCOPY env.sh /etc/env.sh\nRUN . \"/etc/env.sh\" && make\n",
            &[("script-copied-to-run", 2)],
        ),
        (
            "the bind mount is the fix",
            "FROM PINNED\nRUN --mount=type=bind,source=scripts/install.sh,target=/i sh /i\n",
            &[],
        ),
        (
            "also the entrypoint: needed at run time",
            "FROM PINNED\nCOPY run.sh /run.sh\nRUN sh /run.sh --check\nENTRYPOINT [\"/run.sh\"]\n",
            &[],
        ),
        (
            "a binary the RUN executes stays (it is the image's, not a script)",
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
            &[],
        ),
        (
            "data read by the RUN is not a script",
            "FROM PINNED\nCOPY list.txt /etc/list.txt\nRUN xargs echo < /etc/list.txt\n",
            &[],
        ),
        (
            "a later stage copies it out",
            "FROM PINNED AS a\nCOPY x.sh /x.sh\nRUN sh /x.sh\nFROM PINNED\nCOPY --from=a /x.sh /x.sh\n",
            &[],
        ),
        (
            "a copy with --chmod is left alone",
            "FROM PINNED\nCOPY --chmod=755 x.sh /x.sh\nRUN /x.sh\n",
            &[],
        ),
        (
            "directories and globs are left alone",
            "FROM PINNED\nCOPY scripts/ /s/\nCOPY *.sh /t/\nRUN sh /s/a.sh && sh /t/b.sh\n",
            &[],
        ),
    ];
    for (name, text, want) in cases {
        let f = run(text, &["secret.env"]);
        assert_eq!(ids(&f), *want, "{name}: {f:#?}");
    }
}

#[test]
fn every_rule_has_a_stable_id_severity_and_fix() {
    let ids: Vec<&str> = strata_graph::lint::RULES.iter().map(|r| r.0).collect();
    for want in [
        "merged-package-db",
        "context-copy-before-deps",
        "package-cache-left",
        "serial-downloads",
        "unused-arg",
        "copy-ignored-file",
        "unreachable-stage",
        "unpinned-base",
    ] {
        assert!(ids.contains(&want), "{want}");
    }
    let f = run("FROM alpine\nARG X\nRUN dnf install -y a\n", &[]);
    assert!(f.iter().all(|f| !f.fix.is_empty() && !f.message.is_empty()));
}
