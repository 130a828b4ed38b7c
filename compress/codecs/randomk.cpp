// randomk: k uniformly random coordinates of gradient + residual, with error
// feedback and no rescaling (as GRACE): what is not sent stays in the
// residual, so the unbiased numel/k scaling would only add variance.
#include <optional>

#include "codec_params.h"
#include "factories.h"
#include "sparsify.h"

namespace hearth::compress {
namespace {

class RandomKCompressor final : public SparseCompressor {
 public:
  RandomKCompressor(std::size_t numel, const SparseSettings& settings, std::uint64_t seed)
      : SparseCompressor("randomk", CodecId::kRandomK, numel, settings), seed_(seed) {}

 protected:
  void select(const float* p, const StepInfo& info, std::vector<std::uint32_t>& indices) override {
    // Seeded on the first step, with the rank as the stream: ranks draw
    // different coordinates, and a run is reproducible.
    if (!rng_) rng_.emplace(seed_, static_cast<std::uint64_t>(info.rank));
    sampleRandomK(*rng_, numel(), k(), indices, bitmap_);
  }

 private:
  std::uint64_t seed_;
  std::optional<CodecRng> rng_;
  std::vector<std::uint64_t> bitmap_;
};

}  // namespace

std::unique_ptr<Compressor> makeRandomKCompressor(const nlohmann::json& params, std::size_t numel) {
  CodecParams p("randomk", params);
  const SparseSettings settings = readSparseSettings("randomk", p, numel, 0.01);
  const auto seed = static_cast<std::uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
  p.finish();
  return std::make_unique<RandomKCompressor>(numel, settings, seed);
}

}  // namespace hearth::compress
