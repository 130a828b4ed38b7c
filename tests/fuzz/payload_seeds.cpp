// Writes a seed corpus of valid payloads (every index encoding, value type and
// zstd) into the directory given as argv[1], for the payload fuzzer.
#include <cstdio>
#include <string>
#include <vector>

#include "hearth/compress/payload.h"

using namespace hearth::compress;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: payload_seeds DIR\n");
    return 2;
  }
  const std::vector<std::uint32_t> indices = {1, 5, 6, 40, 63};
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 3.0f, -4.0f};
  const std::vector<std::int8_t> quantized = {1, -2, 3, -4, 5};
  const std::vector<std::uint8_t> bits = {0x15};
  int n = 0;
  for (auto encoding :
       {IndexEncoding::kRawU32, IndexEncoding::kDeltaVarint, IndexEncoding::kBitmap}) {
    for (auto type : {ValueType::kF32, ValueType::kF16, ValueType::kBF16, ValueType::kI8,
                      ValueType::kSignBits}) {
      for (bool zstd : {false, true}) {
        PayloadContent c;
        c.codec = CodecId::kDgc;
        c.numel = 64;
        c.count = indices.size();
        c.indices = indices.data();
        c.valueType = type;
        c.values = values.data();
        c.quantized = quantized.data();
        c.signBits = bits.data();
        if (type == ValueType::kI8 || type == ValueType::kSignBits) c.scalars = {0.25f};
        EncodeOptions options;
        options.indexEncoding = encoding;
        options.zstd = zstd;
        const auto bytes = encodePayload(c, options);
        const std::string path = std::string(argv[1]) + "/seed" + std::to_string(n++);
        if (FILE* f = std::fopen(path.c_str(), "wb")) {
          std::fwrite(bytes.data(), 1, bytes.size(), f);
          std::fclose(f);
        }
      }
    }
  }
  return 0;
}
