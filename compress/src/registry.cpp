#include "hearth/compress/registry.h"

#include <stdexcept>

#include "factories.h"

namespace hearth::compress {

const std::vector<CodecInfo>& codecs() {
  static const std::vector<CodecInfo> kCodecs = {
      {"none", "dense fp32, averaged by allreduce (the baseline)", makeNoneCompressor},
      {"fp16", "dense fp16 values", makeFp16Compressor},
      {"topk", "exact top-k by magnitude with error feedback", makeTopKCompressor},
      {"randomk", "k random coordinates with error feedback", makeRandomKCompressor},
      {"qsgd", "QSGD stochastic quantization to s levels", makeQsgdCompressor},
      {"signsgd", "EF-signSGD: 1 bit per element plus a scale, with error feedback",
       makeSignSgdCompressor},
      {"int8", "8-bit uniform quantization", makeInt8Compressor},
      {"powersgd", "PowerSGD rank-r factors with error feedback and warm start",
       makePowerSgdCompressor},
      {"dgc", "Deep Gradient Compression (momentum correction, warm-up, sampled top-k)",
       makeDgcCompressor},
  };
  return kCodecs;
}

std::vector<std::string> codecNames() {
  std::vector<std::string> names;
  for (const auto& c : codecs()) names.push_back(c.name);
  return names;
}

std::unique_ptr<Compressor> makeCompressor(const std::string& name, const nlohmann::json& params,
                                           std::size_t numel) {
  for (const auto& c : codecs()) {
    if (c.name == name) return c.factory(params, numel);
  }
  std::string known;
  for (const auto& n : codecNames()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown codec '" + name + "' (known: " + known + ")");
}

}  // namespace hearth::compress
