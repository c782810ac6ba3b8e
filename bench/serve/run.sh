#!/usr/bin/env bash
# bench/serve/run.sh: strata serve vs devpi-server (pip) and verdaccio (npm), and a second
# machine filling from the remote tier vs from the throttled upstream. See bench.py for cases.
#
# Usage: bench/serve/run.sh [--tiny] [--reps N] [--work-dir DIR] [--bin-dir DIR]
#   --tiny       smoke run for CI: 5 wheels, 10 npm packages, 1 rep
#   --reps N     repetitions (default 3)
#   --work-dir   data, tools and results (default ${TMPDIR:-/tmp}/strata-bench-serve)
#   --bin-dir    where strata and strata-upstream are (default target/release; built if missing)
# Baselines are installed into the work dir on first use: devpi-server + devpi-client from
# PyPI (a venv), verdaccio from the npm registry. A baseline that cannot be installed is
# reported as SKIP and its cases are left out; strata's cases and checks always run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tiny=
reps=3
work=${TMPDIR:-/tmp}/strata-bench-serve
bin=$repo/target/release
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=--tiny ;;
    --reps) reps=$2; shift ;;
    --work-dir) work=$2; shift ;;
    --bin-dir) bin=$2; shift ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work/tools"
if [ ! -x "$bin/strata" ] || [ ! -x "$bin/strata-upstream" ]; then
  (cd "$repo" && cargo build --release -p strata -p strata-upstream)
fi
devpi=
if [ -x "$work/tools/devpi/bin/devpi-server" ] || {
     python3 -m venv "$work/tools/devpi" &&
     "$work/tools/devpi/bin/pip" install -q devpi-server devpi-client; } >/dev/null 2>&1; then
  devpi=$work/tools/devpi/bin
else
  echo "SKIP devpi: could not install devpi-server from PyPI" >&2
fi
verdaccio=
if [ -x "$work/tools/verdaccio/node_modules/.bin/verdaccio" ] ||
   npm install --silent --no-audit --no-fund --prefix "$work/tools/verdaccio" verdaccio >/dev/null 2>&1; then
  verdaccio=$work/tools/verdaccio/node_modules/.bin/verdaccio
else
  echo "SKIP verdaccio: could not install it from the npm registry" >&2
fi
exec python3 "$here/bench.py" --work "$work" --bin "$bin" --reps "$reps" $tiny \
  --devpi "$devpi" --verdaccio "$verdaccio"
