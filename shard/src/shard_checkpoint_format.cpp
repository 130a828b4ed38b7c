// The .hsc byte format: encoding and validating decoding (see
// shard_checkpoint_format.h and docs/checkpoints.md).
#include "shard_checkpoint_format.h"

#include <cstring>
#include <set>
#include <utility>

#include "hearth/compress/payload.h"

namespace hearth::ckpt {
namespace {

constexpr char kMagic[8] = {'H', 'R', 'T', 'H', 'S', 'H', 'R', 'D'};
constexpr char kEndMagic[8] = {'H', 'R', 'T', 'H', 'E', 'N', 'D', '1'};
constexpr const char* kFormatName = "hearth-shard-checkpoint";
// Bounds that keep every size computation far from overflow.
constexpr std::uint64_t kMaxWorldSize = std::uint64_t(1) << 20;
constexpr std::uint64_t kMaxElements = std::uint64_t(1) << 56;

const char* kindName(SectionKind kind) {
  return kind == SectionKind::kSlice ? "slice" : "blob";
}

const nlohmann::json& field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw FormatError(std::string("header has no '") + key + "' field");
  return *it;
}

std::uint64_t unsignedField(const nlohmann::json& object, const char* key, std::uint64_t max) {
  const nlohmann::json& value = field(object, key);
  if (!value.is_number_unsigned()) {
    throw FormatError(std::string("header field '") + key + "' is not an unsigned integer");
  }
  const auto number = value.get<std::uint64_t>();
  if (number > max) {
    throw FormatError(std::string("header field '") + key + "' = " + std::to_string(number) +
                      " is out of range (max " + std::to_string(max) + ")");
  }
  return number;
}

std::string stringField(const nlohmann::json& object, const char* key) {
  const nlohmann::json& value = field(object, key);
  if (!value.is_string())
    throw FormatError(std::string("header field '") + key + "' is not a string");
  return value.get<std::string>();
}

// FlatLayout::fromJson trusts products of dimensions; recheck them without
// overflow so that later allocations stay bounded.
void checkLayoutSizes(const nlohmann::json& layoutJson) {
  const nlohmann::json& params = field(layoutJson, "parameters");
  if (!params.is_array()) throw FormatError("layout 'parameters' is not an array");
  std::uint64_t total = 0;
  for (const auto& p : params) {
    if (!p.is_object() || !p.contains("shape") || !p["shape"].is_array()) {
      throw FormatError("layout parameter without a shape array");
    }
    std::uint64_t numel = 1;
    for (const auto& dim : p["shape"]) {
      if (!dim.is_number_integer() || dim.get<std::int64_t>() < 0) {
        throw FormatError("layout shape has a non-integer or negative dimension");
      }
      const auto d = static_cast<std::uint64_t>(dim.get<std::int64_t>());
      if (d != 0 && numel > kMaxElements / d) throw FormatError("layout parameter is too large");
      numel *= d;
    }
    total += numel;
    if (total > kMaxElements) throw FormatError("layout is too large");
  }
}

}  // namespace

void putU32(std::uint8_t* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

void putU64(std::uint8_t* out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

std::uint32_t getU32(const std::uint8_t* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<std::uint32_t>(in[i]) << (8 * i);
  return value;
}

std::uint64_t getU64(const std::uint8_t* in) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return value;
}

std::uint64_t alignUp(std::uint64_t value) {
  return (value + kSectionAlign - 1) / kSectionAlign * kSectionAlign;
}

std::uint64_t dataStart(std::uint64_t headerLength) {
  return alignUp(kPreambleSize + headerLength);
}

void assignOffsets(ShardHeader& header) {
  std::uint64_t offset = 0;
  for (SectionEntry& section : header.sections) {
    section.offset = offset;
    offset += alignUp(section.bytes);
  }
  header.dataBytes = offset;
}

std::string encodeHeaderJson(const ShardHeader& header) {
  nlohmann::json sections = nlohmann::json::array();
  for (const SectionEntry& s : header.sections) {
    sections.push_back({{"kind", kindName(s.kind)},
                        {"name", s.name},
                        {"dtype", s.kind == SectionKind::kSlice ? "float32" : "uint8"},
                        {"numel", s.numel},
                        {"bytes", s.bytes},
                        {"offset", s.offset},
                        {"crc32c", s.crc}});
  }
  const nlohmann::json json = {{"format", kFormatName}, {"layout", header.layout.toJson()},
                               {"rank", header.rank},   {"world_size", header.layout.worldSize()},
                               {"step", header.step},   {"checkpoint_id", header.checkpointId},
                               {"meta", header.meta},   {"data_bytes", header.dataBytes},
                               {"sections", sections}};
  return json.dump();
}

std::vector<std::uint8_t> encodePrefix(const std::string& headerJson) {
  std::vector<std::uint8_t> bytes(dataStart(headerJson.size()), 0);
  std::memcpy(bytes.data(), kMagic, sizeof(kMagic));
  putU32(bytes.data() + 8, kFormatVersion);
  putU32(bytes.data() + 12, static_cast<std::uint32_t>(headerJson.size()));
  const auto* text = reinterpret_cast<const std::uint8_t*>(headerJson.data());
  putU32(bytes.data() + 16, compress::crc32c(text, headerJson.size()));
  std::memcpy(bytes.data() + kPreambleSize, headerJson.data(), headerJson.size());
  return bytes;
}

std::vector<std::uint8_t> encodeTrailer(std::uint64_t fileSize, std::uint32_t headerCrc) {
  std::vector<std::uint8_t> bytes(kTrailerSize, 0);
  std::memcpy(bytes.data(), kEndMagic, sizeof(kEndMagic));
  putU64(bytes.data() + 8, fileSize);
  putU32(bytes.data() + 16, headerCrc);
  return bytes;
}

Preamble decodePreamble(const std::uint8_t* bytes, std::uint64_t fileSize) {
  if (std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0) {
    throw FormatError("not a hearth shard checkpoint (bad magic)");
  }
  const std::uint32_t version = getU32(bytes + 8);
  if (version != kFormatVersion) {
    throw FormatError("unsupported format version " + std::to_string(version) +
                      " (this build reads " + std::to_string(kFormatVersion) + ")");
  }
  Preamble preamble;
  preamble.headerLength = getU32(bytes + 12);
  preamble.headerCrc = getU32(bytes + 16);
  if (getU32(bytes + 20) != 0) throw FormatError("reserved preamble field is not zero");
  if (preamble.headerLength == 0 || preamble.headerLength > kMaxHeaderBytes ||
      dataStart(preamble.headerLength) + kTrailerSize > fileSize) {
    throw FormatError("header length " + std::to_string(preamble.headerLength) +
                      " does not fit in a file of " + std::to_string(fileSize) +
                      " bytes (truncated?)");
  }
  return preamble;
}

void checkTrailer(const std::uint8_t* bytes, std::uint64_t fileSize, const Preamble& preamble) {
  if (std::memcmp(bytes, kEndMagic, sizeof(kEndMagic)) != 0) {
    throw FormatError("no trailer at the end of the file (truncated or incompletely written)");
  }
  const std::uint64_t recorded = getU64(bytes + 8);
  if (recorded != fileSize) {
    throw FormatError("trailer records " + std::to_string(recorded) + " bytes but the file has " +
                      std::to_string(fileSize) + " (truncated or extended)");
  }
  if (getU32(bytes + 16) != preamble.headerCrc || getU32(bytes + 20) != 0) {
    throw FormatError("trailer does not match the preamble");
  }
}

ShardHeader decodeHeader(const std::uint8_t* json, std::size_t size, const Preamble& preamble,
                         std::uint64_t fileSize) {
  if (compress::crc32c(json, size) != preamble.headerCrc) {
    throw FormatError("header CRC32C mismatch (corrupted header)");
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json, json + size);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("header is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw FormatError("header is not a JSON object");
  if (stringField(doc, "format") != kFormatName) throw FormatError("header 'format' is wrong");

  ShardHeader header;
  const nlohmann::json& layoutJson = field(doc, "layout");
  if (!layoutJson.is_object()) throw FormatError("header 'layout' is not an object");
  checkLayoutSizes(layoutJson);
  const std::uint64_t worldSize = unsignedField(doc, "world_size", kMaxWorldSize);
  if (worldSize == 0 || unsignedField(layoutJson, "world_size", kMaxWorldSize) != worldSize) {
    throw FormatError("header 'world_size' does not match its layout");
  }
  // world x align bounds the padding; keep it far from overflow (and from 0).
  const std::uint64_t align = unsignedField(layoutJson, "align", kMaxElements / worldSize);
  if (align == 0) throw FormatError("layout 'align' is zero");
  try {
    header.layout = FlatLayout::fromJson(layoutJson);
  } catch (const std::invalid_argument& e) {
    throw FormatError(e.what());
  }
  header.rank = static_cast<int>(unsignedField(doc, "rank", worldSize - 1));
  const nlohmann::json& step = field(doc, "step");
  if (!step.is_number_integer()) throw FormatError("header field 'step' is not an integer");
  header.step = step.get<std::int64_t>();
  header.checkpointId = unsignedField(doc, "checkpoint_id", ~std::uint64_t(0));
  header.meta = field(doc, "meta");
  header.dataBytes = unsignedField(doc, "data_bytes", fileSize);
  if (dataStart(size) + header.dataBytes + kTrailerSize != fileSize) {
    throw FormatError("header says the file has " +
                      std::to_string(dataStart(size) + header.dataBytes + kTrailerSize) +
                      " bytes but it has " + std::to_string(fileSize));
  }

  const nlohmann::json& sections = field(doc, "sections");
  if (!sections.is_array()) throw FormatError("header 'sections' is not an array");
  const std::uint64_t sliceNumel = header.layout.dataRange(header.rank).size();
  std::set<std::pair<int, std::string>> seen;
  std::uint64_t expectedOffset = 0;
  for (const auto& s : sections) {
    if (!s.is_object()) throw FormatError("section table entry is not an object");
    SectionEntry entry;
    const std::string kind = stringField(s, "kind");
    if (kind == "slice") {
      entry.kind = SectionKind::kSlice;
    } else if (kind == "blob") {
      entry.kind = SectionKind::kBlob;
    } else {
      throw FormatError("section kind '" + kind + "' is unknown");
    }
    entry.name = stringField(s, "name");
    if (entry.name.empty()) throw FormatError("section with an empty name");
    const std::string where = std::string(kindName(entry.kind)) + " '" + entry.name + "'";
    const std::string dtype = stringField(s, "dtype");
    entry.numel = unsignedField(s, "numel", fileSize);
    entry.bytes = unsignedField(s, "bytes", fileSize);
    entry.offset = unsignedField(s, "offset", fileSize);
    entry.crc = static_cast<std::uint32_t>(unsignedField(s, "crc32c", 0xFFFFFFFFu));
    if (entry.kind == SectionKind::kSlice) {
      if (dtype != "float32") throw FormatError(where + " has dtype '" + dtype + "', not float32");
      if (entry.numel != sliceNumel) {
        throw FormatError(where + " has " + std::to_string(entry.numel) + " elements; rank " +
                          std::to_string(header.rank) + " of the layout owns " +
                          std::to_string(sliceNumel));
      }
      if (entry.bytes != entry.numel * 4) throw FormatError(where + " byte size is not numel * 4");
    } else {
      if (dtype != "uint8") throw FormatError(where + " has dtype '" + dtype + "', not uint8");
      if (entry.bytes != entry.numel) throw FormatError(where + " byte size is not numel");
    }
    if (entry.offset != expectedOffset || entry.offset + entry.bytes > header.dataBytes) {
      throw FormatError(where + " offset " + std::to_string(entry.offset) + " is not where it " +
                        "belongs (" + std::to_string(expectedOffset) + ") or overruns the data");
    }
    expectedOffset += alignUp(entry.bytes);
    if (!seen.emplace(static_cast<int>(entry.kind), entry.name).second) {
      throw FormatError(where + " appears twice");
    }
    header.sections.push_back(std::move(entry));
  }
  if (expectedOffset != header.dataBytes) {
    throw FormatError("sections cover " + std::to_string(expectedOffset) + " bytes but " +
                      "'data_bytes' is " + std::to_string(header.dataBytes));
  }
  return header;
}

const SectionEntry* findSection(const ShardHeader& header, SectionKind kind,
                                const std::string& name) {
  for (const SectionEntry& s : header.sections) {
    if (s.kind == kind && s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace hearth::ckpt
