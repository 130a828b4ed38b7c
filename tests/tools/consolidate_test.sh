#!/usr/bin/env bash
# hearth consolidate: merges a sharded checkpoint (written by the shard test
# binary's fixture: a two-Linear module saved by 3 ranks) into one LibTorch
# file that torch::load puts back into the module; rejects bad input with exit
# code 2 and a message naming the offending file.
#   consolidate_test.sh HEARTH HEARTH_SHARD_TESTS
set -euo pipefail
hearth=$1 shard_tests=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
fixture() {  # fixture NAME PATH
  HEARTH_CKPT_FIXTURE=$2 "$shard_tests" --gtest_also_run_disabled_tests \
    --gtest_filter="ShardCheckpointToolFixture.DISABLED_$1" >"$work/fixture.log" 2>&1 ||
    fail "fixture $1: $(cat "$work/fixture.log")"
  grep -q "\[  PASSED  \] 1 test" "$work/fixture.log" || fail "fixture $1 did not run: $(cat "$work/fixture.log")"
}
# expect_rejected WORDS ARGS...: exit code 2 and WORDS in stderr.
expect_rejected() {
  local words=$1 rc=0
  shift
  "$hearth" consolidate "$@" >/dev/null 2>"$work/err" || rc=$?
  [ "$rc" = 2 ] || fail "consolidate $* exited $rc, not 2: $(cat "$work/err")"
  grep -qF -- "$words" "$work/err" || fail "consolidate $*: no '$words' in: $(cat "$work/err")"
}

"$hearth" consolidate --help | grep -q "LibTorch" || fail "--help does not describe consolidate"
"$hearth" --help | grep -q "consolidate" || fail "hearth --help does not list consolidate"

ckpt=$work/ckpt
mkdir "$ckpt"
fixture WriteCheckpoint "$ckpt"
[ -f "$ckpt/manifest.json" ] && [ -f "$ckpt/shard-2-of-3.hsc" ] || fail "fixture wrote no checkpoint"

"$hearth" consolidate "$ckpt" "$work/model.pt" 2>"$work/err" || fail "consolidate failed: $(cat "$work/err")"
grep -q "4 parameters" "$work/err" || fail "no summary: $(cat "$work/err")"
fixture VerifyConsolidated "$work/model.pt"
ls "$work" | grep -q '\.tmp\.' && fail "temp files left behind"

# Bad input: exit code 2 and a message naming the problem.
expect_rejected "refusing to overwrite" "$ckpt" "$work/model.pt"
"$hearth" consolidate --force "$ckpt" "$work/model.pt" 2>/dev/null || fail "--force did not overwrite"
expect_rejected "is not a directory" "$work/absent" "$work/out.pt"
rc=0
"$hearth" consolidate "$ckpt" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a missing argument exited $rc, not 2"

cp -r "$ckpt" "$work/truncated"
truncate -s 200 "$work/truncated/shard-1-of-3.hsc"
expect_rejected "shard-1-of-3.hsc" "$work/truncated" "$work/out.pt"

cp -r "$ckpt" "$work/corrupt"
# Flip a byte of the "param" slice (docs/checkpoints.md): the data region
# starts at the header's end rounded up to 64 bytes; slices are stored by name
# (optim.exp_avg, optim.exp_avg_sq, param), rank 0's each 8 floats padded to 64.
header_len=$(od -An -tu4 -j12 -N4 "$work/corrupt/shard-0-of-3.hsc" | tr -d ' ')
data_start=$(( (24 + header_len + 63) / 64 * 64 ))
printf '\x55' | dd of="$work/corrupt/shard-0-of-3.hsc" bs=1 seek=$((data_start + 128 + 1)) \
  conv=notrunc status=none
expect_rejected "shard-0-of-3.hsc: CRC32C mismatch in slice 'param'" "$work/corrupt" "$work/out.pt"

cp -r "$ckpt" "$work/nomanifest"
rm "$work/nomanifest/manifest.json"
expect_rejected "manifest.json" "$work/nomanifest" "$work/out.pt"

cp -r "$ckpt" "$work/missing"
rm "$work/missing/shard-2-of-3.hsc"
expect_rejected "missing rank 2" "$work/missing" "$work/out.pt"
[ -e "$work/out.pt" ] && fail "a rejected checkpoint left an output file"
echo "consolidate ok"
