#!/usr/bin/env bash
# Data-parallel training through the hearth transport: a hearth-relay on
# loopback, hearthrun --rdzv-backend hearth starting the workers, which dial
# out to the relay and average gradients over the Mesh: relayed with
# HEARTH_SAME_HOST_LINKS=0, else over the workers' same-host links (direct,
# cross-memory lanes), each checked in the workers' "paths" lines. The worker
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
out=$(mktemp)
trap 'kill $relay_pid 2>/dev/null || true; rm -f "$log" "$out"' EXIT
status=0
"$hearthrun" --nproc-per-node "$nproc" --rdzv-backend hearth --rdzv-endpoint "$endpoint" \
  --rdzv-id eqtest "$worker" "$optimizer" "$accumulation" 2>&1 | tee "$out" || status=$?
[ "$status" = 0 ] || exit "$status"
want=direct other=relay
[ "${HEARTH_SAME_HOST_LINKS:-1}" = 0 ] && want=relay other=direct
paths=$(grep -c "paths: " "$out" || true)
[ "$paths" = "$nproc" ] || { echo "FAIL: $paths of $nproc workers logged their paths"; exit 1; }
if grep "paths: " "$out" | grep -q "=$other"; then
  echo "FAIL: expected every peer $want: $(grep 'paths: ' "$out")"
  exit 1
fi
echo "relay_equivalence_test: every peer $want"
