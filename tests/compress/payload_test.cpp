// Wire format: round trips across sizes, densities and encodings, and a table
// of hostile payloads that must each be rejected with the right error kind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "hearth/compress/dtype.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {
namespace {

struct Sparse {
  std::uint64_t numel = 0;
  std::vector<std::uint32_t> indices;
  std::vector<float> values;
};

Sparse makeSparse(std::uint64_t numel, double density, std::uint32_t seed) {
  Sparse s;
  s.numel = numel;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::uint64_t i = 0; i < numel; ++i) {
    if (coin(rng) < density) {
      s.indices.push_back(static_cast<std::uint32_t>(i));
      s.values.push_back(normal(rng));
    }
  }
  return s;
}

PayloadContent contentOf(const Sparse& s, ValueType type = ValueType::kF32) {
  PayloadContent c;
  c.codec = CodecId::kTopK;
  c.numel = s.numel;
  c.count = s.indices.size();
  c.indices = s.indices.data();
  c.values = s.values.data();
  c.valueType = type;
  return c;
}

PayloadErrorKind kindOf(const std::vector<std::uint8_t>& bytes, std::uint64_t numel) {
  try {
    decodePayload(bytes.data(), bytes.size(), numel);
  } catch (const PayloadError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "payload was accepted";
  return PayloadErrorKind::kBadField;
}

TEST(Payload, SparseRoundTripAcrossSizesDensitiesAndEncodings) {
  for (std::uint64_t numel : {0ull, 1ull, 2ull, 1001ull, 1ull << 18}) {
    for (double density : {0.0, 0.001, 0.1, 0.5, 1.0}) {
      const auto s =
          makeSparse(numel, density, static_cast<std::uint32_t>(numel * 7 + density * 1000));
      for (auto encoding :
           {IndexEncoding::kRawU32, IndexEncoding::kDeltaVarint, IndexEncoding::kBitmap}) {
        for (bool zstd : {false, true}) {
          EncodeOptions options;
          options.indexEncoding = encoding;
          options.zstd = zstd;
          const auto bytes = encodePayload(contentOf(s), options);
          const auto decoded = decodePayload(bytes.data(), bytes.size(), numel);
          ASSERT_EQ(decoded.indices, s.indices) << numel << " " << density;
          ASSERT_EQ(decoded.values, s.values);
          EXPECT_EQ(decoded.header.indexEncoding, encoding);
        }
      }
    }
  }
}

TEST(Payload, AutomaticIndexEncodingPicksTheSmallest) {
  const auto sparse = makeSparse(1 << 20, 0.001, 1);
  auto bytes = encodePayload(contentOf(sparse));
  EXPECT_EQ(parsePayloadHeader(bytes.data(), bytes.size()).indexEncoding,
            IndexEncoding::kDeltaVarint);
  const auto dense = makeSparse(1 << 16, 0.6, 2);
  bytes = encodePayload(contentOf(dense));
  EXPECT_EQ(parsePayloadHeader(bytes.data(), bytes.size()).indexEncoding, IndexEncoding::kBitmap);
  for (const auto* s : {&sparse, &dense}) {
    std::size_t smallest = std::numeric_limits<std::size_t>::max();
    for (auto e : {IndexEncoding::kRawU32, IndexEncoding::kDeltaVarint, IndexEncoding::kBitmap}) {
      smallest =
          std::min(smallest, indexSectionBytes(e, s->indices.data(), s->indices.size(), s->numel));
    }
    const auto payload = encodePayload(contentOf(*s));
    EXPECT_EQ(decodePayload(payload.data(), payload.size(), s->numel).indexSectionBytes, smallest);
  }
}

TEST(Payload, ValueTypesRoundTrip) {
  const auto s = makeSparse(5000, 0.3, 3);
  for (auto type : {ValueType::kF16, ValueType::kBF16}) {
    const auto bytes = encodePayload(contentOf(s, type));
    const auto decoded = decodePayload(bytes.data(), bytes.size(), s.numel);
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      const float expected = type == ValueType::kF16
                                 ? halfToFloat(floatToHalf(s.values[i]))
                                 : bfloat16ToFloat(floatToBFloat16(s.values[i]));
      ASSERT_EQ(decoded.values[i], expected);
    }
  }
  // int8 and sign bits decode through their scale.
  std::vector<std::int8_t> q = {-127, -1, 0, 1, 127};
  PayloadContent c;
  c.codec = CodecId::kInt8;
  c.numel = q.size();
  c.count = q.size();
  c.dense = true;
  c.valueType = ValueType::kI8;
  c.quantized = q.data();
  c.scalars = {0.5f};
  auto bytes = encodePayload(c);
  auto decoded = decodePayload(bytes.data(), bytes.size(), q.size());
  EXPECT_EQ(decoded.values, (std::vector<float>{-63.5f, -0.5f, 0.0f, 0.5f, 63.5f}));
  std::vector<std::uint8_t> bits = {0b00000101, 0b1};
  c = PayloadContent{};
  c.codec = CodecId::kSignSgd;
  c.numel = 9;
  c.count = 9;
  c.dense = true;
  c.valueType = ValueType::kSignBits;
  c.signBits = bits.data();
  c.scalars = {2.0f};
  bytes = encodePayload(c);
  decoded = decodePayload(bytes.data(), bytes.size(), 9);
  EXPECT_EQ(decoded.values, (std::vector<float>{2, -2, 2, -2, -2, -2, -2, -2, 2}));
}

TEST(Payload, DenseAndDecodeAccumulate) {
  std::vector<float> values = {1.0f, -2.0f, 3.5f};
  PayloadContent c;
  c.codec = CodecId::kNone;
  c.numel = 3;
  c.count = 3;
  c.dense = true;
  c.values = values.data();
  const auto bytes = encodePayload(c);
  std::vector<float> dense = {10.0f, 10.0f, 10.0f};
  decodeAccumulate(bytes.data(), bytes.size(), dense.data(), 3, 0.5f);
  EXPECT_EQ(dense, (std::vector<float>{10.5f, 9.0f, 11.75f}));
}

TEST(Payload, EncoderRejectsBrokenContent) {
  std::vector<std::uint32_t> unsorted = {3, 1};
  std::vector<float> values = {1.0f, 2.0f};
  PayloadContent c;
  c.numel = 10;
  c.count = 2;
  c.indices = unsorted.data();
  c.values = values.data();
  EXPECT_THROW(encodePayload(c), std::invalid_argument);
  std::vector<float> nan = {std::nanf("")};
  c = PayloadContent{};
  c.numel = 1;
  c.count = 1;
  c.dense = true;
  c.values = nan.data();
  c.scalars = {std::numeric_limits<float>::infinity()};
  EXPECT_THROW(encodePayload(c), std::invalid_argument);
}

// ---- hostile payloads -------------------------------------------------------

std::vector<std::uint8_t> goodSparse(IndexEncoding encoding, bool zstd = false) {
  static const Sparse s = [] {
    Sparse x;
    x.numel = 64;
    x.indices = {1, 5, 6, 40, 63};
    x.values = {0.5f, -1.0f, 2.0f, 3.0f, -4.0f};
    return x;
  }();
  EncodeOptions options;
  options.indexEncoding = encoding;
  options.zstd = zstd;
  return encodePayload(contentOf(s), options);
}

// Offset of the index section's first byte (after header, no scalars, length).
constexpr std::size_t kIndexStart = kPayloadHeaderBytes + 4;

template <typename T>
void poke(std::vector<std::uint8_t>& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

TEST(PayloadHostile, EveryTruncationIsRejected) {
  for (auto encoding :
       {IndexEncoding::kRawU32, IndexEncoding::kDeltaVarint, IndexEncoding::kBitmap}) {
    for (bool zstd : {false, true}) {
      const auto good = goodSparse(encoding, zstd);
      for (std::size_t n = 0; n < good.size(); ++n) {
        std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
        EXPECT_THROW(decodePayload(cut.data(), cut.size(), 64), PayloadError) << n;
        // Even with a repaired length and checksum the shorter body must fail.
        if (n >= kPayloadHeaderBytes + 4 && n < good.size()) {
          auto resealed = cut;
          poke<std::uint32_t>(resealed, 28,
                              static_cast<std::uint32_t>(n - kPayloadHeaderBytes - 4));
          resealPayload(resealed);
          EXPECT_THROW(decodePayload(resealed.data(), resealed.size(), 64), PayloadError) << n;
        }
      }
    }
  }
}

TEST(PayloadHostile, EveryByteFlipIsCaughtByTheChecksum) {
  const auto good = goodSparse(IndexEncoding::kDeltaVarint);
  for (std::size_t i = 8; i < good.size() - 4; ++i) {
    if (i >= 28 && i < 32) continue;  // body length: reported as size errors instead
    auto bad = good;
    bad[i] ^= 0x10;
    EXPECT_EQ(kindOf(bad, 64), PayloadErrorKind::kChecksum) << "byte " << i;
  }
}

struct HostileCase {
  const char* name;
  IndexEncoding encoding;
  void (*mutate)(std::vector<std::uint8_t>&);
  PayloadErrorKind expected;
  bool reseal = true;
};

const HostileCase kHostile[] = {
    {"bad magic", IndexEncoding::kRawU32, [](auto& b) { b[0] = 'X'; }, PayloadErrorKind::kBadMagic},
    {"future version", IndexEncoding::kRawU32, [](auto& b) { b[4] = 2; },
     PayloadErrorKind::kBadVersion},
    {"unknown codec", IndexEncoding::kRawU32, [](auto& b) { b[5] = 99; },
     PayloadErrorKind::kBadField},
    {"powersgd has no payload", IndexEncoding::kRawU32, [](auto& b) { b[5] = 7; },
     PayloadErrorKind::kBadField},
    {"unknown value type", IndexEncoding::kRawU32, [](auto& b) { b[6] = 9; },
     PayloadErrorKind::kBadField},
    {"reserved flag", IndexEncoding::kRawU32, [](auto& b) { b[7] |= 0x80; },
     PayloadErrorKind::kBadField},
    {"reserved bytes", IndexEncoding::kRawU32, [](auto& b) { b[26] = 1; },
     PayloadErrorKind::kBadField},
    {"numel differs from destination", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint64_t>(b, 8, 65); }, PayloadErrorKind::kSizeMismatch},
    {"huge numel", IndexEncoding::kRawU32, [](auto& b) { poke<std::uint64_t>(b, 8, 1ull << 40); },
     PayloadErrorKind::kBadField},
    {"count above numel", IndexEncoding::kRawU32, [](auto& b) { poke<std::uint64_t>(b, 16, 1000); },
     PayloadErrorKind::kCountMismatch},
    {"huge count", IndexEncoding::kRawU32, [](auto& b) { poke<std::uint64_t>(b, 16, ~0ull); },
     PayloadErrorKind::kCountMismatch},
    {"count larger than sections", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint64_t>(b, 16, 6); }, PayloadErrorKind::kCountMismatch},
    {"count smaller than sections", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint64_t>(b, 16, 4); }, PayloadErrorKind::kCountMismatch},
    {"too many scalars", IndexEncoding::kRawU32, [](auto& b) { b[24] = 200; },
     PayloadErrorKind::kBadField},
    {"dense with count != numel", IndexEncoding::kRawU32, [](auto& b) { b[7] = 0; },
     PayloadErrorKind::kCountMismatch},
    {"index out of range", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, kIndexStart + 16, 64); },
     PayloadErrorKind::kIndexOutOfRange},
    {"repeated index", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, kIndexStart + 8, 5); }, PayloadErrorKind::kIndexOrder},
    {"decreasing index", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, kIndexStart + 4, 0); }, PayloadErrorKind::kIndexOrder},
    {"zero varint gap", IndexEncoding::kDeltaVarint, [](auto& b) { b[kIndexStart + 1] = 0; },
     PayloadErrorKind::kIndexOrder},
    {"varint past numel", IndexEncoding::kDeltaVarint, [](auto& b) { b[kIndexStart + 4] = 60; },
     PayloadErrorKind::kIndexOutOfRange},
    {"varint overflow", IndexEncoding::kDeltaVarint,
     [](auto& b) {
       for (int i = 0; i < 4; ++i) b[kIndexStart + i] = 0xFF;
     },
     PayloadErrorKind::kBadField},
    {"bitmap bit past numel", IndexEncoding::kBitmap, [](auto& b) { b[kIndexStart + 7] |= 0x01; },
     PayloadErrorKind::kCountMismatch},
    {"index section length too long", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, kPayloadHeaderBytes, 1000); },
     PayloadErrorKind::kTruncated},
    {"index section length short", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, kPayloadHeaderBytes, 16); },
     PayloadErrorKind::kCountMismatch},
    {"NaN value", IndexEncoding::kRawU32,
     [](auto& b) { poke<float>(b, b.size() - 4 - 4, std::nanf("")); },
     PayloadErrorKind::kNonFinite},
    {"Inf value", IndexEncoding::kRawU32,
     [](auto& b) { poke<float>(b, b.size() - 4 - 8, std::numeric_limits<float>::infinity()); },
     PayloadErrorKind::kNonFinite},
    {"trailing bytes", IndexEncoding::kRawU32, [](auto& b) { b.push_back(0); },
     PayloadErrorKind::kSizeMismatch, false},
    {"body length beyond data", IndexEncoding::kRawU32,
     [](auto& b) { poke<std::uint32_t>(b, 28, 0xFFFFFF00u); }, PayloadErrorKind::kTruncated},
    {"zstd flag on raw body", IndexEncoding::kRawU32, [](auto& b) { b[7] |= 0x04; },
     PayloadErrorKind::kDecompress},
};

TEST(PayloadHostile, TableOfMalformedInputs) {
  for (const auto& c : kHostile) {
    auto bytes = goodSparse(c.encoding);
    c.mutate(bytes);
    if (c.reseal) resealPayload(bytes);
    EXPECT_EQ(kindOf(bytes, 64), c.expected) << c.name;
    std::vector<float> dense(64, 7.0f);
    EXPECT_THROW(decodeAccumulate(bytes.data(), bytes.size(), dense.data(), 64, 1.0f), PayloadError)
        << c.name;
    EXPECT_EQ(dense, std::vector<float>(64, 7.0f)) << c.name << ": destination was written";
  }
}

TEST(PayloadHostile, ZstdBombIsRefusedBeforeAllocation) {
  // A valid zstd frame that inflates to far more than the header allows.
  std::vector<float> one = {1.0f};
  std::vector<std::uint32_t> index = {3};
  PayloadContent c;
  c.codec = CodecId::kTopK;
  c.numel = 64;
  c.count = 1;
  c.indices = index.data();
  c.values = one.data();
  EncodeOptions options;
  options.zstd = true;
  options.indexEncoding = IndexEncoding::kRawU32;
  auto bytes = encodePayload(c, options);
  // Splice in the zstd frame of a 1 MiB dense payload's body.
  std::vector<std::uint8_t> frame;
  {
    PayloadContent big;
    std::vector<float> values(1 << 18, 0.0f);
    big.codec = CodecId::kNone;
    big.numel = values.size();
    big.count = values.size();
    big.dense = true;
    big.values = values.data();
    EncodeOptions z;
    z.zstd = true;
    const auto bigPayload = encodePayload(big, z);
    frame.assign(bigPayload.begin() + kPayloadHeaderBytes, bigPayload.end() - 4);
  }
  std::vector<std::uint8_t> hostile(bytes.begin(), bytes.begin() + kPayloadHeaderBytes);
  hostile[7] = static_cast<std::uint8_t>(IndexEncoding::kRawU32) | 0x04;
  poke<std::uint32_t>(hostile, 28, static_cast<std::uint32_t>(frame.size()));
  hostile.insert(hostile.end(), frame.begin(), frame.end());
  hostile.resize(hostile.size() + 4);
  resealPayload(hostile);
  EXPECT_EQ(kindOf(hostile, 64), PayloadErrorKind::kDecompress);
}

TEST(PayloadHostile, RandomGarbageNeverCrashes) {
  std::mt19937 rng(42);
  const auto good = goodSparse(IndexEncoding::kDeltaVarint, true);
  for (int trial = 0; trial < 20000; ++trial) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<std::uint8_t>(rng());
    if (trial % 2 == 0) resealPayload(bytes);
    try {
      const auto decoded = decodePayload(bytes.data(), bytes.size(), 64);
      for (auto i : decoded.indices) ASSERT_LT(i, 64u);
    } catch (const PayloadError&) {
    }
  }
}

}  // namespace
}  // namespace hearth::compress
