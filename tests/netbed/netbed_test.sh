#!/usr/bin/env bash
# The network test bed behaves like home networks: homes dial out through NAT
# (the public side sees the router's address), nothing reaches a home from
# outside unless its router forwards a port, and a tbf uplink cap holds.
# Exits 77 (skipped, with one line saying why) without root/ip/iptables.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bed="$here/../../scripts/netbed.sh"
probe="/usr/bin/python3 $here/probe.py"
passed=0
fail() { echo "FAIL: $*"; bash "$bed" down >/dev/null 2>&1 || true; exit 1; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }

set +e
out=$(bash "$bed" up --homes 2 --reachable 2 --cap-mbit 8 --cap-home 1 2>&1); code=$?
set -e
if [ "$code" = 77 ]; then echo "$out"; exit 77; fi
[ "$code" = 0 ] || fail "netbed up: $out"
trap 'bash "$bed" down >/dev/null 2>&1 || true' EXIT
log=$(mktemp)

# 1. A home dials out; the relay host sees the router's WAN address (NAT).
bash "$bed" exec pub $probe serve 198.18.0.1 29999 4 >"$log" &
sleep 0.5
bash "$bed" exec home1 $probe connect 198.18.0.1 29999 3 || fail "home1 cannot dial out"
wait
grep -q "peer 198.18.0.11" "$log" || fail "relay did not see the NAT address: $(cat "$log")"
ok "home dials out through NAT"

# 2. Nothing reaches a home from outside.
bash "$bed" exec home1 $probe serve 198.19.1.2 30001 3 >"$log" &
sleep 0.5
if bash "$bed" exec pub $probe connect 198.19.1.2 30001 1; then fail "home1 reachable from outside"; fi
if bash "$bed" exec pub $probe connect 198.18.0.11 30001 1; then fail "router1 forwards a port"; fi
wait
ok "unforwarded home is unreachable"

# 3. A router that forwards ports makes its home reachable.
bash "$bed" exec home2 $probe serve 198.19.2.2 30001 3 >"$log" &
sleep 0.5
bash "$bed" exec pub $probe connect 198.18.0.12 30001 2 || fail "forwarded home2 unreachable"
wait
ok "forwarded home is reachable"

# 4. The tbf cap on home1's uplink (8 Mbit/s) holds: near the cap, not above.
bash "$bed" exec pub $probe serve 198.18.0.1 29998 6 >"$log" &
sleep 0.5
bash "$bed" exec home1 $probe send 198.18.0.1 29998 3 || true
wait
read -r bytes seconds < <(awk '/^received/ {print $2, $4}' "$log")
mbit=$(awk -v b="$bytes" -v s="$seconds" 'BEGIN {printf "%.2f", b * 8 / s / 1e6}')
awk -v m="$mbit" 'BEGIN {exit !(m <= 8.8 && m >= 5.0)}' || fail "capped uplink measured $mbit Mbit/s"
ok "uplink cap 8 Mbit/s measured $mbit Mbit/s"

echo "netbed_test: $passed passed, 0 failed"
