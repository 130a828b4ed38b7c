// CheckpointedSequential: segments of a module chain, all but the last under
// checkpoint().
#include <cmath>
#include <string>

#include <c10/core/GradMode.h>

#include "hearth/shard/checkpoint.h"

namespace hearth {

CheckpointedSequentialImpl::CheckpointedSequentialImpl(std::vector<torch::nn::AnyModule> modules,
                                                       int segments) {
  for (auto& m : modules) push_back(std::move(m));
  setSegments(segments);
}

void CheckpointedSequentialImpl::push_back(torch::nn::AnyModule module) {
  register_module(std::to_string(modules_.size()), module.ptr());
  modules_.push_back(std::move(module));
}

void CheckpointedSequentialImpl::setSegments(int segments) {
  segments_ = segments > 0 ? segments : 0;
}

int CheckpointedSequentialImpl::segments() const {
  const int n = static_cast<int>(modules_.size());
  if (n == 0) return 1;
  const int s = segments_ > 0 ? segments_ : static_cast<int>(std::ceil(std::sqrt(n)));
  return s < 1 ? 1 : (s > n ? n : s);
}

std::pair<std::size_t, std::size_t> CheckpointedSequentialImpl::segmentRange(int i) const {
  const std::size_t n = modules_.size();
  const std::size_t s = static_cast<std::size_t>(segments());
  const std::size_t k = static_cast<std::size_t>(i);
  return {k * n / s, (k + 1) * n / s};
}

at::Tensor CheckpointedSequentialImpl::runRange(std::size_t begin, std::size_t end, at::Tensor x) {
  for (std::size_t j = begin; j < end; ++j) x = modules_[j].forward(x);
  return x;
}

std::vector<at::Tensor> CheckpointedSequentialImpl::rangeParameters(std::size_t begin,
                                                                    std::size_t end) const {
  std::vector<at::Tensor> params;
  for (std::size_t j = begin; j < end; ++j) {
    for (const at::Tensor& p : modules_[j].ptr()->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
  }
  return params;
}

at::Tensor CheckpointedSequentialImpl::forward(at::Tensor x) {
  const int s = segments();
  if (!c10::GradMode::is_enabled() || s <= 1) return runRange(0, modules_.size(), x);
  for (int i = 0; i + 1 < s; ++i) {
    const auto range = segmentRange(i);
    std::vector<at::Tensor> params = rangeParameters(range.first, range.second);
    if (!x.requires_grad() && params.empty()) {
      x = runRange(range.first, range.second, x);  // no graph to keep: nothing to save
      continue;
    }
    x = checkpoint(
        [this, range](const at::Tensor& in) { return runRange(range.first, range.second, in); }, x,
        params);
  }
  const auto last = segmentRange(s - 1);
  return runRange(last.first, last.second, x);
}

}  // namespace hearth
