#!/usr/bin/env bash
# Allreduce over hearth's relayed transport vs Gloo, same run, on loopback
# with N = 2 and 4 ranks; figures go to docs/benchmarks.md.
#   bench_transport.sh [bench_transport options]
#   bench_transport.sh --paths [options]   direct links vs relay vs raw TCP / Gloo:
#       four more relays: one run relayed only, one where every node listens
#       on loopback (direct links with bulk lanes and cross-memory reads), one
#       like it whose lanes carry bytes (tcplane) and one with bulk lanes off
#       (direct links over ZeroMQ only); point-to-point and ring allreduce
#       (--only NAME... picks paths)
# Environment: HEARTH_BUILD_DIR (default build), RANKS (default "2 4": the
# world sizes to run, e.g. RANKS="2 4 8"), HEARTH_BENCH_PACED_LANES=1 (same-host
# bulk lanes keep the system's congestion control, e.g. BBR, instead of cubic),
# HEARTH_BENCH_VERBOSE=1 (the nodes' link and lane log lines).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
export HEARTH_JOIN_TOKEN=bench-$$
relays=()
trap 'for r in "${relays[@]}"; do kill "$r" 2>/dev/null || true; done' EXIT

# Starts a relay in this shell (so that its PID lands in `relays` and the
# trap stops it; a $(...) subshell would lose it) and sets RELAY_ENDPOINT to
# its HOST:PORT.
start_relay() {  # run_id world_size
  local log
  log=$(mktemp)
  "$BUILD_DIR/transport/hearth-relay" --run-id "$1" --world-size "$2" \
    --token-env HEARTH_JOIN_TOKEN >"$log" 2>&1 &
  relays+=($!)
  for _ in $(seq 1 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
  RELAY_ENDPOINT=$(sed -n 's/.*listening on tcp:\/\///p' "$log" | head -1)
  rm -f "$log"
  if [ -z "$RELAY_ENDPOINT" ]; then
    echo "bench_transport.sh: hearth-relay for run $1 did not start" >&2
    exit 1
  fi
}

paths=0
for arg in "$@"; do [ "$arg" = --paths ] && paths=1; done
for n in ${RANKS:-2 4}; do
  start_relay bench$n "$n"
  endpoint=$RELAY_ENDPOINT
  if [ "$paths" = 1 ]; then
    start_relay bench$n-relayed "$n"
    HEARTH_BENCH_RELAYED=$RELAY_ENDPOINT
    start_relay bench$n-direct "$n"
    HEARTH_BENCH_DIRECT=$RELAY_ENDPOINT
    start_relay bench$n-direct-tcp "$n"
    HEARTH_BENCH_DIRECT_TCP=$RELAY_ENDPOINT
    start_relay bench$n-direct-zmq "$n"
    HEARTH_BENCH_DIRECT_ZMQ=$RELAY_ENDPOINT
    export HEARTH_BENCH_RELAYED HEARTH_BENCH_DIRECT HEARTH_BENCH_DIRECT_TCP HEARTH_BENCH_DIRECT_ZMQ
  fi
  "$BUILD_DIR/runtime/launcher/hearthrun" --nproc-per-node "$n" --rdzv-backend hearth \
    --rdzv-endpoint "$endpoint" --rdzv-id bench$n "$BUILD_DIR/bench/bench_transport" "$@" |
    sed -n 's/^\[rank0\]: //p'
  for r in "${relays[@]}"; do kill "$r" 2>/dev/null || true; done
  relays=()
done
