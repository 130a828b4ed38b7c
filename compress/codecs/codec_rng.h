// codec_rng.h (internal) — the codecs' deterministic random number generator
// (xoshiro256**, seeded through SplitMix64): the same (seed, stream) gives
// the same numbers on every platform and compiler, which PowerSGD relies on
// (every rank must draw the same initial Q) and which makes randomk and QSGD
// reproducible. Not thread-safe (one generator per compressor).
#pragma once

#include <cmath>
#include <cstdint>

namespace hearth::compress {

class CodecRng {
 public:
  // `stream` separates generators that share a seed (e.g. the rank).
  explicit CodecRng(std::uint64_t seed = 0, std::uint64_t stream = 0) {
    std::uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (auto& s : state_) s = splitMix(x);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 24 random bits (every value exactly representable).
  float uniformFloat() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
  // Uniform in [0, 1) with 53 random bits.
  double uniformDouble() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n) by multiply-shift (bias below n / 2^64). REQUIRES: n > 0.
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Standard normal (Box-Muller, one value per call; std::normal_distribution
  // is not specified bit-for-bit across standard libraries).
  double normal() {
    const double u1 = 1.0 - uniformDouble();  // (0, 1]: log is finite
    const double u2 = uniformDouble();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitMix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::uint64_t state_[4];
};

}  // namespace hearth::compress
