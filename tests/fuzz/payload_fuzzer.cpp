// libFuzzer target for the payload decoder. Every input is decoded twice: as
// given (almost always stopped by the checksum) and with its checksum
// recomputed, so the fuzzer reaches the body parsers. The decoder must throw
// PayloadError or return a payload whose invariants hold; any crash, hang,
// sanitizer report or unbounded allocation is a bug.
#include <cstdlib>
#include <vector>

#include "hearth/compress/inspect.h"
#include "hearth/compress/payload.h"

using namespace hearth::compress;

namespace {

void checkInvariants(const DecodedPayload& p) {
  if (p.values.size() != p.header.count) std::abort();
  if (p.header.indexEncoding != IndexEncoding::kDense) {
    if (p.indices.size() != p.header.count) std::abort();
    for (std::size_t i = 0; i < p.indices.size(); ++i) {
      if (p.indices[i] >= p.header.numel) std::abort();
      if (i > 0 && p.indices[i] <= p.indices[i - 1]) std::abort();
    }
  }
}

void exercise(const std::uint8_t* data, std::size_t size) {
  try {
    checkInvariants(decodePayload(data, size, 0));
  } catch (const PayloadError&) {
  }
  std::vector<float> dense(64, 1.0f);
  try {
    decodeAccumulate(data, size, dense.data(), dense.size(), 0.5f);
  } catch (const PayloadError&) {
    for (float v : dense) {
      if (v != 1.0f) std::abort();  // a rejected payload must leave no trace
    }
  }
  inspectPayload(data, size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exercise(data, size);
  if (size >= kPayloadHeaderBytes + kPayloadChecksumBytes) {
    std::vector<std::uint8_t> resealed(data, data + size);
    resealPayload(resealed);
    exercise(resealed.data(), resealed.size());
  }
  return 0;
}
