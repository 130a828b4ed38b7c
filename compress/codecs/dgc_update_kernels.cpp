#include "dgc_update_kernels.h"

#include <cstring>

namespace hearth::compress {
namespace {

// One body for every width, written with GCC/Clang vector extensions: each
// level's wrapper below carries its target attribute and inlines this, so
// the same source becomes SSE2, AVX2 or AVX-512 code.
template <DgcUpdate kMode, std::size_t kLanes>
__attribute__((always_inline)) inline void updateLanes(const float* __restrict g,
                                                       float* __restrict u, float* __restrict v,
                                                       std::size_t len, float m, float s) {
  typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
  const Vec mm = Vec{} + m;
  const Vec ss = Vec{} + s;
  Vec gi, ui, vi;  // unaligned loads and stores through memcpy
  std::size_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    std::memcpy(&gi, g + i, sizeof gi);
    std::memcpy(&vi, v + i, sizeof vi);
    const Vec gs = ss * gi;
    if constexpr (kMode == DgcUpdate::kPlain) {
      vi = vi + gs;
    } else {
      std::memcpy(&ui, u + i, sizeof ui);
      const Vec un = mm * ui + gs;
      std::memcpy(u + i, &un, sizeof un);
      if constexpr (kMode == DgcUpdate::kMomentum) {
        vi = vi + un;
      } else {
        vi = vi + (gs + mm * un);
      }
    }
    std::memcpy(v + i, &vi, sizeof vi);
  }
  for (; i < len; ++i) {
    const float gs = s * g[i];
    if constexpr (kMode == DgcUpdate::kPlain) {
      v[i] = v[i] + gs;
    } else {
      const float un = m * u[i] + gs;
      u[i] = un;
      if constexpr (kMode == DgcUpdate::kMomentum) {
        v[i] = v[i] + un;
      } else {
        v[i] = v[i] + (gs + m * un);
      }
    }
  }
}

template <std::size_t kLanes>
__attribute__((always_inline)) inline void updateMode(DgcUpdate mode, const float* g, float* u,
                                                      float* v, std::size_t len, float m, float s) {
  switch (mode) {
    case DgcUpdate::kPlain:
      return updateLanes<DgcUpdate::kPlain, kLanes>(g, u, v, len, m, s);
    case DgcUpdate::kMomentum:
      return updateLanes<DgcUpdate::kMomentum, kLanes>(g, u, v, len, m, s);
    case DgcUpdate::kNesterov:
      return updateLanes<DgcUpdate::kNesterov, kLanes>(g, u, v, len, m, s);
  }
}

void updateScalar(DgcUpdate mode, const float* g, float* u, float* v, std::size_t len, float m,
                  float s) {
  updateMode<1>(mode, g, u, v, len, m, s);
}

void updateSse2(DgcUpdate mode, const float* g, float* u, float* v, std::size_t len, float m,
                float s) {
  updateMode<4>(mode, g, u, v, len, m, s);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) void updateAvx2(DgcUpdate mode, const float* g, float* u, float* v,
                                                std::size_t len, float m, float s) {
  updateMode<8>(mode, g, u, v, len, m, s);
}

__attribute__((target("avx512f"))) void updateAvx512(DgcUpdate mode, const float* g, float* u,
                                                     float* v, std::size_t len, float m, float s) {
  updateMode<16>(mode, g, u, v, len, m, s);
}
#endif

}  // namespace

void dgcUpdateWith(SimdLevel level, DgcUpdate mode, const float* g, float* u, float* v,
                   std::size_t len, float m, float s) {
  switch (level) {
#if defined(__x86_64__) || defined(__i386__)
    case SimdLevel::kAvx512:
      return updateAvx512(mode, g, u, v, len, m, s);
    case SimdLevel::kAvx2:
      return updateAvx2(mode, g, u, v, len, m, s);
#endif
    case SimdLevel::kSse2:
      return updateSse2(mode, g, u, v, len, m, s);
    default:
      return updateScalar(mode, g, u, v, len, m, s);
  }
}

}  // namespace hearth::compress
