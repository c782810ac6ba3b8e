# bench/lib/common.sh: shell helpers shared by the bench/*/run.sh scripts. Source it after
# setting $repo; it uses (and documents) a few globals:
#   $run        the run directory (logs, port files)
#   $STRATA, $UPSTREAM   set by bench_tools
#   pids        background processes to stop on exit (bench_cleanup, installed as the EXIT trap)
# shellcheck shell=bash

# python3, resolved once to the interpreter itself: a version manager's shim (pyenv's re-runs
# `pyenv exec` on every call: 170 ms per call on the benchmark machine) would otherwise sit in
# timed spans (the lazy bench's build reader starts inside them, on both sides alike).
if PYTHON3=$(command python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [[ -x $PYTHON3 ]]; then
    python3() { "$PYTHON3" "$@"; }
fi

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
fail() { echo "run.sh: FAILED: $*" >&2; exit 1; }

# bench_tools BIN_DIR: sets STRATA and UPSTREAM, building them (release) if missing.
bench_tools() {
    STRATA=$1/strata
    UPSTREAM=$1/strata-upstream
    if [[ ! -x $STRATA || ! -x $UPSTREAM ]]; then
        echo "building strata and strata-upstream (release)..."
        (cd "$repo" && cargo build --release -p strata -p strata-upstream)
    fi
}

# Background processes (upstreams, ...) stopped on exit; extra cleanup via bench_on_exit.
pids=()
bench_on_exit=()
bench_cleanup() {
    local pid f
    for f in "${bench_on_exit[@]}"; do
        "$f" || true
    done
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# start_upstream NAME ROOT [ARGS...]: starts a strata-upstream serving ROOT on a free
# loopback port, logging to $run/NAME.log; sets $port.
start_upstream() {
    local name=$1 root=$2
    shift 2
    local port_file=$run/$name.port
    rm -f "$port_file"
    "$UPSTREAM" --root "$root" --addr 127.0.0.1:0 --port-file "$port_file" "$@" \
        >"$run/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -s $port_file ]] && break
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name upstream died:" >&2; cat "$run/$name.log" >&2; exit 1; }
        sleep 0.05
    done
    [[ -s $port_file ]] || { echo "run.sh: $name upstream wrote no port file in 10 s" >&2; exit 1; }
    port=$(<"$port_file")
}

upstream_reset() { curl -fsS -X POST "$1/_upstream/reset" >/dev/null; }
upstream_stats() { curl -fsS "$1/_upstream/stats" >"$2"; }

# Timing: t_start; ...; t_stop VAR puts the seconds since t_start into VAR.
t_start() { t0=$EPOCHREALTIME; }
t_stop() {
    local t1=$EPOCHREALTIME us
    us=$((10#${t1/./} - 10#${t0/./}))
    printf -v "$1" '%d.%06d' $((us / 1000000)) $((us % 1000000))
}
# record CASE REP SECONDS [JSON]: one line of $times.
record() { printf '%s\t%d\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$times"; }
# Flush dirty pages before a timed case so earlier writes do not slow it down.
settle() { sync; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
