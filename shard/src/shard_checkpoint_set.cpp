// CheckpointSet: opening a checkpoint directory (manifest + every shard
// header, cross-validated) and reading global ranges of its slices.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "shard_checkpoint_set_impl.h"

namespace hearth {
namespace {

// "shard-<rank>-of-<world>.hsc" with decimal numbers; false otherwise.
bool parseShardName(const std::string& name, long long& rank, long long& world) {
  int consumed = 0;
  if (std::sscanf(name.c_str(), "shard-%lld-of-%lld.hsc%n", &rank, &world, &consumed) != 2) {
    return false;
  }
  return static_cast<std::size_t>(consumed) == name.size();
}

std::set<std::string> sliceNamesOf(const ckpt::ShardHeader& header) {
  std::set<std::string> names;
  for (const auto& s : header.sections) {
    if (s.kind == ckpt::SectionKind::kSlice) names.insert(s.name);
  }
  return names;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return "{" + out + "}";
}

}  // namespace

CheckpointSet::CheckpointSet(const std::string& dir) {
  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->manifest = ckpt::readManifest(dir);
  const ckpt::Manifest& manifest = impl->manifest;
  const int world = manifest.worldSize;

  std::vector<std::string> paths;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".hsc") == 0) {
      paths.push_back(it->path().string());
    }
  }
  if (error) throw ShardCheckpointError(dir + ": cannot list the directory: " + error.message());
  std::sort(paths.begin(), paths.end());

  impl->shards.resize(static_cast<std::size_t>(world));
  std::vector<bool> found(static_cast<std::size_t>(world), false);
  for (const std::string& path : paths) {
    ckpt::ShardFile file = ckpt::readShardHeader(path);
    const ckpt::ShardHeader& h = file.header;
    auto bad = [&](const std::string& why) { return ShardCheckpointError(path + ": " + why); };
    if (h.checkpointId != manifest.checkpointId) {
      throw bad("mixed-up shard from another checkpoint (checkpoint id " +
                std::to_string(h.checkpointId) + ", the manifest says " +
                std::to_string(manifest.checkpointId) + ")");
    }
    if (h.step != manifest.step) {
      throw bad("shard from another step (" + std::to_string(h.step) + ", the manifest says " +
                std::to_string(manifest.step) + ")");
    }
    if (h.layout.worldSize() != world) {
      throw bad("extra shard from a world of " + std::to_string(h.layout.worldSize()) +
                " (the manifest says " + std::to_string(world) + ")");
    }
    long long nameRank = -1;
    long long nameWorld = -1;
    if (!parseShardName(std::filesystem::path(path).filename().string(), nameRank, nameWorld) ||
        nameRank != h.rank || nameWorld != world) {
      throw bad("extra file: it holds rank " + std::to_string(h.rank) + " of " +
                std::to_string(world) + ", which belongs in " + shardFileName(h.rank, world));
    }
    const auto rank = static_cast<std::size_t>(h.rank);
    if (found[rank]) {
      throw bad("duplicate rank " + std::to_string(h.rank) + " (also in " +
                impl->shards[rank].path + ")");
    }
    found[rank] = true;
    impl->shards[rank] = std::move(file);
  }
  for (int r = 0; r < world; ++r) {
    if (!found[static_cast<std::size_t>(r)]) {
      throw ShardCheckpointError(dir + "/" + shardFileName(r, world) + ": missing rank " +
                                 std::to_string(r) + " of " + std::to_string(world));
    }
  }

  const ckpt::ShardHeader& first = impl->shards[0].header;
  const std::set<std::string> names = sliceNamesOf(first);
  for (int r = 1; r < world; ++r) {
    const ckpt::ShardFile& file = impl->shards[static_cast<std::size_t>(r)];
    if (!file.header.layout.sameParameters(first.layout) ||
        file.header.layout.alignElements() != first.layout.alignElements()) {
      throw ShardCheckpointError(file.path + ": layout mismatch: its parameters or alignment " +
                                 "differ from those in " + impl->shards[0].path);
    }
    const std::set<std::string> theirs = sliceNamesOf(file.header);
    if (theirs != names) {
      throw ShardCheckpointError(file.path + ": slices " + joined(theirs) + " differ from " +
                                 joined(names) + " in " + impl->shards[0].path);
    }
  }
  impl->sliceNames.assign(names.begin(), names.end());
  impl_ = std::move(impl);
}

const std::string& CheckpointSet::dir() const {
  return impl_->dir;
}
int CheckpointSet::worldSize() const {
  return impl_->manifest.worldSize;
}
std::int64_t CheckpointSet::step() const {
  return impl_->manifest.step;
}
std::uint64_t CheckpointSet::checkpointId() const {
  return impl_->manifest.checkpointId;
}
const FlatLayout& CheckpointSet::layout() const {
  return impl_->shards[0].header.layout;
}
std::vector<std::string> CheckpointSet::sliceNames() const {
  return impl_->sliceNames;
}

std::string CheckpointSet::shardPath(int rank) const {
  if (rank < 0 || rank >= worldSize()) {
    throw ShardCheckpointError(dir() + ": no rank " + std::to_string(rank) + " in a world of " +
                               std::to_string(worldSize()));
  }
  return impl_->shards[static_cast<std::size_t>(rank)].path;
}

ShardState CheckpointSet::loadRank(int rank) const {
  shardPath(rank);  // range check
  return ckpt::readShardState(impl_->shards[static_cast<std::size_t>(rank)]);
}

at::Tensor CheckpointSet::readGlobal(const std::string& name, FlatRange range) const {
  if (!std::binary_search(impl_->sliceNames.begin(), impl_->sliceNames.end(), name)) {
    throw ShardCheckpointError(dir() + ": the checkpoint has no slice '" + name + "'");
  }
  if (range.hi < range.lo || range.hi > layout().numel()) {
    throw ShardCheckpointError(dir() + ": range [" + std::to_string(range.lo) + ", " +
                               std::to_string(range.hi) + ") is outside the " +
                               std::to_string(layout().numel()) + " elements of '" + name + "'");
  }
  at::Tensor out = at::empty({static_cast<std::int64_t>(range.size())}, at::kFloat);
  for (int r = 0; r < worldSize(); ++r) {
    const ckpt::ShardFile& file = impl_->shards[static_cast<std::size_t>(r)];
    const FlatRange owned = file.header.layout.dataRange(r);
    const FlatRange overlap = owned.intersect(range);
    if (overlap.empty()) continue;
    const at::Tensor slice =
        ckpt::readSlice(file, *ckpt::findSection(file.header, ckpt::SectionKind::kSlice, name));
    std::memcpy(out.data_ptr<float>() + (overlap.lo - range.lo),
                slice.data_ptr<float>() + (overlap.lo - owned.lo), overlap.size() * sizeof(float));
  }
  return out;
}

}  // namespace hearth
