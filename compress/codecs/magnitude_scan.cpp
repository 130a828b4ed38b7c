#include "magnitude_scan.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dgc_selection.h"

#if defined(__x86_64__) || defined(__i386__)
#define HEARTH_X86 1
#include <immintrin.h>
#endif

namespace hearth::compress {
namespace {

// Records the set bits of `mask` (hits among the entries at base+i+bit) in
// increasing order. Hits are rare (density ~0.1%), so this loop mostly does
// not run.
template <class Mask>
inline void takeHits(Mask mask, std::size_t at, std::uint32_t* out, std::size_t cap,
                     std::size_t& count) {
  while (mask != 0) {
    if (count < cap) out[count] = static_cast<std::uint32_t>(at + __builtin_ctzll(mask));
    ++count;
    mask &= mask - 1;
  }
}

void collectScalar(const float* v, std::size_t len, std::size_t base, std::uint32_t threshold,
                   std::uint32_t* out, std::size_t cap, std::size_t& count) {
  for (std::size_t i = 0; i < len; ++i) {
    if (magnitudeKey(v[i]) >= threshold) {
      if (count < cap) out[count] = static_cast<std::uint32_t>(base + i);
      ++count;
    }
  }
}

#if HEARTH_X86
// Keys are < 2^31, so a signed compare against threshold-1 is exact (the
// threshold is >= 1). One branch per block of entries, then one step per hit.

// Hit masks of 4 (SSE2), 8 (AVX2) and 16 (AVX-512) entries at p. Written
// out per block below rather than looped, so that the compiler keeps the
// shifts constant and the loads independent.
inline unsigned hits4(const float* p, __m128i absMask, __m128i below) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return static_cast<unsigned>(
      _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(_mm_and_si128(x, absMask), below))));
}

__attribute__((target("avx2"), always_inline)) inline unsigned hits8(const float* p,
                                                                     __m256i absMask,
                                                                     __m256i below) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return static_cast<unsigned>(_mm256_movemask_ps(
      _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_and_si256(x, absMask), below))));
}

__attribute__((target("avx512f"), always_inline)) inline std::uint64_t hits16(const float* p,
                                                                              __m512i absMask,
                                                                              __m512i below) {
  return _mm512_cmpgt_epi32_mask(_mm512_and_si512(_mm512_loadu_si512(p), absMask), below);
}

void collectSse2(const float* v, std::size_t len, std::size_t base, std::uint32_t threshold,
                 std::uint32_t* out, std::size_t cap, std::size_t& count) {
  const __m128i absMask = _mm_set1_epi32(0x7FFFFFFF);
  const __m128i below = _mm_set1_epi32(static_cast<int>(threshold - 1u));
  std::size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const float* p = v + i;
    const unsigned mask = hits4(p, absMask, below) | hits4(p + 4, absMask, below) << 4 |
                          hits4(p + 8, absMask, below) << 8 | hits4(p + 12, absMask, below) << 12;
    takeHits(mask, base + i, out, cap, count);
  }
  collectScalar(v + i, len - i, base + i, threshold, out, cap, count);
}

__attribute__((target("avx2"))) void collectAvx2(const float* v, std::size_t len, std::size_t base,
                                                 std::uint32_t threshold, std::uint32_t* out,
                                                 std::size_t cap, std::size_t& count) {
  const __m256i absMask = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256i below = _mm256_set1_epi32(static_cast<int>(threshold - 1u));
  std::size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    const float* p = v + i;
    const unsigned mask = hits8(p, absMask, below) | hits8(p + 8, absMask, below) << 8 |
                          hits8(p + 16, absMask, below) << 16 | hits8(p + 24, absMask, below) << 24;
    takeHits(mask, base + i, out, cap, count);
  }
  collectScalar(v + i, len - i, base + i, threshold, out, cap, count);
}

__attribute__((target("avx512f"))) void collectAvx512(const float* v, std::size_t len,
                                                      std::size_t base, std::uint32_t threshold,
                                                      std::uint32_t* out, std::size_t cap,
                                                      std::size_t& count) {
  const __m512i absMask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i below = _mm512_set1_epi32(static_cast<int>(threshold - 1u));
  std::size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    const float* p = v + i;
    const std::uint64_t mask = hits16(p, absMask, below) | hits16(p + 16, absMask, below) << 16 |
                               hits16(p + 32, absMask, below) << 32 |
                               hits16(p + 48, absMask, below) << 48;
    takeHits(mask, base + i, out, cap, count);
  }
  collectScalar(v + i, len - i, base + i, threshold, out, cap, count);
}
#endif

SimdLevel widestSupported() {
#if HEARTH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2")) return SimdLevel::kAvx2;
  return SimdLevel::kSse2;
#else
  return SimdLevel::kScalar;
#endif
}

SimdLevel detectActiveLevel() {
  std::string problem;
  const SimdLevel level = cappedSimdLevel(std::getenv("HEARTH_SIMD"), widestSupported(), &problem);
  if (!problem.empty()) std::fprintf(stderr, "hearth: %s\n", problem.c_str());
  return level;
}

}  // namespace

const char* simdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kSse2:
      return "sse2";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "?";
}

SimdLevel cappedSimdLevel(const char* cap, SimdLevel widest, std::string* problem) {
  problem->clear();
  if (cap == nullptr || *cap == '\0') return widest;
  for (int l = 0; l <= static_cast<int>(SimdLevel::kAvx512); ++l) {
    const auto level = static_cast<SimdLevel>(l);
    if (std::strcmp(cap, simdLevelName(level)) == 0) return level < widest ? level : widest;
  }
  *problem =
      std::string("ignoring HEARTH_SIMD=") + cap + " (expected scalar, sse2, avx2 or avx512)";
  return widest;
}

SimdLevel activeSimdLevel() {
  static const SimdLevel level = detectActiveLevel();
  return level;
}

std::vector<SimdLevel> supportedSimdLevels() {
  std::vector<SimdLevel> levels;
  for (int l = 0; l <= static_cast<int>(widestSupported()); ++l) {
    levels.push_back(static_cast<SimdLevel>(l));
  }
  return levels;
}

void collectAtLeastWith(SimdLevel level, const float* v, std::size_t len, std::size_t base,
                        std::uint32_t threshold, std::uint32_t* out, std::size_t cap,
                        std::size_t& count) {
  switch (level) {
#if HEARTH_X86
    case SimdLevel::kAvx512:
      return collectAvx512(v, len, base, threshold, out, cap, count);
    case SimdLevel::kAvx2:
      return collectAvx2(v, len, base, threshold, out, cap, count);
    case SimdLevel::kSse2:
      return collectSse2(v, len, base, threshold, out, cap, count);
#endif
    default:
      return collectScalar(v, len, base, threshold, out, cap, count);
  }
}

void collectAtLeast(const float* v, std::size_t len, std::size_t base, std::uint32_t threshold,
                    std::uint32_t* out, std::size_t cap, std::size_t& count) {
  collectAtLeastWith(activeSimdLevel(), v, len, base, threshold, out, cap, count);
}

}  // namespace hearth::compress
