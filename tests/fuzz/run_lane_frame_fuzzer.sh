#!/usr/bin/env bash
# Builds the bulk-lane frame reader fuzzer with clang (libFuzzer + ASan +
# UBSan) and runs it for a bounded time, from a corpus of well-formed frames.
#   run_lane_frame_fuzzer.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1
work=$2
seconds=${3:-20}
mkdir -p "$work/lane_corpus"
zmq=$(pkg-config --cflags libzmq 2>/dev/null || true)
libs=($(pkg-config --libs libzmq 2>/dev/null || echo -lzmq))
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$src/transport/zmq" -I"$src/transport/include" $zmq \
  "$src/tests/fuzz/lane_frame_fuzzer.cpp" "$src/transport/zmq/bulk_lane.cpp" \
  "$src/transport/zmq/buffer_pool.cpp" "$src/transport/zmq/cross_memory.cpp" \
  "${libs[@]}" -o "$work/lane_frame_fuzzer"
# Seeds: DATA frames of a few sizes, an ACK, an OFFER, back to back.
python3 - "$work/lane_corpus" <<'PY'
import struct, sys, os
d = sys.argv[1]
def frame(kind, seq, body, size=None):
    return struct.pack('<IIQQQ', 0x31464c48, kind, 7, seq, len(body) if size is None else size) + body
seeds = {
    'data': frame(0, 0, b'') + frame(0, 1, b'x' * 100) + frame(0, 2, b'y' * 4096),
    'ack': frame(6, 9, b''),
    'offer': frame(2, 0, struct.pack('<Q', 1234)) + frame(0, 0, b'z' * 10),
    'remote': frame(1, 0, b'\0' * 24, size=1000),
}
for name, data in seeds.items():
    open(os.path.join(d, name), 'wb').write(data)
PY
"$work/lane_frame_fuzzer" -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$work/lane_corpus" 2>&1 | tail -n 15
echo "lane frame fuzzer: ${seconds}s without a crash"
