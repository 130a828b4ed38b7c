// hearth/shard/shard_checkpoint.h — sharded checkpoints for ZeRO: every rank
// saves its slice of the global flat index space (flat_layout.h) to its own
// file, rank 0 writes a manifest, and a CheckpointSet reads them back at the
// same or another world size, or consolidates them into one LibTorch file.
//
// Contract (file format and policies in docs/checkpoints.md):
// - A checkpoint is a directory: shard-<rank>-of-<world>.hsc for every rank
//   plus manifest.json. Every file is written atomically (temp file in the
//   same directory, fsync, rename, fsync of the directory): a reader sees the
//   old file or the new one, never a partial one. A failed write throws
//   ShardCheckpointError naming the path and the errno text, and removes its
//   temp file; the file it would have replaced is untouched.
// - Slices are fp32, 1-D, exactly layout.dataRange(rank).size() elements
//   (padding is never stored). Blobs are opaque per-rank bytes.
// - Readers validate everything before trusting it (magic, version, CRC32C of
//   the header and of every section, sizes against the file size, the header
//   against the manifest) and never allocate more than the file can hold.
//   Every error is a ShardCheckpointError whose what() names the file.
// - Resharding policy: slices are re-cut from the global index space; blobs
//   cannot be split, so the new rank r takes old rank r's blobs when r < old
//   world size, else old rank 0's; meta comes from old rank 0.
// Thread safety: CheckpointSet is immutable after construction; concurrent
// reads are safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/shard/flat_layout.h"

namespace hearth {

class ShardCheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ShardState {
  FlatLayout layout;  // the writer's layout, including its world size
  int rank = 0;
  std::int64_t step = 0;
  std::uint64_t checkpointId = 0;
  // fp32, 1-D, each exactly layout.dataRange(rank).size() elements, e.g.
  // "param", "optim.exp_avg", "optim.exp_avg_sq", "compress.u".
  std::map<std::string, at::Tensor> slices;
  // Per-rank opaque bytes: RNG state, codec state.
  std::map<std::string, std::vector<std::uint8_t>> blobs;
  // Optimizer type/options/scalar state, codec name, ... (any JSON).
  nlohmann::json meta = nlohmann::json::object();
};

// "shard-<rank>-of-<world>.hsc" and "manifest.json".
std::string shardFileName(int rank, int worldSize);
inline constexpr const char* kShardManifestName = "manifest.json";

// Writes dir/shard-<rank>-of-<world>.hsc atomically (creates dir if needed).
// Throws ShardCheckpointError for an invalid state (slice of the wrong size or
// dtype, rank outside the layout's world) or any I/O error.
void saveShard(const std::string& dir, const ShardState& state);

// Rank 0, after a barrier that follows every rank's saveShard: writes
// dir/manifest.json atomically. The manifest is what makes the directory a
// checkpoint; write it last.
void writeManifest(const std::string& dir, int worldSize, std::int64_t step,
                   std::uint64_t checkpointId);

// Reads and fully validates one shard file (every section's CRC).
ShardState loadShard(const std::string& path);

class CheckpointSet {
 public:
  // Reads dir/manifest.json, then the header of every *.hsc file in dir:
  // ranks 0..W-1 exactly once, each consistent with the manifest (checkpoint
  // id, step, world size) and with rank 0's layout and slice names. Section
  // data is read (and CRC-checked) only when asked for.
  explicit CheckpointSet(const std::string& dir);

  const std::string& dir() const;
  int worldSize() const;
  std::int64_t step() const;
  std::uint64_t checkpointId() const;
  const FlatLayout& layout() const;  // the writers' layout (world size W)
  std::vector<std::string> sliceNames() const;
  std::string shardPath(int rank) const;

  // All of old rank `rank`'s state (like loadShard on its file).
  ShardState loadRank(int rank) const;
  // Elements [range.lo, range.hi) of the global vector of slice `name`,
  // read only from the shards that overlap it. REQUIRES range.hi <= numel().
  at::Tensor readGlobal(const std::string& name, FlatRange range) const;
  // The state of newRank under layout().withWorldSize(newWorldSize); see the
  // resharding policy above.
  ShardState reshard(int newWorldSize, int newRank) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Writes one ordinary LibTorch archive (torch::serialize::OutputArchive) with
// every parameter of the layout, from the "param" slices, as a tensor of its
// original shape. A dotted name "a.b.weight" is stored as nested archives
// a -> b -> weight, the way torch::nn::Module::save does, so torch::load(module,
// path) fills a module whose named_parameters() carry those names (and has no
// buffers or parameterless serializable children; otherwise read the archive
// with readConsolidated). Written atomically.
void consolidate(const CheckpointSet& set, const std::string& outputPath);

// Every tensor of a LibTorch archive keyed by its dotted path (the inverse of
// consolidate's nesting). Throws ShardCheckpointError naming the file.
std::map<std::string, at::Tensor> readConsolidated(const std::string& path);

}  // namespace hearth
