#!/usr/bin/env bash
# Reproduces the "DGC in training" figures of docs/benchmarks.md: the char-LM
# example on 2 ranks, dense SGD + momentum vs DGC at 0.1% density (momentum
# correction, local gradient clipping), the same samples for both runs, then
# prints held-out losses, the gap and the bytes per step (steady state = from
# the middle of the run to its end, i.e. long after DGC's warm-up).
#
#   scripts/dgc_charlm.sh [STEPS [MICRO_BATCH]]     (defaults: 48000 2)
#
# Environment: HEARTH_BUILD_DIR (default build), OUT (default runs/dgc_charlm),
# LR (SGD learning rate for both runs, default 0.3).
# About 4-6 minutes per run on two free cores. Extra settings for both runs can
# be passed in DGC_EXTRA_ARGS (e.g. "--set model.n_embd=96").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HEARTH_BUILD_DIR:-build}
OUT=${OUT:-runs/dgc_charlm}
STEPS=${1:-48000}
MICRO=${2:-2}
LR=${LR:-0.3}
mkdir -p "$OUT"

COMMON=(--steps "$STEPS" --set "train_micro_batch_size_per_gpu=$MICRO"
  --set optimizer.type=sgd --set "optimizer.params.lr=$LR" --set optimizer.params.momentum=0.9
  --set "train.eval_interval=$((STEPS / 4))" --set "logging.log_interval=$((STEPS / 20))"
  --set train.sample_chars=0)
# DGC: everything compressed (biases and norms too: sending them dense would
# cost more than the 0.1% of the weights), fp16 values, and the paper's local
# gradient clipping (clip_norm / sqrt(N) per bucket, before accumulation)
# instead of the global clipping of the exchanged update.
DGC=(--set compression.codec=dgc --set compression.params.density=0.001
  --set compression.dense_1d=false --set compression.dense_below_numel=0
  --set compression.params.value_type=fp16
  --set gradient_clipping=0 --set compression.params.clip_norm=1.0)

launch() {
  local name=$1
  shift
  "$BUILD_DIR/runtime/launcher/hearthrun" --standalone --nproc-per-node 2 \
    "$BUILD_DIR/examples/hearth_charlm" "${COMMON[@]}" ${DGC_EXTRA_ARGS:-} "$@" \
    --metrics "$OUT/$name.jsonl" >"$OUT/$name.log" 2>&1
}

rm -f "$OUT/dense.jsonl" "$OUT/dgc.jsonl"
echo "dense run ($STEPS steps x $MICRO sequences x 2 ranks) -> $OUT/dense.log"
launch dense
echo "DGC run -> $OUT/dgc.log"
launch dgc "${DGC[@]}"

python3 - "$OUT/dense.jsonl" "$OUT/dgc.jsonl" <<'EOF'
import json, sys

def load(path):
    events = [json.loads(line) for line in open(path)]
    final = [e for e in events if e["event"] == "final"][0]
    train = [e for e in events if e["event"] == "train"]
    mid = [e for e in train if e["step"] >= final["step"] // 2][0]
    steady = (final["wire_bytes"] - mid["wire_bytes"]) / max(1, final["step"] - mid["step"])
    return final, steady

dense, dense_steady = load(sys.argv[1])
dgc, dgc_steady = load(sys.argv[2])
gap = 100.0 * (dgc["val_loss"] / dense["val_loss"] - 1.0)
print(f"held-out loss: dense {dense['val_loss']:.4f}, DGC {dgc['val_loss']:.4f}, gap {gap:+.2f}%")
print(f"bytes/step (steady): dense {dense_steady:.0f}, DGC {dgc_steady:.0f}, "
      f"ratio {dense_steady / dgc_steady:.0f}x; whole run incl. warm-up: "
      f"{dense['wire_bytes'] / dgc['wire_bytes']:.0f}x")
print(f"target: gap <= 2% {'met' if gap <= 2.0 else 'NOT met'}; "
      f"ratio >= 300x {'met' if dense_steady / dgc_steady >= 300 else 'NOT met'}")
EOF
