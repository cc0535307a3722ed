#!/bin/sh
# Runs mcpauth's whole benchmark set (about 5-6 minutes on 2 CPUs) and
# writes docs/benchmarks.md. Flags are passed through: bench/run.sh -help;
# bench/run.sh -gateway-only (about 2 minutes) refreshes only the gateway
# section.
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
