#!/bin/sh
cat /app/extensions.all
