#include "hearth/runtime/bucket_plan.h"

#include <stdexcept>

namespace hearth {

BucketPlan planBuckets(const std::vector<std::size_t>& tensorNumels, std::size_t capElements) {
  if (capElements == 0) throw std::invalid_argument("planBuckets: capElements must be >= 1");
  BucketPlan plan;
  plan.bucketOfTensor.assign(tensorNumels.size(), 0);
  Bucket current;
  auto close = [&] {
    if (!current.slots.empty()) plan.buckets.push_back(std::move(current));
    current = Bucket{};
  };
  for (std::size_t i = tensorNumels.size(); i-- > 0;) {
    const std::size_t numel = tensorNumels[i];
    if (!current.slots.empty() && current.numel + numel > capElements) close();
    current.slots.push_back({i, current.numel, numel});
    current.numel += numel;
    plan.bucketOfTensor[i] = plan.buckets.size();
    if (current.numel >= capElements) close();
  }
  close();
  return plan;
}

}  // namespace hearth
