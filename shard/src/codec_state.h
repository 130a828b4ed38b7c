// codec_state.h (internal) — DGC's per-rank state inside ZeRO (every
// bucket's momentum u and residual v) as bytes for a checkpoint blob.
//
// Layout (little-endian): "HDCS", u32 version 1, u64 bucket count, then per
// bucket u64 numel, u64 |u|, u64 |v|, |u| floats, |v| floats. decode()
// validates every size against the engine's buckets before reading and
// throws std::invalid_argument naming the mismatch.
//
// Resharding: u and v are this rank's unsent local gradient, not a shard of
// the global index space. Loaded at another world size W', every new rank
// takes (sum over the old ranks of their state) / W', which keeps the total
// unsent gradient (what all ranks will still send) unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dgc_sparsifier.h"

namespace hearth::shard_detail {

struct BucketCodecState {
  std::vector<float> momentum;
  std::vector<float> velocity;
};

std::vector<std::uint8_t> encodeCodecState(
    const std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers);

std::vector<BucketCodecState> decodeCodecState(
    const std::vector<std::uint8_t>& bytes,
    const std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers);

// Adds `more` into `sum` element-wise (same shapes: both decoded for the same
// sparsifiers), then, with `divisor` > 0, divides the result by it.
void accumulateCodecState(std::vector<BucketCodecState>& sum,
                          const std::vector<BucketCodecState>& more);
void scaleCodecState(std::vector<BucketCodecState>& state, float factor);

void installCodecState(std::vector<BucketCodecState> state,
                       std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers);

}  // namespace hearth::shard_detail
