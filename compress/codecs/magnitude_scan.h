// magnitude_scan.h (internal) — the SIMD kernels behind DGC's counting scan
// (collectAtLeast in dgc_selection.h) and the CPU feature dispatch that picks
// one at run time.
//
// hearth builds portable binaries (no -march), so the wide kernels are
// compiled with per-function target attributes and chosen once per process
// from what the CPU reports: AVX-512 (64 entries per step), AVX2 (32), SSE2
// (16), scalar. HEARTH_SIMD=scalar|sse2|avx2|avx512 caps the level (for
// tests and for comparing kernels on one machine); a level the CPU lacks is
// never used. Every level produces exactly the same output.
//
// Thread-safety: all functions are pure except the one-time level detection,
// which is a thread-safe static initialisation. Nothing blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::compress {

enum class SimdLevel { kScalar = 0, kSse2 = 1, kAvx2 = 2, kAvx512 = 3 };
const char* simdLevelName(SimdLevel level);

// The widest level this CPU runs, capped by HEARTH_SIMD when set (an unknown
// value is ignored with one line on stderr). Detected once.
SimdLevel activeSimdLevel();

// The level a HEARTH_SIMD value `cap` selects on a CPU whose widest level is
// `widest`: the named level, but never above widest; widest for null or "".
// An unknown name also gives widest and sets *problem to a one-line reason
// (else *problem is cleared).
SimdLevel cappedSimdLevel(const char* cap, SimdLevel widest, std::string* problem);

// Every level this CPU can run, scalar first (for tests and benchmarks).
std::vector<SimdLevel> supportedSimdLevels();

// collectAtLeast (see dgc_selection.h) with an explicit kernel. REQUIRES:
// level is in supportedSimdLevels().
void collectAtLeastWith(SimdLevel level, const float* v, std::size_t len, std::size_t base,
                        std::uint32_t threshold, std::uint32_t* out, std::size_t cap,
                        std::size_t& count);

}  // namespace hearth::compress
