#!/usr/bin/env python3
"""Helpers for bench/lazy/run.sh: lockfiles, the "build" reader, checks, the stat-latency
probe, read throughput, and the report.

Standard library only (plus bench/lib/benchlib.py). Every subcommand is called by run.sh;
none talks to anything but files, mounts and (through run.sh) the loopback upstream.
"""

import argparse
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (  # noqa: E402
    judge,
    load_json,
    percentile,
    report_problems,
    sha256_file,
    stats_line,
    stats_problems,
    summarize,
    write_json,
)
import benchlib  # noqa: E402

READ_BUF = 1 << 20


# ---------------------------------------------------------------------------------------
# gen / lock / fake-lock / lists


def cmd_gen(a):
    benchlib.gen_artifacts(a.dir, a.count, a.mean_size, a.spread, a.seed, a.prefix)
    return 0


def cmd_lock(a):
    """A lockfile for a manifest's files at an upstream, plus expected.json:
    {relpath in the output tree: {"sha256", "size", "url_path"}}."""
    files = load_json(a.manifest)["files"]
    if a.first is not None:
        files = files[: a.first]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    base = a.base_url.rstrip("/")
    expected = {}
    if a.format == "generic":
        lines = ["---", "metadata:", '  version: "1.0"', "artifacts:"]
        for f in files:
            lines.append(f"  - download_url: {base}/files/{f['name']}")
            lines.append(f"    checksum: sha256:{f['sha256']}")
            expected[f"deps/generic/{f['name']}"] = f
        text = "\n".join(lines) + "\n"
    else:  # pylock: wheels, with their sizes in the lockfile
        toml = ['lock-version = "1.0"', 'created-by = "strata-bench"', ""]
        for f in files:
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
            expected[f"deps/pip/{wheel}"] = f
        text = "\n".join(toml)
    with open(a.out, "w") as out:
        out.write(text)
    exp = {
        rel: {"sha256": f["sha256"], "size": f["size"], "url_path": f"/files/{f['name']}"}
        for rel, f in expected.items()
    }
    write_json(a.expected, exp)
    return 0


def cmd_fake_lock(a):
    """A generic lockfile of N entries with made-up digests (never opened: for ready time
    and memory)."""
    rng = random.Random(a.count)
    base = a.base_url.rstrip("/")
    with open(a.out, "w") as out:
        out.write('---\nmetadata:\n  version: "1.0"\nartifacts:\n')
        for i in range(a.count):
            digest = "%064x" % rng.getrandbits(256)
            out.write(f"  - download_url: {base}/files/pkg-{i:06d}/fake-{i:06d}-1.0.tar.gz\n")
            out.write(f"    checksum: sha256:{digest}\n")
    return 0


def cmd_lists(a):
    """The build's file lists: one fixed random order of all files; the p% build reads the
    first p% of it, in that order (so 10% ⊂ 50% ⊂ 100%)."""
    rels = sorted(load_json(a.expected))
    random.Random(a.seed).shuffle(rels)
    for p in a.percents:
        n = max(1, round(len(rels) * p / 100))
        with open(os.path.join(a.out, f"build-{p}.txt"), "w") as f:
            f.write("\n".join(rels[:n]) + "\n")
    return 0


def read_list(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


# ---------------------------------------------------------------------------------------
# build: the "build" (read whole files in list order, K threads), and its checks


def read_whole(path, buf):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(buf)
            if not got:
                return n
            n += got


def cmd_build(a):
    """Reads every listed file completely (1 MiB reads), in list order; with --jobs K, K
    threads take the next file from the list. Checks each file's byte count against the
    lockfile's size (exit 1 on any difference)."""
    exp = load_json(a.expected)
    rels = read_list(a.list)
    bad = []
    nbytes = [0]
    lock = threading.Lock()
    it = iter(rels)

    def worker():
        buf = bytearray(READ_BUF)
        while True:
            with lock:
                rel = next(it, None)
            if rel is None:
                return
            try:
                n = read_whole(os.path.join(a.root, rel), buf)
            except OSError as e:
                with lock:
                    bad.append(f"{rel}: {e}")
                continue
            with lock:
                nbytes[0] += n
                if n != exp[rel]["size"]:
                    bad.append(f"{rel}: read {n} bytes, expected {exp[rel]['size']}")

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if report_problems(f"build of {a.list} from {a.root}", bad, len(rels)):
        return 1
    print(f"{len(rels)} files, {nbytes[0]} bytes")
    return 0


def cmd_verify_sample(a):
    """sha256 of up to N files of the list (an even sample) against the lockfile digests."""
    exp = load_json(a.expected)
    rels = read_list(a.list)
    step = max(1, len(rels) // max(1, a.n))
    sample = {rel: exp[rel]["sha256"] for rel in rels[::step][: a.n]}
    return report_problems(
        f"sha256 sample under {a.root}", benchlib.verify_expected(sample, a.root), len(sample)
    )


def split_problems(stats, exp, rels, max_parts):
    """Split downloads: each listed file's bytes sent exactly once in all (its size), in 1 to
    `max_parts` requests, and nothing else requested."""
    problems = []
    seen = stats.get("paths", {})
    total = 0
    for rel in rels:
        f = exp[rel]
        got = seen.get(f["url_path"], {})
        gets, sent = got.get("get", 0), got.get("bytes_sent", 0)
        total += gets
        if not 1 <= gets <= max_parts:
            problems.append(f"{f['url_path']} requested {gets} times, expected 1-{max_parts}")
        if sent != f["size"]:
            problems.append(f"{f['url_path']}: {sent} bytes sent, its size is {f['size']}")
    if stats["total_requests"] != total:
        problems.append(f"{stats['total_requests']} requests in all, {total} for the listed files")
    return problems


def cmd_check_stats(a):
    """The upstream saw exactly the url paths of the listed files, each --each times (with
    --max-parts N: each file's bytes once, in 1 to N requests)."""
    exp = load_json(a.expected)
    stats = load_json(a.stats)
    rels = sorted(set(read_list(a.list))) if a.list else []
    paths = sorted({exp[rel]["url_path"] for rel in rels})
    if a.max_parts > 1:
        problems = split_problems(stats, exp, rels, a.max_parts)
    else:
        problems = stats_problems(stats, paths, a.each)
    if report_problems(f"upstream counters ({a.label})", problems):
        return 1
    print(stats_line(stats))
    return 0


def cmd_check_profile(a):
    """A recorded profile names exactly the files the build read."""
    want = set(read_list(a.list))
    got = []
    with open(a.profile) as f:
        for line in f:
            if line.strip():
                got.append(json.loads(line)["path"])
    problems = []
    if len(got) != len(set(got)):
        problems.append(f"{len(got) - len(set(got))} paths recorded more than once")
    if set(got) != want:
        problems.append(
            f"recorded {len(set(got))} paths, the build read {len(want)}; "
            f"missing {sorted(want - set(got))[:3]}, extra {sorted(set(got) - want)[:3]}"
        )
    return report_problems(f"profile {a.profile}", problems)


def cmd_summary_line(a):
    """The daemon log's last 'unmounted ...' summary and whether passthrough was on, as JSON."""
    text = open(a.log, errors="replace").read()
    out = {"passthrough": ", passthrough)" in text}
    for line in text.splitlines():
        if "strata: unmounted" in line and "opens" in line:
            out["summary"] = line.split("strata: ", 1)[1].strip()
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------------
# tput: warm sequential read throughput


def cmd_tput(a):
    """Reads the files once each in order (1 MiB reads) and prints the seconds (JSON); with
    --sha256, checks each file's digest while reading (for the warm-up pass)."""
    import hashlib

    buf = bytearray(READ_BUF)
    mv = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    bad = []
    digests = a.sha256.split(",") if a.sha256 else None
    for i, path in enumerate(a.files):
        h = hashlib.sha256() if digests else None
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                total += n
                if h is not None:
                    h.update(mv[:n])
        if h is not None and h.hexdigest() != digests[i]:
            bad.append(f"{path}: sha256 {h.hexdigest()}, expected {digests[i]}")
    secs = time.perf_counter() - t0
    if report_problems("tput read", bad, len(a.files)):
        return 1
    if a.bytes is not None and total != a.bytes:
        print(f"tput read: {total} bytes, expected {a.bytes}", file=sys.stderr)
        return 1
    print(json.dumps({"seconds": secs, "bytes": total}))
    return 0


# ---------------------------------------------------------------------------------------
# statlat: stat latency of cached entries while cold opens are in flight


def stat_each(paths, sizes, lat, bad):
    pc = time.perf_counter_ns
    for p in paths:
        t = pc()
        st = os.stat(p)
        lat.append(pc() - t)
        if st.st_size not in sizes[p] and len(bad) < 10:
            bad.append(f"{p}: stat size {st.st_size}, expected {sizes[p]}")


def lat_summary(lat_ns):
    v = sorted(lat_ns)
    us = lambda x: x / 1000  # noqa: E731
    return {
        "n": len(v),
        "p50_us": us(percentile(v, 50)),
        "p99_us": us(percentile(v, 99)),
        "p999_us": us(percentile(v, 99.9)),
        "max_us": us(v[-1]),
    }


def stat_phase(first, cached, others, sizes, seconds, bad):
    """One window: a first os.stat of each path of `first` (cached, never looked up: each is
    a FUSE LOOKUP answered by the daemon), then until `seconds` have passed, rounds of stat
    over `others` (uncached, size unknown, so never cached by the kernel: a daemon round trip
    each) and over `cached` (already looked up: the kernel answers)."""
    out = {"first": [], "uncached_repeat": [], "cached_repeat": []}
    end = time.perf_counter_ns() + int(seconds * 1e9)
    stat_each(first, sizes, out["first"], bad)
    while time.perf_counter_ns() < end:
        stat_each(others, sizes, out["uncached_repeat"], bad)
        stat_each(cached, sizes, out["cached_repeat"], bad)
    return {k: lat_summary(v) for k, v in out.items() if v}


def cmd_statlat(a):
    """os.stat latency through the mount, timed one by one with perf_counter_ns: first while
    --cold threads each open (and read one byte of) an uncached file, then with nothing in
    flight. The cached files are split in two halves, so that each window's first stats are
    real FUSE lookups. Checks the opens stayed in flight during the whole loaded window and
    all succeeded, and the sizes stat reports."""
    exp = load_json(a.expected)
    cached = [os.path.join(a.root, r) for r in read_list(a.cached)]
    cold = read_list(a.cold)
    others = [os.path.join(a.root, r) for r in read_list(a.others)]
    sizes = {os.path.join(a.root, r): (s["size"],) for r, s in exp.items()}
    for p in others:
        sizes[p] = (0, sizes[p][0])  # unknown until downloaded: 0 (procfs-style)
    half = len(cached) // 2
    first_loaded, first_idle = cached[:half], cached[half:]
    opens = [None] * len(cold)
    bad = []

    def opener(i, rel):
        t = time.perf_counter_ns()
        try:
            with open(os.path.join(a.root, rel), "rb") as f:
                f.read(1)
            opens[i] = (t, time.perf_counter_ns(), None)
        except OSError as e:
            opens[i] = (t, time.perf_counter_ns(), str(e))

    os.stat(os.path.dirname(cached[0]))  # the directories are looked up once, not measured
    threads = [threading.Thread(target=opener, args=(i, r)) for i, r in enumerate(cold)]
    for t in threads:
        t.start()
    time.sleep(a.settle)
    w0 = time.perf_counter_ns()
    loaded = stat_phase(first_loaded, first_loaded, others, sizes, a.seconds, bad)
    w1 = time.perf_counter_ns()
    for t in threads:
        t.join()
    idle = stat_phase(first_idle, first_idle, others, sizes, a.seconds, bad)
    failed = [f"{cold[i]}: {o[2]}" for i, o in enumerate(opens) if o[2]]
    early = [cold[i] for i, o in enumerate(opens) if not o[2] and o[1] < w1]
    problems = bad + failed
    if early:
        problems.append(
            f"{len(early)} of {len(cold)} cold opens finished before the stat window ended "
            f"(the upstream is not slow enough; raise its latency): {early[:3]}"
        )
    if report_problems("statlat", problems):
        return 1
    waits = sorted((o[1] - o[0]) / 1e6 for o in opens)
    out = {
        "loaded": loaded,
        "idle": idle,
        "cold_opens": len(cold),
        "cached_paths": len(cached),
        "other_paths": len(others),
        "window_s": (w1 - w0) / 1e9,
        "cold_open_ms": {"min": waits[0], "max": waits[-1]},
    }
    print(json.dumps(out))
    return 0


def cmd_rss(a):
    """VmHWM and VmRSS (KiB) of a process, as JSON."""
    out = {}
    with open(f"/proc/{a.pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    print(json.dumps(out))
    return 0


def cmd_walk(a):
    """Lists and stats every file under a directory (no opens); prints the count."""
    n = 0
    for dirpath, _dirs, names in os.walk(a.root):
        for name in names:
            os.stat(os.path.join(dirpath, name))
            n += 1
    if a.expect is not None and n < a.expect:
        print(f"walk: {n} files under {a.root}, expected at least {a.expect}", file=sys.stderr)
        return 1
    print(n)
    return 0


# ---------------------------------------------------------------------------------------
# report


def cmd_report(a):
    meta = load_json(a.meta)
    tiny = meta["params"]["tiny"]
    runs = {}
    with open(a.times) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            case, rep, secs = parts[0], int(parts[1]), float(parts[2])
            extra = json.loads(parts[3]) if len(parts) > 3 and parts[3] else {}
            runs.setdefault(case, []).append({"rep": rep, "seconds": secs, **extra})
    cases = {k: {"seconds": summarize([x["seconds"] for x in r]), "runs": r} for k, r in runs.items()}
    extras = {}
    if os.path.isdir(a.extras):
        for name in sorted(os.listdir(a.extras)):
            if name.endswith(".json"):
                extras[name.removesuffix(".json")] = load_json(os.path.join(a.extras, name))
    p = meta["params"]
    targets = []

    def target(label, value, limit, met, unit=""):
        targets.append({"label": label, "value": value, "target": limit, "unit": unit,
                        "met": None if tiny or met is None else bool(met)})

    out = []
    pr = out.append
    pr("")
    pr(f"strata mount benchmark ({p['mode']}): {p['count']} artifacts, {p['total_bytes'] / 1e6:.1f} MB, "
       f"upstream latency {p['latency_ms']} ms, {p['rate']}/s per connection, {p['reps']} reps"
       f"{' (TINY: a smoke run, the targets are not judged)' if tiny else ''}")
    pr("Total time, start to build done (seconds); ratio = median / median of eager (min/min in brackets)")
    hdr = f"{'build':<22} {'case':<16} {'min':>8} {'median':>8} {'max':>8} {'ratio':>16}"
    pr(hdr)
    pr("-" * len(hdr))
    ratios = []
    for k in p["build_jobs"]:
        for pct in p["percents"]:
            ek = f"eager.k{k}.p{pct}"
            if ek not in cases:
                continue
            e = cases[ek]["seconds"]
            for kind in ("eager", "lazy", "profile"):
                ck = f"{kind}.k{k}.p{pct}"
                if ck not in cases:
                    continue
                s = cases[ck]["seconds"]
                rmed, rmin = s["median"] / e["median"], s["min"] / e["min"]
                label = f"{pct}%, {'sequential' if k == 1 else f'{k} threads'}"
                rtxt = "" if kind == "eager" else f"{rmed:6.3f}x ({rmin:5.3f}x)"
                pr(f"{label:<22} {kind:<16} {s['min']:>8.3f} {s['median']:>8.3f} {s['max']:>8.3f} {rtxt:>16}")
                if kind != "eager":
                    r = {"build_jobs": k, "percent": pct, "case": kind, "ratio_of_medians": rmed,
                         "ratio_of_mins": rmin}
                    ratios.append(r)
                    if kind == "lazy" and pct == 10:
                        target(f"10% use, lazy / eager, build {label}", rmed, "<= 0.20", rmed <= 0.20, "x")
                    if kind == "profile" and pct == 100:
                        target(f"100% use, lazy with profile / eager, build {label}", rmed, "<= 1.10",
                               rmed <= 1.10, "x")
    for key in ("ready_5k", "ready_50k", "ready_tiny"):
        if key in cases:
            s = cases[key]["seconds"]
            pr(f"{'mount ready, ' + extras.get('ready', {}).get(key, key):<39} {s['min']:>8.3f} {s['median']:>8.3f} {s['max']:>8.3f}")
    if "ready_5k" in cases:
        med = cases["ready_5k"]["seconds"]["median"]
        target(f"mount ready, {p['ready_entries']} entries (median)", med * 1000, "< 100", med < 0.1, "ms")
    if "rss" in extras:
        r = extras["rss"]
        pr(f"daemon memory, {r['entries']} entries: VmHWM {r['VmHWM'] / 1024:.1f} MiB, VmRSS "
           f"{r['VmRSS'] / 1024:.1f} MiB (after mounting and stat of every file)")
        target(f"daemon VmHWM, {r['entries']} entries", r["VmHWM"] * 1024 / 1e6, "< 100",
               r["VmHWM"] * 1024 < 100e6, "MB")
    if "tput.direct" in cases:
        tp = extras.get("tput", {})
        tb = tp.get("bytes", 0)
        d = cases["tput.direct"]["seconds"]
        pr("")
        pr(f"Warm sequential read of {tp.get('files', '?')} files, {tb / 1e6:.0f} MB in all "
           f"(seconds; MB/s of the median; ratio = direct median / mount median)")
        for key, label in (("tput.direct", "store file, directly"),
                           ("tput.pt_sized", "mount, passthrough, sizes in lockfile"),
                           ("tput.pt_unsized", "mount, passthrough, no sizes"),
                           ("tput.nopt_sized", "mount, --no-passthrough, sizes"),
                           ("tput.nopt_unsized", "mount, --no-passthrough, no sizes")):
            if key not in cases:
                continue
            s = cases[key]["seconds"]
            ratio = d["median"] / s["median"]
            pt = tp.get("passthrough", {}).get(key)
            note = "" if pt is None else (" [passthrough on]" if pt else " [passthrough off]")
            pr(f"{label:<40} {s['min']:>8.3f} {s['median']:>8.3f} {s['max']:>8.3f} "
               f"{tb / s['median'] / 1e6:>8.0f} MB/s {ratio:6.1%}{note}")
            if key != "tput.direct":
                ratios.append({"case": key, "ratio_of_medians": ratio,
                               "ratio_of_mins": d["min"] / s["min"]})
                want = 0.9 if key.startswith("tput.pt") else 0.7
                target(f"warm read, {label}, vs direct", ratio * 100, f">= {want * 100:.0f}",
                       ratio >= want, "%")
    if "statlat" in extras:
        runs = extras["statlat"]["runs"]
        s0 = runs[0]
        pr("")
        pr(f"stat of {s0['cached_paths']} cached entries in a loop, {s0['cold_opens']} cold opens in flight "
           f"(window {s0['window_s']:.1f} s per run; each open waited "
           f"{min(r['cold_open_ms']['min'] for r in runs):.0f}-{max(r['cold_open_ms']['max'] for r in runs):.0f} ms), "
           f"then nothing in flight; {len(runs)} runs:")
        names = {"first": "first stat of a cached file (FUSE lookup)",
                 "uncached_repeat": "stat of an uncached file (size unknown: lookup every time)",
                 "cached_repeat": "stat of a cached file again (kernel cache)"}
        for i, s in enumerate(runs, 1):
            for key in ("loaded", "idle"):
                for kind, x in s[key].items():
                    pr(f"  run {i} {key:<6} {names[kind]:<60} n={x['n']:<7} p50 {x['p50_us']:7.1f} us  "
                       f"p99 {x['p99_us']:7.1f} us  max {x['max_us']:8.1f} us")
        p99s = sorted(r["loaded"]["first"]["p99_us"] for r in runs)
        med = p99s[len(p99s) // 2] if len(p99s) % 2 else (p99s[len(p99s) // 2 - 1] + p99s[len(p99s) // 2]) / 2
        unc = sorted(r["loaded"]["uncached_repeat"]["p99_us"] for r in runs if "uncached_repeat" in r["loaded"])
        if unc:
            um = unc[len(unc) // 2]
            target(f"stat p99 (uncached, daemon round trip), cold opens in flight (worst run {unc[-1] / 1000:.3f})",
                   um / 1000, "< 1", um < 1000, "ms")
        target(f"stat p99 (first lookup of cached files), cold opens in flight (worst run {p99s[-1] / 1000:.3f})",
               med / 1000, "< 1", med < 1000, "ms")
    if "multi" in cases:
        m = extras.get("multi", {})
        s = cases["multi"]["seconds"]
        pr("")
        pr(f"4 mounts on one cache, 4 builds reading the same {m.get('files')} files at once: "
           f"{s['median']:.3f} s median; upstream: {m.get('upstream')} (each path once: checked)")
    pr("")
    for t in targets:
        pr(f"target: {t['label']:<62} {t['value']:9.3f} {t['unit']:<2} (target {t['target']} {t['unit']}): "
           f"{judge(t['met'], tiny)}")
    result = {**meta, "cases": cases, "ratios": ratios, "targets": targets, "extras": extras}
    write_json(a.out, result)
    pr(f"\nresults: {a.out}")
    print("\n".join(out))
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
    g.add_argument("--prefix", default="bench")
    g.set_defaults(fn=cmd_gen)
    g = sub.add_parser("lock")
    g.add_argument("--manifest", required=True)
    g.add_argument("--base-url", required=True)
    g.add_argument("--format", choices=["generic", "pylock"], default="generic")
    g.add_argument("--first", type=int)
    g.add_argument("--out", required=True)
    g.add_argument("--expected", required=True)
    g.set_defaults(fn=cmd_lock)
    g = sub.add_parser("fake-lock")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--base-url", required=True)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=cmd_fake_lock)
    g = sub.add_parser("lists")
    g.add_argument("--expected", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--percents", type=int, nargs="+", required=True)
    g.set_defaults(fn=cmd_lists)
    g = sub.add_parser("build")
    g.add_argument("--root", required=True)
    g.add_argument("--list", required=True)
    g.add_argument("--expected", required=True)
    g.add_argument("--jobs", type=int, default=1)
    g.set_defaults(fn=cmd_build)
    g = sub.add_parser("verify-sample")
    g.add_argument("--root", required=True)
    g.add_argument("--list", required=True)
    g.add_argument("--expected", required=True)
    g.add_argument("--n", type=int, default=32)
    g.set_defaults(fn=cmd_verify_sample)
    g = sub.add_parser("check-stats")
    g.add_argument("--stats", required=True)
    g.add_argument("--expected", required=True)
    g.add_argument("--list")
    g.add_argument("--each", type=int, default=1)
    g.add_argument("--max-parts", type=int, default=1)
    g.add_argument("--label", default="")
    g.set_defaults(fn=cmd_check_stats)
    g = sub.add_parser("check-profile")
    g.add_argument("--profile", required=True)
    g.add_argument("--list", required=True)
    g.set_defaults(fn=cmd_check_profile)
    g = sub.add_parser("summary-line")
    g.add_argument("log")
    g.set_defaults(fn=cmd_summary_line)
    g = sub.add_parser("tput")
    g.add_argument("--bytes", type=int)
    g.add_argument("--sha256", help="comma-separated digests, one per file, to check while reading")
    g.add_argument("files", nargs="+")
    g.set_defaults(fn=cmd_tput)
    g = sub.add_parser("statlat")
    g.add_argument("--root", required=True)
    g.add_argument("--expected", required=True)
    g.add_argument("--cached", required=True)
    g.add_argument("--cold", required=True)
    g.add_argument("--others", required=True)
    g.add_argument("--seconds", type=float, default=1.5)
    g.add_argument("--settle", type=float, default=0.3)
    g.set_defaults(fn=cmd_statlat)
    g = sub.add_parser("rss")
    g.add_argument("pid")
    g.set_defaults(fn=cmd_rss)
    g = sub.add_parser("walk")
    g.add_argument("root")
    g.add_argument("--expect", type=int)
    g.set_defaults(fn=cmd_walk)
    g = sub.add_parser("report")
    g.add_argument("--times", required=True)
    g.add_argument("--meta", required=True)
    g.add_argument("--extras", required=True)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
