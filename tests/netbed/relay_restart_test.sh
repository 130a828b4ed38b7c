#!/usr/bin/env bash
# hearth-relay restarts in the middle of a run across NAT: three homes (home 2
# reachable, so it has direct links with the others; homes 1 and 3 talk through
# the relay) run allreduces, the relay is killed (-9) between two phases and
# started again with the same run id, token and world size; the nodes keep
# their ranks, re-join, and the second phase of allreduces succeeds.
# Home 2's direct links carry DATA on bulk lanes (HEARTH_LANE_PORT, a
# forwarded port): checked to connect through the NAT, to carry bytes (no
# cross-memory reads between hosts), and, where the homes' congestion control
# is BBR, to keep it on both ends (only same-host lanes go unpaced).
# Exits 77 (skipped, one line saying why) without root/ip/iptables.
#   relay_restart_test.sh RELAY MESH_WORKER
set -euo pipefail
relay=$1 worker=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/netbed_lib.sh"  # bed, netbed_up
homes=3
netbed_up --homes $homes --reachable 2
# BBR where the kernel has it: the lane listener is unpaced (cubic) and must
# give connections from other hosts the system's choice back.
for i in $(seq 1 $homes); do
  bash "$bed" exec "home$i" sysctl -q -w net.ipv4.tcp_congestion_control=bbr 2>/dev/null || true
done
work=$(mktemp -d)
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
  bash "$bed" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "== $f"; tail -n 8 "$f"; done; exit 1; }
export HEARTH_JOIN_TOKEN="restart-test-$$"
# Plaintext on the test bed (not loopback) is allowed explicitly; CURVE across
# NAT is covered by nat_training_test.sh.
export HEARTH_ALLOW_PLAINTEXT=1

start_relay() {  # log file
  bash "$bed" exec pub "$relay" --bind tcp://198.18.0.1:29700 --run-id restart \
    --world-size $homes --token-env HEARTH_JOIN_TOKEN --allow-plaintext >"$1" 2>&1 &
  relay_pid=$!
  for _ in $(seq 1 50); do grep -q "listening on" "$1" && return 0; sleep 0.1; done
  fail "relay did not start"
}

start_relay "$work/relay1.log"
pids=()
for i in $(seq 1 $homes); do
  listen="" advertise=""
  if [ "$i" = 2 ]; then listen=tcp://198.19.2.2:30000 advertise=tcp://198.18.0.12:30000; fi
  HEARTH_LISTEN=$listen HEARTH_ADVERTISE=$advertise HEARTH_LANE_PORT=30001 \
    bash "$bed" exec "home$i" "$worker" \
    tcp://198.18.0.1:29700 restart $((i - 1)) $homes 5 5 "$work/go" >"$work/home$i.log" 2>&1 &
  pids+=($!)
done

# Phase 1 done on every node: nothing is in flight; kill the relay.
for _ in $(seq 1 300); do
  [ "$(cat "$work"/home*.log | grep -c 'phase1 done')" = $homes ] && break
  grep -q FAILED "$work"/home*.log && fail "phase 1"
  sleep 0.1
done
[ "$(cat "$work"/home*.log | grep -c 'phase1 done')" = $homes ] || fail "phase 1 did not finish"
grep -q "rank 1 paths: 0=direct 1=self 2=direct" "$work/home2.log" || fail "home2 paths"
grep -q "rank 0 paths: 0=self 1=direct 2=relay" "$work/home1.log" || fail "home1 paths"
# Bulk lanes through the NAT, carrying bytes, each end on the system's choice.
for r in 0 2; do
  grep -q "bulk lane to rank $r up (accepted)" "$work/home2.log" || fail "no bulk lane from rank $r"
done
grep -q "cross-memory" "$work"/home*.log && fail "cross-memory reads between two hosts"
for end in "home2 sport" "home1 dport" "home3 dport"; do
  read -r ns side <<<"$end"
  want=$(bash "$bed" exec "$ns" sysctl -n net.ipv4.tcp_congestion_control)
  info=$(bash "$bed" exec "$ns" ss -tinH state established "( $side = :30001 )")
  lanes=$(grep -c "rto:" <<<"$info" || true)
  [ "$lanes" -ge 1 ] || fail "$ns: no established lane connection ($side 30001): $info"
  [ "$(grep -cw "$want" <<<"$info")" = "$lanes" ] || fail "$ns: a lane does not use $want: $info"
done
echo "ok: bulk lanes through NAT carry bytes on the system's congestion control ($want)"
kill -9 "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
sleep 1
# Phase 2 starts while no relay runs (its relayed frames wait on the nodes),
# then the relay comes back with the same run.
touch "$work/go"
sleep 1
start_relay "$work/relay2.log"
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || fail "a node failed after the relay restart"
[ "$(cat "$work"/home*.log | grep -c 'phase2 done, epoch 0')" = $homes ] ||
  fail "phase 2 did not finish on every node with epoch 0"
[ "$(cat "$work"/home*.log | grep -c 'rejoined the relay')" = $homes ] || fail "no rejoin logged"
grep -q "world complete" "$work/relay2.log" || fail "restarted relay did not rebuild the world"
grep -q "rank 1 is reachable" "$work/relay2.log" || fail "restarted relay did not re-probe home2"
echo "ok: 3 NAT'ed homes (1 reachable) carried on after hearth-relay was killed and restarted"
echo "relay_restart_test: 1 passed, 0 failed"
