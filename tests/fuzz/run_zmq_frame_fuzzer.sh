#!/usr/bin/env bash
# Builds the zmq frame parser fuzzer with clang (libFuzzer + ASan + UBSan) and
# runs it for a bounded time.
#   run_zmq_frame_fuzzer.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1
work=$2
seconds=${3:-30}
mkdir -p "$work/zmq_corpus"
common=(-std=c++17 -I"$src/transport/zmq" $(pkg-config --cflags libzmq 2>/dev/null || true))
libs=($(pkg-config --libs libzmq 2>/dev/null || echo -lzmq))
clang++ -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "${common[@]}" "$src/tests/fuzz/zmq_frame_fuzzer.cpp" "${libs[@]}" -o "$work/zmq_frame_fuzzer"
clang++ -O1 "${common[@]}" "$src/tests/fuzz/zmq_frame_seeds.cpp" "${libs[@]}" \
  -o "$work/zmq_frame_seeds"
"$work/zmq_frame_seeds" "$work/zmq_corpus"
"$work/zmq_frame_fuzzer" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$work/zmq_corpus" 2>&1 | tail -n 15
echo "zmq frame fuzzer: ${seconds}s without a crash"
