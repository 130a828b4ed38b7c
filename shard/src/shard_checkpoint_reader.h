// shard_checkpoint_reader.h (internal) — reads one .hsc file: the header is
// validated eagerly (readShardHeader), sections lazily and CRC-checked. Every
// error is a ShardCheckpointError whose what() starts with the file's path.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/shard/shard_checkpoint.h"
#include "shard_checkpoint_format.h"

namespace hearth::ckpt {

struct ShardFile {
  std::string path;
  std::uint64_t fileSize = 0;
  std::uint64_t dataStart = 0;  // absolute offset of the data region
  ShardHeader header;
};

ShardFile readShardHeader(const std::string& path);

// The section's bytes, re-checking that the file is the one whose header was
// read (same size) and the section's CRC32C.
at::Tensor readSlice(const ShardFile& file, const SectionEntry& section);
std::vector<std::uint8_t> readBlob(const ShardFile& file, const SectionEntry& section);

// Every section.
ShardState readShardState(const ShardFile& file);

}  // namespace hearth::ckpt
