// shard_checkpoint_format.h (internal) — the .hsc byte format: constants, the
// decoded header, and pure encode/decode functions over byte buffers (no I/O).
// Layout of a file (little-endian; docs/checkpoints.md):
//   preamble (24 B)  magic "HRTHSHRD", u32 version, u32 header length,
//                    u32 header CRC32C, u32 reserved (0)
//   header JSON      header length bytes, then zeros up to a 64 B boundary
//   sections         each at its table offset (relative to the data region),
//                    each padded with zeros to a 64 B boundary
//   trailer (24 B)   magic "HRTHEND1", u64 file size, u32 header CRC32C, u32 0
// Decoders throw FormatError with a message that does not name the file; the
// I/O layer adds the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/shard/flat_layout.h"

namespace hearth::ckpt {

struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kPreambleSize = 24;
inline constexpr std::size_t kTrailerSize = 24;
inline constexpr std::uint64_t kSectionAlign = 64;
// No legitimate header comes close (a layout entry is ~50 bytes of JSON).
inline constexpr std::uint64_t kMaxHeaderBytes = std::uint64_t(256) << 20;

enum class SectionKind { kSlice, kBlob };

struct SectionEntry {
  SectionKind kind = SectionKind::kSlice;
  std::string name;
  std::uint64_t numel = 0;   // elements: fp32 for slices, bytes for blobs
  std::uint64_t bytes = 0;   // numel * element size
  std::uint64_t offset = 0;  // relative to the start of the data region
  std::uint32_t crc = 0;     // CRC32C of the section's bytes
};

struct ShardHeader {
  FlatLayout layout;
  int rank = 0;
  std::int64_t step = 0;
  std::uint64_t checkpointId = 0;
  nlohmann::json meta = nlohmann::json::object();
  std::vector<SectionEntry> sections;  // slices first, then blobs; by name
  std::uint64_t dataBytes = 0;         // size of the data region
};

std::uint64_t alignUp(std::uint64_t value);
// Where the data region starts for a header of headerLength bytes.
std::uint64_t dataStart(std::uint64_t headerLength);

// Sets every section's offset (back to back, 64 B aligned) and dataBytes.
void assignOffsets(ShardHeader& header);
// The header JSON text (sections must have offsets).
std::string encodeHeaderJson(const ShardHeader& header);
// Preamble + header JSON + zero padding: the bytes before the data region.
std::vector<std::uint8_t> encodePrefix(const std::string& headerJson);
std::vector<std::uint8_t> encodeTrailer(std::uint64_t fileSize, std::uint32_t headerCrc);

struct Preamble {
  std::uint32_t headerLength = 0;
  std::uint32_t headerCrc = 0;
};
// REQUIRES: bytes holds kPreambleSize bytes. Checks magic, version, reserved
// and that the header length fits in fileSize.
Preamble decodePreamble(const std::uint8_t* bytes, std::uint64_t fileSize);
// REQUIRES: bytes holds the last kTrailerSize bytes of the file.
void checkTrailer(const std::uint8_t* bytes, std::uint64_t fileSize, const Preamble& preamble);
// Checks the CRC, parses and validates every field, and checks the section
// table against the file size.
ShardHeader decodeHeader(const std::uint8_t* json, std::size_t size, const Preamble& preamble,
                         std::uint64_t fileSize);

const SectionEntry* findSection(const ShardHeader& header, SectionKind kind,
                                const std::string& name);

void putU32(std::uint8_t* out, std::uint32_t value);
void putU64(std::uint8_t* out, std::uint64_t value);
std::uint32_t getU32(const std::uint8_t* in);
std::uint64_t getU64(const std::uint8_t* in);

}  // namespace hearth::ckpt
