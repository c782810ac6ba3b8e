#!/bin/sh
set -e
cat /app/extensions/*.extension > /app/extensions.all
