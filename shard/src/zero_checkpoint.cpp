// ZeroEngine::saveCheckpoint / loadCheckpoint: every rank's shard of every
// parameter group (parameters, optimizer state, RNG) as sharded checkpoint
// files (shard_checkpoint.h), one checkpoint directory per group, resharded to
// the loading world size (zero.h, docs/checkpoints.md "ZeRO checkpoints").
//
// Failure policy: each rank validates (load) or writes (save) on its own, then
// every rank learns every other rank's outcome through one allgather, so all
// ranks throw together instead of leaving peers blocked in a collective. A
// load modifies nothing until every rank has read and checked everything it
// needs.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/optim/optimizer.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>

#include "codec_state.h"
#include "hearth/shard/shard_checkpoint.h"
#include "optimizer_state_slices.h"
#include "zero_impl.h"

namespace hearth {

using shard_detail::FlatGroup;

namespace {

namespace fs = std::filesystem;

constexpr const char* kParamSlice = "param";
constexpr const char* kOptimPrefix = "optim.";
constexpr const char* kRngBlob = "rng";
constexpr const char* kCodecBlob = "codec";
constexpr const char* kFormat = "hearth.zero/1";

std::string groupDir(const std::string& dir, std::size_t group) {
  return (fs::path(dir) / ("group-" + std::to_string(group))).string();
}

at::Tensor cpuRngState() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

std::vector<std::uint8_t> rngBytes() {
  const at::Tensor state = cpuRngState().contiguous();
  const auto* data = state.data_ptr<std::uint8_t>();
  return std::vector<std::uint8_t>(data, data + state.numel());
}

void restoreRng(const at::Tensor& state) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

std::uint64_t drawCheckpointId() {
  std::random_device device;
  std::uint64_t id = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  id ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return id == 0 ? 1 : id;
}

// The first `count` elements of `t`, as a contiguous fp32 copy.
at::Tensor head(const at::Tensor& t, std::size_t count) {
  return t.detach().reshape({-1}).narrow(0, 0, static_cast<std::int64_t>(count)).clone();
}

// `data` (the data part of a shard) zero-padded to `shardNumel` elements.
at::Tensor padded(const at::Tensor& data, std::size_t shardNumel) {
  at::Tensor out = at::zeros({static_cast<std::int64_t>(shardNumel)}, at::kFloat);
  out.narrow(0, 0, data.numel()).copy_(data);
  return out;
}

// Rank 0, once every rank's shard is on disk and before the manifest: shard
// files of another world size (an older checkpoint saved into the same
// directory) would make the new checkpoint unreadable; they go.
void removeStaleShards(const std::string& dir, int world) {
  std::error_code error;
  std::vector<fs::path> stale;
  const std::string keepSuffix = "-of-" + std::to_string(world) + ".hsc";
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const bool shardFile = name.rfind("shard-", 0) == 0 && name.size() > 4 &&
                           name.compare(name.size() - 4, 4, ".hsc") == 0;
    const bool ours =
        name.size() >= keepSuffix.size() &&
        name.compare(name.size() - keepSuffix.size(), keepSuffix.size(), keepSuffix) == 0;
    if (shardFile && !ours) stale.push_back(it->path());
  }
  if (error) throw ShardCheckpointError(dir + ": cannot list the directory: " + error.message());
  for (const fs::path& path : stale) {
    if (!fs::remove(path, error) && error) {
      throw ShardCheckpointError(path.string() +
                                 ": cannot remove a stale shard file: " + error.message());
    }
  }
}

// Collective: every rank passes its error text ("" when it succeeded). When
// any rank failed, every rank throws: its own exception if it has one, else a
// ShardCheckpointError quoting the first failed rank (whose text names the
// file). A failing collective poisons the engine.
void agreeOrThrow(ZeroEngine::Impl& impl, const std::string& what, std::exception_ptr mine,
                  const std::string& mineText) {
  const std::vector<std::uint8_t> bytes(mineText.begin(), mineText.end());
  std::vector<std::vector<std::uint8_t>> all;
  try {
    impl.queue_
        .submit([&impl, &bytes, &all] {
          all = impl.comm_->allgatherBytes(bytes, impl.options_.timeout);
        })
        .get();
  } catch (...) {
    impl.fail(std::current_exception());
    throw;
  }
  if (mine) std::rethrow_exception(mine);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    throw ShardCheckpointError("hearth ZeRO " + what + ": rank " + std::to_string(r) +
                               " failed: " + std::string(all[r].begin(), all[r].end()));
  }
}

// Runs `body` and reports its exception (if any) through agreeOrThrow.
template <typename Body>
void collectively(ZeroEngine::Impl& impl, const std::string& what, Body&& body) {
  std::exception_ptr mine;
  std::string text;
  try {
    body();
  } catch (const std::exception& e) {
    mine = std::current_exception();
    text = e.what();
    if (text.empty()) text = "unknown error";
  } catch (...) {
    mine = std::current_exception();
    text = "unknown error";
  }
  agreeOrThrow(impl, what, mine, text);
}

// What a load prepares for one group before anything is modified.
struct PreparedGroup {
  at::Tensor param;  // [shardNumel], padding zero
  std::unique_ptr<torch::optim::OptimizerParamState> state;
};

// DGC's state for this rank: its own when the world size is unchanged, else
// the mean over the old ranks (codec_state.h). A checkpoint saved without
// codec state (another codec) leaves the fresh state: nullopt.
std::optional<std::vector<shard_detail::BucketCodecState>> readCodecState(ZeroEngine::Impl& impl,
                                                                          const CheckpointSet& set,
                                                                          const ShardState& mine) {
  auto decode = [&](const ShardState& state,
                    int oldRank) -> std::optional<std::vector<shard_detail::BucketCodecState>> {
    auto blob = state.blobs.find(kCodecBlob);
    if (blob == state.blobs.end()) return std::nullopt;
    try {
      return shard_detail::decodeCodecState(blob->second, impl.sparsifiers_);
    } catch (const std::invalid_argument& e) {
      throw ShardCheckpointError(set.shardPath(oldRank) + ": " + e.what());
    }
  };
  if (set.worldSize() == impl.world_) return decode(mine, impl.rank_);
  std::optional<std::vector<shard_detail::BucketCodecState>> sum;
  for (int r = 0; r < set.worldSize(); ++r) {
    auto state = decode(set.loadRank(r), r);
    if (!state) return std::nullopt;
    if (!sum) {
      sum = std::move(state);
    } else {
      shard_detail::accumulateCodecState(*sum, *state);
    }
  }
  shard_detail::scaleCodecState(*sum, 1.0f / static_cast<float>(impl.world_));
  return sum;
}

}  // namespace

void ZeroEngine::saveCheckpoint(const std::string& dir, std::int64_t step) {
  Impl& impl = *impl_;
  impl.throwIfFailed();
  if (impl.micro_ != 0) {
    throw std::logic_error(
        "hearth ZeRO: saveCheckpoint inside a gradient accumulation window (" +
        std::to_string(impl.micro_) + " of " +
        std::to_string(impl.options_.gradientAccumulationSteps) +
        " micro-batches done); accumulated gradients are not saved, call it after step()");
  }
  const std::string kind = shard_detail::optimizerKind(impl.optimizer_);
  if (kind.empty()) {
    throw std::invalid_argument(
        "hearth ZeRO: saveCheckpoint: the optimizer's type is not supported (supported: " +
        shard_detail::supportedOptimizerKinds() + ")");
  }
  impl.waitInFlight();
  const std::size_t groupCount = impl.groups_.size();

  std::uint64_t id = impl.rank_ == 0 ? drawCheckpointId() : 0;
  try {
    impl.queue_
        .submit([&impl, &id] { impl.comm_->broadcast(&id, sizeof(id), 0, impl.options_.timeout); })
        .get();
  } catch (...) {
    impl.fail(std::current_exception());
    throw;
  }

  // Every rank writes its shard of every group. The allgather that reports
  // the outcome is also the barrier before the manifests.
  std::uint64_t optimizerSteps = 0;
  {
    std::lock_guard<std::mutex> lock(impl.statsMutex_);
    optimizerSteps = impl.stats_.optimizerSteps;
  }
  collectively(impl, "saveCheckpoint", [&] {
    const std::vector<std::uint8_t> rng = rngBytes();
    const nlohmann::json options = shard_detail::optimizerOptionsJson(impl.optimizer_);
    for (std::size_t g = 0; g < groupCount; ++g) {
      const FlatGroup& group = impl.groups_[g];
      const std::size_t count = group.layout.dataRange(impl.rank_).size();
      ShardState state;
      state.layout = group.layout;
      state.rank = impl.rank_;
      state.step = step;
      state.checkpointId = id;
      state.slices[kParamSlice] = head(group.shardParam, count);
      const shard_detail::ParamStateSlices optim =
          shard_detail::exportParamState(impl.optimizer_, group.shardParam);
      nlohmann::json fields = nlohmann::json::array();
      for (const auto& [name, tensor] : optim.tensors) {
        if (static_cast<std::size_t>(tensor.numel()) != group.layout.shardNumel() ||
            tensor.scalar_type() != at::kFloat) {
          throw std::invalid_argument("hearth ZeRO: saveCheckpoint: optimizer state '" + name +
                                      "' of group " + std::to_string(g) +
                                      " is not an fp32 tensor of the shard's size");
        }
        state.slices[kOptimPrefix + name] = head(tensor, count);
        fields.push_back(name);
      }
      state.blobs[kRngBlob] = rng;
      if (g == 0 && !impl.sparsifiers_.empty()) {
        state.blobs[kCodecBlob] = shard_detail::encodeCodecState(impl.sparsifiers_);
      }
      state.meta = {
          {"optimizer_steps", optimizerSteps},
          {"format", kFormat},
          {"group", g},
          {"groups", groupCount},
          {"stage", impl.options_.stage},
          {"partitioned", group.partitioned},
          {"unit", group.unit},
          {"optimizer",
           {{"type", kind},
            {"options", options},
            {"state", optim.present},
            {"scalars", optim.scalars},
            {"tensors", fields}}},
      };
      const std::string target = groupDir(dir, g);
      std::error_code error;
      fs::create_directories(target, error);
      if (error) {
        throw ShardCheckpointError(target + ": cannot create the directory: " + error.message());
      }
      saveShard(target, state);
    }
  });

  // Every shard is on disk: rank 0 makes each group a checkpoint. The last
  // allgather makes every rank return only once the manifests exist.
  collectively(impl, "saveCheckpoint", [&] {
    if (impl.rank_ != 0) return;
    for (std::size_t g = 0; g < groupCount; ++g) {
      removeStaleShards(groupDir(dir, g), impl.world_);
      writeManifest(groupDir(dir, g), impl.world_, step, id);
    }
  });
}

std::int64_t ZeroEngine::loadCheckpoint(const std::string& dir) {
  Impl& impl = *impl_;
  impl.throwIfFailed();
  impl.waitInFlight();
  const std::size_t groupCount = impl.groups_.size();
  const std::string kind = shard_detail::optimizerKind(impl.optimizer_);

  // Read and check everything first; nothing of the engine changes here.
  std::vector<PreparedGroup> prepared(groupCount);
  at::Tensor rng;
  std::int64_t step = 0;
  std::uint64_t optimizerSteps = 0;
  std::optional<std::vector<shard_detail::BucketCodecState>> codec;
  collectively(impl, "loadCheckpoint", [&] {
    if (kind.empty()) {
      throw std::invalid_argument(
          "hearth ZeRO: loadCheckpoint: the optimizer's type is not supported (supported: " +
          shard_detail::supportedOptimizerKinds() + ")");
    }
    std::uint64_t id = 0;
    const at::Tensor currentRng = cpuRngState();
    for (std::size_t g = 0; g < groupCount; ++g) {
      const FlatGroup& group = impl.groups_[g];
      const std::string gdir = groupDir(dir, g);
      const CheckpointSet set(gdir);
      if (!set.layout().sameParameters(group.layout)) {
        throw ShardCheckpointError(
            gdir + ": its parameters (names, shapes, order) differ from this engine's group " +
            std::to_string(g) + " (saved with another model, stage, ZeroUnits or " +
            "persistBelowNumel)");
      }
      if (g == 0) {
        id = set.checkpointId();
        step = set.step();
      } else if (set.checkpointId() != id || set.step() != step) {
        throw ShardCheckpointError(gdir + ": belongs to another checkpoint than " +
                                   groupDir(dir, 0) + " (checkpoint id or step differ)");
      }
      ShardState state = set.reshard(impl.world_, impl.rank_);
      const FlatRange range = group.layout.dataRange(impl.rank_);
      const FlatRange theirs = state.layout.dataRange(impl.rank_);
      if (theirs.lo != range.lo || theirs.hi != range.hi) {
        // Saved with another alignment: cut the slices at this engine's range.
        for (auto& [name, slice] : state.slices) slice = set.readGlobal(name, range);
      }
      auto bad = [&](const std::string& why) {
        return ShardCheckpointError(set.shardPath(0) + ": " + why);
      };
      const nlohmann::json& meta = state.meta;
      if (!meta.is_object() || meta.value("format", "") != kFormat || !meta.contains("optimizer") ||
          !meta.at("optimizer").is_object()) {
        throw bad("not a ZeroEngine checkpoint (no '" + std::string(kFormat) + "' meta)");
      }
      const nlohmann::json& optim = meta.at("optimizer");
      const std::string savedKind = optim.value("type", "");
      if (savedKind != kind) {
        throw bad("saved with optimizer '" + savedKind + "', this engine's is '" + kind + "'");
      }
      auto param = state.slices.find(kParamSlice);
      if (param == state.slices.end()) throw bad("no 'param' slice");
      prepared[g].param = padded(param->second, group.layout.shardNumel());
      if (optim.value("state", false)) {
        std::map<std::string, at::Tensor> tensors;
        if (!optim.contains("tensors") || !optim.at("tensors").is_array()) {
          throw bad("optimizer meta without a 'tensors' list");
        }
        for (const auto& field : optim.at("tensors")) {
          if (!field.is_string()) throw bad("optimizer meta: 'tensors' holds a non-string");
          const std::string name = field.get<std::string>();
          auto slice = state.slices.find(kOptimPrefix + name);
          if (slice == state.slices.end())
            throw bad("no slice '" + std::string(kOptimPrefix) + name + "'");
          tensors[name] = padded(slice->second, group.layout.shardNumel());
        }
        try {
          prepared[g].state = shard_detail::makeParamState(
              kind, optim.value("scalars", nlohmann::json::object()), tensors);
        } catch (const std::exception& e) {
          throw bad(std::string("optimizer state: ") + e.what());
        }
      }
      if (g == 0) {
        auto blob = state.blobs.find(kRngBlob);
        if (blob == state.blobs.end()) throw bad("no 'rng' blob");
        if (static_cast<std::int64_t>(blob->second.size()) != currentRng.numel()) {
          throw bad("'rng' blob of " + std::to_string(blob->second.size()) +
                    " bytes, the CPU generator's state has " + std::to_string(currentRng.numel()));
        }
        rng = at::empty({currentRng.numel()}, at::kByte);
        std::copy(blob->second.begin(), blob->second.end(), rng.data_ptr<std::uint8_t>());
        optimizerSteps = meta.value("optimizer_steps", std::uint64_t{0});
        if (!impl.sparsifiers_.empty()) codec = readCodecState(impl, set, state);
      }
    }
    const std::string extra = groupDir(dir, groupCount);
    std::error_code error;
    if (fs::exists(extra, error)) {
      throw ShardCheckpointError(extra + ": the checkpoint has more parameter groups than this " +
                                 "engine's " + std::to_string(groupCount) +
                                 " (saved with another stage, ZeroUnits or persistBelowNumel)");
    }
  });

  // Every rank has everything: install it.
  try {
    impl.releaseAllUnits();
    {
      at::NoGradGuard noGrad;
      for (std::size_t g = 0; g < groupCount; ++g) {
        FlatGroup& group = impl.groups_[g];
        group.shardParam.copy_(prepared[g].param);
        shard_detail::installParamState(impl.optimizer_, group.shardParam,
                                        std::move(prepared[g].state));
      }
    }
    restoreRng(rng);
    if (codec) shard_detail::installCodecState(std::move(*codec), impl.sparsifiers_);
    {
      std::lock_guard<std::mutex> lock(impl.statsMutex_);
      impl.stats_.optimizerSteps = optimizerSteps;  // DGC's warm-up goes on from here
    }
    impl.zeroGrad();
    // Persistent groups: every rank's model parameters are whole again.
    for (FlatGroup& group : impl.groups_) {
      if (group.partitioned) continue;
      float* data = group.full.data_ptr<float>();
      const std::vector<std::size_t>* bounds = &group.bounds;
      impl.queue_
          .submit([&impl, data, bounds] {
            impl.comm_->allgatherInPlace(data, *bounds, impl.options_.timeout);
          })
          .get();
    }
  } catch (...) {
    impl.fail(std::current_exception());
    throw;
  }
  return step;
}

}  // namespace hearth
