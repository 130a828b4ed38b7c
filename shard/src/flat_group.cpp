// FlatGroup: contiguous parameter/gradient buffers and views (flat_group.h).
#include "flat_group.h"

#include <ATen/core/grad_mode.h>
#include <c10/core/Storage.h>

#include <stdexcept>

namespace hearth::shard_detail {
namespace {

at::Tensor viewOf(const at::Tensor& flat, const FlatEntry& entry) {
  return flat
      .narrow(0, static_cast<std::int64_t>(entry.offset), static_cast<std::int64_t>(entry.numel))
      .view(entry.shape);
}

}  // namespace

FlatGroup makeFlatGroup(const std::vector<std::string>& names,
                        const std::vector<at::Tensor>& params,
                        const std::vector<std::size_t>& paramIds, int worldSize, int rank,
                        std::size_t alignElements, bool withFullGrad) {
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& p : params) shapes.push_back(p.sizes().vec());
  FlatGroup group;
  group.layout = FlatLayout(names, shapes, worldSize, alignElements);
  group.params = params;
  group.paramIds = paramIds;
  group.shard = group.layout.shardRange(rank);
  group.bounds = group.layout.shardBounds();
  at::NoGradGuard noGrad;
  const auto padded = static_cast<std::int64_t>(group.layout.paddedNumel());
  group.full = at::zeros({padded}, at::kFloat);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const FlatEntry& entry = group.layout.entries()[i];
    at::Tensor view = viewOf(group.full, entry);
    view.copy_(params[i].detach());
    group.params[i].set_data(view);
  }
  const auto lo = static_cast<std::int64_t>(group.shard.lo);
  const auto size = static_cast<std::int64_t>(group.shard.size());
  group.shardParam = group.full.narrow(0, lo, size);
  if (withFullGrad) {
    group.fullGrad = at::zeros({padded}, at::kFloat);
    group.shardGrad = group.fullGrad.narrow(0, lo, size);
    for (std::size_t i = 0; i < params.size(); ++i) {
      group.params[i].mutable_grad() = viewOf(group.fullGrad, group.layout.entries()[i]);
    }
  } else {
    group.shardGrad = at::zeros({size}, at::kFloat);
  }
  group.shardParam.set_requires_grad(true);
  group.shardParam.mutable_grad() = group.shardGrad;
  return group;
}

void partition(FlatGroup& group) {
  at::NoGradGuard noGrad;
  at::Tensor own = group.shardParam.detach().clone();
  own.set_requires_grad(true);
  own.mutable_grad() = group.shardGrad;
  group.shardParam = own;
  group.partitioned = true;
  detach(group);
}

void attach(FlatGroup& group, float* data) {
  group.full.storage().set_data_ptr_noswap(c10::DataPtr(data, c10::Device(c10::kCPU)));
}

void detach(FlatGroup& group) {
  group.full.storage().set_data_ptr_noswap(c10::DataPtr(nullptr, c10::Device(c10::kCPU)));
}

void adoptGradViews(FlatGroup& group) {
  if (!group.fullGrad.defined()) return;
  at::NoGradGuard noGrad;
  for (std::size_t i = 0; i < group.params.size(); ++i) {
    at::Tensor& grad = group.params[i].mutable_grad();
    at::Tensor view = viewOf(group.fullGrad, group.layout.entries()[i]);
    if (grad.defined() && grad.data_ptr() == view.data_ptr()) continue;
    if (grad.defined()) view.copy_(grad);
    grad = view;
  }
}

}  // namespace hearth::shard_detail
