// CheckpointSet::reshard: the state of one rank of another world size, cut
// from the same global index space (policy in shard_checkpoint.h).
#include <stdexcept>

#include "shard_checkpoint_set_impl.h"

namespace hearth {

ShardState CheckpointSet::reshard(int newWorldSize, int newRank) const {
  ShardState state;
  try {
    state.layout = layout().withWorldSize(newWorldSize);
    state.layout.dataRange(newRank);  // validates newRank
  } catch (const std::invalid_argument& e) {
    throw ShardCheckpointError(dir() + ": cannot reshard to rank " + std::to_string(newRank) +
                               " of " + std::to_string(newWorldSize) + ": " + e.what());
  }
  state.rank = newRank;
  state.step = step();
  state.checkpointId = checkpointId();
  const FlatRange range = state.layout.dataRange(newRank);
  for (const std::string& name : impl_->sliceNames) state.slices[name] = readGlobal(name, range);

  // Blobs cannot be split: old rank newRank's when it existed, else rank 0's.
  const int source = newRank < worldSize() ? newRank : 0;
  const ckpt::ShardFile& blobs = impl_->shards[static_cast<std::size_t>(source)];
  for (const ckpt::SectionEntry& section : blobs.header.sections) {
    if (section.kind == ckpt::SectionKind::kBlob) {
      state.blobs[section.name] = ckpt::readBlob(blobs, section);
    }
  }
  state.meta = impl_->shards[0].header.meta;
  return state;
}

}  // namespace hearth
