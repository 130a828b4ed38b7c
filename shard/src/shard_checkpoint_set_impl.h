// shard_checkpoint_set_impl.h (internal) — CheckpointSet's state, shared by
// the files that implement its jobs (open/validate, reshard).
#pragma once

#include <string>
#include <vector>

#include "hearth/shard/shard_checkpoint.h"
#include "shard_checkpoint_manifest.h"
#include "shard_checkpoint_reader.h"

namespace hearth {

struct CheckpointSet::Impl {
  std::string dir;
  ckpt::Manifest manifest;
  std::vector<ckpt::ShardFile> shards;  // index = rank; headers validated
  std::vector<std::string> sliceNames;  // the same on every rank
};

}  // namespace hearth
