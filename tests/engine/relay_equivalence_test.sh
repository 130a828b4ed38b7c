#!/usr/bin/env bash
# Data-parallel training through the hearth transport: a hearth-relay on
# loopback, hearthrun --rdzv-backend hearth starting the workers, which dial
# out to the relay and average gradients over the relayed Mesh. The worker
# checks its parameters against a single-process run (exit 0 on a match).
#   relay_equivalence_test.sh RELAY HEARTHRUN WORKER NPROC OPTIMIZER ACCUMULATION
set -euo pipefail
relay=$1 hearthrun=$2 worker=$3 nproc=$4 optimizer=$5 accumulation=$6
log=$(mktemp)
export HEARTH_JOIN_TOKEN="relay-test-$$"
"$relay" --bind tcp://127.0.0.1:0 --run-id eqtest --world-size "$nproc" \
  --token-env HEARTH_JOIN_TOKEN >"$log" 2>&1 &
relay_pid=$!
trap 'kill $relay_pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  sleep 0.1
done
endpoint=$(sed -n 's/.*listening on tcp:\/\///p' "$log" | head -1)
[ -n "$endpoint" ] || { echo "relay did not start: $(cat "$log")"; exit 1; }
"$hearthrun" --nproc-per-node "$nproc" --rdzv-backend hearth --rdzv-endpoint "$endpoint" \
  --rdzv-id eqtest "$worker" "$optimizer" "$accumulation"
