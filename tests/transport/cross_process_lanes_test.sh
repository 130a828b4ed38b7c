#!/usr/bin/env bash
# Cross-memory reads between real processes (the in-process tests read their
# own pid): three hearth_mesh_worker processes on loopback, every node
# listening, so every pair has a direct link with a bulk lane. (1) They run
# allreduces whose sums each checks; every lane proves its peer's pid (a
# different process) and reads across processes, and nothing goes down.
# (2) kill -9 of one worker in the middle of a long series of allreduces:
# each survivor fails with an error naming a lost rank (that one, or the
# other survivor once it has left), within seconds, and none hangs.
# Exits 77 (skipped, saying why) where cross-process reads are not permitted.
#   cross_process_lanes_test.sh RELAY MESH_WORKER
set -euo pipefail
relay=$1 worker=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "== $f"; tail -n 12 "$f"; done; exit 1; }
export HEARTH_JOIN_TOKEN="lanes-$$"
export HEARTH_LISTEN=tcp://127.0.0.1:0

start_relay() {  # run_id log
  "$relay" --run-id "$1" --world-size 3 --token-env HEARTH_JOIN_TOKEN >"$2" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do grep -q "listening on" "$2" && break; sleep 0.1; done
  endpoint=$(sed -n 's/.*listening on \(tcp:\/\/[^ ]*\).*/\1/p' "$2" | head -1)
  [ -n "$endpoint" ] || fail "hearth-relay did not start"
}

# (1) Allreduces over cross-memory lanes between three processes.
start_relay lanes "$work/relay1.log"
touch "$work/go"
workers=()
for r in 0 1 2; do
  "$worker" "$endpoint" lanes $r 3 30 0 "$work/go" >"$work/ok$r.log" 2>&1 &
  workers+=($!)
  pids+=($!)
done
status=0
for p in "${workers[@]}"; do wait "$p" || status=1; done
[ "$status" = 0 ] || fail "a worker failed"
# Where the kernel forbids the reads (seccomp, Yama, ...) lanes carry bytes,
# which other tests cover: skip, saying why.
if grep -h "no cross-memory reads" "$work"/ok*.log | head -1 | grep .; then
  echo "skipped: cross-memory reads between processes are not permitted here"
  exit 77
fi
for r in 0 1 2; do
  grep -q "rank $r phase2 done" "$work/ok$r.log" || fail "rank $r did not finish"
  grep -q "rank $r paths: .*=relay" "$work/ok$r.log" && fail "rank $r has a relayed peer"
  # One proven peer per other rank, each another process.
  reads=$(grep -c "cross-memory reads from process" "$work/ok$r.log" || true)
  [ "$reads" = 2 ] || fail "rank $r reads $reads peers by cross-memory read, expected 2"
  own=${workers[$r]}
  grep -q "cross-memory reads from process $own\$" "$work/ok$r.log" && fail "rank $r read itself"
  # (Links close when the workers exit, after "phase2 done".)
  sed '/phase2 done/q' "$work/ok$r.log" | grep -q " down" && fail "rank $r lost a link"
done
echo "ok: 3 processes, 30 allreduces each over cross-memory lanes, sums checked"

# (2) kill -9 of rank 2 mid-run.
start_relay lanes-kill "$work/relay2.log"
workers=()
for r in 0 1 2; do
  "$worker" "$endpoint" lanes-kill $r 3 100000 0 "$work/go" >"$work/kill$r.log" 2>&1 &
  workers+=($!)
  pids+=($!)
done
for _ in $(seq 1 100); do
  [ "$(cat "$work"/kill*.log | grep -c 'cross-memory reads from')" -ge 6 ] && break
  sleep 0.1
done
sleep 1
kill -9 "${workers[2]}"
start=$(date +%s)
for r in 0 1; do
  if wait "${workers[$r]}"; then fail "rank $r finished 100000 allreduces without rank 2"; fi
done
took=$(($(date +%s) - start))
[ "$took" -le 20 ] || fail "the survivors took ${took}s to fail"
# Each survivor fails on a lost peer: rank 2, or the other survivor, which
# leaves once it has failed itself (whichever its pending call waited on).
for r in 0 1; do
  grep -q "rank $r FAILED: .*lost rank [0-2]" "$work/kill$r.log" ||
    fail "rank $r did not fail on a lost peer"
done
grep -q "FAILED: .*lost rank 2" "$work"/kill[01].log || fail "no survivor's error names rank 2"
echo "ok: kill -9 of rank 2 mid-allreduce: ranks 0 and 1 failed on lost peers within ${took}s"
echo "cross_process_lanes_test: 2 passed, 0 failed"
