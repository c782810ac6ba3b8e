#!/bin/sh
# developer user and SSH set-up: 15% of the tooling layer's time and payload.
set -e
. /opt/tooling/lib.sh
install_tool user 15 "$1" "$2"
