// ZeroEngine per-step work: gradient hooks and buckets, stage-3 gathers,
// the sharded optimizer step (zero.h, zero_impl.h).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "optimizer_state_bytes.h"
#include "zero_impl.h"

namespace hearth {

using shard_detail::Bucket;
using shard_detail::FlatGroup;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

at::Tensor floats(float* data, std::size_t count) {
  return at::from_blob(data, {static_cast<std::int64_t>(count)}, at::kFloat);
}

}  // namespace

void ZeroEngine::Impl::throwIfFailed() const {
  if (error_) std::rethrow_exception(error_);
}

void ZeroEngine::Impl::fail(std::exception_ptr error) {
  if (!error_) {
    error_ = error;
    comm_->abort();  // peers blocked in a collective with us fail fast
  }
}

void ZeroEngine::Impl::countCollective(bool reduceScatter, std::size_t floats, double seconds) {
  std::lock_guard<std::mutex> lock(statsMutex_);
  (reduceScatter ? stats_.reduceScatterCalls : stats_.allgatherCalls) += 1;
  stats_.wireBytesEstimate += static_cast<std::uint64_t>(floats) * sizeof(float) *
                              static_cast<std::uint64_t>(world_ - 1) /
                              static_cast<std::uint64_t>(world_);
  stats_.commSeconds += seconds;
}

void ZeroEngine::Impl::countSparse(std::size_t pairs, double seconds) {
  std::lock_guard<std::mutex> lock(statsMutex_);
  ++stats_.reduceScatterCalls;
  // Each pair is a 4-byte index and a 4-byte value; (W-1)/W of them leave.
  stats_.wireBytesEstimate += static_cast<std::uint64_t>(pairs) * 8 *
                              static_cast<std::uint64_t>(world_ - 1) /
                              static_cast<std::uint64_t>(world_);
  stats_.commSeconds += seconds;
}

std::shared_future<void> ZeroEngine::Impl::submitWholeGroup(bool reduceScatter, float* data,
                                                            const FlatGroup& group) {
  const std::vector<std::size_t>* bounds = &group.bounds;
  const std::size_t count = group.layout.paddedNumel();
  return queue_.submit([this, reduceScatter, data, bounds, count] {
    const auto start = Clock::now();
    if (reduceScatter) {
      comm_->reduceScatterSum(data, *bounds, options_.timeout);
    } else {
      comm_->allgatherInPlace(data, *bounds, options_.timeout);
    }
    countCollective(reduceScatter, count, secondsSince(start));
  });
}

// ---- backward ---------------------------------------------------------------

void ZeroEngine::Impl::backward(const at::Tensor& loss) {
  throwIfFailed();
  const double scale = 1.0 / options_.gradientAccumulationSteps;
  try {
    torch::autograd::backward({scale == 1.0 ? loss : loss * scale});
    finishBackward();
  } catch (...) {
    fail(std::current_exception());
    try {
      waitInFlight();
      releaseAllUnits();
    } catch (...) {
    }
    throw;
  }
  ++micro_;
  std::lock_guard<std::mutex> lock(statsMutex_);
  ++stats_.microSteps;
}

void ZeroEngine::Impl::onGradReady(std::size_t param) {
  if (error_) return;
  // Autograd also runs the hook with no gradient, e.g. for a parameter that
  // activation checkpointing passes through its outer node (the gradient was
  // accumulated by the inner backward). Nothing arrived: nothing to do.
  if (!params_[param].grad().defined()) return;
  if (ready_[param]) {
    // Autograd ran this hook again in the same backward (e.g. activation
    // checkpointing's outer node after the inner backward). Whatever it added
    // is in .grad if the parameter's buckets are not sent yet; once sent, a
    // new gradient would be lost: that is an error.
    const bool sent = slots_[param].lastBucket < static_cast<int>(nextBucket_);
    if (!sent) return;
    fail(std::make_exception_ptr(std::logic_error(
        "hearth ZeRO: parameter '" + names_[param] +
        "' received a gradient after its bucket was sent (two backward passes through it in one "
        "ZeroEngine::backward?)")));
    return;
  }
  ready_[param] = true;
  const shard_detail::ParamSlot& slot = slots_[param];
  for (int b = slot.firstBucket; b <= slot.lastBucket; ++b) {
    --buckets_[static_cast<std::size_t>(b)].pending;
  }
  FlatGroup& group = groups_[static_cast<std::size_t>(slot.group)];
  try {
    while (nextBucket_ < buckets_.size() && buckets_[nextBucket_].pending == 0) {
      launchBucket(nextBucket_++);
    }
    // A unit's parameters are no longer needed once all their gradients exist.
    if (group.partitioned && --group.pendingGrads == 0) releaseUnit(group);
  } catch (...) {
    fail(std::current_exception());
  }
}

void ZeroEngine::Impl::launchBucket(std::size_t index) {
  Bucket& bucket = buckets_[index];
  FlatGroup& group = groups_[static_cast<std::size_t>(bucket.group)];
  const int slot = staging_.acquire();
  float* staging = staging_.data(slot);
  at::Tensor stage = floats(staging, bucket.range.size());
  {
    at::NoGradGuard noGrad;
    for (const shard_detail::BucketPiece& piece : bucket.pieces) {
      const auto length = static_cast<std::int64_t>(piece.end - piece.begin);
      at::Tensor dst = stage.narrow(0, static_cast<std::int64_t>(piece.offset), length);
      at::Tensor& grad = params_[piece.param].mutable_grad();
      if (grad.defined()) {
        dst.copy_(grad.reshape({-1}).narrow(0, static_cast<std::int64_t>(piece.begin), length));
      } else {
        dst.zero_();
      }
      // The gradient's last piece is copied: release it.
      if (slots_[piece.param].lastBucket == static_cast<int>(index)) grad.reset();
    }
  }
  const std::size_t owned = static_cast<std::size_t>(rank_);
  const std::size_t lo = bucket.bounds[owned];
  const std::size_t hi = bucket.bounds[owned + 1];
  const std::size_t shardOffset = bucket.range.lo + lo - group.shard.lo;
  at::Tensor shardGrad = group.shardGrad;
  const std::vector<std::size_t>* bounds = &bucket.bounds;
  const std::size_t count = bucket.range.size();
  std::shared_future<void> future;
  if (!sparsifiers_.empty()) {
    compress::StepInfo info;
    info.step = static_cast<std::int64_t>(stats_.optimizerSteps);
    info.rank = rank_;
    info.worldSize = world_;
    const compress::SparseSelection* selection =
        &sparsifiers_[index]->step({staging, count, compress::DType::kFloat32}, info);
    // This rank's part of the bucket, [lo, hi), lands at shardOffset in its
    // shard gradient (nothing is written when it owns none of the bucket).
    float* owned = shardGrad.data_ptr<float>() + (hi > lo ? shardOffset : 0);
    future = queue_.submit([this, selection, bounds, owned] {
      const auto start = Clock::now();
      comm_->sparseReduceScatterAdd(selection->indices, selection->values, *bounds, owned,
                                    options_.timeout);
      countSparse(selection->size(), secondsSince(start));
    });
  } else {
    future = queue_.submit([this, staging, count, bounds, lo, hi, shardOffset, shardGrad] {
      const auto start = Clock::now();
      comm_->reduceScatterSum(staging, *bounds, options_.timeout);
      if (hi > lo) {
        at::NoGradGuard noGrad;
        shardGrad
            .narrow(0, static_cast<std::int64_t>(shardOffset), static_cast<std::int64_t>(hi - lo))
            .add_(floats(staging + lo, hi - lo));
      }
      countCollective(true, count, secondsSince(start));
    });
  }
  staging_.release(slot, future);
  inFlight_.push_back(future);
}

void ZeroEngine::Impl::waitInFlight() {
  std::vector<std::shared_future<void>> pending;
  pending.swap(inFlight_);
  for (auto& future : pending) future.get();
}

void ZeroEngine::Impl::finishBackward() {
  throwIfFailed();
  if (options_.stage == 1) {
    for (FlatGroup& group : groups_) shard_detail::adoptGradViews(group);
    if (micro_ + 1 < options_.gradientAccumulationSteps) return;
    for (FlatGroup& group : groups_) {
      inFlight_.push_back(submitWholeGroup(true, group.fullGrad.data_ptr<float>(), group));
    }
    waitInFlight();
    return;
  }
  // Buckets whose parameters got no gradient still take part (as zeros), in
  // the same order on every rank.
  while (nextBucket_ < buckets_.size()) launchBucket(nextBucket_++);
  waitInFlight();
  throwIfFailed();
  releaseAllUnits();
  nextBucket_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (Bucket& bucket : buckets_) bucket.pending = static_cast<int>(bucket.pieces.size());
}

// ---- stage 3: gathering units ------------------------------------------------

void ZeroEngine::Impl::gatherAsync(FlatGroup& group) {
  if (group.poolSlot >= 0) return;
  const int slot = gatherPool_.acquire();
  group.poolSlot = slot;
  float* data = gatherPool_.data(slot);
  shard_detail::attach(group, data);
  const float* shard = group.shardParam.data_ptr<float>();
  const std::size_t lo = group.shard.lo;
  const std::size_t size = group.shard.size();
  const std::vector<std::size_t>* bounds = &group.bounds;
  const std::size_t count = group.layout.paddedNumel();
  group.gathered = queue_.submit([this, data, shard, lo, size, bounds, count] {
    const auto start = Clock::now();
    std::copy(shard, shard + size, data + lo);
    comm_->allgatherInPlace(data, *bounds, options_.timeout);
    countCollective(false, count, secondsSince(start));
  });
}

void ZeroEngine::Impl::ensureGathered(FlatGroup& group) {
  gatherAsync(group);
  group.gathered.get();
}

void ZeroEngine::Impl::releaseUnit(FlatGroup& group) {
  if (group.poolSlot < 0) return;
  if (group.gathered.valid()) group.gathered.wait();
  shard_detail::detach(group);
  gatherPool_.release(group.poolSlot);
  group.poolSlot = -1;
  group.gathered = {};
}

void ZeroEngine::Impl::releaseAllUnits() {
  for (FlatGroup& group : groups_) {
    if (group.partitioned) releaseUnit(group);
  }
}

void ZeroEngine::Impl::beforeForward(int unit) {
  throwIfFailed();
  const int index = unitGroup_[static_cast<std::size_t>(unit)];
  if (index < 0) return;
  ensureGathered(groups_[static_cast<std::size_t>(index)]);
  if (!options_.prefetch) return;
  for (std::size_t next = static_cast<std::size_t>(unit) + 1; next < unitGroup_.size(); ++next) {
    if (unitGroup_[next] < 0) continue;
    gatherAsync(groups_[static_cast<std::size_t>(unitGroup_[next])]);
    break;
  }
}

void ZeroEngine::Impl::afterForward(int unit) {
  const int index = unitGroup_[static_cast<std::size_t>(unit)];
  if (index >= 0) releaseUnit(groups_[static_cast<std::size_t>(index)]);
}

void ZeroEngine::Impl::beforeBackward(int unit) {
  throwIfFailed();
  const int index = unitGroup_[static_cast<std::size_t>(unit)];
  if (index < 0) return;
  FlatGroup& group = groups_[static_cast<std::size_t>(index)];
  ensureGathered(group);
  group.pendingGrads = static_cast<int>(group.params.size());
  if (!options_.prefetch) return;
  for (int previous = unit - 1; previous >= 0; --previous) {
    if (unitGroup_[static_cast<std::size_t>(previous)] < 0) continue;
    gatherAsync(groups_[static_cast<std::size_t>(unitGroup_[static_cast<std::size_t>(previous)])]);
    break;
  }
}

// ---- step -----------------------------------------------------------------------

void ZeroEngine::Impl::clipGradients() {
  if (!(options_.gradientClipping > 0)) return;
  double local = 0;
  for (const FlatGroup& group : groups_) local += group.shardGrad.pow(2).sum().item<double>();
  float total = static_cast<float>(local);
  queue_.submit([this, &total] { comm_->allreduceSum(&total, 1, options_.timeout); }).get();
  const double norm = std::sqrt(static_cast<double>(total));
  const double coefficient = options_.gradientClipping / (norm + 1e-6);
  if (coefficient >= 1.0) return;
  for (FlatGroup& group : groups_) group.shardGrad.mul_(coefficient);
}

bool ZeroEngine::Impl::step() {
  throwIfFailed();
  if (micro_ < options_.gradientAccumulationSteps) return false;
  try {
    {
      at::NoGradGuard noGrad;
      for (FlatGroup& group : groups_) group.shardGrad.mul_(1.0 / world_);
    }
    clipGradients();
    optimizer_.step();
    for (FlatGroup& group : groups_) {
      if (group.partitioned) continue;
      inFlight_.push_back(submitWholeGroup(false, group.full.data_ptr<float>(), group));
    }
    waitInFlight();
  } catch (...) {
    fail(std::current_exception());
    throw;
  }
  zeroGrad();
  std::lock_guard<std::mutex> lock(statsMutex_);
  ++stats_.optimizerSteps;
  return true;
}

void ZeroEngine::Impl::zeroGrad() {
  at::NoGradGuard noGrad;
  for (FlatGroup& group : groups_) {
    if (group.fullGrad.defined()) {
      group.fullGrad.zero_();
    } else {
      group.shardGrad.zero_();
    }
  }
  if (options_.stage >= 2) {
    for (auto& p : params_) p.mutable_grad().reset();
  }
  micro_ = 0;
}

// ---- public API ---------------------------------------------------------------

ZeroEngine::ZeroEngine(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       std::shared_ptr<Collectives> collectives, ZeroOptions options)
    : impl_(std::make_shared<Impl>(model, optimizer, std::move(collectives), options)) {
  impl_->registerHooks(impl_);
}

ZeroEngine::~ZeroEngine() = default;

void ZeroEngine::backward(const at::Tensor& loss) {
  impl_->backward(loss);
}
bool ZeroEngine::step() {
  return impl_->step();
}
void ZeroEngine::zeroGrad() {
  impl_->zeroGrad();
}
int ZeroEngine::stage() const {
  return impl_->options_.stage;
}
const ZeroOptions& ZeroEngine::options() const {
  return impl_->options_;
}
int ZeroEngine::rank() const {
  return impl_->rank_;
}
int ZeroEngine::worldSize() const {
  return impl_->world_;
}

ZeroMemory ZeroEngine::memory() const {
  ZeroMemory memory;
  for (const FlatGroup& group : impl_->groups_) {
    const std::size_t shardBytes = group.shard.size() * sizeof(float);
    const std::size_t fullBytes = group.layout.paddedNumel() * sizeof(float);
    memory.parameterBytes += group.partitioned ? shardBytes : fullBytes;
    memory.gradientBytes += group.fullGrad.defined() ? fullBytes : shardBytes;
  }
  memory.optimizerStateBytes = shard_detail::optimizerStateBytes(impl_->optimizer_);
  memory.gatherPoolBytes = impl_->gatherPool_.bytes();
  memory.bucketBytes = impl_->staging_.bytes();
  for (const auto& sparsifier : impl_->sparsifiers_) {
    memory.compressorStateBytes +=
        (sparsifier->momentum().size() + sparsifier->velocity().size()) * sizeof(float);
  }
  return memory;
}

ZeroStats ZeroEngine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->statsMutex_);
  ZeroStats stats = impl_->stats_;
  stats.poolGrowths = impl_->gatherPool_.growths() + impl_->staging_.growths();
  return stats;
}

std::vector<FlatLayout> ZeroEngine::layouts() const {
  std::vector<FlatLayout> result;
  for (const FlatGroup& group : impl_->groups_) result.push_back(group.layout);
  return result;
}

std::vector<at::Tensor> ZeroEngine::shardParameters() const {
  std::vector<at::Tensor> result;
  for (const FlatGroup& group : impl_->groups_) result.push_back(group.shardParam);
  return result;
}

std::vector<at::Tensor> ZeroEngine::shardGradients() const {
  std::vector<at::Tensor> result;
  for (const FlatGroup& group : impl_->groups_) result.push_back(group.shardGrad);
  return result;
}

std::vector<at::Tensor> ZeroEngine::fullParameters() {
  Impl& impl = *impl_;
  impl.throwIfFailed();
  std::vector<at::Tensor> full;
  for (FlatGroup& group : impl.groups_) {
    if (!group.partitioned) {
      full.push_back(group.full);
      continue;
    }
    at::Tensor gathered = at::zeros({static_cast<std::int64_t>(group.layout.paddedNumel())});
    gathered
        .narrow(0, static_cast<std::int64_t>(group.shard.lo),
                static_cast<std::int64_t>(group.shard.size()))
        .copy_(group.shardParam.detach());
    float* data = gathered.data_ptr<float>();
    const std::vector<std::size_t>* bounds = &group.bounds;
    impl.queue_
        .submit([&impl, data, bounds] {
          impl.comm_->allgatherInPlace(data, *bounds, impl.options_.timeout);
        })
        .get();
    full.push_back(gathered);
  }
  std::vector<at::Tensor> result;
  for (std::size_t id = 0; id < impl.params_.size(); ++id) {
    const shard_detail::ParamSlot& slot = impl.slots_[id];
    const FlatGroup& group = impl.groups_[static_cast<std::size_t>(slot.group)];
    const FlatEntry& entry = group.layout.entries()[slot.indexInGroup];
    result.push_back(full[static_cast<std::size_t>(slot.group)]
                         .narrow(0, static_cast<std::int64_t>(entry.offset),
                                 static_cast<std::int64_t>(entry.numel))
                         .view(entry.shape)
                         .clone());
  }
  return result;
}

}  // namespace hearth
