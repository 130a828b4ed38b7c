// codec_harness.h — test helpers for the baseline codecs: build a codec by
// name through its factory, run one exchange step for several simulated
// ranks in one thread (allgather: every rank's bytes; allreduce: the
// elementwise sum), and read error-feedback residuals. Header-only (the test
// glob compiles *_test.cpp only).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec_rng.h"
#include "error_feedback.h"
#include "hearth/compress/compressor.h"
#include "hearth/compress/registry.h"

namespace hearth::compress::testing {

using Ranks = std::vector<std::unique_ptr<Compressor>>;

// A codec by name through the registry (the factories in factories.h).
inline std::unique_ptr<Compressor> makeBaseline(const std::string& name,
                                                const nlohmann::json& params, std::size_t numel) {
  return makeCompressor(name, params, numel);
}

// One compressor per rank, all built with the same parameters.
inline Ranks makeRanks(const std::string& name, const nlohmann::json& params, std::size_t numel,
                       int worldSize) {
  Ranks ranks;
  for (int r = 0; r < worldSize; ++r) ranks.push_back(makeBaseline(name, params, numel));
  return ranks;
}

inline GradientView viewOf(const std::vector<float>& g) {
  return {g.data(), g.size(), DType::kFloat32};
}

// Runs one step on every rank; returns every rank's averaged output.
inline std::vector<std::vector<float>> runStep(Ranks& ranks,
                                               const std::vector<std::vector<float>>& grads,
                                               std::int64_t step = 0) {
  const int world = static_cast<int>(ranks.size());
  std::vector<std::optional<ExchangeRequest>> requests(world);
  for (int r = 0; r < world; ++r) {
    StepInfo info;
    info.step = step;
    info.rank = r;
    info.worldSize = world;
    requests[r] = ranks[r]->begin(viewOf(grads[r]), info);
  }
  while (requests[0]) {
    ExchangeResult result;
    if (requests[0]->op == ExchangeOp::kAllgatherBytes) {
      for (auto& q : requests) result.gathered.push_back(q->bytes);
    } else {
      result.summed.assign(requests[0]->floats.size(), 0.0f);
      for (auto& q : requests) {
        if (q->floats.size() != result.summed.size()) throw std::logic_error("uneven allreduce");
        for (std::size_t i = 0; i < q->floats.size(); ++i) result.summed[i] += q->floats[i];
      }
    }
    for (int r = 0; r < world; ++r) {
      ExchangeResult copy = result;
      requests[r] = ranks[r]->advance(std::move(copy));
      if (requests[r].has_value() != requests[0].has_value()) {
        throw std::logic_error("ranks disagree on the number of rounds");
      }
    }
  }
  std::vector<std::vector<float>> out(world);
  for (int r = 0; r < world; ++r) {
    out[r].assign(ranks[r]->numel(), 0.0f);
    ranks[r]->finish(out[r].data());
  }
  return out;
}

// begin() alone on a one-rank world: the payload a GatherCompressor sends.
inline std::vector<std::uint8_t> encodeAlone(Compressor& c, const std::vector<float>& g,
                                             std::int64_t step = 0) {
  StepInfo info;
  info.step = step;
  return c.begin(viewOf(g), info).bytes;
}

// Normal(0, scale) values from a fixed seed.
inline std::vector<float> randomVector(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  CodecRng rng(seed, 12345);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(rng.normal());
  return v;
}

// The codec's residual as a vector (zeros when it keeps none).
inline std::vector<float> residualOf(const Compressor& c) {
  const auto* holder = dynamic_cast<const ResidualHolder*>(&c);
  if (holder == nullptr || holder->residual() == nullptr) return std::vector<float>(c.numel());
  return std::vector<float>(holder->residual(), holder->residual() + c.numel());
}

}  // namespace hearth::compress::testing
