// hearth/shard/zero.h — ZeRO stages 1, 2 and 3 (Rajbhandari et al. 2019) for a
// LibTorch training loop, over any hearth::Collectives backend.
//
// Usage (one ZeroEngine per rank; same loop as hearth::Engine):
//   torch::optim::AdamW optimizer(model->parameters(), options);
//   hearth::ZeroEngine zero(*model, optimizer, collectives, {.stage = 2});
//   for (...) {
//     zero.backward(loss_fn(model->forward(x), y));
//     zero.step();
//   }
//
// What each stage keeps on a rank (Ψ parameters, W ranks, fp32 + Adam):
//   stage 1: full parameters and gradients, optimizer state of its shard
//            (8Ψ + 8Ψ/W bytes). After backward the flat gradient buffer is
//            reduce-scattered; each rank steps its shard; the parameters are
//            allgathered in place.
//   stage 2: + gradients sharded (4Ψ + 12Ψ/W). Gradients are reduce-scattered
//            bucket by bucket while backward runs (on a communication
//            thread); each parameter's .grad is released once its bucket has
//            been copied out, so no full-size gradient buffer exists
//            (staging: two buffers of bucketCapMb; large tensors are split).
//   stage 3: + parameters sharded (16Ψ/W). Only modules wrapped in ZeroUnit
//            (zero_unit.h) are partitioned: a unit's parameters are gathered
//            into a pooled buffer before its forward, released after it,
//            gathered again before its backward, and its gradients are
//            reduce-scattered. The next unit is prefetched while the current
//            one computes. Parameters outside units, and unit tensors with
//            fewer than persistBelowNumel elements, stay whole on every rank
//            and are handled as in stage 2.
//
// Flat buffers: each group's parameters live in one contiguous fp32 buffer
// (FlatLayout, padded to equal aligned shards); model parameters become views
// into it (param.set_data), so the model is used unchanged. Communication
// buffers are allocated once; the steady state allocates nothing in hearth's
// own code (torch's ops and optimizers still allocate their temporaries).
//
// The optimizer: any torch::optim optimizer with one parameter group that was
// built over exactly the model's trainable parameters and has not stepped.
// ZeroEngine rewrites that group to hold this rank's shard tensors (1-D views,
// one per group), so the optimizer's state exists only for the shard. Element-
// wise optimizers (SGD with momentum/weight decay, Adam, AdamW, RMSprop,
// Adagrad) give the same result as unsharded training up to float rounding.
//
// Gradients are averaged over ranks (sum / W), with gradient accumulation K:
// backward() scales the loss by 1/K. Clipping uses the global norm (one small
// allreduce). After backward() the model parameters' .grad are not
// meaningful (stage 1: partly scratch of the reduce-scatter; stage 2/3:
// released); shardGradients() holds this rank's reduced gradient.
//
// REQUIRES: trainable parameters are fp32, dense, on the CPU; all ranks build
// the same model and make the same calls; model, optimizer and collectives
// outlive the engine; stage 3 modules run each ZeroUnit at most once per
// forward pass. Blocking: every collective has options.timeout; a failure is
// rethrown (CollectiveError) by backward()/step() and the engine stays
// unusable afterwards (its collectives are aborted so peers fail fast).
// Thread-safety: one training thread.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/shard/flat_layout.h"
#include "hearth/transport/collectives.h"

namespace torch {
namespace optim {
class Optimizer;
}  // namespace optim
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace hearth {

struct ZeroOptions {
  int stage = 1;  // 1, 2 or 3
  // Gradient reduce-scatter bucket (stage 2/3): two staging buffers of this
  // size exist; a parameter larger than a bucket is split across buckets.
  double bucketCapMb = 4.0;
  Millis timeout{300000};  // per collective
  int gradientAccumulationSteps = 1;
  double gradientClipping = 0.0;  // max global gradient norm; 0 = off
  bool broadcastInitialState = true;
  std::size_t alignElements = 16;  // shard boundaries, in floats
  // Stage 3: unit parameters with fewer elements stay whole on every rank.
  std::size_t persistBelowNumel = 2048;
  // Stage 3: gather the next unit while the current one computes.
  bool prefetch = true;
  // Gradient compression inside ZeRO (stage 2/3): "none" (dense
  // reduce-scatter) or "dgc" (compress/ registry parameters in codecParams).
  // With dgc every bucket runs DGC's local step (momentum correction, local
  // accumulation, clipping, masking, warm-up) on this rank's gradient and
  // sends only the selected (index, value) pairs to the owners of their
  // ranges (Collectives::sparseReduceScatterAdd), so the bytes per rank stay
  // O(k) as the world grows. DGC's momentum u and residual v are this rank's
  // unsent local gradient: full-size per rank, never sharded (no other rank
  // holds them); see ZeroMemory::compressorStateBytes. With dgc (momentum >
  // 0) use plain SGD without momentum: DGC applies the momentum.
  std::string codec = "none";
  nlohmann::json codecParams = nlohmann::json::object();
};

// Bytes of model state this rank holds between steps.
struct ZeroMemory {
  std::size_t parameterBytes = 0;  // full or sharded parameter buffers
  std::size_t gradientBytes = 0;   // full (stage 1) or sharded gradient buffers
  std::size_t optimizerStateBytes = 0;
  std::size_t gatherPoolBytes = 0;       // stage 3: buffers units are gathered into
  std::size_t bucketBytes = 0;           // reduce-scatter staging buffers
  std::size_t compressorStateBytes = 0;  // dgc: u and v per bucket, full size
  std::size_t modelStateBytes() const {
    return parameterBytes + gradientBytes + optimizerStateBytes;
  }
};

struct ZeroStats {
  std::uint64_t optimizerSteps = 0;
  std::uint64_t microSteps = 0;
  std::uint64_t reduceScatterCalls = 0;
  std::uint64_t allgatherCalls = 0;
  // Floats this rank sends by the ring algorithms ((W-1)/W of each buffer per
  // reduce-scatter or allgather), times 4.
  std::uint64_t wireBytesEstimate = 0;
  std::uint64_t poolGrowths = 0;  // stage 3 gathers that found no free pool buffer
  double commSeconds = 0;
};

class ZeroEngine {
 public:
  ZeroEngine(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
             std::shared_ptr<Collectives> collectives, ZeroOptions options = {});
  ~ZeroEngine();
  ZeroEngine(const ZeroEngine&) = delete;
  ZeroEngine& operator=(const ZeroEngine&) = delete;

  // loss.backward() scaled by 1/K; gradients are reduce-scattered (stage 2/3
  // during backward; stage 1 after the last micro-batch of a window).
  void backward(const at::Tensor& loss);
  // Steps the optimizer on this rank's shards at the end of an accumulation
  // window, then gathers the updated parameters (stage 1/2). Returns whether
  // it stepped.
  bool step();
  // Zeroes gradients and restarts the accumulation window.
  void zeroGrad();

  int stage() const;
  const ZeroOptions& options() const;
  int rank() const;
  int worldSize() const;
  ZeroMemory memory() const;
  ZeroStats stats() const;
  // Layouts of the parameter groups (the persistent group first, then one per
  // stage-3 unit), and this rank's shard tensors (parameters, gradients) per
  // group: what a sharded checkpoint saves.
  std::vector<FlatLayout> layouts() const;
  std::vector<at::Tensor> shardParameters() const;
  std::vector<at::Tensor> shardGradients() const;
  // Collective (every rank calls it): a copy of every trainable parameter, in
  // model order, full size even where stage 3 shards it. For evaluation,
  // tests and saving a whole model.
  std::vector<at::Tensor> fullParameters();

  // Sharded checkpoints (shard_checkpoint.h, docs/checkpoints.md). Collective.
  // Every rank saves, per parameter group g, its shard (parameters, optimizer
  // state, step, RNG state) into dir/group-<g>/ atomically; rank 0 writes the
  // manifests after a barrier, so a checkpoint without them is incomplete.
  void saveCheckpoint(const std::string& dir, std::int64_t step);
  // Loads a checkpoint written by an engine with the same model and grouping
  // (stage, units, persistBelowNumel) at ANY world size: each group's slices
  // are resharded to this world size. Returns the saved step. A corrupt,
  // incomplete or mismatched checkpoint throws ShardCheckpointError naming
  // the file, before anything is modified.
  std::int64_t loadCheckpoint(const std::string& dir);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace hearth
