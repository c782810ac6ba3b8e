#!/usr/bin/env python3
"""Helpers for bench/fetch/run.sh: data generation, lockfiles, verification, stats, report.

Standard library only. Every subcommand is called by run.sh; none talks to anything but
files and (through run.sh) the loopback upstream.
"""

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (  # noqa: E402  (shared with the other benchmarks)
    judge,
    load_json,
    report_problems,
    stats_line,
    stats_problems,
    summarize,
    verify_expected,
    write_json,
    write_random,
)
import benchlib  # noqa: E402


# ---------------------------------------------------------------------------------------
# gen: the artifacts (reused between runs when the parameters match)


def cmd_gen(a):
    benchlib.gen_artifacts(a.dir, a.count, a.mean_size, a.spread, a.seed)
    return 0


def cmd_gen_big(a):
    manifest_path = os.path.join(a.dir, "manifest.json")
    files_dir = os.path.join(a.dir, "files")
    name = "big.bin"
    try:
        old = load_json(manifest_path)
        if old["files"][0]["size"] == a.size == os.path.getsize(os.path.join(files_dir, name)):
            print(f"reusing the {a.size / 1e6:.0f} MB artifact in {a.dir}")
            return 0
    except (OSError, ValueError, KeyError, IndexError):
        pass
    os.makedirs(files_dir, exist_ok=True)
    h = hashlib.sha256()
    write_random(os.path.join(files_dir, name), a.size, h)
    write_json(
        manifest_path,
        {"params": {"size": a.size}, "files": [{"name": name, "size": a.size, "sha256": h.hexdigest()}]},
    )
    print(f"generated a {a.size / 1e6:.0f} MB artifact in {a.dir}")
    return 0


# ---------------------------------------------------------------------------------------
# lock: lockfiles, curl config and expected digests for one upstream port


def cmd_lock(a):
    files = load_json(a.manifest)["files"]
    os.makedirs(a.out, exist_ok=True)
    base = a.base_url.rstrip("/")
    generic, pip = [], []
    for i, f in enumerate(files):
        (pip if a.pylock_mix and i % 3 == 2 else generic).append(f)

    strata_expected = {}  # output path relative to strata's --output -> sha256
    baseline_expected = {}  # file name in the baseline's flat dir -> sha256
    url_paths = []
    lines = ["---", "metadata:", '  version: "1.0"', "artifacts:"]
    for f in generic:
        lines.append(f"  - download_url: {base}/files/{f['name']}")
        lines.append(f"    checksum: sha256:{f['sha256']}")
        strata_expected[f"deps/generic/{f['name']}"] = f["sha256"]
    lockfiles = [os.path.join(a.out, "artifacts.lock.yaml")]
    with open(lockfiles[0], "w") as out:
        out.write("\n".join(lines) + "\n")
    if pip:
        toml = ['lock-version = "1.0"', 'created-by = "strata-bench"', ""]
        for f in pip:
            stem = f["name"].removesuffix(".bin").replace("-", "_")
            wheel = f"{stem}-1.0-py3-none-any.whl"
            toml += [
                "[[packages]]",
                f'name = "{stem.replace("_", "-")}"',
                'version = "1.0"',
                f'wheels = [{{ name = "{wheel}", url = "{base}/files/{f["name"]}", '
                f'size = {f["size"]}, hashes = {{ sha256 = "{f["sha256"]}" }} }}]',
                "",
            ]
            strata_expected[f"deps/pip/{wheel}"] = f["sha256"]
        lockfiles.append(os.path.join(a.out, "pylock.toml"))
        with open(lockfiles[1], "w") as out:
            out.write("\n".join(toml))
    with open(os.path.join(a.out, "curl.cfg"), "w") as out:
        for f in files:
            out.write(f'url = "{base}/files/{f["name"]}"\noutput = "{f["name"]}"\n')
            baseline_expected[f["name"]] = f["sha256"]
            url_paths.append(f"/files/{f['name']}")
    write_json(os.path.join(a.out, "strata-expected.json"), strata_expected)
    write_json(os.path.join(a.out, "baseline-expected.json"), baseline_expected)
    write_json(os.path.join(a.out, "url-paths.json"), url_paths)
    print(" ".join(lockfiles))
    return 0


# ---------------------------------------------------------------------------------------
# verify: every expected file is there with the right sha256 (as Hermeto checks downloads)


def cmd_verify(a):
    expected = load_json(a.expected)
    return report_problems(f"verify: files in {a.dir}", verify_expected(expected, a.dir), len(expected))


# ---------------------------------------------------------------------------------------
# check-stats / check-summary: correctness of a strata run (requests to upstream, summary)


def cmd_check_stats(a):
    stats = load_json(a.stats)
    paths = load_json(a.url_paths)
    problems = [] if a.each is None else stats_problems(stats, paths, a.each)
    if report_problems(f"check-stats ({a.label}): upstream counters", problems):
        return 1
    print(stats_line(stats))
    return 0


def cmd_check_summary(a):
    s = load_json(a.summary)
    problems = []
    if s.get("failed"):
        problems.append(f"{len(s['failed'])} artifacts failed: {s['failed'][:3]}")
    if s.get("artifacts") != a.count:
        problems.append(f"artifacts={s.get('artifacts')}, expected {a.count}")
    want_dl = a.count if a.mode == "cold" else 0
    if s.get("downloaded") != want_dl:
        problems.append(f"downloaded={s.get('downloaded')}, expected {want_dl}")
    if a.mode == "warm" and s.get("from_cache") != a.count:
        problems.append(f"from_cache={s.get('from_cache')}, expected {a.count}")
    if problems:
        print(f"check-summary ({a.mode}): strata's summary is wrong:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    return 0


def cmd_maxrss(a):
    with open(a.file) as f:
        for line in f:
            if "Maximum resident set size" in line:
                print(line.rsplit(":", 1)[1].strip())
                return 0
    print(f"no 'Maximum resident set size' in {a.file}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------
# report: table + results.json

CASES = [
    # key, label
    ("strata_cold", "strata cold"),
    ("seq_curl", "sequential curl + sha256"),
    ("par5_curl", "5-way curl + sha256"),
    ("strata_warm", "strata warm"),
    ("cp_r", "cp -r of the output"),
    ("strata_big", "strata cold, 1 big artifact"),
]

# (label, numerator case, denominator case, target or None)
RATIOS = [
    ("cold vs 5-way (x faster)", "par5_curl", "strata_cold", 2.5),
    ("cold vs sequential (x faster)", "seq_curl", "strata_cold", None),
    ("warm vs cp -r (x faster)", "cp_r", "strata_warm", 20.0),
]

RSS_TARGET_BYTES = 64 * 1000 * 1000  # "64 MB", read strictly (decimal)


def cmd_report(a):
    meta = load_json(a.meta)
    runs = {}
    with open(a.times) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            case, rep, secs = parts[0], int(parts[1]), float(parts[2])
            extra = json.loads(parts[3]) if len(parts) > 3 and parts[3] else {}
            runs.setdefault(case, []).append({"rep": rep, "seconds": secs, **extra})

    cases = {}
    extra = [(k, f"strata cold --jobs {k.removeprefix('strata_cold_j')}") for k in runs
             if k.startswith("strata_cold_j")]
    for key, label in CASES + extra:
        if key not in runs:
            continue
        r = runs[key]
        c = {"label": label, "seconds": summarize([x["seconds"] for x in r]), "runs": r}
        rss = [x["maxrss_kb"] for x in r if "maxrss_kb" in x]
        if rss:
            c["maxrss_kb"] = summarize(rss)
        cases[key] = c

    tiny = meta["params"]["tiny"]
    ratios = []
    for label, num, den, target in RATIOS:
        if num in cases and den in cases:
            med = cases[num]["seconds"]["median"] / cases[den]["seconds"]["median"]
            mn = cases[num]["seconds"]["min"] / cases[den]["seconds"]["min"]
            ratios.append({
                "label": label, "baseline": num, "strata": den,
                "ratio_of_medians": med, "ratio_of_mins": mn, "target": target,
                "met": None if target is None else med >= target,
            })
    rss_checks = []
    for key in ("strata_big", "strata_cold"):
        if key in cases and "maxrss_kb" in cases[key]:
            peak = cases[key]["maxrss_kb"]["max"] * 1024
            rss_checks.append({
                "label": f"peak RSS, {cases[key]['label']}",
                "case": key,
                "peak_bytes": peak,
                "target_bytes": RSS_TARGET_BYTES,
                "met": peak < RSS_TARGET_BYTES,
            })

    if tiny:  # a smoke run: the numbers say nothing about the targets
        for r in ratios + rss_checks:
            r["met"] = None
    result = {**meta, "cases": cases, "ratios": ratios, "rss": rss_checks}
    write_json(a.out, result)

    # The table.
    p = meta["params"]
    print()
    print(f"strata fetch benchmark: {p['count']} artifacts, {p['total_bytes'] / 1e6:.1f} MB, "
          f"upstream latency {p['latency_ms']} ms, rate {p['rate']}/connection, "
          f"{p['reps']} reps (warm, cp -r: {p['reps'] * p['fast_reps']} samples)"
          f"{' (TINY: a smoke run, the ratios mean nothing)' if tiny else ''}")
    hdr = f"{'case':<44} {'min s':>9} {'median s':>9} {'max s':>9} {'peak RSS':>10}"
    print(hdr)
    print("-" * len(hdr))
    for key, c in cases.items():
        s = c["seconds"]
        label = c["label"]
        if key == "strata_big":
            label = f"{label} ({p['big_bytes'] / 1e6:.0f} MB)"
        rss = f"{c['maxrss_kb']['max'] / 1024:.1f} MiB" if "maxrss_kb" in c else ""
        print(f"{label:<44} {s['min']:>9.3f} {s['median']:>9.3f} {s['max']:>9.3f} {rss:>10}")
    print()
    for r in ratios:
        verdict = "" if r["target"] is None else (
            f"target >= {r['target']:g}x: {judge(r['met'], tiny)}")
        print(f"{r['label']:<34} median {r['ratio_of_medians']:6.2f}x  min {r['ratio_of_mins']:6.2f}x  {verdict}")
    for r in rss_checks:
        print(f"{r['label']:<50} {r['peak_bytes'] / 1e6:6.1f} MB  target < 64 MB: "
              f"{judge(r['met'], tiny)}")
    print(f"\nresults: {a.out}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--dir", required=True)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--mean-size", type=int, required=True)
    g.add_argument("--spread", type=float, default=0.5)
    g.add_argument("--seed", type=int, default=1)
    g.set_defaults(fn=cmd_gen)
    g = sub.add_parser("gen-big")
    g.add_argument("--dir", required=True)
    g.add_argument("--size", type=int, required=True)
    g.set_defaults(fn=cmd_gen_big)
    g = sub.add_parser("lock")
    g.add_argument("--manifest", required=True)
    g.add_argument("--base-url", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--pylock-mix", action="store_true")
    g.set_defaults(fn=cmd_lock)
    g = sub.add_parser("verify")
    g.add_argument("expected")
    g.add_argument("dir")
    g.set_defaults(fn=cmd_verify)
    g = sub.add_parser("check-stats")
    g.add_argument("--stats", required=True)
    g.add_argument("--url-paths", required=True)
    g.add_argument("--each", type=int)
    g.add_argument("--label", default="")
    g.set_defaults(fn=cmd_check_stats)
    g = sub.add_parser("check-summary")
    g.add_argument("--summary", required=True)
    g.add_argument("--mode", choices=["cold", "warm"], required=True)
    g.add_argument("--count", type=int, required=True)
    g.set_defaults(fn=cmd_check_summary)
    g = sub.add_parser("maxrss")
    g.add_argument("file")
    g.set_defaults(fn=cmd_maxrss)
    g = sub.add_parser("report")
    g.add_argument("--times", required=True)
    g.add_argument("--meta", required=True)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
