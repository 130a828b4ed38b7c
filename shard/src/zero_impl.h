// zero_impl.h (internal) — the state of a ZeroEngine (zero.h). Construction
// (grouping parameters, flat buffers, buckets, optimizer rewiring) lives in
// zero_setup.cpp; the per-step work (hooks, buckets, gathers, step) in
// zero_engine.cpp.
//
// Threads: the training thread runs backward()/step() and the autograd hooks
// (CPU autograd runs on the calling thread); the CommQueue thread runs every
// collective in submission order. Tasks touch only their own staging or gather
// buffer and the shard gradient, which the training thread reads only after
// waiting for them.
#pragma once

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "buffer_pool.h"
#include "comm_queue.h"
#include "dgc_sparsifier.h"
#include "flat_group.h"
#include "hearth/shard/zero.h"
#include "hearth/shard/zero_unit.h"

namespace hearth {

namespace shard_detail {

// One parameter's part of a bucket: elements [begin, end) of the flattened
// parameter land at `offset` in the bucket.
struct BucketPiece {
  std::size_t param = 0;  // engine parameter id
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t offset = 0;
};

// A contiguous range of one group's flat buffer whose gradients are
// reduce-scattered together (stage 2/3). Buckets never exceed the cap: a
// large parameter is split over several consecutive buckets.
struct Bucket {
  int group = 0;
  FlatRange range;
  std::vector<BucketPiece> pieces;
  std::vector<std::size_t> bounds;  // owner split, relative to range.lo
  int pending = 0;                  // pieces whose parameter's gradient is not ready yet
};

struct ParamSlot {
  int group = 0;
  std::size_t indexInGroup = 0;
  int firstBucket = -1;  // the parameter's pieces live in buckets [first, last]
  int lastBucket = -1;   // launched last: its gradient is released then
};

}  // namespace shard_detail

struct ZeroEngine::Impl : ZeroUnitController {
  Impl(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
       std::shared_ptr<Collectives> collectives, ZeroOptions options);
  ~Impl() override;

  // Setup (zero_setup.cpp).
  void buildGroups(torch::nn::Module& model);
  void broadcastInitialState(torch::nn::Module& model);
  void rewireOptimizer();
  void buildBuckets();
  void registerHooks(const std::shared_ptr<Impl>& self);
  void removeHooks();

  // Per step (zero_engine.cpp).
  void backward(const at::Tensor& loss);
  bool step();
  void zeroGrad();
  void onGradReady(std::size_t param);
  void launchBucket(std::size_t bucket);
  void finishBackward();
  void gatherAsync(shard_detail::FlatGroup& group);
  void ensureGathered(shard_detail::FlatGroup& group);
  void releaseUnit(shard_detail::FlatGroup& group);
  void releaseAllUnits();
  void waitInFlight();
  void clipGradients();
  void throwIfFailed() const;
  void fail(std::exception_ptr error);
  void countCollective(bool reduceScatter, std::size_t floats, double seconds);
  void countSparse(std::size_t pairs, double seconds);
  // Queues an in-place reduce-scatter (sum) or allgather of a whole flat
  // buffer of `group` at `data` (group.bounds split it over the ranks) and
  // counts it; `data` and `group` must outlive the returned future.
  std::shared_future<void> submitWholeGroup(bool reduceScatter, float* data,
                                            const shard_detail::FlatGroup& group);
  void buildSparsifiers();

  void beforeForward(int unit) override;
  void afterForward(int unit) override;
  void beforeBackward(int unit) override;

  std::shared_ptr<Collectives> comm_;
  torch::optim::Optimizer& optimizer_;
  ZeroOptions options_;
  int rank_ = 0;
  int world_ = 1;

  std::vector<at::Tensor> params_;  // trainable, model order
  std::vector<std::string> names_;
  std::vector<shard_detail::ParamSlot> slots_;
  std::vector<shard_detail::FlatGroup> groups_;
  std::vector<ZeroUnitImpl*> units_;
  std::vector<int> unitGroup_;  // unit index -> group index, -1: no partitioned params
  std::vector<shard_detail::Bucket> buckets_;
  // dgc: one DGC state per bucket (empty for codec "none").
  std::vector<std::unique_ptr<compress::DgcSparsifier>> sparsifiers_;
  std::vector<bool> ready_;
  std::size_t nextBucket_ = 0;
  shard_detail::BufferPool staging_;
  shard_detail::BufferPool gatherPool_;
  std::vector<std::shared_future<void>> inFlight_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hookKeys_;

  int micro_ = 0;
  std::exception_ptr error_;
  mutable std::mutex statsMutex_;
  ZeroStats stats_;

  // Declared last: destroyed first, so queued tasks finish while the state
  // they use is still alive.
  shard_detail::CommQueue queue_;
};

}  // namespace hearth
