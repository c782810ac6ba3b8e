#!/usr/bin/env bash
# Starts a Docker engine for strata's tests (Debian's docker.io), unless one already answers.
#   - its own data root and socket, so it never disturbs a system Docker:
#       /var/lib/strata-docker, unix:///run/strata-docker.sock
#   - no bridge network and no iptables rules: builds use --network=host (loopback only here)
# Prints the DOCKER_HOST to use. Tests read it from STRATA_DOCKER_HOST (scripts/test.sh sets it).
set -euo pipefail
sock=/run/strata-docker.sock
host="unix://$sock"
client=/usr/bin/docker   # Debian's client: BuildKit built in (a newer client may need buildx)
if [ -S "$sock" ] && DOCKER_HOST=$host "$client" version >/dev/null 2>&1; then
  echo "$host"; exit 0
fi
command -v dockerd >/dev/null || { echo "start-dockerd: dockerd missing (apt-get install docker.io)" >&2; exit 1; }
mkdir -p /var/lib/strata-docker
nohup dockerd --data-root /var/lib/strata-docker -H "$host" --pidfile /run/strata-docker.pid \
  --exec-root /run/strata-docker --bridge=none --iptables=false --ip-forward=false \
  >/var/log/strata-dockerd.log 2>&1 &
for _ in $(seq 150); do
  if DOCKER_HOST=$host "$client" version >/dev/null 2>&1; then echo "$host"; exit 0; fi
  sleep 0.2
done
echo "start-dockerd: dockerd did not come up; see /var/log/strata-dockerd.log" >&2
tail -20 /var/log/strata-dockerd.log >&2 || true
exit 1
