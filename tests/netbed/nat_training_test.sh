#!/usr/bin/env bash
# Four nodes in four different home networks, each behind its own NAT router,
# join a run through hearth-relay on the "public" host and (1) train with
# gradients equal to single-process training, (2) train the char-LM example
# together, dense and with DGC. Homes 1, 3 and 4 are unreachable from outside;
# home 2's router forwards a port to it (netbed --reachable 2) and its worker
# listens there (HEARTH_LISTEN / HEARTH_ADVERTISE): the relay probes it, the
# other three dial it directly, and the pairs among homes 1, 3, 4 stay
# relayed; each worker logs its paths, which are checked.
# Exits 77 (skipped, one line saying why) without root/ip/iptables.
#   nat_training_test.sh RELAY HEARTHRUN EQUIVALENCE_WORKER CHARLM
set -euo pipefail
relay=$1 hearthrun=$2 worker=$3 charlm=$4
here=$(cd "$(dirname "$0")" && pwd)
bed="$here/../../scripts/netbed.sh"
homes=4
set +e
out=$(bash "$bed" up --homes $homes --reachable 2 2>&1); code=$?
set -e
if [ "$code" = 77 ]; then echo "$out"; exit 77; fi
[ "$code" = 0 ] || { echo "FAIL: netbed up: $out"; exit 1; }
work=$(mktemp -d)
relay_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  bash "$bed" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export HEARTH_JOIN_TOKEN="nat-test-$$"
# The test bed's 198.18.0.0/15 addresses are not loopback, so plaintext must be
# allowed explicitly on both ends (docs/security.md); CURVE is tested in
# tests/transport/zmq_curve_test.cpp.
export HEARTH_ALLOW_PLAINTEXT=1
fail() { echo "FAIL: $*"; exit 1; }

run_across_homes() {  # run_id, then the worker command line
  local run=$1; shift
  bash "$bed" exec pub "$relay" --bind tcp://198.18.0.1:29600 --run-id "$run" \
    --world-size $homes --token-env HEARTH_JOIN_TOKEN --allow-plaintext >"$work/relay-$run.log" 2>&1 &
  relay_pid=$!
  sleep 0.5
  local pids=()
  for i in $(seq 1 $homes); do
    local listen="" advertise=""
    if [ "$i" = 2 ]; then  # reachable: router 2 forwards 30000:30999 to it
      listen=tcp://198.19.2.2:30000 advertise=tcp://198.18.0.12:30000
    fi
    HEARTH_LISTEN=$listen HEARTH_ADVERTISE=$advertise \
    bash "$bed" exec "home$i" "$hearthrun" --nnodes $homes --node-rank $((i - 1)) \
      --nproc-per-node 1 --rdzv-backend hearth --rdzv-endpoint 198.18.0.1:29600 \
      --rdzv-id "$run" "$@" >"$work/$run-home$i.log" 2>&1 &
    pids+=($!)
  done
  local status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  kill "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  return $status
}

# Every worker logs "paths: 0=... 1=..."; home I is rank I-1, home 2 is reachable.
check_paths() {  # run_id
  local run=$1
  local want=("0=self 1=direct 2=relay 3=relay" "0=direct 1=self 2=direct 3=direct"
              "0=relay 1=direct 2=self 3=relay" "0=relay 1=direct 2=relay 3=self")
  for i in $(seq 1 $homes); do
    grep -q "rank $((i - 1)) paths: ${want[$((i - 1))]}\$" "$work/$run-home$i.log" ||
      fail "$run: home$i paths: $(grep -h 'paths:' "$work/$run-home$i.log" || echo none)," \
           "expected ${want[$((i - 1))]}"
  done
  grep -q "rank 1 is reachable at tcp://198.18.0.12:30000" "$work/relay-$run.log" ||
    fail "$run: the relay did not find home2 reachable: $(grep -h probe "$work/relay-$run.log")"
}

run_across_homes equivalence "$worker" sgd 1 ||
  fail "equivalence across NAT: $(tail -n 5 "$work"/equivalence-home*.log)"
grep -h "max |dp - reference|" "$work"/equivalence-home*.log
check_paths equivalence
echo "ok: 4 NAT'ed homes train equal to a single process"
echo "ok: reachable home2 has direct links to all; the others stay relayed among themselves"

for codec in none dgc; do
  run_across_homes "lm-$codec" "$charlm" --steps 150 --set compression.codec=$codec \
    --set train.sample_chars=0 --metrics "$work/lm-$codec.jsonl" ||
    fail "char-LM ($codec) across NAT: $(tail -n 5 "$work"/lm-$codec-home*.log)"
  line=$(grep -h '"event":"final"' "$work/lm-$codec.jsonl")
  ratio=$(sed -n 's/.*"val_over_unigram":\([0-9.eE+-]*\).*/\1/p' <<<"$line")
  awk -v r="$ratio" 'BEGIN {exit !(r < 0.9)}' || fail "char-LM ($codec) did not learn: $line"
  check_paths "lm-$codec"
  echo "ok: char-LM ($codec) across 4 NAT'ed homes: held-out/unigram = $ratio"
done
echo "nat_training_test: 4 passed, 0 failed"
