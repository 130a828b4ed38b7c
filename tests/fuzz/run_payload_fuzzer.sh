#!/usr/bin/env bash
# Builds the payload decoder fuzzer with clang (libFuzzer + ASan + UBSan) and
# runs it for a bounded time.
#   run_payload_fuzzer.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1
work=$2
seconds=${3:-60}
mkdir -p "$work/corpus"
common=(-std=c++17 -I"$src/compress/include"
        "$src/compress/src/payload.cpp" "$src/compress/src/crc32c.cpp" "$src/compress/src/inspect.cpp")
clang++ -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "${common[@]}" "$src/tests/fuzz/payload_fuzzer.cpp" -lzstd -o "$work/payload_fuzzer"
clang++ -O1 "${common[@]}" "$src/tests/fuzz/payload_seeds.cpp" -lzstd -o "$work/payload_seeds"
"$work/payload_seeds" "$work/corpus"
"$work/payload_fuzzer" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 15
echo "payload fuzzer: ${seconds}s without a crash"
