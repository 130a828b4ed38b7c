#include "hearth/runtime/bucket_plan.h"

#include <map>
#include <stdexcept>

namespace hearth {

BucketPlan planBuckets(const std::vector<std::size_t>& tensorNumels, std::size_t capElements) {
  return planBuckets(tensorNumels, capElements, std::vector<int>(tensorNumels.size(), 0));
}

BucketPlan planBuckets(const std::vector<std::size_t>& tensorNumels, std::size_t capElements,
                       const std::vector<int>& groups) {
  if (capElements == 0) throw std::invalid_argument("planBuckets: capElements must be >= 1");
  if (groups.size() != tensorNumels.size()) {
    throw std::invalid_argument("planBuckets: one group per tensor is required");
  }
  BucketPlan plan;
  plan.bucketOfTensor.assign(tensorNumels.size(), 0);
  std::map<int, Bucket> open;
  auto close = [&](int group) {
    auto it = open.find(group);
    if (it == open.end()) return;
    if (!it->second.slots.empty()) {
      for (const auto& slot : it->second.slots) {
        plan.bucketOfTensor[slot.tensorIndex] = plan.buckets.size();
      }
      plan.buckets.push_back(std::move(it->second));
    }
    open.erase(it);
  };
  for (std::size_t i = tensorNumels.size(); i-- > 0;) {
    const std::size_t numel = tensorNumels[i];
    const int group = groups[i];
    auto it = open.find(group);
    if (it != open.end() && it->second.numel + numel > capElements) close(group);
    Bucket& current = open[group];
    current.group = group;
    current.slots.push_back({i, current.numel, numel});
    current.numel += numel;
    if (current.numel >= capElements) close(group);
  }
  // Flush what is still open in the order the buckets become ready: a bucket
  // is ready when its lowest-index tensor is, and readiness goes downwards.
  while (!open.empty()) {
    auto readyFirst = open.begin();
    for (auto it = open.begin(); it != open.end(); ++it) {
      if (it->second.slots.back().tensorIndex > readyFirst->second.slots.back().tensorIndex) {
        readyFirst = it;
      }
    }
    close(readyFirst->first);
  }
  return plan;
}

}  // namespace hearth
