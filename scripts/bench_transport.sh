#!/usr/bin/env bash
# Allreduce over hearth's relayed transport vs Gloo, same run, on loopback
# with N = 2 and 4 ranks; figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
export HEARTH_JOIN_TOKEN=bench-$$
for n in 2 4; do
  log=$(mktemp)
  "$BUILD_DIR/transport/hearth-relay" --run-id bench$n --world-size "$n" \
    --token-env HEARTH_JOIN_TOKEN >"$log" 2>&1 &
  relay=$!
  trap 'kill $relay 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
  endpoint=$(sed -n 's/.*listening on tcp:\/\///p' "$log" | head -1)
  "$BUILD_DIR/runtime/launcher/hearthrun" --nproc-per-node "$n" --rdzv-backend hearth \
    --rdzv-endpoint "$endpoint" --rdzv-id bench$n "$BUILD_DIR/bench/bench_transport" "$@" |
    sed -n 's/^\[rank0\]: //p'
  kill "$relay" 2>/dev/null || true
  rm -f "$log"
done
