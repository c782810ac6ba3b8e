#!/usr/bin/env bash
# bench/fetch/run.sh: strata fetch vs plain downloaders, side by side, on a loopback upstream.
#
# Cases (each repeated --reps times, interleaved rep by rep so machine noise hits all alike):
#   strata_cold   strata fetch into a fresh cache and output dir (default --jobs), peak RSS too
#   seq_curl      one curl process, all URLs, one after another on one keep-alive connection,
#                 then sha256 of every file (python hashlib, as Hermeto verifies)
#   par5_curl     curl --parallel --parallel-max 5 (Hermeto's default concurrency), then sha256
#   strata_warm   strata fetch with the cache of this rep's cold run, into a new output dir
#   cp_r          cp -r of this rep's completed output tree into a new dir
#   strata_big    strata fetch of one 2 GB artifact from an unthrottled upstream: peak RSS
# Correctness (fails the script): every output file's sha256, strata's JSON summary, the
# upstream's counters (each artifact requested exactly once per cold run, none when warm),
# `strata cache verify`. Wall-clock times are reported, never asserted.
#
# Usage: bench/fetch/run.sh [--tiny] [--reps N] [--work-dir DIR] [--jobs N] [--cold-jobs "8 64"]
#                           [--fast-reps N] [--big-reps N] [--no-big] [--pylock-mix] [--bin-dir DIR]
#   --tiny        smoke run for CI: 20 artifacts x 64 KiB, 1 rep, a 64 MiB big artifact
#   --reps N      repetitions of every case (default 5; tiny 1)
#   --fast-reps N strata warm / cp -r samples per rep (default 3: they take milliseconds)
#   --jobs N      strata's --jobs for every strata case (default: strata's own default)
#   --cold-jobs L extra cold cases with these --jobs values, e.g. "5 8 64"
#   --big-reps N  reps of the 2 GB RSS case (default min(reps, 3)); --no-big skips it
#   --pylock-mix  put every third artifact in a pylock.toml instead of artifacts.lock.yaml
#   --work-dir D  data and results (default ${TMPDIR:-/tmp}/strata-bench-fetch)
#   --bin-dir D   where strata and strata-upstream are (default target/release; built if missing)
# Environment equivalents: STRATA_BENCH_TINY=1, STRATA_BENCH_REPS, STRATA_BENCH_FAST_REPS,
#   STRATA_BENCH_WORK_DIR, STRATA_BENCH_JOBS, STRATA_BENCH_COLD_JOBS, STRATA_BENCH_BIG_REPS,
#   STRATA_BENCH_NO_BIG=1, STRATA_BENCH_PYLOCK_MIX=1, STRATA_BENCH_BIN_DIR.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BENCH_PY="$here/bench.py"
# shellcheck source=../lib/common.sh
source "$repo/bench/lib/common.sh"

tiny=${STRATA_BENCH_TINY:-0}
reps=${STRATA_BENCH_REPS:-}
work=${STRATA_BENCH_WORK_DIR:-${TMPDIR:-/tmp}/strata-bench-fetch}
jobs=${STRATA_BENCH_JOBS:-}
cold_jobs=${STRATA_BENCH_COLD_JOBS:-}
big_reps=${STRATA_BENCH_BIG_REPS:-}
no_big=${STRATA_BENCH_NO_BIG:-0}
pylock_mix=${STRATA_BENCH_PYLOCK_MIX:-0}
fast_reps=${STRATA_BENCH_FAST_REPS:-3}
bin_dir=${STRATA_BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}
latency_ms=50
rate=20MB

while [[ $# -gt 0 ]]; do
    case $1 in
        --tiny) tiny=1 ;;
        --reps) need_arg "$@"; reps=$2; shift ;;
        --work-dir) need_arg "$@"; work=$2; shift ;;
        --jobs) need_arg "$@"; jobs=$2; shift ;;
        --cold-jobs) need_arg "$@"; cold_jobs=$2; shift ;;
        --big-reps) need_arg "$@"; big_reps=$2; shift ;;
        --no-big) no_big=1 ;;
        --pylock-mix) pylock_mix=1 ;;
        --fast-reps) need_arg "$@"; fast_reps=$2; shift ;;
        --bin-dir) need_arg "$@"; bin_dir=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ $tiny == 1 ]]; then
    mode=tiny count=20 mean_size=65536 big_size=$((64 * 1024 * 1024))
    reps=${reps:-1} big_reps=${big_reps:-1}
else
    mode=full count=300 mean_size=1000000 big_size=$((2 * 1024 * 1024 * 1024))
    reps=${reps:-5} big_reps=${big_reps:-$((reps < 3 ? reps : 3))}
fi
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --reps must be a positive number" >&2; exit 2; }
[[ $fast_reps =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --fast-reps must be a positive number" >&2; exit 2; }
[[ $big_reps =~ ^[0-9]+$ ]] || { echo "run.sh: --big-reps must be a number" >&2; exit 2; }
[[ $no_big == 1 ]] && big_reps=0

# --- tools -------------------------------------------------------------------------------
bench_tools "$bin_dir"
TIME=/usr/bin/time
if [[ ! -x $TIME ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y time >/dev/null || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
    else
        echo "run.sh: GNU time is needed for peak RSS: apt-get install -y time" >&2
        exit 1
    fi
fi
for tool in curl python3 sync; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

# --- data --------------------------------------------------------------------------------
mkdir -p "$work"
data=$work/data-$mode
big=$work/big-$mode
run=$work/run-$mode
rm -rf "$run"
mkdir -p "$run"
python3 "$BENCH_PY" gen --dir "$data" --count "$count" --mean-size "$mean_size"
if [[ $big_reps -gt 0 ]]; then
    python3 "$BENCH_PY" gen-big --dir "$big" --size "$big_size"
fi

# --- upstreams ---------------------------------------------------------------------------
# URLs are $base/files/<name>: the upstream serves the data dir.
start_upstream upstream "$data" --latency-ms "$latency_ms" --rate "$rate"
base=http://127.0.0.1:$port
mix_arg=()
[[ $pylock_mix == 1 ]] && mix_arg=(--pylock-mix)
read -ra lockfiles < <(python3 "$BENCH_PY" lock --manifest "$data/manifest.json" --base-url "$base" \
    --out "$run/lock" "${mix_arg[@]}")

# --- timing ------------------------------------------------------------------------------
times=$run/times.tsv
: >"$times"
jobs_args=()
[[ -n $jobs ]] && jobs_args=(--jobs "$jobs")
jobs_label=${jobs:-default}

# strata_cold CASE REP [--jobs N]: one cold fetch, checked; leaves $run/cold-out and $run/cold-cache.
strata_cold() {
    local case=$1 rep=$2
    shift 2
    local cache=$run/cold-cache out=$run/cold-out
    rm -rf "$cache" "$out"
    upstream_reset "$base"
    settle
    t_start
    if ! "$TIME" -v -o "$run/$case.time" "$STRATA" fetch --cache-dir "$cache" --output "$out" \
        --format json "$@" "${lockfiles[@]}" >"$run/$case.json" 2>"$run/$case.err"; then
        cat "$run/$case.err" "$run/$case.json" >&2
        fail "$case rep $rep: strata fetch exited non-zero"
    fi
    local secs
    t_stop secs
    local rss conn
    rss=$(python3 "$BENCH_PY" maxrss "$run/$case.time")
    upstream_stats "$base" "$run/$case.stats.json"
    conn=$(python3 "$BENCH_PY" check-stats --stats "$run/$case.stats.json" --url-paths "$run/lock/url-paths.json" \
        --each 1 --label "$case rep $rep") || fail "$case rep $rep: upstream counters"
    python3 "$BENCH_PY" check-summary --summary "$run/$case.json" --mode cold --count "$count" ||
        fail "$case rep $rep: summary"
    python3 "$BENCH_PY" verify "$run/lock/strata-expected.json" "$out" || fail "$case rep $rep: output digests"
    record "$case" "$rep" "$secs" "{\"maxrss_kb\": $rss, \"upstream\": \"$conn\"}"
    printf '  %-14s rep %d: %8ss  maxrss %6d KiB  %s\n' "$case" "$rep" "$secs" "$rss" "$conn"
}

# baseline CASE REP CURL_ARGS...: curl with the whole URL list into a fresh flat dir, then
# sha256 of every file; both timed.
baseline() {
    local case=$1 rep=$2
    shift 2
    local out=$run/$case-out
    rm -rf "$out"
    mkdir -p "$out"
    upstream_reset "$base"
    settle
    t_start
    (cd "$out" && curl -fsS --no-progress-meter "$@" --config "$run/lock/curl.cfg" 2>"$run/$case.err") ||
        { cat "$run/$case.err" >&2; fail "$case rep $rep: curl failed"; }
    local dl secs
    t_stop dl
    python3 "$BENCH_PY" verify "$run/lock/baseline-expected.json" "$out" || fail "$case rep $rep: digests"
    t_stop secs
    local conn
    upstream_stats "$base" "$run/$case.stats.json"
    conn=$(python3 "$BENCH_PY" check-stats --stats "$run/$case.stats.json" --url-paths "$run/lock/url-paths.json" \
        --each 1 --label "$case rep $rep") || fail "$case rep $rep: upstream counters"
    record "$case" "$rep" "$secs" "{\"download_s\": $dl, \"upstream\": \"$conn\"}"
    printf '  %-14s rep %d: %8ss  (download %ss)  %s\n' "$case" "$rep" "$secs" "$dl" "$conn"
    rm -rf "$out"
}

strata_warm() {
    local rep=$1 out=$run/warm-out
    rm -rf "$out"
    upstream_reset "$base"
    settle
    t_start
    if ! "$STRATA" fetch --cache-dir "$run/cold-cache" --output "$out" --format json "${jobs_args[@]}" \
        "${lockfiles[@]}" >"$run/strata_warm.json" 2>"$run/strata_warm.err"; then
        cat "$run/strata_warm.err" >&2
        fail "strata_warm rep $rep: strata fetch exited non-zero"
    fi
    local secs
    t_stop secs
    upstream_stats "$base" "$run/strata_warm.stats.json"
    python3 "$BENCH_PY" check-stats --stats "$run/strata_warm.stats.json" --url-paths "$run/lock/url-paths.json" \
        --each 0 --label "strata_warm rep $rep" >/dev/null || fail "strata_warm rep $rep: it downloaded"
    python3 "$BENCH_PY" check-summary --summary "$run/strata_warm.json" --mode warm --count "$count" ||
        fail "strata_warm rep $rep: summary"
    python3 "$BENCH_PY" verify "$run/lock/strata-expected.json" "$out" || fail "strata_warm rep $rep: output digests"
    record strata_warm "$rep" "$secs"
    printf '  %-14s rep %d: %8ss\n' strata_warm "$rep" "$secs"
    rm -rf "$out"
}

cp_r() {
    local rep=$1 out=$run/cp-out
    rm -rf "$out"
    settle
    t_start
    cp -r "$run/cold-out" "$out"
    local secs
    t_stop secs
    python3 "$BENCH_PY" verify "$run/lock/strata-expected.json" "$out" || fail "cp_r rep $rep: digests"
    record cp_r "$rep" "$secs"
    printf '  %-14s rep %d: %8ss\n' cp_r "$rep" "$secs"
    rm -rf "$out"
}

strata_big() {
    local rep=$1 cache=$run/big-cache out=$run/big-out
    rm -rf "$cache" "$out"
    upstream_reset "$big_base"
    settle
    t_start
    if ! "$TIME" -v -o "$run/strata_big.time" "$STRATA" fetch --cache-dir "$cache" --output "$out" \
        --format json "${jobs_args[@]}" "$run/big-lock/artifacts.lock.yaml" >"$run/strata_big.json" 2>"$run/strata_big.err"; then
        cat "$run/strata_big.err" >&2
        fail "strata_big rep $rep: strata fetch exited non-zero"
    fi
    local secs rss
    t_stop secs
    rss=$(python3 "$BENCH_PY" maxrss "$run/strata_big.time")
    upstream_stats "$big_base" "$run/strata_big.stats.json"
    python3 "$BENCH_PY" check-stats --stats "$run/strata_big.stats.json" --url-paths "$run/big-lock/url-paths.json" \
        --each 1 --label "strata_big rep $rep" >/dev/null || fail "strata_big rep $rep: upstream counters"
    python3 "$BENCH_PY" check-summary --summary "$run/strata_big.json" --mode cold --count 1 ||
        fail "strata_big rep $rep: summary"
    python3 "$BENCH_PY" verify "$run/big-lock/strata-expected.json" "$out" || fail "strata_big rep $rep: digest"
    record strata_big "$rep" "$secs" "{\"maxrss_kb\": $rss}"
    printf '  %-14s rep %d: %8ss  maxrss %6d KiB\n' strata_big "$rep" "$secs" "$rss"
    rm -rf "$cache" "$out"
}

# --- the run -----------------------------------------------------------------------------
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
total_bytes=$(python3 -c 'import json,sys; print(sum(f["size"] for f in json.load(open(sys.argv[1]))["files"]))' "$data/manifest.json")
echo "strata fetch bench ($mode): $count artifacts, $((total_bytes / 1000000)) MB, $reps reps," \
    "upstream $base (latency ${latency_ms} ms, ${rate}/s per connection), strata --jobs $jobs_label"
echo "work dir: $work"

loadavgs=()
for ((rep = 1; rep <= reps; rep++)); do
    echo "rep $rep/$reps (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    loadavgs+=("$(cut -d' ' -f1 /proc/loadavg)")
    strata_cold strata_cold "$rep" "${jobs_args[@]}"
    if [[ $rep == 1 ]]; then
        "$STRATA" cache --cache-dir "$run/cold-cache" verify >"$run/cache-verify.txt" 2>&1 ||
            { cat "$run/cache-verify.txt" >&2; fail "strata cache verify"; }
    fi
    # Warm and cp -r take a fraction of a second: a few samples per rep steady their medians.
    for ((k = 0; k < fast_reps; k++)); do
        strata_warm "$rep"
        cp_r "$rep"
    done
    baseline seq_curl "$rep"
    baseline par5_curl "$rep" --parallel --parallel-max 5 --parallel-immediate
    for j in $cold_jobs; do
        strata_cold "strata_cold_j$j" "$rep" --jobs "$j"
    done
done
rm -rf "$run/cold-cache" "$run/cold-out"

if [[ $big_reps -gt 0 ]]; then
    start_upstream big-upstream "$big"
    big_base=http://127.0.0.1:$port
    python3 "$BENCH_PY" lock --manifest "$big/manifest.json" --base-url "$big_base" --out "$run/big-lock" >/dev/null
    echo "one $((big_size / 1000000)) MB artifact from $big_base (no latency, no rate cap)"
    for ((rep = 1; rep <= big_reps; rep++)); do
        strata_big "$rep"
    done
fi
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------
export B_MODE=$mode B_TINY=$tiny B_COUNT=$count B_TOTAL=$total_bytes B_BIG=$big_size B_REPS=$reps \
    B_BIG_REPS=$big_reps B_JOBS=$jobs_label B_COLD_JOBS=$cold_jobs B_MIX=$pylock_mix B_LAT=$latency_ms \
    B_RATE=$rate B_LOAD0=$loadavg_start B_LOAD1=$loadavg_end B_LOADS="${loadavgs[*]}" B_FAST=$fast_reps B_STRATA=$STRATA B_REPO=$repo B_WORK=$work \
    B_RUN=$run B_LOCKS="${lockfiles[*]}"
python3 - "$run/meta.json" <<'PY'
import json, os, platform, subprocess, sys
e = os.environ
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
rev = sh("git", "-C", e["B_REPO"], "rev-parse", "--short", "HEAD")
dirty = sh("git", "-C", e["B_REPO"], "status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock")
run, locks, jobs = e["B_RUN"], e["B_LOCKS"], e["B_JOBS"]
j = "" if jobs == "default" else f" --jobs {jobs}"
meta = {
    "params": {
        "mode": e["B_MODE"], "tiny": e["B_TINY"] == "1", "count": int(e["B_COUNT"]),
        "total_bytes": int(e["B_TOTAL"]), "big_bytes": int(e["B_BIG"]), "reps": int(e["B_REPS"]),
        "big_reps": int(e["B_BIG_REPS"]), "fast_reps": int(e["B_FAST"]), "strata_jobs": jobs, "extra_cold_jobs": e["B_COLD_JOBS"].split(),
        "pylock_mix": e["B_MIX"] == "1", "latency_ms": int(e["B_LAT"]), "rate": e["B_RATE"],
    },
    "machine": {
        "nproc": os.cpu_count(), "mem_total_kib": mem_kb, "kernel": platform.release(), "cpu": cpu,
        "loadavg_start": e["B_LOAD0"], "loadavg_end": e["B_LOAD1"],
        "loadavg_1min_per_rep": [float(x) for x in e["B_LOADS"].split()],
    },
    "versions": {
        "strata": sh(e["B_STRATA"], "--version"), "git": rev, "crates_dirty": bool(dirty),
        "curl": (sh("curl", "--version") or "").splitlines()[0], "python": platform.python_version(),
    },
    "commands": {
        "strata_cold": f"/usr/bin/time -v strata fetch --cache-dir <fresh> --output <fresh> --format json{j} {locks}",
        "seq_curl": f"curl -fsS --no-progress-meter --config {run}/lock/curl.cfg && sha256 of each file (hashlib)",
        "par5_curl": f"curl -fsS --no-progress-meter --parallel --parallel-max 5 --parallel-immediate --config {run}/lock/curl.cfg && sha256 of each file (hashlib)",
        "strata_warm": f"strata fetch --cache-dir <cold run's cache> --output <fresh> --format json{j} {locks}",
        "cp_r": "cp -r <cold run's output> <fresh>",
        "strata_big": f"/usr/bin/time -v strata fetch --cache-dir <fresh> --output <fresh> --format json{j} {run}/big-lock/artifacts.lock.yaml",
    },
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
python3 "$BENCH_PY" report --times "$times" --meta "$run/meta.json" --out "$work/results.json"
cp "$work/results.json" "$work/results-$mode.json"
