#!/usr/bin/env bash
# Runs bench_engine at 2 and 4 ranks on loopback (one process per rank, via
# hearthrun) and prints rank 0's tables. Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
for n in 2 4; do
  "$BUILD_DIR/runtime/launcher/hearthrun" --standalone --nproc-per-node "$n" \
    "$BUILD_DIR/bench/bench_engine" "$@"
done
