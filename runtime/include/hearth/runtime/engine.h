// hearth/runtime/engine.h — data-parallel training for a LibTorch loop (the
// C++ DDP that LibTorch lacks).
//
// Usage (one Engine per rank):
//   hearth::Engine engine(*model, optimizer, ctx.collectives, options);
//   for (...) {
//     auto loss = criterion(model->forward(x), y);
//     engine.backward(loss);   // gradients averaged across ranks on sync steps
//     engine.step();           // optimizer step at accumulation boundaries
//   }
//
// What it does
// - On construction, broadcasts rank 0's parameters and buffers to all ranks
//   (after checking all ranks hold the same model shape), so every rank starts
//   identical.
// - Each trainable parameter's .grad becomes a view into one of a few
//   preallocated contiguous fp32 bucket buffers (bucket_plan.h). A post hook
//   on each parameter's gradient accumulator marks it ready; when a bucket is
//   complete (and all earlier buckets were launched) its allreduce is handed
//   to the Engine's communication thread, so communication overlaps the rest
//   of backward. Every rank launches buckets in the same order.
// - Gradients are averaged (sum / world size). With gradient_accumulation_steps
//   K, backward() scales the loss by 1/K and communicates only on the K-th
//   micro-batch; step() runs the optimizer only then.
// - Parameters that received no gradient in a sync backward still take part
//   (with their accumulated, possibly zero, gradient), so no rank hangs.
//
// REQUIRES: trainable parameters are fp32, dense and on the CPU; the optimizer
// was built over the same parameters; model, optimizer and collectives outlive
// the Engine; all ranks build the same model and call backward()/step() the
// same number of times.
//
// Blocking and errors: backward() returns once this rank's buckets are
// averaged, or throws CollectiveError (e.g. CollectiveTimeout after
// EngineOptions::timeout per bucket when a peer died). After a communication
// error the Engine is unusable: every later call rethrows that error.
//
// Thread-safety: backward()/step()/zeroGrad() are called from one thread.
//
// ZeRO: with options.zeroStage 1-3 the Engine hands the work to a
// hearth::ZeroEngine (shard/zero.h) with the same loop; numBuckets() is then
// 0 and stats() reports the ZeRO engine's collectives.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/runtime/config.h"
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

class ZeroEngine;

struct EngineOptions {
  int gradientAccumulationSteps = 1;
  double bucketCapMb = 25.0;
  Millis timeout{300000};         // per collective
  double gradientClipping = 0.0;  // max global grad norm; 0 = off
  bool broadcastInitialState = true;

  // Gradient compression (compress/registry.h names). "none" is the plain
  // bucketed allreduce. Parameters with fewer than denseBelowNumel elements,
  // and with denseOneDimensional those of at most one dimension (biases,
  // norms), go to dense buckets.
  std::string codec = "none";
  nlohmann::json codecParams = nlohmann::json::object();
  std::size_t denseBelowNumel = 1024;
  bool denseOneDimensional = true;
  // With a codec that owns momentum (DGC): momentum SGD applied by the Engine
  // to the dense buckets and to the weight-decay term, which DGC's reference
  // keeps out of compression: buf = m*buf + wd*p; grad += buf.
  double localMomentum = 0.0;
  bool localNesterov = false;
  double localWeightDecay = 0.0;
  // Save this rank's compressed payloads every captureInterval steps into
  // captureDir (empty: off), for `hearth inspect`.
  std::string captureDir;
  std::int64_t captureInterval = 100;

  // ZeRO (shard/zero.h): 0 = plain data parallel; 1, 2, 3 shard optimizer
  // state, + gradients, + parameters (stage 3 partitions modules wrapped in
  // hearth::ZeroUnit). Needs the Module constructor. Compression inside ZeRO:
  // codec none or dgc (stage 2/3).
  int zeroStage = 0;
  std::size_t zeroPersistBelowNumel = 2048;
  bool zeroPrefetch = true;
  double zeroBucketCapMb = 4.0;

  // Reads gradient_accumulation_steps, gradient_clipping, communication.* and
  // compression.* (see compression_settings.h for how they combine with the
  // optimizer keys).
  static EngineOptions fromConfig(const Config& config);
};

struct EngineStats {
  std::uint64_t optimizerSteps = 0;
  std::uint64_t microSteps = 0;
  std::uint64_t collectiveCalls = 0;  // gradient allreduce calls issued
  std::uint64_t bytesReduced = 0;     // gradient payload bytes given to allreduce
  std::uint64_t wireBytesEstimate =
      0;                          // bytes sent per rank by a ring allreduce: 2(N-1)/N x payload
  double commSeconds = 0;         // time the communication thread spent in collectives
  double exposedCommSeconds = 0;  // time backward() waited after autograd finished
};

class Engine {
 public:
  Engine(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
         std::shared_ptr<Collectives> collectives, EngineOptions options = {});
  Engine(std::vector<at::Tensor> parameters, std::vector<at::Tensor> buffers,
         torch::optim::Optimizer& optimizer, std::shared_ptr<Collectives> collectives,
         EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs loss.backward() (scaled by 1/K) and, on the last micro-batch of an
  // accumulation window, returns only after gradients are averaged.
  void backward(const at::Tensor& loss);
  // Optimizer step (with clipping) if a full accumulation window has been
  // backpropagated; then zeroes the gradients. Returns whether it stepped.
  bool step();
  // Zeroes gradients and restarts the accumulation window.
  void zeroGrad();

  bool syncsNextBackward() const;
  int numBuckets() const;
  int rank() const;
  int worldSize() const;
  EngineStats stats() const;
  // Name of the codec reducing the large buckets ("none" when uncompressed).
  std::string codec() const;
  // Fractional epochs completed, for codecs with epoch-based schedules (DGC
  // warm-up in epochs). Steps are counted by the Engine itself.
  void setEpoch(double epoch);
  // The ZeRO engine doing the work when options.zeroStage > 0, else nullptr
  // (memory(), layouts(), checkpoints).
  ZeroEngine* zero() { return zero_.get(); }

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::unique_ptr<ZeroEngine> zero_;
};

}  // namespace hearth
