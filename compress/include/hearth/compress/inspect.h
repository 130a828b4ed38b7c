// hearth/compress/inspect.h — human-readable summary of a payload, for the
// `hearth inspect` tool and for tests: what it holds (codec, encodings,
// sizes, density, compression ratio against dense fp32, value statistics) or
// precisely why it is invalid. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hearth::compress {

struct PayloadReport {
  bool valid = false;
  std::string text;  // multi-line description, or the one-line error
};

// expectedNumel as in decodePayload(): 0 accepts the header's numel (bounded).
PayloadReport inspectPayload(const std::uint8_t* data, std::size_t size,
                             std::uint64_t expectedNumel = 0);

}  // namespace hearth::compress
