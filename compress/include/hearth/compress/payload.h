// hearth/compress/payload.h — hearth's gradient wire format (version 1):
// encoding and fully validating decoding. Specification: docs/wire_format.md.
//
// A payload is one rank's compressed gradient for one flat buffer:
//   32-byte header | body (optionally one zstd frame) | CRC32C of all before
// The body holds scalars (codec parameters such as a scale), an index section
// (absent for dense payloads; raw u32, delta+varint or bitmap, chosen
// automatically by size unless forced) and a value section (fp32, fp16, bf16,
// int8 times scale, or sign bits times scale).
//
// Decoding validates everything and never trusts the sender: sizes, magic,
// version, enums, reserved bits, the checksum, numel against the caller's
// buffer, counts, index range and strict order, bitmap population, varint
// overflow, exact section lengths, zstd frame sizes (bounded before any
// allocation) and non-finite values. Any violation throws PayloadError with a
// kind and a message naming the field; the destination is untouched then.
// Allocation is bounded by the caller's expected numel, never by the header.
//
// Thread-safety: all functions are pure; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::compress {

enum class CodecId : std::uint8_t {
  kNone = 0,  // dense fp32
  kFp16 = 1,
  kTopK = 2,
  kRandomK = 3,
  kQsgd = 4,
  kSignSgd = 5,
  kInt8 = 6,
  kPowerSgd = 7,  // exchanges dense factors by allreduce; no payload
  kDgc = 8,
};
const char* codecIdName(CodecId id);

enum class ValueType : std::uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kI8 = 3,        // value = int8 * scalars[0]
  kSignBits = 4,  // value = (bit ? +1 : -1) * scalars[0], LSB-first bit order
};
const char* valueTypeName(ValueType t);

enum class IndexEncoding : std::uint8_t {
  kDense = 0,        // no index section: count == numel, values in order
  kRawU32 = 1,       // count little-endian u32
  kDeltaVarint = 2,  // first index, then gaps (>= 1), LEB128 varints
  kBitmap = 3,       // numel bits, LSB-first; population == count
};
const char* indexEncodingName(IndexEncoding e);

constexpr std::size_t kPayloadHeaderBytes = 32;
constexpr std::size_t kPayloadChecksumBytes = 4;
constexpr std::uint8_t kPayloadVersion = 1;
constexpr std::uint64_t kMaxPayloadNumel = 0xFFFFFFFFull;  // indices are u32
constexpr std::size_t kMaxPayloadScalars = 8;

enum class PayloadErrorKind {
  kTruncated,  // fewer bytes than the header or a section needs
  kBadMagic,
  kBadVersion,
  kBadField,  // unknown enum, reserved bits set, inconsistent header
  kChecksum,
  kSizeMismatch,   // numel differs from the destination, or trailing bytes
  kCountMismatch,  // count vs numel, bitmap population, section lengths
  kIndexOutOfRange,
  kIndexOrder,  // repeated or decreasing index
  kNonFinite,   // NaN or Inf value or scalar
  kDecompress,  // zstd frame invalid or of unexpected size
};
const char* payloadErrorKindName(PayloadErrorKind kind);

class PayloadError : public std::runtime_error {
 public:
  PayloadError(PayloadErrorKind kind, const std::string& message);
  PayloadErrorKind kind() const { return kind_; }

 private:
  PayloadErrorKind kind_;
};

// What a codec hands to the encoder. Pointers are borrowed for the call.
struct PayloadContent {
  CodecId codec = CodecId::kNone;
  std::uint64_t numel = 0;                 // dense length of the gradient buffer
  std::uint64_t count = 0;                 // number of values
  bool dense = false;                      // true: no indices, count == numel, values in order
  const std::uint32_t* indices = nullptr;  // sparse: count strictly increasing indices < numel
                                           // (may be nullptr when count == 0)
  ValueType valueType = ValueType::kF32;
  const float* values = nullptr;           // kF32/kF16/kBF16: count floats (converted as needed)
  const std::int8_t* quantized = nullptr;  // kI8: count bytes
  const std::uint8_t* signBits = nullptr;  // kSignBits: ceil(count/8) bytes
  std::vector<float> scalars;              // at most kMaxPayloadScalars, finite
};

struct EncodeOptions {
  std::optional<IndexEncoding> indexEncoding;  // nullopt: the smallest for the data
  bool zstd = false;
  int zstdLevel = 1;
};

// Encodes; throws std::invalid_argument when the content breaks its own
// contract (unsorted indices, count > numel, too many scalars, ...).
std::vector<std::uint8_t> encodePayload(const PayloadContent& content,
                                        const EncodeOptions& options = {});

struct PayloadHeader {
  std::uint8_t version = 0;
  CodecId codec = CodecId::kNone;
  ValueType valueType = ValueType::kF32;
  IndexEncoding indexEncoding = IndexEncoding::kDense;
  bool zstd = false;
  std::uint64_t numel = 0;
  std::uint64_t count = 0;
  std::uint32_t scalarCount = 0;
  std::uint32_t bodyBytes = 0;  // as transmitted (compressed if zstd)
};

// Validates the header, total size and checksum only.
PayloadHeader parsePayloadHeader(const std::uint8_t* data, std::size_t size);

struct DecodedPayload {
  PayloadHeader header;
  std::vector<float> scalars;
  std::vector<std::uint32_t> indices;  // empty for dense payloads
  std::vector<float> values;           // count values as fp32 (scales applied)
  std::size_t indexSectionBytes = 0;
  std::size_t valueSectionBytes = 0;
  std::size_t uncompressedBodyBytes = 0;
};

// Full validation. expectedNumel: the destination's length (0 accepts the
// header's numel up to kMaxPayloadNumel — for tools).
DecodedPayload decodePayload(const std::uint8_t* data, std::size_t size,
                             std::uint64_t expectedNumel);

// Validates, then dense[index] += scale * value for every entry.
// REQUIRES: dense holds expectedNumel floats. On error dense is unchanged.
void decodeAccumulate(const std::uint8_t* data, std::size_t size, float* dense,
                      std::uint64_t expectedNumel, float scale);

// CRC32C (Castagnoli) of a byte range: hardware-accelerated where available.
std::uint32_t crc32c(const std::uint8_t* data, std::size_t size);

// Recomputes the trailing checksum of a payload in place. For tests and tools
// that build deliberately malformed payloads; REQUIRES size >= 36.
void resealPayload(std::vector<std::uint8_t>& payload);

// Largest numel accepted when decodePayload() is called with expectedNumel 0
// (tools inspecting untrusted files): bounds allocation to 1 GiB of floats.
constexpr std::uint64_t kMaxUncheckedNumel = 1ull << 28;

// Size in bytes of a payload with these parameters, without building it
// (for choosing encodings and for benchmarks). indices as in PayloadContent.
std::size_t indexSectionBytes(IndexEncoding encoding, const std::uint32_t* indices,
                              std::uint64_t count, std::uint64_t numel);

}  // namespace hearth::compress
