// hearth wire format v1: encoder and validating decoder (see payload.h and
// docs/wire_format.md).
#include "hearth/compress/payload.h"

#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/compress/dtype.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format is little-endian");

namespace hearth::compress {
namespace {

constexpr std::uint8_t kMagic[4] = {'H', 'G', 'R', 'D'};
constexpr std::uint8_t kFlagIndexMask = 0x03;
constexpr std::uint8_t kFlagZstd = 0x04;
constexpr std::uint8_t kFlagReserved = 0xF8;
constexpr std::size_t kEnvelopeBytes = kPayloadHeaderBytes + kPayloadChecksumBytes;

[[noreturn]] void fail(PayloadErrorKind kind, const std::string& message) {
  throw PayloadError(kind, message);
}

std::uint64_t ceilDiv8(std::uint64_t bits) {
  return (bits + 7) / 8;
}

std::size_t valueElementBytes(ValueType t) {
  switch (t) {
    case ValueType::kF32:
      return 4;
    case ValueType::kF16:
    case ValueType::kBF16:
      return 2;
    case ValueType::kI8:
      return 1;
    case ValueType::kSignBits:
      return 0;  // bit-packed
  }
  return 0;
}

std::uint64_t valueSectionSize(ValueType t, std::uint64_t count) {
  return t == ValueType::kSignBits ? ceilDiv8(count) : count * valueElementBytes(t);
}

template <typename T>
void put(std::vector<std::uint8_t>& out, T value) {
  const auto at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

template <typename T>
T get(const std::uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

std::size_t varintSize(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 0x80u) {
    v >>= 7;
    ++n;
  }
  return n;
}

void putVarint(std::vector<std::uint8_t>& out, std::uint32_t v) {
  while (v >= 0x80u) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80u));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

// Bounds-checked cursor over the (uncompressed) body.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  const std::uint8_t* take(std::size_t n, const char* what) {
    if (n > size_ - pos_) {
      fail(PayloadErrorKind::kTruncated, std::string(what) + " needs " + std::to_string(n) +
                                             " bytes, only " + std::to_string(size_ - pos_) +
                                             " remain");
    }
    const auto* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  std::size_t remaining() const { return size_ - pos_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

void checkFinite(float v, const char* what, std::uint64_t i) {
  if (!std::isfinite(v)) {
    fail(PayloadErrorKind::kNonFinite, std::string(what) + " " + std::to_string(i) + " is " +
                                           (std::isnan(v) ? "NaN" : "infinite"));
  }
}

void validateContent(const PayloadContent& c) {
  auto bad = [](const std::string& why) { throw std::invalid_argument("encodePayload: " + why); };
  if (c.numel > kMaxPayloadNumel) bad("numel " + std::to_string(c.numel) + " exceeds 2^32-1");
  if (c.count > c.numel) bad("count exceeds numel");
  if (c.dense && c.count != c.numel) bad("a dense payload needs count == numel");
  if (!c.dense && c.count > 0 && c.indices == nullptr) bad("indices missing");
  if (c.scalars.size() > kMaxPayloadScalars) bad("too many scalars");
  for (float s : c.scalars) {
    if (!std::isfinite(s)) bad("non-finite scalar");
  }
  if (!c.dense) {
    for (std::uint64_t i = 0; i < c.count; ++i) {
      if (c.indices[i] >= c.numel || (i > 0 && c.indices[i] <= c.indices[i - 1])) {
        bad("indices must be strictly increasing and < numel (index " + std::to_string(i) + ")");
      }
    }
  }
  const bool floats = c.valueType == ValueType::kF32 || c.valueType == ValueType::kF16 ||
                      c.valueType == ValueType::kBF16;
  if (c.count > 0) {
    if (floats && c.values == nullptr) bad("values missing");
    if (c.valueType == ValueType::kI8 && c.quantized == nullptr) bad("quantized values missing");
    if (c.valueType == ValueType::kSignBits && c.signBits == nullptr) bad("sign bits missing");
  }
  if ((c.valueType == ValueType::kI8 || c.valueType == ValueType::kSignBits) && c.scalars.empty()) {
    bad("int8 and sign-bit values need a scale in scalars[0]");
  }
}

void writeIndices(std::vector<std::uint8_t>& out, IndexEncoding encoding, const PayloadContent& c) {
  if (encoding == IndexEncoding::kDense) return;
  const auto lengthAt = out.size();
  put<std::uint32_t>(out, 0);
  const auto start = out.size();
  switch (encoding) {
    case IndexEncoding::kRawU32:
      out.resize(start + c.count * 4);
      if (c.count > 0) std::memcpy(out.data() + start, c.indices, c.count * 4);
      break;
    case IndexEncoding::kDeltaVarint: {
      std::uint32_t previous = 0;
      for (std::uint64_t i = 0; i < c.count; ++i) {
        putVarint(out, i == 0 ? c.indices[0] : c.indices[i] - previous);
        previous = c.indices[i];
      }
      break;
    }
    case IndexEncoding::kBitmap:
      out.resize(start + ceilDiv8(c.numel), 0);
      for (std::uint64_t i = 0; i < c.count; ++i) {
        out[start + c.indices[i] / 8] |= static_cast<std::uint8_t>(1u << (c.indices[i] % 8));
      }
      break;
    case IndexEncoding::kDense:
      break;
  }
  const auto length = static_cast<std::uint32_t>(out.size() - start);
  std::memcpy(out.data() + lengthAt, &length, 4);
}

void writeValues(std::vector<std::uint8_t>& out, const PayloadContent& c) {
  const auto start = out.size();
  out.resize(start + valueSectionSize(c.valueType, c.count));
  std::uint8_t* dst = out.data() + start;
  switch (c.valueType) {
    case ValueType::kF32:
      if (c.count > 0) std::memcpy(dst, c.values, c.count * 4);
      break;
    case ValueType::kF16:
      for (std::uint64_t i = 0; i < c.count; ++i) {
        const std::uint16_t h = floatToHalf(c.values[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case ValueType::kBF16:
      for (std::uint64_t i = 0; i < c.count; ++i) {
        const std::uint16_t h = floatToBFloat16(c.values[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case ValueType::kI8:
      if (c.count > 0) std::memcpy(dst, c.quantized, c.count);
      break;
    case ValueType::kSignBits: {
      const auto bytes = ceilDiv8(c.count);
      if (bytes > 0) {
        std::memcpy(dst, c.signBits, bytes);
        if (c.count % 8 != 0)
          dst[bytes - 1] &= static_cast<std::uint8_t>((1u << (c.count % 8)) - 1);
      }
      break;
    }
  }
}

// Exact uncompressed body size for fixed-size encodings, an upper bound for
// delta+varint.
std::uint64_t bodyBound(const PayloadHeader& h) {
  std::uint64_t indexBytes = 0;
  switch (h.indexEncoding) {
    case IndexEncoding::kDense:
      indexBytes = 0;
      break;
    case IndexEncoding::kRawU32:
      indexBytes = 4 + 4 * h.count;
      break;
    case IndexEncoding::kDeltaVarint:
      indexBytes = 4 + 5 * h.count;
      break;
    case IndexEncoding::kBitmap:
      indexBytes = 4 + ceilDiv8(h.numel);
      break;
  }
  return 4ull * h.scalarCount + indexBytes + valueSectionSize(h.valueType, h.count);
}

void decodeIndices(const PayloadHeader& h, const std::uint8_t* p, std::size_t length,
                   std::vector<std::uint32_t>& indices) {
  indices.resize(h.count);
  auto order = [](std::uint64_t i, std::uint64_t index, std::uint64_t previous) {
    fail(PayloadErrorKind::kIndexOrder, "index " + std::to_string(i) + " (" +
                                            std::to_string(index) + ") does not increase over " +
                                            std::to_string(previous));
  };
  auto range = [&](std::uint64_t i, std::uint64_t index) {
    fail(PayloadErrorKind::kIndexOutOfRange, "index " + std::to_string(i) + " (" +
                                                 std::to_string(index) + ") is out of range for " +
                                                 std::to_string(h.numel) + " elements");
  };
  switch (h.indexEncoding) {
    case IndexEncoding::kDense:
      return;
    case IndexEncoding::kRawU32: {
      if (length != 4 * h.count) {
        fail(PayloadErrorKind::kCountMismatch, "raw index section is " + std::to_string(length) +
                                                   " bytes for " + std::to_string(h.count) +
                                                   " indices");
      }
      for (std::uint64_t i = 0; i < h.count; ++i) {
        const auto index = get<std::uint32_t>(p + 4 * i);
        if (index >= h.numel) range(i, index);
        if (i > 0 && index <= indices[i - 1]) order(i, index, indices[i - 1]);
        indices[i] = index;
      }
      return;
    }
    case IndexEncoding::kDeltaVarint: {
      std::size_t pos = 0;
      std::uint64_t current = 0;
      for (std::uint64_t i = 0; i < h.count; ++i) {
        std::uint64_t value = 0;
        for (int shift = 0;; shift += 7) {
          if (pos >= length) {
            fail(PayloadErrorKind::kTruncated,
                 "varint index section ends inside index " + std::to_string(i));
          }
          const std::uint8_t byte = p[pos++];
          if (shift == 28 && (byte & 0xF0u) != 0) {
            fail(PayloadErrorKind::kBadField,
                 "varint of index " + std::to_string(i) + " overflows 32 bits");
          }
          value |= std::uint64_t(byte & 0x7Fu) << shift;
          if ((byte & 0x80u) == 0) break;
        }
        if (i > 0 && value == 0) order(i, current, current);
        current = i == 0 ? value : current + value;
        if (current >= h.numel) range(i, current);
        indices[i] = static_cast<std::uint32_t>(current);
      }
      if (pos != length) {
        fail(PayloadErrorKind::kCountMismatch,
             "varint index section has " + std::to_string(length - pos) + " trailing bytes");
      }
      return;
    }
    case IndexEncoding::kBitmap: {
      if (length != ceilDiv8(h.numel)) {
        fail(PayloadErrorKind::kCountMismatch, "bitmap is " + std::to_string(length) +
                                                   " bytes for " + std::to_string(h.numel) +
                                                   " elements");
      }
      std::uint64_t n = 0;
      for (std::uint64_t byte = 0; byte < length; ++byte) {
        std::uint8_t bits = p[byte];
        while (bits != 0) {
          const int bit = __builtin_ctz(bits);
          bits &= static_cast<std::uint8_t>(bits - 1);
          const std::uint64_t index = byte * 8 + static_cast<std::uint64_t>(bit);
          if (index >= h.numel) range(n, index);
          if (n >= h.count) {
            fail(PayloadErrorKind::kCountMismatch,
                 "bitmap has more than count=" + std::to_string(h.count) + " bits set");
          }
          indices[n++] = static_cast<std::uint32_t>(index);
        }
      }
      if (n != h.count) {
        fail(PayloadErrorKind::kCountMismatch,
             "bitmap has " + std::to_string(n) + " bits set, count is " + std::to_string(h.count));
      }
      return;
    }
  }
}

void decodeValues(const PayloadHeader& h, const std::vector<float>& scalars, const std::uint8_t* p,
                  std::vector<float>& values) {
  values.resize(h.count);
  switch (h.valueType) {
    case ValueType::kF32:
      if (h.count > 0) std::memcpy(values.data(), p, h.count * 4);
      break;
    case ValueType::kF16:
      for (std::uint64_t i = 0; i < h.count; ++i)
        values[i] = halfToFloat(get<std::uint16_t>(p + 2 * i));
      break;
    case ValueType::kBF16:
      for (std::uint64_t i = 0; i < h.count; ++i) {
        values[i] = bfloat16ToFloat(get<std::uint16_t>(p + 2 * i));
      }
      break;
    case ValueType::kI8:
      for (std::uint64_t i = 0; i < h.count; ++i) {
        values[i] = static_cast<float>(static_cast<std::int8_t>(p[i])) * scalars[0];
      }
      break;
    case ValueType::kSignBits:
      for (std::uint64_t i = 0; i < h.count; ++i) {
        values[i] = ((p[i / 8] >> (i % 8)) & 1u) ? scalars[0] : -scalars[0];
      }
      if (h.count % 8 != 0 && (p[h.count / 8] >> (h.count % 8)) != 0) {
        fail(PayloadErrorKind::kBadField, "sign bits past count are set");
      }
      break;
  }
  for (std::uint64_t i = 0; i < h.count; ++i) checkFinite(values[i], "value", i);
}

}  // namespace

PayloadError::PayloadError(PayloadErrorKind kind, const std::string& message)
    : std::runtime_error(std::string("invalid payload (") + payloadErrorKindName(kind) +
                         "): " + message),
      kind_(kind) {}

const char* payloadErrorKindName(PayloadErrorKind kind) {
  switch (kind) {
    case PayloadErrorKind::kTruncated:
      return "truncated";
    case PayloadErrorKind::kBadMagic:
      return "bad magic";
    case PayloadErrorKind::kBadVersion:
      return "bad version";
    case PayloadErrorKind::kBadField:
      return "bad field";
    case PayloadErrorKind::kChecksum:
      return "checksum mismatch";
    case PayloadErrorKind::kSizeMismatch:
      return "size mismatch";
    case PayloadErrorKind::kCountMismatch:
      return "count mismatch";
    case PayloadErrorKind::kIndexOutOfRange:
      return "index out of range";
    case PayloadErrorKind::kIndexOrder:
      return "index order";
    case PayloadErrorKind::kNonFinite:
      return "non-finite value";
    case PayloadErrorKind::kDecompress:
      return "decompression failed";
  }
  return "?";
}

const char* codecIdName(CodecId id) {
  switch (id) {
    case CodecId::kNone:
      return "none";
    case CodecId::kFp16:
      return "fp16";
    case CodecId::kTopK:
      return "topk";
    case CodecId::kRandomK:
      return "randomk";
    case CodecId::kQsgd:
      return "qsgd";
    case CodecId::kSignSgd:
      return "signsgd";
    case CodecId::kInt8:
      return "int8";
    case CodecId::kPowerSgd:
      return "powersgd";
    case CodecId::kDgc:
      return "dgc";
  }
  return "?";
}

const char* valueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kF32:
      return "fp32";
    case ValueType::kF16:
      return "fp16";
    case ValueType::kBF16:
      return "bf16";
    case ValueType::kI8:
      return "int8";
    case ValueType::kSignBits:
      return "sign bits";
  }
  return "?";
}

const char* indexEncodingName(IndexEncoding e) {
  switch (e) {
    case IndexEncoding::kDense:
      return "dense";
    case IndexEncoding::kRawU32:
      return "raw u32";
    case IndexEncoding::kDeltaVarint:
      return "delta varint";
    case IndexEncoding::kBitmap:
      return "bitmap";
  }
  return "?";
}

std::size_t indexSectionBytes(IndexEncoding encoding, const std::uint32_t* indices,
                              std::uint64_t count, std::uint64_t numel) {
  switch (encoding) {
    case IndexEncoding::kDense:
      return 0;
    case IndexEncoding::kRawU32:
      return 4 + 4 * count;
    case IndexEncoding::kBitmap:
      return 4 + ceilDiv8(numel);
    case IndexEncoding::kDeltaVarint: {
      std::size_t bytes = 4;
      if (count == 0) return bytes;
      std::uint32_t previous = 0;
      for (std::uint64_t i = 0; i < count; ++i) {
        bytes += varintSize(i == 0 ? indices[0] : indices[i] - previous);
        previous = indices[i];
      }
      return bytes;
    }
  }
  return 0;
}

std::vector<std::uint8_t> encodePayload(const PayloadContent& c, const EncodeOptions& options) {
  validateContent(c);
  IndexEncoding encoding = IndexEncoding::kDense;
  if (!c.dense) {
    if (options.indexEncoding) {
      encoding = *options.indexEncoding;
      if (encoding == IndexEncoding::kDense) {
        if (c.count != c.numel) {
          throw std::invalid_argument("encodePayload: dense index encoding needs count == numel");
        }
      }
    } else {
      // The smallest of the three; raw is never smaller than varint, but is
      // the cheapest to decode, so prefer it on ties.
      encoding = IndexEncoding::kRawU32;
      std::size_t best = indexSectionBytes(encoding, c.indices, c.count, c.numel);
      for (auto candidate : {IndexEncoding::kDeltaVarint, IndexEncoding::kBitmap}) {
        const auto size = indexSectionBytes(candidate, c.indices, c.count, c.numel);
        if (size < best) {
          best = size;
          encoding = candidate;
        }
      }
    }
  }

  std::vector<std::uint8_t> body;
  body.reserve(4 * c.scalars.size() + indexSectionBytes(encoding, c.indices, c.count, c.numel) +
               valueSectionSize(c.valueType, c.count));
  for (float s : c.scalars) put<float>(body, s);
  writeIndices(body, encoding, c);
  writeValues(body, c);

  bool compressed = false;
  if (options.zstd && !body.empty()) {
    std::vector<std::uint8_t> packed(ZSTD_compressBound(body.size()));
    const std::size_t n =
        ZSTD_compress(packed.data(), packed.size(), body.data(), body.size(), options.zstdLevel);
    if (ZSTD_isError(n)) {
      throw std::runtime_error(std::string("encodePayload: zstd failed: ") + ZSTD_getErrorName(n));
    }
    if (n < body.size()) {
      packed.resize(n);
      body.swap(packed);
      compressed = true;
    }
  }
  if (body.size() > 0xFFFFFFFFull - kEnvelopeBytes) {
    throw std::invalid_argument("encodePayload: body exceeds 4 GiB");
  }

  std::vector<std::uint8_t> out;
  out.reserve(kEnvelopeBytes + body.size());
  out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
  out.push_back(kPayloadVersion);
  out.push_back(static_cast<std::uint8_t>(c.codec));
  out.push_back(static_cast<std::uint8_t>(c.valueType));
  out.push_back(static_cast<std::uint8_t>(static_cast<std::uint8_t>(encoding) |
                                          (compressed ? kFlagZstd : 0)));
  put<std::uint64_t>(out, c.numel);
  put<std::uint64_t>(out, c.count);
  out.push_back(static_cast<std::uint8_t>(c.scalars.size()));
  out.insert(out.end(), 3, 0);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  put<std::uint32_t>(out, crc32c(out.data(), out.size()));
  return out;
}

void resealPayload(std::vector<std::uint8_t>& payload) {
  if (payload.size() < kEnvelopeBytes) {
    throw std::invalid_argument("resealPayload: shorter than a payload envelope");
  }
  const auto crc = crc32c(payload.data(), payload.size() - kPayloadChecksumBytes);
  std::memcpy(payload.data() + payload.size() - kPayloadChecksumBytes, &crc, 4);
}

PayloadHeader parsePayloadHeader(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size < kEnvelopeBytes) {
    fail(PayloadErrorKind::kTruncated,
         std::to_string(size) + " bytes, a payload has at least " + std::to_string(kEnvelopeBytes));
  }
  if (std::memcmp(data, kMagic, 4) != 0) fail(PayloadErrorKind::kBadMagic, "not a hearth payload");
  PayloadHeader h;
  h.version = data[4];
  if (h.version != kPayloadVersion) {
    fail(PayloadErrorKind::kBadVersion, "version " + std::to_string(h.version) +
                                            ", this build reads version " +
                                            std::to_string(kPayloadVersion));
  }
  h.bodyBytes = get<std::uint32_t>(data + 28);
  const std::uint64_t expectedSize = kEnvelopeBytes + std::uint64_t(h.bodyBytes);
  if (size < expectedSize) {
    fail(PayloadErrorKind::kTruncated,
         std::to_string(size) + " bytes, the header announces " + std::to_string(expectedSize));
  }
  if (size > expectedSize) {
    fail(PayloadErrorKind::kSizeMismatch,
         std::to_string(size - expectedSize) + " trailing bytes after the checksum");
  }
  const auto stored = get<std::uint32_t>(data + size - kPayloadChecksumBytes);
  const auto actual = crc32c(data, size - kPayloadChecksumBytes);
  if (stored != actual) fail(PayloadErrorKind::kChecksum, "CRC32C does not match the contents");

  const std::uint8_t codec = data[5];
  if (codec > static_cast<std::uint8_t>(CodecId::kDgc) ||
      codec == static_cast<std::uint8_t>(CodecId::kPowerSgd)) {
    fail(PayloadErrorKind::kBadField, "codec id " + std::to_string(codec) + " has no payload");
  }
  h.codec = static_cast<CodecId>(codec);
  const std::uint8_t valueType = data[6];
  if (valueType > static_cast<std::uint8_t>(ValueType::kSignBits)) {
    fail(PayloadErrorKind::kBadField, "value type " + std::to_string(valueType) + " is unknown");
  }
  h.valueType = static_cast<ValueType>(valueType);
  const std::uint8_t flags = data[7];
  if ((flags & kFlagReserved) != 0) {
    fail(PayloadErrorKind::kBadField, "reserved flag bits are set");
  }
  h.indexEncoding = static_cast<IndexEncoding>(flags & kFlagIndexMask);
  h.zstd = (flags & kFlagZstd) != 0;
  h.numel = get<std::uint64_t>(data + 8);
  h.count = get<std::uint64_t>(data + 16);
  h.scalarCount = data[24];
  if (data[25] != 0 || data[26] != 0 || data[27] != 0) {
    fail(PayloadErrorKind::kBadField, "reserved header bytes are not zero");
  }
  if (h.numel > kMaxPayloadNumel) {
    fail(PayloadErrorKind::kBadField, "numel " + std::to_string(h.numel) + " exceeds 2^32-1");
  }
  if (h.count > h.numel) {
    fail(PayloadErrorKind::kCountMismatch,
         "count " + std::to_string(h.count) + " exceeds numel " + std::to_string(h.numel));
  }
  if (h.indexEncoding == IndexEncoding::kDense && h.count != h.numel) {
    fail(PayloadErrorKind::kCountMismatch, "a dense payload has count " + std::to_string(h.count) +
                                               " but numel " + std::to_string(h.numel));
  }
  if (h.scalarCount > kMaxPayloadScalars) {
    fail(PayloadErrorKind::kBadField,
         std::to_string(h.scalarCount) + " scalars, at most " + std::to_string(kMaxPayloadScalars));
  }
  if ((h.valueType == ValueType::kI8 || h.valueType == ValueType::kSignBits) && h.scalarCount < 1) {
    fail(PayloadErrorKind::kBadField,
         std::string(valueTypeName(h.valueType)) + " values need a scale scalar");
  }
  return h;
}

DecodedPayload decodePayload(const std::uint8_t* data, std::size_t size,
                             std::uint64_t expectedNumel) {
  DecodedPayload out;
  out.header = parsePayloadHeader(data, size);
  const PayloadHeader& h = out.header;
  if (expectedNumel != 0 && h.numel != expectedNumel) {
    fail(PayloadErrorKind::kSizeMismatch, "payload is for " + std::to_string(h.numel) +
                                              " elements, the destination has " +
                                              std::to_string(expectedNumel));
  }
  if (expectedNumel == 0 && h.numel > kMaxUncheckedNumel) {
    fail(PayloadErrorKind::kBadField,
         "numel " + std::to_string(h.numel) + " is too large to inspect without a destination");
  }
  const std::uint8_t* body = data + kPayloadHeaderBytes;
  std::size_t bodySize = h.bodyBytes;
  const std::uint64_t bound = bodyBound(h);
  std::vector<std::uint8_t> inflated;
  if (h.zstd) {
    const unsigned long long content = ZSTD_getFrameContentSize(body, bodySize);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
      fail(PayloadErrorKind::kDecompress, "zstd frame header is invalid or has no content size");
    }
    if (content > bound) {
      fail(PayloadErrorKind::kDecompress, "zstd frame inflates to " + std::to_string(content) +
                                              " bytes, at most " + std::to_string(bound) +
                                              " are possible");
    }
    const std::size_t frame = ZSTD_findFrameCompressedSize(body, bodySize);
    if (ZSTD_isError(frame) || frame != bodySize) {
      fail(PayloadErrorKind::kDecompress, "the body is not exactly one zstd frame");
    }
    inflated.resize(content);
    const std::size_t n = ZSTD_decompress(inflated.data(), inflated.size(), body, bodySize);
    if (ZSTD_isError(n) || n != content) {
      fail(PayloadErrorKind::kDecompress,
           std::string("zstd: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output"));
    }
    body = inflated.data();
    bodySize = inflated.size();
  }
  out.uncompressedBodyBytes = bodySize;
  if (bodySize > bound) {
    fail(PayloadErrorKind::kCountMismatch, "body is " + std::to_string(bodySize) +
                                               " bytes, at most " + std::to_string(bound) +
                                               " are possible for the header's counts");
  }

  Reader reader(body, bodySize);
  const std::uint8_t* scalarBytes = reader.take(4ull * h.scalarCount, "scalars");
  for (std::uint32_t i = 0; i < h.scalarCount; ++i) {
    out.scalars.push_back(get<float>(scalarBytes + 4 * i));
    checkFinite(out.scalars.back(), "scalar", i);
  }
  if (h.indexEncoding != IndexEncoding::kDense) {
    const auto length = get<std::uint32_t>(reader.take(4, "index section length"));
    const std::uint8_t* section = reader.take(length, "index section");
    decodeIndices(h, section, length, out.indices);
    out.indexSectionBytes = 4 + length;
  }
  const std::uint64_t valueBytes = valueSectionSize(h.valueType, h.count);
  if (reader.remaining() != valueBytes) {
    fail(reader.remaining() < valueBytes ? PayloadErrorKind::kTruncated
                                         : PayloadErrorKind::kCountMismatch,
         "value section is " + std::to_string(reader.remaining()) + " bytes, " +
             std::to_string(h.count) + " " + valueTypeName(h.valueType) + " values need " +
             std::to_string(valueBytes));
  }
  out.valueSectionBytes = valueBytes;
  decodeValues(h, out.scalars, reader.take(valueBytes, "values"), out.values);
  return out;
}

void decodeAccumulate(const std::uint8_t* data, std::size_t size, float* dense,
                      std::uint64_t expectedNumel, float scale) {
  if (expectedNumel == 0) {
    // Nothing to write; still validate that the payload is for zero elements.
    decodePayload(data, size, 0);
    if (parsePayloadHeader(data, size).numel != 0) {
      fail(PayloadErrorKind::kSizeMismatch, "payload is for a non-empty buffer, destination has 0");
    }
    return;
  }
  const DecodedPayload decoded = decodePayload(data, size, expectedNumel);
  if (decoded.header.indexEncoding == IndexEncoding::kDense) {
    for (std::uint64_t i = 0; i < decoded.header.count; ++i) dense[i] += scale * decoded.values[i];
  } else {
    for (std::uint64_t i = 0; i < decoded.header.count; ++i) {
      dense[decoded.indices[i]] += scale * decoded.values[i];
    }
  }
}

}  // namespace hearth::compress
