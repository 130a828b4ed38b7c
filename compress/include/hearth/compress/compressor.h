// hearth/compress/compressor.h — the Compressor interface: one object per flat
// gradient buffer (an Engine bucket or a shard), holding that buffer's state
// (error-feedback residuals, momentum, PowerSGD factors).
//
// A step is a short conversation with the caller, who owns communication:
//
//   ExchangeRequest request = c.begin(gradient, info);
//   for (;;) {
//     ExchangeResult result = <do request.op across all ranks>;
//     std::optional<ExchangeRequest> next = c.advance(std::move(result));
//     if (!next) break;
//     request = std::move(*next);
//   }
//   c.finish(averaged);   // the mean over ranks of what the ranks sent
//
// Most codecs need one allgather of variable-size payloads (wire format in
// payload.h); dense fp32 needs one allreduce; PowerSGD needs two allreduces
// with computation in between. runExchange() in exchange.h drives this loop
// over a hearth::Collectives, and shard/ can drive it differently (e.g. a
// sparse reduce-scatter of a SparseCompressor's selection).
//
// Contracts
// - begin() consumes the local gradient: numel must equal numel() and dtype is
//   fp32, fp16 or bf16. Stateful codecs update their state in begin(): what
//   is not sent stays in the residual, nothing is dropped.
// - Payloads from other ranks are untrusted: advance() validates them and
//   throws PayloadError (payload.h) naming the problem; the output is then
//   not written and the compressor must be considered failed.
// - bytesSent() is the payload bytes this rank contributed in the last step
//   (the allgather payload, or the floats given to allreduce x 4).
// - Not thread-safe: one step at a time, from one thread. No call blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/compress/dtype.h"

namespace hearth::compress {

struct GradientView {
  const void* data = nullptr;
  std::size_t numel = 0;
  DType dtype = DType::kFloat32;
};

// Where the caller is in training; codecs with schedules (DGC warm-up) use it.
struct StepInfo {
  std::int64_t step = 0;  // optimizer steps completed before this one
  double epoch = 0.0;     // fractional epochs completed, if the caller knows
  int rank = 0;
  int worldSize = 1;
};

enum class ExchangeOp { kAllgatherBytes, kAllreduceSum };

struct ExchangeRequest {
  ExchangeOp op = ExchangeOp::kAllgatherBytes;
  std::vector<std::uint8_t> bytes;  // kAllgatherBytes: this rank's payload
  std::vector<float> floats;        // kAllreduceSum: summed elementwise across ranks
};

struct ExchangeResult {
  std::vector<std::vector<std::uint8_t>> gathered;  // kAllgatherBytes: one payload per rank
  std::vector<float> summed;                        // kAllreduceSum: the sum
};

class Compressor {
 public:
  virtual ~Compressor() = default;
  virtual std::string name() const = 0;
  virtual std::size_t numel() const = 0;

  virtual ExchangeRequest begin(const GradientView& gradient, const StepInfo& info) = 0;
  virtual std::optional<ExchangeRequest> advance(ExchangeResult&& result) = 0;
  // REQUIRES: advance() returned nullopt. Writes numel() floats.
  virtual void finish(float* averaged) = 0;

  virtual std::size_t bytesSent() const = 0;

  // True for codecs that apply momentum themselves (DGC's momentum
  // correction): the optimizer must then be plain SGD without momentum.
  virtual bool ownsMomentum() const { return false; }
};

}  // namespace hearth::compress
