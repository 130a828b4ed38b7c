#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds hearth, and
# trains the char-level GPT example data-parallel on 2 local workers over Gloo,
# on the built-in corpus. Pass extra example flags after the script, e.g.
#   scripts/demo.sh --data ../shared/data/tinyshakespeare/input.txt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p runs
METRICS=runs/charlm-demo.jsonl
rm -f "$METRICS"
echo
echo "demo: training a character-level GPT on 2 workers (hearthrun --standalone --nproc-per-node 2)"
build/runtime/launcher/hearthrun --standalone --nproc-per-node 2 \
  build/examples/hearth_charlm --metrics "$METRICS" "$@"
echo
echo "demo: done. What happened:"
echo "  - hearthrun started 2 worker processes (RANK 0 and 1) with a local rendezvous;"
echo "  - each worker trained the same GPT on its own batches; hearth's Engine averaged"
echo "    gradients across workers after every step over Gloo (bucketed, overlapped);"
echo "  - per-step metrics are in $METRICS; the last line compares held-out loss to the"
echo "    unigram (character-frequency) baseline:"
tail -n 1 "$METRICS"
