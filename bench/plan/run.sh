#!/usr/bin/env bash
# bench/plan/run.sh: `strata plan` context hashing, cold and warm, against the baseline
# `git ls-files -z | xargs -0 sha256sum`, side by side on one generated context.
#
# The context: a .dockerignore excluding .git, and --files files (100,000 by default, sizes 1..19 KiB, ~1 GB) of random bytes in
# 100 directories, committed to a git repository (for the baseline's `git ls-files`). The
# Containerfile (outside the context) is `FROM scratch` + `COPY . /ctx/`, so every file is
# selected. Generated once per mode and reused.
#
# Cases (each repeated --reps times, interleaved rep by rep):
#   strata_cold   strata plan with an empty stat cache (the page cache is warm, as for the
#                 baseline: this measures hashing, not the disk)
#   strata_warm   strata plan again with the stat cache the cold run wrote
#   baseline      git ls-files -z | xargs -0 sha256sum >/dev/null (in the context)
#   buildkit_cold `docker build` (Debian's /usr/bin/docker, DOCKER_BUILDKIT=1) of the same
#                 Containerfile after `docker builder prune --filter type=source.local`: the
#                 whole context is transferred and checksummed again (the COPY result itself
#                 stays cached after the first run, so this is BuildKit's context transfer)
#   buildkit_warm the same build again: BuildKit's incremental transfer (fsutil stats every
#                 file and sends only changes), COPY cached
# The BuildKit cases run --docker-reps times (default 2; cold transfers of 1 GB are slow)
# when a Docker engine answers at $STRATA_DOCKER_HOST or $DOCKER_HOST (see
# scripts/start-dockerd.sh), else they are skipped with a note.
# Correctness (fails the script): cold and warm keys are equal; the warm run hashes 0 files;
# after one file's content changes, a run hashes exactly 1 file and the key changes.
# Wall-clock times are reported, never asserted. Target: warm < 0.5 s at 100,000 files.
# The load average is recorded before and after (timings on a loaded machine are noisy).
#
# Usage: bench/plan/run.sh [--tiny] [--reps N] [--docker-reps N] [--no-docker] [--files N]
#                          [--work-dir DIR] [--bin-dir DIR]
#   --tiny   2,000 files (~20 MB), 1 rep: a smoke run for CI (seconds)
# Results: <work-dir>/<mode>/results.json and a markdown table on stdout.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tiny=0
reps=""
docker_reps=""
docker=1
files=""
work=${TMPDIR:-/tmp}/strata-bench-plan
bin_dir=${CARGO_TARGET_DIR:-$repo/target}/release

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --tiny) tiny=1 ;;
        --reps) need_arg "$@"; reps=$2; shift ;;
        --docker-reps) need_arg "$@"; docker_reps=$2; shift ;;
        --no-docker) docker=0 ;;
        --files) need_arg "$@"; files=$2; shift ;;
        --work-dir) need_arg "$@"; work=$2; shift ;;
        --bin-dir) need_arg "$@"; bin_dir=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ $tiny == 1 ]]; then
    mode=tiny; files=${files:-2000}; reps=${reps:-1}; docker_reps=${docker_reps:-1}
else
    mode=full; files=${files:-100000}; reps=${reps:-5}; docker_reps=${docker_reps:-2}
fi
docker_host=${STRATA_DOCKER_HOST:-${DOCKER_HOST:-}}
if [[ $docker == 1 ]] && { [[ -z $docker_host || ! -x /usr/bin/docker ]] ||
    ! DOCKER_HOST=$docker_host /usr/bin/docker version >/dev/null 2>&1; }; then
    echo "run.sh: no Docker engine (set STRATA_DOCKER_HOST, see scripts/start-dockerd.sh): BuildKit cases skipped" >&2
    docker=0
fi

strata=$bin_dir/strata
if [[ ! -x $strata ]]; then
    echo "building strata (release)..." >&2
    (cd "$repo" && cargo build --release -q -p strata)
fi

out=$work/$mode
mkdir -p "$out"
exec python3 - "$strata" "$out" "$files" "$reps" "$docker" "$docker_host" "$docker_reps" <<'PY'
import json, os, random, shutil, statistics, subprocess, sys, time

strata, out, nfiles, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
docker, docker_host, docker_reps = sys.argv[5] == "1", sys.argv[6], int(sys.argv[7])
load_before = os.getloadavg()
ctx = os.path.join(out, "context")
stamp = os.path.join(out, f"context.{nfiles}.done")
dockerfile = os.path.join(out, "Containerfile")
with open(dockerfile, "w") as f:
    f.write("FROM scratch\nCOPY . /ctx/\n")

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)

if not os.path.exists(stamp):
    shutil.rmtree(ctx, ignore_errors=True)
    os.makedirs(ctx)
    rng = random.Random(42)
    t = time.time()
    total = 0
    for i in range(nfiles):
        d = os.path.join(ctx, f"d{i % 100:03d}")
        os.makedirs(d, exist_ok=True)
        size = rng.randint(1024, 19 * 1024)
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            f.write(os.urandom(size))
        total += size
    # The files must be older than a scan for the stat cache to trust them.
    past = time.time() - 120
    for root, _, names in os.walk(ctx):
        for n in names:
            os.utime(os.path.join(root, n), (past, past))
    with open(os.path.join(ctx, ".dockerignore"), "w") as f:
        f.write(".git\n")
    os.utime(os.path.join(ctx, ".dockerignore"), (past, past))
    git = ["git", "-C", ctx, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    sh(git + ["init", "-q"])
    sh(git + ["add", "-A"])
    sh(git + ["commit", "-q", "-m", "bench context"])
    open(stamp, "w").close()
    print(f"generated {nfiles} files, {total / 1e6:.0f} MB in {time.time() - t:.0f} s", file=sys.stderr)

tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ctx, check=True, capture_output=True).stdout.count(b"\0")
size = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(ctx) if ".git" not in r for n in ns)
cache = os.path.join(out, "cache")

def plan():
    env = dict(os.environ, STRATA_CACHE_DIR=cache)
    t = time.perf_counter()
    p = subprocess.run([strata, "plan", "--format", "json", "-f", dockerfile, "--context", ctx],
                       env=env, check=True, capture_output=True)
    return time.perf_counter() - t, json.loads(p.stdout)

def baseline():
    t = time.perf_counter()
    subprocess.run("git ls-files -z | xargs -0 sha256sum >/dev/null", shell=True, cwd=ctx, check=True)
    return time.perf_counter() - t

def buildkit(cold):
    env = dict(os.environ, DOCKER_HOST=docker_host, DOCKER_BUILDKIT="1")
    if cold:
        subprocess.run(["/usr/bin/docker", "builder", "prune", "-f", "--filter", "type=source.local"],
                       env=env, check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run(["/usr/bin/docker", "build", "--network=host", "--progress=plain", "-f", dockerfile, ctx],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - t

times = {"strata_cold": [], "strata_warm": [], "baseline": []}
for rep in range(reps):
    shutil.rmtree(cache, ignore_errors=True)
    t, cold = plan()
    times["strata_cold"].append(t)
    assert cold["context"]["files_hashed"] == tracked, (tracked, cold["context"])
    t, warm = plan()
    times["strata_warm"].append(t)
    assert warm["context"]["files_hashed"] == 0, warm["context"]
    assert warm["stages"] == cold["stages"], "warm keys differ from cold keys"
    times["baseline"].append(baseline())
    if docker and rep < docker_reps:
        if rep == 0:
            buildkit(False)  # the first build also runs the COPY; later ones find it cached
        times.setdefault("buildkit_cold", []).append(buildkit(True))
        times.setdefault("buildkit_warm", []).append(buildkit(False))

# One changed file: exactly one file re-read, and the key moves.
victim = os.path.join(ctx, "d000", "f000000.bin")
orig = open(victim, "rb").read()
with open(victim, "wb") as f:
    f.write(os.urandom(len(orig)))
_, changed = plan()
with open(victim, "wb") as f:
    f.write(orig)
past = time.time() - 120
os.utime(victim, (past, past))
assert changed["context"]["files_hashed"] == 1, changed["context"]
assert changed["stages"][0]["cache_key"] != warm["stages"][0]["cache_key"]

def fmt(xs):
    return f"{min(xs):.3f} s", f"{statistics.median(xs):.3f} s"
load_after = os.getloadavg()
results = {"files": nfiles, "bytes": size, "reps": reps, "cpus": os.cpu_count(), "times": times,
           "loadavg_before": load_before, "loadavg_after": load_after}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
print(f"context: {nfiles} files, {size / 1e6:.0f} MB, {reps} reps, {os.cpu_count()} CPUs, "
      f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
print("| case | min | median |")
print("|---|---|---|")
for name in times:
    mn, md = fmt(times[name])
    print(f"| {name} | {mn} | {md} |")
b = statistics.median(times["baseline"])
print(f"\nbaseline / cold: {b / statistics.median(times['strata_cold']):.1f}x, "
      f"baseline / warm: {b / statistics.median(times['strata_warm']):.1f}x")
if "buildkit_warm" in times:
    print(f"buildkit_cold / strata_cold: {statistics.median(times['buildkit_cold']) / statistics.median(times['strata_cold']):.1f}x, "
          f"buildkit_warm / strata_warm: {statistics.median(times['buildkit_warm']) / statistics.median(times['strata_warm']):.1f}x")
PY
