// bucket_reducer.h (internal) — how the Engine's communication thread turns
// one bucket of local gradients into the average over ranks.
//
// - DenseReducer: allreduce-sum then divide by the world size; with
//   `momentum` > 0 it then applies momentum SGD's buffer (u = m*u + g, and
//   g = u, or g + m*u for Nesterov) — used for the dense buckets of a run
//   whose codec owns momentum (DGC), where the optimizer has none.
// - CompressedReducer: runs the bucket's Compressor (compress/) step over the
//   collectives; the codec returns the mean.
// reduce() blocks until the bucket is averaged or throws CollectiveError /
// PayloadError. Called from the communication thread only.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hearth/compress/compressor.h"
#include "hearth/transport/collectives.h"

namespace hearth {

struct BucketTraffic {
  std::uint64_t payloadBytes = 0;
  std::uint64_t wireBytes = 0;
  std::uint64_t collectiveCalls = 0;
};

class BucketReducer {
 public:
  virtual ~BucketReducer() = default;
  // buffer: the bucket's contiguous fp32 gradients, averaged in place.
  virtual BucketTraffic reduce(at::Tensor& buffer, const compress::StepInfo& info) = 0;
  virtual bool ownsMomentum() const { return false; }
};

std::unique_ptr<BucketReducer> makeDenseReducer(Collectives& collectives, Millis timeout,
                                                double momentum, bool nesterov);
// Writes this rank's payloads every `interval` optimizer steps to
// `directory`/step<S>_bucket<B>_rank<R>.hgrd (for `hearth inspect`).
struct PayloadCapture {
  std::string directory;  // empty: off
  std::int64_t interval = 100;
  std::size_t bucket = 0;
};

std::unique_ptr<BucketReducer> makeCompressedReducer(
    Collectives& collectives, Millis timeout, std::unique_ptr<compress::Compressor> compressor,
    PayloadCapture capture = {});

}  // namespace hearth
