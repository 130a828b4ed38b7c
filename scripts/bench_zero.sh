#!/usr/bin/env bash
# Runs bench_zero at 2, 4 and 8 ranks on loopback (one process per rank, via
# hearthrun, Gloo): per-rank model-state bytes of ZeRO stages 1-3 and of the
# data-parallel Engine (stage 0) next to the formulas, wire bytes per step and
# step time relative to stage 0. Prints rank 0's table per world size.
# Figures go to docs/benchmarks.md ("ZeRO"). Extra arguments go to bench_zero.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
for n in ${HEARTH_BENCH_WORLDS:-2 4 8}; do
  "$BUILD_DIR/runtime/launcher/hearthrun" --standalone --nproc-per-node "$n" \
    "$BUILD_DIR/bench/bench_zero" "$@"
done
