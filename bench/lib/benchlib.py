"""Helpers shared by the bench/*/bench.py scripts: files, digests, generated artifacts,
expected-digest checks, upstream counter checks and summaries. Standard library only.

Import it with:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import benchlib
"""

import hashlib
import json
import os
import random
import statistics
import sys

CHUNK = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def load_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def write_random(path, size, h=None):
    """Writes `size` random bytes to `path` (atomically), feeding them to `h` if given."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 16 * CHUNK))
            if h is not None:
                h.update(b)
            f.write(b)
            left -= len(b)
    os.replace(tmp, path)


def gen_artifacts(dir, count, mean_size, spread=0.5, seed=1, prefix="bench"):
    """`count` files of random bytes in DIR/files (sizes uniform in mean ± spread·mean) and
    DIR/manifest.json listing name, size and sha256. Reused when the parameters match."""
    params = {"count": count, "mean_size": mean_size, "spread": spread, "seed": seed}
    if prefix != "bench":
        params["prefix"] = prefix
    manifest_path = os.path.join(dir, "manifest.json")
    files_dir = os.path.join(dir, "files")
    try:
        old = load_json(manifest_path)
        if old["params"] == params and all(
            os.path.getsize(os.path.join(files_dir, f["name"])) == f["size"] for f in old["files"]
        ):
            total = sum(f["size"] for f in old["files"])
            print(f"reusing {len(old['files'])} artifacts ({total / 1e6:.1f} MB) in {dir}")
            return old
    except (OSError, ValueError, KeyError):
        pass
    os.makedirs(files_dir, exist_ok=True)
    rng = random.Random(seed)
    lo = max(1, int(mean_size * (1 - spread)))
    hi = int(mean_size * (1 + spread))
    files = []
    for i in range(count):
        name = f"{prefix}-{i:04d}.bin"
        size = rng.randint(lo, hi)
        h = hashlib.sha256()
        write_random(os.path.join(files_dir, name), size, h)
        files.append({"name": name, "size": size, "sha256": h.hexdigest()})
    manifest = {"params": params, "files": files}
    write_json(manifest_path, manifest)
    total = sum(f["size"] for f in files)
    print(f"generated {len(files)} artifacts ({total / 1e6:.1f} MB) in {dir}")
    return manifest


def verify_expected(expected, dir):
    """Checks every `relpath -> sha256` of `expected` under `dir`; returns the problems."""
    bad = []
    for rel, digest in sorted(expected.items()):
        path = os.path.join(dir, rel)
        try:
            actual = sha256_file(path)
        except OSError as e:
            bad.append(f"{path}: {e.strerror}")
            continue
        if actual != digest:
            bad.append(f"{path}: sha256 {actual}, expected {digest}")
    return bad


def report_problems(what, problems, total=None):
    """Prints up to 10 problems to stderr; returns 1 if there were any, else 0."""
    if not problems:
        return 0
    of = f" of {total}" if total is not None else ""
    print(f"{what}: {len(problems)}{of} wrong:", file=sys.stderr)
    for p in problems[:10]:
        print(f"  {p}", file=sys.stderr)
    return 1


def stats_problems(stats, paths, each):
    """Upstream counters (GET /_upstream/stats) against: every path in `paths` requested
    exactly `each` times, and nothing else requested."""
    problems = []
    for p in paths:
        got = stats.get("paths", {}).get(p, {}).get("get", 0)
        if got != each:
            problems.append(f"{p} requested {got} times, expected {each}")
    want_total = each * len(paths)
    if stats["total_requests"] != want_total:
        problems.append(f"{stats['total_requests']} requests in all, expected {want_total}")
    return problems


def stats_line(stats):
    return (
        f"requests={stats['total_requests']} connections={stats['connections']} "
        f"max_conc_conn={stats['max_concurrent_connections']} "
        f"max_conc_req={stats['max_concurrent_requests']} bytes={stats['bytes_sent']}"
    )


def summarize(values):
    v = sorted(values)
    return {
        "n": len(v),
        "min": v[0],
        "median": statistics.median(v),
        "max": v[-1],
        "mean": statistics.fmean(v),
        "values": values,
    }


def percentile(sorted_values, q):
    """The q-th percentile (0..100) of sorted values, nearest rank."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def judge(met, tiny):
    if tiny:
        return "not judged (tiny)"
    return "met" if met else "MISSED"
