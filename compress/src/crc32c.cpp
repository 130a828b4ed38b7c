// CRC32C (Castagnoli polynomial, reflected 0x82F63B78): SSE4.2 instruction
// when the CPU has it, else a byte-wise table.
#include <array>

#include "hearth/compress/payload.h"

namespace hearth::compress {
namespace {

std::array<std::uint32_t, 256> makeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

std::uint32_t crcSoftware(std::uint32_t crc, const std::uint8_t* data, std::size_t size) {
  static const auto kTable = makeTable();
  for (std::size_t i = 0; i < size; ++i) crc = kTable[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crcHardware(std::uint32_t crc,
                                                            const std::uint8_t* data,
                                                            std::size_t size) {
  std::uint64_t c = crc;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    __builtin_memcpy(&word, data + i, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; i < size; ++i) c32 = __builtin_ia32_crc32qi(c32, data[i]);
  return c32;
}
#endif

}  // namespace

std::uint32_t crc32c(const std::uint8_t* data, std::size_t size) {
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  if (kHardware) return ~crcHardware(~0u, data, size);
#endif
  return ~crcSoftware(~0u, data, size);
}

}  // namespace hearth::compress
