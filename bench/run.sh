#!/bin/sh
# Runs mcpauth's whole benchmark set (about 3-4 minutes on 2 CPUs) and
# writes docs/benchmarks.md. Flags are passed through: bench/run.sh -help
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
