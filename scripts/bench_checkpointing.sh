#!/usr/bin/env bash
# Runs bench_checkpointing (activation checkpointing: peak activation memory
# and step time, 12-block transformer, no checkpointing vs segments of 4, 3
# and 1 blocks, same run). Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
"$BUILD_DIR/bench/bench_checkpointing" "$@"
