#!/bin/sh
# SOPS and age (secrets): 20% of the tooling layer's time and payload.
set -e
. /opt/tooling/lib.sh
install_tool sops 20 "$1" "$2"
