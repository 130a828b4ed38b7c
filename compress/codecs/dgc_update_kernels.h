// dgc_update_kernels.h (internal) — DGC's per-element momentum update over a
// block of fp32 entries, at the widest SIMD level the CPU runs.
//
//   plain:     v = v + s*g
//   momentum:  u = m*u + s*g;  v = v + u
//   nesterov:  u = m*u + s*g;  v = v + (s*g + m*u)
//
// Every level performs the same IEEE operations in the same order (separate
// multiply and add: the library is built with -ffp-contract=off, so no fused
// multiply-add), so results are bitwise identical to the scalar formulas
// above at every level. dgcUpdate() runs at magnitude_scan.h's
// activeSimdLevel() (HEARTH_SIMD caps it) but at most AVX2: the pass is
// bound by memory traffic, and on Zen 4 the 512-bit version measured ~15%
// slower than AVX2 at 1M entries (/tmp harness, see docs/dgc.md).
//
// Thread-safety: pure functions on the caller's buffers. Nothing blocks.
#pragma once

#include <cstddef>

#include "magnitude_scan.h"

namespace hearth::compress {

enum class DgcUpdate { kPlain, kMomentum, kNesterov };

// Applies `mode` to g[0..len), u[0..len) (unused for kPlain; may be null
// then) and v[0..len). REQUIRES: level is in supportedSimdLevels(); g, u, v
// do not overlap.
void dgcUpdateWith(SimdLevel level, DgcUpdate mode, const float* g, float* u, float* v,
                   std::size_t len, float m, float s);

inline void dgcUpdate(DgcUpdate mode, const float* g, float* u, float* v, std::size_t len, float m,
                      float s) {
  const SimdLevel level = activeSimdLevel();
  dgcUpdateWith(level < SimdLevel::kAvx2 ? level : SimdLevel::kAvx2, mode, g, u, v, len, m, s);
}

}  // namespace hearth::compress
