#!/usr/bin/env bash
# A multi-GPU home behind NAT: home 1 runs two workers (ranks 0 and 1), home 2
# one (rank 2); no home is reachable from outside, the relay is on the public
# host. With same-host links the two workers of home 1 link directly over
# loopback (a cross-memory lane between them) while every pair across homes
# stays relayed; allreduces over all three are exact (each worker checks its
# sums). Exits 77 (skipped, one line saying why) without root/ip/iptables.
#   same_host_nat_test.sh RELAY MESH_WORKER
set -euo pipefail
relay=$1 worker=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/netbed_lib.sh"  # bed, netbed_up
netbed_up --homes 2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash "$bed" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "== $f"; tail -n 10 "$f"; done; exit 1; }
export HEARTH_JOIN_TOKEN="same-host-$$" HEARTH_ALLOW_PLAINTEXT=1 HEARTH_SAME_HOST_LINKS=1

bash "$bed" exec pub "$relay" --bind tcp://198.18.0.1:29710 --run-id samehost --world-size 3 \
  --token-env HEARTH_JOIN_TOKEN --allow-plaintext >"$work/relay.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q "listening on" "$work/relay.log" && break; sleep 0.1; done
grep -q "listening on" "$work/relay.log" || fail "relay did not start"
touch "$work/go"
workers=()
for rank in 0 1 2; do
  home=$((rank < 2 ? 1 : 2))
  bash "$bed" exec "home$home" "$worker" tcp://198.18.0.1:29710 samehost $rank 3 20 0 \
    "$work/go" >"$work/rank$rank.log" 2>&1 &
  workers+=($!)
  pids+=($!)
done
status=0
for p in "${workers[@]}"; do wait "$p" || status=1; done
[ "$status" = 0 ] || fail "a worker failed"
grep -q "rank 0 paths: 0=self 1=direct 2=relay" "$work/rank0.log" || fail "rank 0 paths"
grep -q "rank 1 paths: 0=direct 1=self 2=relay" "$work/rank1.log" || fail "rank 1 paths"
grep -q "rank 2 paths: 0=relay 1=relay 2=self" "$work/rank2.log" || fail "rank 2 paths"
for rank in 0 1; do
  grep -q "phase2 done" "$work/rank$rank.log" || fail "rank $rank did not finish"
  if ! grep -q "cross-memory reads from process\|no cross-memory reads" "$work/rank$rank.log"; then
    fail "rank $rank: no cross-memory set-up with its housemate"
  fi
done
grep -q "probing" "$work/relay.log" && fail "the relay probed a same-host endpoint"
echo "ok: two workers of one NATed home link over loopback, the other home stays relayed"
echo "same_host_nat_test: 1 passed, 0 failed"
