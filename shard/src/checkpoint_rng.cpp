// Default-generator state capture/restore for activation checkpointing.
#include "checkpoint_rng.h"

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <ATen/detail/CUDAHooksInterface.h>

namespace hearth {
namespace checkpoint_detail {
namespace {

at::Tensor stateOf(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void setStateOf(at::Generator gen, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

int cudaDevices() {
#ifdef HEARTH_CHECKPOINT_NO_CUDA_RNG
  return 0;
#else
  const auto& hooks = at::detail::getCUDAHooks();
  return hooks.hasCUDA() ? hooks.getNumGPUs() : 0;
#endif
}

}  // namespace

RngState RngState::capture() {
  RngState s;
  s.cpu_ = stateOf(at::detail::getDefaultCPUGenerator());
  const int devices = cudaDevices();
  for (int d = 0; d < devices; ++d) {
    s.cuda_.push_back(stateOf(at::detail::getCUDAHooks().getDefaultCUDAGenerator(d)));
  }
  return s;
}

void RngState::restore() const {
  if (cpu_.defined()) setStateOf(at::detail::getDefaultCPUGenerator(), cpu_);
  for (size_t d = 0; d < cuda_.size(); ++d) {
    setStateOf(at::detail::getCUDAHooks().getDefaultCUDAGenerator(static_cast<int>(d)), cuda_[d]);
  }
}

}  // namespace checkpoint_detail
}  // namespace hearth
