#!/usr/bin/env bash
# Four nodes in four different home networks, each behind its own NAT router,
# join a run through hearth-relay on the "public" host and (1) train with
# gradients equal to single-process training, (2) train the char-LM example
# together, dense and with DGC. Homes 1, 3 and 4 are unreachable from outside;
# home 2's router forwards a port to it (netbed --reachable 2) and its worker
# listens there (HEARTH_LISTEN / HEARTH_ADVERTISE): the relay probes it, the
# other three dial it directly, and the pairs among homes 1, 3, 4 stay
# relayed; each worker logs its paths, which are checked.
# Everything runs with CURVE: keys from `hearth keygen` (relay and one per
# home, the relay admits only the homes' keys), and a capture on the public
# bridge (tcpdump) must not contain the run id or the join token in clear.
# Exits 77 (skipped, one line saying why) without root/ip/iptables.
#   nat_training_test.sh RELAY HEARTHRUN EQUIVALENCE_WORKER CHARLM
set -euo pipefail
relay=$1 hearthrun=$2 worker=$3 charlm=$4
# hearth keygen: the `hearth` tool of the same build, unless HEARTH_TOOL says otherwise.
tool=${HEARTH_TOOL:-$(cd "$(dirname "$relay")/.." && pwd)/runtime/hearth}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/netbed_lib.sh"  # bed, netbed_up
homes=4
netbed_up --homes $homes --reachable 2
work=$(mktemp -d)
relay_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  bash "$bed" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export HEARTH_JOIN_TOKEN="nat-test-token-$$"
fail() { echo "FAIL: $*"; exit 1; }
command -v tcpdump >/dev/null 2>&1 ||
  { echo "nat_training_test: skipped: tcpdump not found (scripts/install-deps.sh)"; exit 77; }
[ -x "$tool" ] || fail "hearth tool not found at $tool (set HEARTH_TOOL)"

# CURVE keys (docs/security.md): the relay's, and one per home on the allowlist.
unset HEARTH_ALLOW_PLAINTEXT
"$tool" keygen --out "$work/relay" >/dev/null 2>&1
for i in $(seq 1 $homes); do "$tool" keygen --out "$work/home$i" >/dev/null 2>&1; done
cat "$work"/home*.pub >"$work/nodes.allow"
export HEARTH_RELAY_PUBLIC_KEY="$work/relay.pub"

run_across_homes() {  # run_id, then the worker command line
  local run=$1; shift
  bash "$bed" exec pub "$relay" --bind tcp://198.18.0.1:29600 --run-id "$run" \
    --world-size $homes --token-env HEARTH_JOIN_TOKEN --curve-secret-key "$work/relay.key" \
    --allow-keys "$work/nodes.allow" >"$work/relay-$run.log" 2>&1 &
  relay_pid=$!
  sleep 0.5
  local pids=()
  for i in $(seq 1 $homes); do
    local listen="" advertise=""
    if [ "$i" = 2 ]; then  # reachable: router 2 forwards 30000:30999 to it
      listen=tcp://198.19.2.2:30000 advertise=tcp://198.18.0.12:30000
    fi
    HEARTH_LISTEN=$listen HEARTH_ADVERTISE=$advertise HEARTH_NODE_KEY="$work/home$i.key" \
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

# Capture the public side ("the internet") during the first run.
bash "$bed" exec pub tcpdump -i hbbr0 -U -s 0 -w "$work/wire.pcap" tcp >"$work/tcpdump.log" 2>&1 &
tcpdump_pid=$!
sleep 1
run_across_homes equivalence "$worker" sgd 1 ||
  fail "equivalence across NAT: $(tail -n 5 "$work"/equivalence-home*.log)"
sleep 0.5
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
grep -h "max |dp - reference|" "$work"/equivalence-home*.log
check_paths equivalence
echo "ok: 4 NAT'ed homes train equal to a single process"
echo "ok: reachable home2 has direct links to all; the others stay relayed among themselves"

# The wire: relay traffic (port 29600) and direct links (30000) were captured,
# and neither the run id nor the join token (sent in HELLO and DIRECT_HELLO)
# appears in clear: everything is CURVE-encrypted.
relay_packets=$(tcpdump -r "$work/wire.pcap" -nn 'tcp port 29600' 2>/dev/null | wc -l)
direct_packets=$(tcpdump -r "$work/wire.pcap" -nn 'tcp port 30000' 2>/dev/null | wc -l)
captured=$(stat -c %s "$work/wire.pcap")
[ "$relay_packets" -gt 100 ] && [ "$direct_packets" -gt 100 ] ||
  fail "capture too small: $relay_packets relay, $direct_packets direct packets ($(cat "$work/tcpdump.log"))"
for marker in "$HEARTH_JOIN_TOKEN" equivalence; do
  if grep -aqF -- "$marker" "$work/wire.pcap"; then fail "'$marker' travels in plaintext"; fi
done
grep -q "joined as rank" "$work/relay-equivalence.log" || fail "relay log without joins"
echo "ok: CURVE on the wire: $captured bytes captured ($relay_packets relay and" \
     "$direct_packets direct-link packets), no run id or join token in clear"

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
echo "nat_training_test: 5 passed, 0 failed"
