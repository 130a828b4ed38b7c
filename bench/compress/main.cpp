// bench_compress entry point. Run: build/bench/compress/bench_compress
// (see docs/benchmarks.md for the recorded figures and flags).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
