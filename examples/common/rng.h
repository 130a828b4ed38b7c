// common/rng.h — the examples' small deterministic random number generator
// (SplitMix64), used to generate their built-in data sets: the same seed gives
// the same numbers on every platform and compiler.
// Not thread-safe (one generator per thread).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace hearth::examples {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform in [0, n). REQUIRES: n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  // Skewed towards small indices (minimum of two draws), like word frequencies.
  std::size_t skewed(std::size_t n) { return std::min(below(n), below(n)); }

 private:
  std::uint64_t state_;
};

}  // namespace hearth::examples
