#!/bin/sh
# "Installs" tools: waits $1 seconds (downloads), writes a versions file and $2 MiB of
# random tool payload.
set -e
sleep "$1"
mkdir -p /opt/tools
echo "mise 2024.1 sops 3.8 age 1.1" > /opt/tools/versions
dd if=/dev/urandom of=/opt/tools/payload bs=1M count="$2" 2>/dev/null
