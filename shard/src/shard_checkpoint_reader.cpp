// Reading one .hsc file: header validation and CRC-checked sections (see
// shard_checkpoint_reader.h).
#include "shard_checkpoint_reader.h"

#include "hearth/compress/payload.h"
#include "shard_checkpoint_file.h"

namespace hearth::ckpt {
namespace {

// Padding carries no data but must be zero: a flipped bit there is still
// corruption.
void checkZeroPadding(const ReadOnlyFile& in, std::uint64_t offset, std::uint64_t size) {
  std::uint8_t pad[kSectionAlign] = {};
  in.readAt(offset, pad, static_cast<std::size_t>(size));
  for (std::uint64_t i = 0; i < size; ++i) {
    if (pad[i] != 0) {
      throw ShardCheckpointError(in.path() + ": nonzero padding at byte " +
                                 std::to_string(offset + i) + " (corrupted)");
    }
  }
}

// Reads a section's bytes into out (section.bytes long) and checks its CRC.
void readSection(const ShardFile& file, const SectionEntry& section, void* out) {
  ReadOnlyFile in(file.path);
  if (in.size() != file.fileSize) {
    throw ShardCheckpointError(file.path + ": file changed since its header was read (" +
                               std::to_string(file.fileSize) + " -> " + std::to_string(in.size()) +
                               " bytes)");
  }
  in.readAt(file.dataStart + section.offset, out, static_cast<std::size_t>(section.bytes));
  checkZeroPadding(in, file.dataStart + section.offset + section.bytes,
                   alignUp(section.bytes) - section.bytes);
  const std::uint32_t crc = compress::crc32c(static_cast<const std::uint8_t*>(out),
                                             static_cast<std::size_t>(section.bytes));
  if (crc != section.crc) {
    throw ShardCheckpointError(file.path + ": CRC32C mismatch in " +
                               (section.kind == SectionKind::kSlice ? "slice '" : "blob '") +
                               section.name + "' (corrupted data)");
  }
}

}  // namespace

ShardFile readShardHeader(const std::string& path) {
  ReadOnlyFile in(path);
  ShardFile file;
  file.path = path;
  file.fileSize = in.size();
  try {
    if (file.fileSize < kPreambleSize + kTrailerSize) {
      throw FormatError("only " + std::to_string(file.fileSize) +
                        " bytes, smaller than any shard file (truncated)");
    }
    std::uint8_t preambleBytes[kPreambleSize];
    in.readAt(0, preambleBytes, kPreambleSize);
    const Preamble preamble = decodePreamble(preambleBytes, file.fileSize);
    std::uint8_t trailerBytes[kTrailerSize];
    in.readAt(file.fileSize - kTrailerSize, trailerBytes, kTrailerSize);
    checkTrailer(trailerBytes, file.fileSize, preamble);
    // Bounded: decodePreamble checked the length against the file size.
    std::vector<std::uint8_t> json(preamble.headerLength);
    in.readAt(kPreambleSize, json.data(), json.size());
    file.header = decodeHeader(json.data(), json.size(), preamble, file.fileSize);
    file.dataStart = dataStart(preamble.headerLength);
    checkZeroPadding(in, kPreambleSize + preamble.headerLength,
                     file.dataStart - kPreambleSize - preamble.headerLength);
  } catch (const FormatError& e) {
    throw ShardCheckpointError(path + ": " + e.what());
  }
  return file;
}

at::Tensor readSlice(const ShardFile& file, const SectionEntry& section) {
  at::Tensor out = at::empty({static_cast<std::int64_t>(section.numel)}, at::kFloat);
  readSection(file, section, out.data_ptr<float>());
  return out;
}

std::vector<std::uint8_t> readBlob(const ShardFile& file, const SectionEntry& section) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(section.bytes));
  readSection(file, section, out.data());
  return out;
}

ShardState readShardState(const ShardFile& file) {
  ShardState state;
  state.layout = file.header.layout;
  state.rank = file.header.rank;
  state.step = file.header.step;
  state.checkpointId = file.header.checkpointId;
  state.meta = file.header.meta;
  for (const SectionEntry& section : file.header.sections) {
    if (section.kind == SectionKind::kSlice) {
      state.slices[section.name] = readSlice(file, section);
    } else {
      state.blobs[section.name] = readBlob(file, section);
    }
  }
  return state;
}

}  // namespace hearth::ckpt

namespace hearth {

ShardState loadShard(const std::string& path) {
  return ckpt::readShardState(ckpt::readShardHeader(path));
}

}  // namespace hearth
