// dgc_test_util.h — references and data generators for the DGC tests:
// a straightforward exact top-k (std::partial_sort), gradient distributions
// (normal, Cauchy, Pareto, mostly zero, few huge, denormal, all equal) and a
// DgcOptions shorthand. Header-only (the test glob compiles *_test.cpp only).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dgc_sparsifier.h"

namespace hearth::compress::testing {

// Indices of the top k of |x| (nonzero only when skipZeros), ties towards the
// lower index, returned ascending.
inline std::vector<std::uint32_t> referenceTopK(const std::vector<float>& x, std::size_t k,
                                                bool skipZeros) {
  std::vector<std::uint32_t> order;
  for (std::uint32_t i = 0; i < x.size(); ++i) {
    if (!skipZeros || x[i] != 0.0f) order.push_back(i);
  }
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](std::uint32_t a, std::uint32_t b) {
                      const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
                      return fa != fb ? fa > fb : a < b;
                    });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

enum class Dist { kNormal, kCauchy, kPareto, kMostlyZero, kFewHuge, kDenormal, kAllEqual };

inline const char* distName(Dist d) {
  switch (d) {
    case Dist::kNormal:
      return "normal";
    case Dist::kCauchy:
      return "cauchy";
    case Dist::kPareto:
      return "pareto";
    case Dist::kMostlyZero:
      return "mostly-zero";
    case Dist::kFewHuge:
      return "few-huge";
    case Dist::kDenormal:
      return "denormal";
    case Dist::kAllEqual:
      return "all-equal";
  }
  return "?";
}

inline std::vector<float> makeData(Dist d, std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float sign = (rng() & 1u) ? 1.0f : -1.0f;
    switch (d) {
      case Dist::kNormal:
        x[i] = normal(rng);
        break;
      case Dist::kCauchy: {
        const float c = std::tan(3.14159265f * (unit(rng) - 0.5f));
        x[i] = std::isfinite(c) ? std::clamp(c, -1e30f, 1e30f) : 0.0f;
        break;
      }
      case Dist::kPareto:  // alpha = 1.1, heavy tail
        x[i] = sign * std::min(1e30f, std::pow(1.0f - unit(rng) * 0.999999f, -1.0f / 1.1f));
        break;
      case Dist::kMostlyZero:
        x[i] = (rng() % 10000u == 0) ? normal(rng) : 0.0f;
        break;
      case Dist::kFewHuge:
        x[i] = (rng() % 100000u == 0) ? sign * 1e20f : normal(rng) * 1e-20f;
        break;
      case Dist::kDenormal:
        x[i] =
            sign * std::numeric_limits<float>::denorm_min() * static_cast<float>(1 + rng() % 1000u);
        break;
      case Dist::kAllEqual:
        x[i] = sign * 0.5f;
        break;
    }
  }
  return x;
}

// n draws of normal(0, scale); with specials, about one entry in oneIn is
// instead one of them (drawn uniformly when there are several).
inline std::vector<float> normalValues(std::size_t n, std::uint32_t seed, float scale = 1.0f,
                                       const std::vector<float>& specials = {},
                                       std::uint32_t oneIn = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (auto& e : x) {
    if (!specials.empty() && rng() % oneIn == 0) {
      e = specials.size() == 1 ? specials[0] : specials[rng() % specials.size()];
    } else {
      e = normal(rng);
    }
  }
  return x;
}

// Options with warm-up off and sparse selection for every size.
inline DgcOptions plainOptions(double density, double momentum = 0.0) {
  DgcOptions o;
  o.density = density;
  o.momentum = momentum;
  o.warmupPeriods = 0;
  o.minNumel = 0;
  return o;
}

inline GradientView view(const std::vector<float>& g) {
  return {g.data(), g.size(), DType::kFloat32};
}

inline std::uint32_t bitsOf(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

}  // namespace hearth::compress::testing
