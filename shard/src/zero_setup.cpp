// ZeroEngine construction: parameter groups, flat buffers, initial broadcast,
// optimizer rewiring, buckets and hooks (zero_impl.h).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "dgc.h"
#include "zero_impl.h"

namespace hearth {

using shard_detail::Bucket;
using shard_detail::FlatGroup;

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("hearth ZeRO: " + what);
}

class GradReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  GradReadyHook(std::weak_ptr<ZeroEngine::Impl> engine, std::size_t param)
      : engine_(std::move(engine)), param_(param) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    if (auto engine = engine_.lock()) engine->onGradReady(param_);
    return outputs;
  }

 private:
  std::weak_ptr<ZeroEngine::Impl> engine_;
  std::size_t param_;
};

}  // namespace

ZeroEngine::Impl::Impl(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       std::shared_ptr<Collectives> collectives, ZeroOptions options)
    : comm_(std::move(collectives)), optimizer_(optimizer), options_(options) {
  if (!comm_) invalid("collectives must not be null");
  if (options_.stage < 1 || options_.stage > 3) {
    invalid("stage must be 1, 2 or 3, got " + std::to_string(options_.stage));
  }
  if (options_.gradientAccumulationSteps < 1) {
    invalid("gradient accumulation steps must be >= 1");
  }
  if (!(options_.bucketCapMb > 0)) invalid("bucket cap must be > 0 MiB");
  rank_ = comm_->rank();
  world_ = comm_->worldSize();
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const at::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    if (p.scalar_type() != at::kFloat || !p.device().is_cpu() || p.is_sparse()) {
      invalid("parameter '" + item.key() + "' must be a dense fp32 CPU tensor");
    }
    names_.push_back(item.key());
    params_.push_back(p);
  }
  if (params_.empty()) invalid("the model has no trainable parameters");
  buildGroups(model);
  broadcastInitialState(model);
  for (FlatGroup& group : groups_) {
    if (group.unit >= 0) shard_detail::partition(group);
  }
  rewireOptimizer();
  if (options_.stage >= 2) buildBuckets();
  buildSparsifiers();
  ready_.assign(params_.size(), false);
  std::size_t largestUnit = 0;
  for (const FlatGroup& group : groups_) {
    if (group.partitioned) largestUnit = std::max(largestUnit, group.layout.paddedNumel());
  }
  if (largestUnit > 0)
    gatherPool_ = shard_detail::BufferPool(options_.prefetch ? 2 : 1, largestUnit);
  for (std::size_t u = 0; u < units_.size(); ++u) units_[u]->attach(this, static_cast<int>(u));
}

ZeroEngine::Impl::~Impl() {
  removeHooks();
  for (ZeroUnitImpl* unit : units_) unit->attach(nullptr, -1);
  try {
    for (auto& pending : inFlight_) pending.wait();
    gatherPool_.drain();
  } catch (...) {
  }
  // Stage-3 parameters have no memory of their own once the engine is gone:
  // give them NaN-filled buffers, so a model used afterwards fails loudly
  // instead of computing with stale or released memory.
  for (FlatGroup& group : groups_) {
    if (!group.partitioned) continue;
    at::Tensor poison = at::full({static_cast<std::int64_t>(group.layout.paddedNumel())},
                                 std::numeric_limits<float>::quiet_NaN(), at::kFloat);
    group.full.storage().set_data_ptr_noswap(
        poison.storage().set_data_ptr(c10::DataPtr(nullptr, c10::Device(c10::kCPU))));
  }
}

void ZeroEngine::Impl::buildGroups(torch::nn::Module& model) {
  // Stage 3: which unit (if any) holds each parameter.
  std::map<const void*, int> unitOf;
  if (options_.stage == 3) {
    for (const auto& module : model.modules(/*include_self=*/true)) {
      auto* unit = dynamic_cast<ZeroUnitImpl*>(module.get());
      if (unit == nullptr) continue;
      const int index = static_cast<int>(units_.size());
      units_.push_back(unit);
      for (const at::Tensor& p : unit->parameters(/*recurse=*/true)) {
        if (!unitOf.emplace(p.unsafeGetTensorImpl(), index).second) {
          invalid("a parameter belongs to two ZeroUnits (nested units are not supported)");
        }
      }
    }
  }
  const int unitCount = static_cast<int>(units_.size());
  std::vector<std::vector<std::size_t>> members(static_cast<std::size_t>(unitCount) + 1);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto found = unitOf.find(params_[i].unsafeGetTensorImpl());
    const bool partitioned =
        found != unitOf.end() &&
        static_cast<std::size_t>(params_[i].numel()) >= options_.persistBelowNumel;
    members[partitioned ? static_cast<std::size_t>(found->second) + 1 : 0].push_back(i);
  }
  slots_.assign(params_.size(), {});
  unitGroup_.assign(static_cast<std::size_t>(unitCount), -1);
  for (std::size_t m = 0; m < members.size(); ++m) {
    if (members[m].empty()) continue;
    std::vector<std::string> names;
    std::vector<at::Tensor> tensors;
    for (std::size_t id : members[m]) {
      names.push_back(names_[id]);
      tensors.push_back(params_[id]);
    }
    const int groupIndex = static_cast<int>(groups_.size());
    groups_.push_back(shard_detail::makeFlatGroup(names, tensors, members[m], world_, rank_,
                                                  options_.alignElements,
                                                  /*withFullGrad=*/options_.stage == 1));
    FlatGroup& group = groups_.back();
    group.unit = static_cast<int>(m) - 1;
    if (group.unit >= 0) unitGroup_[static_cast<std::size_t>(group.unit)] = groupIndex;
    for (std::size_t j = 0; j < members[m].size(); ++j) {
      slots_[members[m][j]].group = groupIndex;
      slots_[members[m][j]].indexInGroup = j;
    }
  }
}

void ZeroEngine::Impl::broadcastInitialState(torch::nn::Module& model) {
  if (!options_.broadcastInitialState || world_ == 1) return;
  // All ranks must hold the same layout: compare a fingerprint first.
  std::string shape;
  for (const FlatGroup& group : groups_) shape += group.layout.toJson().dump();
  std::vector<std::uint8_t> mine(shape.begin(), shape.end());
  const auto all = comm_->allgatherBytes(mine, options_.timeout);
  for (int r = 0; r < world_; ++r) {
    if (all[static_cast<std::size_t>(r)] != mine) {
      invalid("rank " + std::to_string(r) +
              " built a different model (parameter names or "
              "shapes differ from rank " +
              std::to_string(rank_) + ")");
    }
  }
  for (FlatGroup& group : groups_) {
    comm_->broadcast(group.full.data_ptr(), group.full.nbytes(), 0, options_.timeout);
  }
  at::NoGradGuard noGrad;
  for (auto& buffer : model.buffers(/*recurse=*/true)) {
    if (!buffer.defined() || buffer.numel() == 0) continue;
    at::Tensor contiguous = buffer.contiguous();
    comm_->broadcast(contiguous.data_ptr(), contiguous.nbytes(), 0, options_.timeout);
    if (!contiguous.is_same(buffer)) buffer.copy_(contiguous);
  }
}

void ZeroEngine::Impl::rewireOptimizer() {
  auto& paramGroups = optimizer_.param_groups();
  if (paramGroups.size() != 1) {
    invalid("the optimizer must have exactly one parameter group, it has " +
            std::to_string(paramGroups.size()));
  }
  if (!optimizer_.state().empty()) invalid("the optimizer must not have stepped yet");
  std::set<const void*> expected;
  for (const auto& p : params_) expected.insert(p.unsafeGetTensorImpl());
  std::set<const void*> given;
  for (const auto& p : paramGroups[0].params()) given.insert(p.unsafeGetTensorImpl());
  if (given != expected) {
    invalid("the optimizer must be built over exactly the model's trainable parameters");
  }
  std::vector<at::Tensor> shards;
  for (const FlatGroup& group : groups_) shards.push_back(group.shardParam);
  paramGroups[0].params() = shards;
}

void ZeroEngine::Impl::buildBuckets() {
  const auto cap = std::max<std::size_t>(
      1, static_cast<std::size_t>(options_.bucketCapMb * 1024 * 1024 / sizeof(float)));
  // Walk the parameters in reverse (the order gradients become ready) and cut
  // each group's flat range, from the top down, into buckets of at most `cap`.
  for (std::size_t k = params_.size(); k-- > 0;) {
    shard_detail::ParamSlot& slot = slots_[k];
    const FlatGroup& group = groups_[static_cast<std::size_t>(slot.group)];
    const FlatEntry& entry = group.layout.entries()[slot.indexInGroup];
    std::size_t top = entry.offset + entry.numel;
    do {
      bool extend = !buckets_.empty();
      if (extend) {
        const Bucket& last = buckets_.back();
        extend = last.group == slot.group && last.range.lo == top && last.range.size() < cap;
      }
      if (!extend) {
        Bucket bucket;
        bucket.group = slot.group;
        bucket.range = FlatRange{top, top};
        buckets_.push_back(bucket);
      }
      Bucket& bucket = buckets_.back();
      const std::size_t take = std::min(cap - bucket.range.size(), top - entry.offset);
      bucket.range.lo = top - take;
      bucket.pieces.push_back({k, top - take - entry.offset, top - entry.offset, 0});
      const int index = static_cast<int>(buckets_.size() - 1);
      if (slot.firstBucket < 0) slot.firstBucket = index;
      slot.lastBucket = index;
      top -= take;
    } while (top > entry.offset);
  }
  std::size_t largest = 1;
  for (Bucket& bucket : buckets_) {
    const FlatGroup& group = groups_[static_cast<std::size_t>(bucket.group)];
    for (auto& piece : bucket.pieces) {
      const FlatEntry& entry = group.layout.entries()[slots_[piece.param].indexInGroup];
      piece.offset = entry.offset + piece.begin - bucket.range.lo;
    }
    bucket.bounds = group.layout.shardBoundsWithin(bucket.range);
    bucket.pending = static_cast<int>(bucket.pieces.size());
    largest = std::max(largest, bucket.range.size());
  }
  staging_ = shard_detail::BufferPool(2, largest);
}

void ZeroEngine::Impl::buildSparsifiers() {
  if (options_.codec == "none") return;
  if (options_.codec != "dgc") {
    invalid("codec '" + options_.codec + "' is not supported inside ZeRO (use none or dgc)");
  }
  if (options_.stage < 2) invalid("codec dgc needs stage 2 or 3 (sharded gradients)");
  const compress::DgcOptions dgc = compress::parseDgcOptions(options_.codecParams);
  for (const Bucket& bucket : buckets_) {
    sparsifiers_.push_back(std::make_unique<compress::DgcSparsifier>(dgc, bucket.range.size()));
  }
}

void ZeroEngine::Impl::registerHooks(const std::shared_ptr<Impl>& self) {
  if (options_.stage < 2) return;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[i]);
    if (!accumulator) invalid("parameter '" + names_[i] + "' has no gradient accumulator");
    hookKeys_.push_back(
        accumulator->add_post_hook(std::make_unique<GradReadyHook>(std::weak_ptr<Impl>(self), i)));
    accumulators_.push_back(std::move(accumulator));
  }
}

void ZeroEngine::Impl::removeHooks() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i) {
    accumulators_[i]->del_post_hook(hookKeys_[i]);
  }
  accumulators_.clear();
  hookKeys_.clear();
}

}  // namespace hearth
