// topk: exact top-k by magnitude of gradient + residual, with error feedback.
#include "codec_params.h"
#include "factories.h"
#include "sparsify.h"

namespace hearth::compress {
namespace {

class TopKCompressor final : public SparseCompressor {
 public:
  TopKCompressor(std::size_t numel, const SparseSettings& settings)
      : SparseCompressor("topk", CodecId::kTopK, numel, settings) {}

 protected:
  void select(const float* p, const StepInfo& info, std::vector<std::uint32_t>& indices) override {
    selectTopK(p, numel(), k(), indices);
  }

 private:
};

}  // namespace

std::unique_ptr<Compressor> makeTopKCompressor(const nlohmann::json& params, std::size_t numel) {
  CodecParams p("topk", params);
  const SparseSettings settings = readSparseSettings("topk", p, numel, 0.01);
  p.finish();
  return std::make_unique<TopKCompressor>(numel, settings);
}

}  // namespace hearth::compress
