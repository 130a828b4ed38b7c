#!/usr/bin/env bash
# Configures and builds hearth into ./build (Release with debug info, Ninja,
# ccache). Extra arguments go to cmake's configure step, e.g.
#   scripts/build.sh -DHEARTH_BUILD_BENCHMARKS=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
JOBS=${HEARTH_JOBS:-$(nproc)}
echo "build: configuring $BUILD_DIR"
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja "$@" >"$BUILD_DIR/configure.log" 2>&1 || {
  cat "$BUILD_DIR/configure.log" >&2; exit 1; }
echo "build: compiling with $JOBS jobs (a first build takes several minutes)"
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "build: done"
