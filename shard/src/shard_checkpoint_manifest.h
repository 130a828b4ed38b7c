// shard_checkpoint_manifest.h (internal) — manifest.json: the file rank 0
// writes last, which turns a directory of shard files into a checkpoint.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::ckpt {

struct Manifest {
  int worldSize = 0;
  std::int64_t step = 0;
  std::uint64_t checkpointId = 0;
};

// Reads and validates dir/manifest.json; throws ShardCheckpointError naming
// the manifest's path (missing, too large, malformed, a field out of range).
Manifest readManifest(const std::string& dir);

}  // namespace hearth::ckpt
