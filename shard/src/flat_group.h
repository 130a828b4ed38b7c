// flat_group.h (internal) — one ZeRO parameter group: its FlatLayout, the
// contiguous buffers, and the model parameters turned into views of them.
//
// A persistent group keeps `full` (all parameters) allocated; its shard is a
// view into it. A partitioned group (a stage-3 unit) owns only its shard;
// `full` keeps its shape and storage object (which autograd's saved tensors
// and the parameter views share) but points at memory only while gathered:
// attach() points the storage at a pool buffer, detach() at nothing.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <future>
#include <string>
#include <vector>

#include "hearth/shard/flat_layout.h"

namespace hearth::shard_detail {

struct FlatGroup {
  FlatLayout layout;
  std::vector<at::Tensor> params;     // model parameters, layout order
  std::vector<std::size_t> paramIds;  // the engine's index of each
  bool partitioned = false;
  int unit = -1;                    // stage-3 unit index, -1: persistent
  at::Tensor full;                  // [paddedNumel]
  at::Tensor shardParam;            // [shardNumel], the optimizer's leaf
  at::Tensor shardGrad;             // [shardNumel]
  at::Tensor fullGrad;              // stage 1: [paddedNumel], params' .grad are views
  FlatRange shard;                  // this rank's range
  std::vector<std::size_t> bounds;  // layout.shardBounds()

  // Stage-3 gather state.
  int poolSlot = -1;                  // gathered into this pool slot; -1: released
  std::shared_future<void> gathered;  // the pending gather, if any
  int pendingGrads = 0;               // partitioned params still waiting for a grad
};

// Builds a group over `params` (named, trainable fp32) for `rank` of
// `worldSize`: copies their values into a new flat buffer and makes each
// parameter a view of it. `withFullGrad` also allocates the stage-1 flat
// gradient buffer and points every parameter's .grad into it.
FlatGroup makeFlatGroup(const std::vector<std::string>& names,
                        const std::vector<at::Tensor>& params,
                        const std::vector<std::size_t>& paramIds, int worldSize, int rank,
                        std::size_t alignElements, bool withFullGrad);

// After the initial broadcast: a partitioned group copies its shard out of
// `full` into its own buffer and releases `full`'s memory.
void partition(FlatGroup& group);

// Points the storage of `full` (and so every parameter view) at `data`, which
// must hold layout.paddedNumel() floats and outlive the attachment.
void attach(FlatGroup& group, float* data);
// Points it at nothing (the memory belongs to the pool).
void detach(FlatGroup& group);

// Re-points each parameter's .grad at its view of fullGrad when autograd
// replaced it (stage 1), copying the values.
void adoptGradViews(FlatGroup& group);

}  // namespace hearth::shard_detail
