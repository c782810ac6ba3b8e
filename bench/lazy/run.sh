#!/usr/bin/env bash
# bench/lazy/run.sh: `strata mount` (lazy, FUSE) vs `strata fetch` (eager), side by side, on a
# loopback upstream (50 ms per request, 20 MB/s per connection). Run as root (FUSE).
#
# The "build" (bench.py build): a Python process that reads whole files (1 MiB reads) from
# a fixed random order of the lockfile's files: the first 10%, 50% or 100% of that order,
# with K threads taking the next file (K=1: one file after another, like pip or tar; K=16:
# like a parallel build). No hashing in the timed part.
# Main cases, per rep, per fraction and per K, interleaved (each timed start to build done):
#   eager     strata fetch into a fresh cache and output dir, then the build reads the output
#   lazy      strata mount --daemon --record P (fresh cache), the build reads the mount; then
#             strata umount (timed separately). The profile P is this rep's recording.
#   profile   strata mount --daemon --prefetch P (fresh cache), build, umount
# Extra measurements:
#   ready     `strata mount --daemon` return time, 5,000-entry lockfile (10 samples)
#   rss       daemon VmHWM/VmRSS for 50,000 entries, after mounting and a stat of every file
#   tput      warm sequential read of 4 x 256 MiB files: the store file directly vs the mount,
#             passthrough (default) and --no-passthrough, sizes in the lockfile (pylock) and
#             not (artifacts.lock.yaml); every file is read (and hashed) once before timing
#             so both sides read from the page cache; nothing is dropped from it
#   statlat   os.stat latency of cached entries while 64 threads open uncached files
#             against a slow upstream (3 s per request), then with nothing in flight
#   multi     4 mounts on one cache, 4 builds (4 threads each) reading the same 10% at once
# Correctness (fails the script): every build reads each file's full size; sha256 of a
# sample of the read files against the lockfile; the upstream's counters (each file the
# build read requested exactly once, nothing else; once in all for the 4 mounts); the
# recorded profile is exactly the files read; `statlat` opens all succeed and stay in flight
# for the whole timed window. Wall-clock times are reported, never asserted.
#
# Usage: bench/lazy/run.sh [--tiny] [--reps N] [--build-jobs "1 16"] [--work-dir DIR] [--bin-dir DIR]
#                          [--percents "10 50 100"] [--lock-format generic|pylock] [--no-main] [--no-extras]
#   --tiny          smoke run for CI: 40 artifacts x ~32 KiB, 10% and 100%, 1 rep, small extras
#   --reps N        repetitions of the main cases (default 3; tiny 1); tput and ready take more
#   --build-jobs L  build reader thread counts (default "1 16"; tiny "4")
#   --no-main       only the extra measurements; --no-extras: only the main cases
#   --percents L    the fractions of the files the main cases' builds read (default "10 50 100")
#   --lock-format F the main cases' lockfile: generic (artifacts.lock.yaml, no sizes: the
#                   default) or pylock (pylock.toml, sizes given, so strata mount splits the
#                   downloads that opens wait for into parallel Range requests, --segments)
#   --work-dir D    data and results (default ${TMPDIR:-/tmp}/strata-bench-lazy)
#   --bin-dir D     where strata and strata-upstream are (default target/release; built if
#                   missing; copied into the run dir so a concurrent cargo build cannot swap them)
# Environment equivalents: STRATA_BENCH_TINY=1, STRATA_BENCH_REPS, STRATA_BENCH_BUILD_JOBS,
#   STRATA_BENCH_WORK_DIR, STRATA_BENCH_BIN_DIR.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BENCH_PY="$here/bench.py"
# shellcheck source=../lib/common.sh
source "$repo/bench/lib/common.sh"

tiny=${STRATA_BENCH_TINY:-0}
reps=${STRATA_BENCH_REPS:-}
build_jobs=${STRATA_BENCH_BUILD_JOBS:-}
work=${STRATA_BENCH_WORK_DIR:-${TMPDIR:-/tmp}/strata-bench-lazy}
bin_dir=${STRATA_BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}
do_main=1 do_extras=1
latency_ms=50
rate=20MB
percents=${STRATA_BENCH_PERCENTS:-}
lock_format=${STRATA_BENCH_LOCK_FORMAT:-generic}

while [[ $# -gt 0 ]]; do
    case $1 in
        --tiny) tiny=1 ;;
        --reps) need_arg "$@"; reps=$2; shift ;;
        --build-jobs) need_arg "$@"; build_jobs=$2; shift ;;
        --work-dir) need_arg "$@"; work=$2; shift ;;
        --bin-dir) need_arg "$@"; bin_dir=$2; shift ;;
        --no-main) do_main=0 ;;
        --no-extras) do_extras=0 ;;
        --percents) need_arg "$@"; percents=$2; shift ;;
        --lock-format) need_arg "$@"; lock_format=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ $tiny == 1 ]]; then
    mode=tiny count=40 mean_size=32768 spread=0.9 percents=${percents:-10 100}
    reps=${reps:-1} build_jobs=${build_jobs:-4}
    ready_entries=500 ready_reps=2 rss_entries=2000 rss_reps=1
    tput_size=$((8 * 1024 * 1024)) tput_reps=1
    stat_cached=20 stat_cold=16 stat_others=20 stat_latency_ms=1500 stat_seconds=0.4 stat_settle=0.2
    multi_list=100
else
    mode=full count=2000 mean_size=500000 spread=0.9 percents=${percents:-10 50 100}
    reps=${reps:-3} build_jobs=${build_jobs:-1 16}
    ready_entries=5000 ready_reps=10 rss_entries=50000 rss_reps=1
    tput_size=$((256 * 1024 * 1024)) tput_reps=
    stat_cached=1000 stat_cold=64 stat_others=200 stat_latency_ms=3000 stat_seconds=1.5 stat_settle=0.3
    multi_list=10
fi
for p in $percents; do
    [[ $p =~ ^[1-9][0-9]*$ && $p -le 100 ]] || { echo "run.sh: --percents takes numbers 1-100" >&2; exit 2; }
done
[[ $lock_format == generic || $lock_format == pylock ]] ||
    { echo "run.sh: --lock-format is generic or pylock" >&2; exit 2; }
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --reps must be a positive number" >&2; exit 2; }
for k in $build_jobs; do
    [[ $k =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --build-jobs takes positive numbers" >&2; exit 2; }
done
tput_reps=${tput_reps:-$((reps > 5 ? reps : 5))}
stat_reps=$reps

# --- tools -------------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || { echo "run.sh: run as root (FUSE mounts, passthrough)" >&2; exit 1; }
[[ -c /dev/fuse ]] || { echo "run.sh: /dev/fuse is missing" >&2; exit 1; }
for tool in curl python3 sync; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
bench_tools "$bin_dir"

mkdir -p "$work"
data=$work/data-$mode
big=$work/big-$mode
run=$work/run-$mode

# Mounts this script made, unmounted on exit if still there.
mounts=()
is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
umount_leftovers() {
    local m
    for m in "${mounts[@]}"; do
        if is_mounted "$m"; then
            "$STRATA" umount "$m" >/dev/null 2>&1 || true
        fi
    done
}
bench_on_exit+=(umount_leftovers)
# A crashed earlier run may have left mounts in the run dir: unmount them before deleting it.
if [[ -d $run ]]; then
    while read -r m; do
        "$run/bin/strata" umount "$m" >/dev/null 2>&1 || "$STRATA" umount "$m" >/dev/null 2>&1 ||
            umount -l "$m" || true
    done < <(awk -v r="$run/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo)
fi
rm -rf "$run"
mkdir -p "$run/bin" "$run/logs" "$run/extras" "$run/lock"
cp "$STRATA" "$UPSTREAM" "$run/bin/"
STRATA=$run/bin/strata
UPSTREAM=$run/bin/strata-upstream
py() { python3 "$BENCH_PY" "$@"; }

# --- data, upstream, lockfile, build lists -------------------------------------------------
py gen --dir "$data" --count "$count" --mean-size "$mean_size" --spread "$spread"
start_upstream upstream "$data" --latency-ms "$latency_ms" --rate "$rate"
base=http://127.0.0.1:$port
# With sizes in the lockfile, strata mount splits the downloads opens wait for (--segments,
# default 4): the counters then check each file's bytes were sent once, in 1-4 requests.
if [[ $lock_format == pylock ]]; then
    lockfile=$run/lock/pylock.toml max_parts=4
else
    lockfile=$run/lock/artifacts.lock.yaml max_parts=1
fi
expected=$run/lock/expected.json
py lock --manifest "$data/manifest.json" --base-url "$base" --format "$lock_format" --out "$lockfile" --expected "$expected"
# (build-100.txt always: the eager cases' counters are checked against every file)
# shellcheck disable=SC2086
py lists --expected "$expected" --out "$run/lock" --percents $(printf '%s\n' $percents 100 $multi_list | sort -nu)
all_list=$run/lock/build-100.txt

times=$run/times.tsv
: >"$times"

# mount_daemon MNT CACHE [ARGS...]: strata mount --daemon; sets $daemon_pid.
mount_daemon() {
    local mnt=$1 cache=$2
    shift 2
    mounts+=("$mnt")
    if ! "$STRATA" mount --daemon --cache-dir "$cache" "$@" "$mnt" "${mount_locks[@]}" 2>"$run/mount.err"; then
        cat "$run/mount.err" >&2
        fail "strata mount $mnt"
    fi
    daemon_pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$run/mount.err")
    [[ -n $daemon_pid ]] || { cat "$run/mount.err" >&2; fail "no daemon pid in strata mount's output"; }
}
# umount_daemon MNT CACHE LOGNAME: strata umount, keeps the daemon's log as $run/logs/LOGNAME.log.
umount_daemon() {
    local mnt=$1 cache=$2 name=$3
    "$STRATA" umount "$mnt" 2>"$run/umount.err" || { cat "$run/umount.err" >&2; fail "strata umount $mnt"; }
    ! is_mounted "$mnt" || fail "$mnt is still mounted after strata umount"
    cp "$cache"/logs/mount*.log "$run/logs/$name.log" 2>/dev/null || true
}

# --- main cases ------------------------------------------------------------------------------
# eager K PCT REP
eager() {
    local k=$1 pct=$2 rep=$3 case=eager.k$1.p$2
    local cache=$run/c-eager out=$run/o-eager list=$run/lock/build-$pct.txt
    rm -rf "$cache" "$out"
    upstream_reset "$base"
    settle
    t_start
    "$STRATA" fetch --cache-dir "$cache" --output "$out" --format json "$lockfile" \
        >"$run/eager.json" 2>"$run/eager.err" || { cat "$run/eager.err" >&2; fail "$case rep $rep: strata fetch"; }
    local fetch_s secs
    t_stop fetch_s
    py build --root "$out" --list "$list" --expected "$expected" --jobs "$k" >/dev/null || fail "$case rep $rep: build"
    t_stop secs
    py verify-sample --root "$out" --list "$list" --expected "$expected" || fail "$case rep $rep: digests"
    upstream_stats "$base" "$run/stats.json"
    local conn
    conn=$(py check-stats --stats "$run/stats.json" --expected "$expected" --list "$all_list" --label "$case rep $rep") ||
        fail "$case rep $rep: upstream counters"
    record "$case" "$rep" "$secs" "{\"fetch_s\": $fetch_s, \"upstream\": \"$conn\"}"
    printf '  %-18s rep %d: %8ss  (fetch %ss)  %s\n' "$case" "$rep" "$secs" "$fetch_s" "$conn"
}

# lazy KIND K PCT REP: KIND lazy records a profile, KIND profile replays it.
lazy() {
    local kind=$1 k=$2 pct=$3 rep=$4 case=$1.k$2.p$3
    local cache=$run/c-lazy mnt=$run/mnt list=$run/lock/build-$pct.txt profile=$run/profile.k$2.p$3.jsonl
    local args=(--record "$profile")
    [[ $kind == profile ]] && args=(--prefetch "$profile")
    rm -rf "$cache"
    upstream_reset "$base"
    settle
    t_start
    mount_daemon "$mnt" "$cache" "${args[@]}"
    local ready_s secs umount_s
    t_stop ready_s
    py build --root "$mnt" --list "$list" --expected "$expected" --jobs "$k" >/dev/null || fail "$case rep $rep: build"
    t_stop secs
    py verify-sample --root "$mnt" --list "$list" --expected "$expected" || fail "$case rep $rep: digests"
    local t_um=$EPOCHREALTIME
    umount_daemon "$mnt" "$cache" "$case.rep$rep"
    umount_s=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.6f}')" "$t_um" "$EPOCHREALTIME")
    upstream_stats "$base" "$run/stats.json"
    local conn summary
    conn=$(py check-stats --stats "$run/stats.json" --expected "$expected" --list "$list" --max-parts "$max_parts" \
        --label "$case rep $rep") ||
        fail "$case rep $rep: upstream counters"
    if [[ $kind == lazy ]]; then
        py check-profile --profile "$profile" --list "$list" || fail "$case rep $rep: recorded profile"
    fi
    summary=$(py summary-line "$run/logs/$case.rep$rep.log")
    record "$case" "$rep" "$secs" "{\"ready_s\": $ready_s, \"umount_s\": $umount_s, \"upstream\": \"$conn\", \"daemon\": $summary}"
    printf '  %-18s rep %d: %8ss  (ready %ss, umount %ss)  %s\n' "$case" "$rep" "$secs" "$ready_s" "$umount_s" "$conn"
}

loadavg_start=$(loadavg)
total_bytes=$(python3 -c 'import json,sys; print(sum(f["size"] for f in json.load(open(sys.argv[1]))["files"]))' "$data/manifest.json")
echo "strata mount bench ($mode): $count artifacts, $((total_bytes / 1000000)) MB, $reps reps, build threads: $build_jobs," \
    "upstream $base (latency ${latency_ms} ms, ${rate}/s per connection)"
echo "work dir: $work"
mount_locks=("$lockfile")
loadavgs=()
if [[ $do_main == 1 ]]; then
    for ((rep = 1; rep <= reps; rep++)); do
        echo "rep $rep/$reps (load average $(loadavg))"
        loadavgs+=("$(cut -d' ' -f1 /proc/loadavg)")
        for pct in $percents; do
            for k in $build_jobs; do
                eager "$k" "$pct" "$rep"
                lazy lazy "$k" "$pct" "$rep"
                lazy profile "$k" "$pct" "$rep"
            done
        done
    done
    rm -rf "$run/c-eager" "$run/o-eager" "$run/c-lazy"
fi

# --- extras ----------------------------------------------------------------------------------
ready_and_rss() {
    echo "mount ready time ($ready_entries entries, $ready_reps samples) and daemon memory ($rss_entries entries)"
    local lock_r=$run/lock/ready/artifacts.lock.yaml lock_m=$run/lock/rss/artifacts.lock.yaml cache=$run/c-ready mnt=$run/mnt-ready i secs
    mkdir -p "$run/lock/ready" "$run/lock/rss"
    py fake-lock --count "$ready_entries" --base-url "$base" --out "$lock_r"
    py fake-lock --count "$rss_entries" --base-url "$base" --out "$lock_m"
    mount_locks=("$lock_r")
    upstream_reset "$base"
    for ((i = 1; i <= ready_reps; i++)); do
        settle
        t_start
        mount_daemon "$mnt" "$cache"
        t_stop secs
        if [[ $i == 1 ]]; then
            py walk "$mnt" --expect "$ready_entries" >/dev/null || fail "ready: the mount does not list every entry"
        fi
        umount_daemon "$mnt" "$cache" ready
        record ready_5k "$i" "$secs"
        printf '  %-18s  %d: %8ss\n' "ready $ready_entries" "$i" "$secs"
    done
    mount_locks=("$lock_m")
    local rss_json n
    : >"$run/rss.jsonl"
    for ((i = 1; i <= rss_reps; i++)); do
        settle
        t_start
        mount_daemon "$mnt" "$cache"
        t_stop secs
        record ready_50k "$i" "$secs"
        n=$(py walk "$mnt" --expect "$rss_entries") || fail "rss: the mount does not list every entry"
        rss_json=$(py rss "$daemon_pid")
        umount_daemon "$mnt" "$cache" rss
        echo "$rss_json" >>"$run/rss.jsonl"
        printf '  %-18s  %d: ready %8ss, %s files stat-ed, %s\n' "rss $rss_entries" "$i" "$secs" "$n" "$rss_json"
    done
    python3 -c 'import json,sys; s=[json.loads(l) for l in open(sys.argv[1])]; m=max(s, key=lambda x: x["VmHWM"])
print(json.dumps({"entries": int(sys.argv[2]), "samples": s, **m}))' "$run/rss.jsonl" "$rss_entries" >"$run/extras/rss.json"
    printf '{"ready_5k": "%s entries", "ready_50k": "%s entries"}\n' "$ready_entries" "$rss_entries" >"$run/extras/ready.json"
    local stats
    upstream_stats "$base" "$run/stats.json"
    py check-stats --stats "$run/stats.json" --expected "$expected" --label "ready/rss: no downloads" >/dev/null ||
        fail "ready/rss: mounting or listing downloaded something"
    mount_locks=("$lockfile")
}

tput() {
    echo "warm sequential read throughput: 4 x $((tput_size / 1048576)) MiB, $tput_reps samples"
    py gen --dir "$big" --count 4 --mean-size "$tput_size" --spread 0 --prefix big
    start_upstream big-upstream "$big"
    local big_base=http://127.0.0.1:$port cache=$run/c-tput d=$run/tput
    mkdir -p "$d"
    py lock --manifest "$big/manifest.json" --base-url "$big_base" --format generic --out "$d/artifacts.lock.yaml" --expected "$d/generic.json"
    py lock --manifest "$big/manifest.json" --base-url "$big_base" --format pylock --out "$d/pylock.toml" --expected "$d/pylock.json"
    "$STRATA" fetch --cache-dir "$cache" --output "$d/out" --format json "$d/artifacts.lock.yaml" >"$d/fetch.json" 2>"$d/fetch.err" ||
        { cat "$d/fetch.err" >&2; fail "tput: strata fetch"; }
    rm -rf "$d/out"
    upstream_reset "$big_base"
    local digests files_direct=() sums bytes
    digests=$(python3 -c 'import json,sys; print(",".join(f["sha256"] for f in json.load(open(sys.argv[1]))["files"]))' "$big/manifest.json")
    bytes=$(python3 -c 'import json,sys; print(sum(f["size"] for f in json.load(open(sys.argv[1]))["files"]))' "$big/manifest.json")
    local h
    for h in ${digests//,/ }; do
        files_direct+=("$cache/v1/objects/sha256/${h:0:2}/$h")
    done
    declare -A files
    files[direct]="${files_direct[*]}"
    local v pt_json="{"
    for v in pt_sized pt_unsized nopt_sized nopt_unsized; do
        local args=() fmt=generic lock=$d/artifacts.lock.yaml
        [[ $v == nopt_* ]] && args=(--no-passthrough)
        [[ $v == *_sized ]] && fmt=pylock lock=$d/pylock.toml
        mount_locks=("$lock")
        mount_daemon "$run/mnt-$v" "$cache" "${args[@]}"
        files[$v]=$(python3 -c 'import json,sys,os; e=json.load(open(sys.argv[1])); print(" ".join(os.path.join(sys.argv[2], r) for r in sorted(e)))' "$d/$fmt.json" "$run/mnt-$v")
        local on=false
        grep -q ', passthrough)' "$cache"/logs/mount*mnt-"$v".log && on=true
        pt_json+="\"tput.$v\": $on, "
    done
    pt_json="${pt_json%, }}"
    mount_locks=("$lockfile")
    # Warm-up: read (and hash) every file once through each path.
    for v in direct pt_sized pt_unsized nopt_sized nopt_unsized; do
        # shellcheck disable=SC2086
        py tput --bytes "$bytes" --sha256 "$digests" ${files[$v]} >/dev/null || fail "tput warm-up $v: wrong bytes"
    done
    local i out secs
    for ((i = 1; i <= tput_reps; i++)); do
        for v in direct pt_sized pt_unsized nopt_sized nopt_unsized; do
            # shellcheck disable=SC2086
            out=$(py tput --bytes "$bytes" ${files[$v]}) || fail "tput $v: wrong byte count"
            secs=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")
            record "tput.$v" "$i" "$secs"
            printf '  %-18s %d: %8.3fs  %6.0f MB/s\n' "$v" "$i" "$secs" "$(python3 -c "print($bytes / $secs / 1e6)")"
        done
    done
    for v in pt_sized pt_unsized nopt_sized nopt_unsized; do
        umount_daemon "$run/mnt-$v" "$cache" "tput-$v"
    done
    upstream_stats "$big_base" "$run/stats.json"
    py check-stats --stats "$run/stats.json" --expected "$d/generic.json" --label "tput: all cached" >/dev/null ||
        fail "tput: the mounts downloaded although everything was cached"
    printf '{"files": 4, "bytes": %s, "passthrough": %s}\n' "$bytes" "$pt_json" >"$run/extras/tput.json"
    rm -rf "$cache"
}

statlat() {
    echo "stat latency: $stat_cached cached entries, $stat_cold cold opens against a ${stat_latency_ms} ms upstream, $stat_reps runs"
    start_upstream slow-upstream "$data" --latency-ms "$stat_latency_ms" --rate "$rate"
    local slow_base=http://127.0.0.1:$port d=$run/statlat cache=$run/c-stat mnt=$run/mnt-stat
    mkdir -p "$d/prefill" "$d/slow"
    py lock --manifest "$data/manifest.json" --base-url "$base" --first "$stat_cached" --out "$d/prefill/artifacts.lock.yaml" --expected "$d/prefill.json"
    py lock --manifest "$data/manifest.json" --base-url "$slow_base" --out "$d/slow/artifacts.lock.yaml" --expected "$d/slow.json"
    python3 -c 'import json,sys; r=sorted(json.load(open(sys.argv[1]))); c,n=int(sys.argv[2]),int(sys.argv[3])
open(sys.argv[4],"w").write("\n".join(r[:c])+"\n"); open(sys.argv[5],"w").write("\n".join(r[c:c+n])+"\n")
open(sys.argv[6],"w").write("\n".join(r[c+n:c+n+int(sys.argv[7])])+"\n")' \
        "$d/slow.json" "$stat_cached" "$stat_cold" "$d/cached.txt" "$d/cold.txt" "$d/others.txt" "$stat_others"
    local i out runs=()
    for ((i = 1; i <= stat_reps; i++)); do
        rm -rf "$cache" "$d/out"
        "$STRATA" fetch --cache-dir "$cache" --output "$d/out" --format json "$d/prefill/artifacts.lock.yaml" >/dev/null 2>"$d/fetch.err" ||
            { cat "$d/fetch.err" >&2; fail "statlat: prefill fetch"; }
        mount_locks=("$d/slow/artifacts.lock.yaml")
        mount_daemon "$mnt" "$cache"
        upstream_reset "$slow_base"
        settle
        out=$(py statlat --root "$mnt" --expected "$d/slow.json" --cached "$d/cached.txt" --cold "$d/cold.txt" --others "$d/others.txt" \
            --seconds "$stat_seconds" --settle "$stat_settle") || fail "statlat run $i"
        umount_daemon "$mnt" "$cache" "statlat.$i"
        upstream_stats "$slow_base" "$run/stats.json"
        py check-stats --stats "$run/stats.json" --expected "$d/slow.json" --list "$d/cold.txt" --label "statlat $i" >/dev/null ||
            fail "statlat run $i: upstream counters"
        runs+=("$out")
        python3 -c 'import json,sys; s=json.loads(sys.argv[1])
for w in ("loaded", "idle"):
    print("  statlat %s %-6s " % (sys.argv[2], w) + "; ".join("%s p50 %.1f us p99 %.1f us max %.1f us (n=%d)" % (k, x["p50_us"], x["p99_us"], x["max_us"], x["n"]) for k, x in s[w].items()))' "$out" "$i"
    done
    mount_locks=("$lockfile")
    (IFS=,; echo "{\"runs\": [${runs[*]}]}") >"$run/extras/statlat.json"
    rm -rf "$cache" "$d/out"
}

multi() {
    local list=$run/lock/build-$multi_list.txt cache=$run/c-multi i j secs conn nfiles
    nfiles=$(wc -l <"$list")
    echo "4 mounts on one cache, 4 builds reading the same $nfiles files at once, $reps runs"
    for ((i = 1; i <= reps; i++)); do
        rm -rf "$cache"
        for j in 1 2 3 4; do
            mount_daemon "$run/mnt-m$j" "$cache"
        done
        upstream_reset "$base"
        settle
        t_start
        local bpids=()
        for j in 1 2 3 4; do
            py build --root "$run/mnt-m$j" --list "$list" --expected "$expected" --jobs 4 >/dev/null &
            bpids+=($!)
        done
        for j in "${bpids[@]}"; do
            wait "$j" || fail "multi run $i: a build failed"
        done
        t_stop secs
        for j in 1 2 3 4; do
            py verify-sample --root "$run/mnt-m$j" --list "$list" --expected "$expected" --n 16 || fail "multi run $i: digests via mount $j"
        done
        for j in 1 2 3 4; do
            umount_daemon "$run/mnt-m$j" "$cache" "multi.$i.m$j"
        done
        upstream_stats "$base" "$run/stats.json"
        conn=$(py check-stats --stats "$run/stats.json" --expected "$expected" --list "$list" --max-parts "$max_parts" \
            --label "4 mounts, run $i") ||
            fail "4 mounts on one cache: a path was not requested exactly once"
        record multi "$i" "$secs" "{\"upstream\": \"$conn\"}"
        printf '  %-18s %d: %8ss  %s\n' multi "$i" "$secs" "$conn"
    done
    printf '{"files": %s, "upstream": "%s"}\n' "$nfiles" "$conn" >"$run/extras/multi.json"
    rm -rf "$cache"
}

if [[ $do_extras == 1 ]]; then
    echo "extras (load average $(loadavg))"
    loadavgs+=("$(cut -d' ' -f1 /proc/loadavg)")
    ready_and_rss
    multi
    statlat
    tput
fi
loadavg_end=$(loadavg)

# --- report ----------------------------------------------------------------------------------
export B_MODE=$mode B_TINY=$tiny B_COUNT=$count B_TOTAL=$total_bytes B_REPS=$reps B_JOBS=$build_jobs \
    B_PCTS=$percents B_LOCKFMT=$lock_format B_LAT=$latency_ms B_RATE=$rate B_LOAD0=$loadavg_start B_LOAD1=$loadavg_end \
    B_LOADS="${loadavgs[*]}" B_STRATA=$STRATA B_REPO=$repo B_RUN=$run B_LOCK=$lockfile \
    B_READY=$ready_entries B_RSS=$rss_entries B_TPUT=$tput_size B_TPUT_REPS=$tput_reps \
    B_STAT="$stat_cached $stat_cold $stat_latency_ms $stat_seconds" B_MULTI=$multi_list
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
run, lock = e["B_RUN"], e["B_LOCK"]
sc, so, sl, ss = e["B_STAT"].split()
meta = {
    "params": {
        "mode": e["B_MODE"], "tiny": e["B_TINY"] == "1", "count": int(e["B_COUNT"]),
        "total_bytes": int(e["B_TOTAL"]), "reps": int(e["B_REPS"]),
        "build_jobs": [int(x) for x in e["B_JOBS"].split()], "percents": [int(x) for x in e["B_PCTS"].split()],
        "lock_format": e["B_LOCKFMT"],
        "latency_ms": int(e["B_LAT"]), "rate": e["B_RATE"], "ready_entries": int(e["B_READY"]),
        "rss_entries": int(e["B_RSS"]), "tput_file_bytes": int(e["B_TPUT"]), "tput_reps": int(e["B_TPUT_REPS"]),
        "stat_cached": int(sc), "stat_cold": int(so), "stat_latency_ms": int(sl), "stat_seconds": float(ss),
        "multi_percent": int(e["B_MULTI"]),
    },
    "machine": {
        "nproc": os.cpu_count(), "mem_total_kib": mem_kb, "kernel": platform.release(), "cpu": cpu,
        "loadavg_start": e["B_LOAD0"], "loadavg_end": e["B_LOAD1"],
        "loadavg_1min_per_rep": [float(x) for x in e["B_LOADS"].split()],
    },
    "versions": {"strata": sh(e["B_STRATA"], "--version"), "git": rev, "crates_dirty": bool(dirty),
                 "python": platform.python_version()},
    "commands": {
        "eager": f"strata fetch --cache-dir <fresh> --output <fresh> --format json {lock} && bench.py build --root <output> --list build-<P>.txt --jobs <K>",
        "lazy": f"strata mount --daemon --cache-dir <fresh> --record profile.jsonl {run}/mnt {lock} && bench.py build --root {run}/mnt --list build-<P>.txt --jobs <K>; strata umount {run}/mnt",
        "profile": f"strata mount --daemon --cache-dir <fresh> --prefetch profile.jsonl {run}/mnt {lock} && bench.py build ...; strata umount {run}/mnt",
        "ready": "strata mount --daemon --cache-dir <cache> <mnt> ready/artifacts.lock.yaml (made-up digests)",
        "tput": "bench.py tput FILES (1 MiB reads) of the store files / of mounts with and without --no-passthrough",
        "statlat": "bench.py statlat --root <mnt> ... (os.stat loop timed with perf_counter_ns, 64 opener threads)",
    },
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
py report --times "$times" --meta "$run/meta.json" --extras "$run/extras" --out "$work/results.json"
cp "$work/results.json" "$work/results-$mode.json"
