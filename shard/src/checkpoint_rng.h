// checkpoint_rng.h (private) — capture and restore the default random
// generators, so that a checkpointed region's recomputation draws the same
// random numbers (dropout masks) as its first run.
//
// Covers the default CPU generator and, when LibTorch has CUDA at run time,
// the default generator of every visible CUDA device. The CUDA part goes
// through at::detail::getCUDAHooks(), which exists in every LibTorch build and
// reports no devices in a CPU-only build, so no compile-time switch is needed;
// define HEARTH_CHECKPOINT_NO_CUDA_RNG to leave CUDA generators alone.
// Each generator is locked (its mutex) while its state is read or written.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace hearth {
namespace checkpoint_detail {

class RngState {
 public:
  // The current state of every default generator.
  static RngState capture();
  // Puts every captured generator back into the captured state.
  void restore() const;

 private:
  at::Tensor cpu_;
  std::vector<at::Tensor> cuda_;  // index = device index
};

// Captures the current state on construction and restores it on destruction
// (also when an exception unwinds), so that whatever runs in between does not
// move the caller's random stream.
class RngStateGuard {
 public:
  RngStateGuard() : saved_(RngState::capture()) {}
  ~RngStateGuard() { saved_.restore(); }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  RngState saved_;
};

}  // namespace checkpoint_detail
}  // namespace hearth
