#!/usr/bin/env bash
# hearth inspect on real captured payloads: a DGC run captures its payloads,
# inspect describes them (exit 0); a flipped byte, a truncation, a payload for
# the wrong size and a missing file are each reported precisely (exit 1 / 2).
#   inspect_test.sh HEARTH_TOOL CHARLM
set -euo pipefail
tool=$1
charlm=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$charlm" --steps 3 --set compression.codec=dgc --set compression.capture_dir="$work" \
  --set compression.capture_interval=2 --set train.sample_chars=0 >/dev/null 2>&1 ||
  fail "charlm capture run failed"
payload=$(ls "$work"/step000002_bucket*_rank0.hgrd | head -1)
[ -f "$payload" ] || fail "no payload captured"

out=$("$tool" inspect "$payload") || fail "valid payload rejected"
grep -q "^codec *dgc" <<<"$out" || fail "codec not reported: $out"
grep -q "x smaller than dense fp32" <<<"$out" || fail "ratio not reported"

cp "$payload" "$work/flipped"
printf '\x55' | dd of="$work/flipped" bs=1 seek=40 conv=notrunc status=none
set +e
msg=$("$tool" inspect "$work/flipped" 2>&1); code=$?
set -e
[ "$code" = 1 ] || fail "flipped byte: exit $code"
grep -q "checksum mismatch" <<<"$msg" || fail "flipped byte: $msg"

head -c 20 "$payload" >"$work/short"
set +e
msg=$("$tool" inspect "$work/short" 2>&1); code=$?
set -e
[ "$code" = 1 ] || fail "truncated: exit $code"
grep -q "truncated" <<<"$msg" || fail "truncated: $msg"

set +e
msg=$("$tool" inspect "$payload" --numel 7 2>&1); code=$?
set -e
[ "$code" = 1 ] || fail "wrong numel: exit $code"
grep -q "size mismatch" <<<"$msg" || fail "wrong numel: $msg"

set +e
"$tool" inspect "$work/does-not-exist" >/dev/null 2>&1; code=$?
set -e
[ "$code" = 2 ] || fail "missing file: exit $code"
echo "inspect_test: 5 passed, 0 failed"
