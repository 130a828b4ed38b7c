// BufferPool: reusable fp32 buffers (buffer_pool.h).
#include "buffer_pool.h"

namespace hearth::shard_detail {

BufferPool::BufferPool(std::size_t slots, std::size_t floatsPerSlot) : floats_(floatsPerSlot) {
  for (std::size_t i = 0; i < slots; ++i) {
    buffers_.push_back(at::zeros({static_cast<std::int64_t>(floats_)}, at::kFloat));
    busy_.push_back(false);
    lastUse_.emplace_back();
  }
}

int BufferPool::acquire() {
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    if (busy_[i]) continue;
    if (lastUse_[i].valid()) {
      std::shared_future<void> pending = std::move(lastUse_[i]);
      lastUse_[i] = {};
      pending.get();
    }
    busy_[i] = true;
    return static_cast<int>(i);
  }
  buffers_.push_back(at::zeros({static_cast<std::int64_t>(floats_)}, at::kFloat));
  busy_.push_back(true);
  lastUse_.emplace_back();
  ++growths_;
  return static_cast<int>(buffers_.size() - 1);
}

void BufferPool::release(int slot, std::shared_future<void> lastUse) {
  const auto i = static_cast<std::size_t>(slot);
  busy_[i] = false;
  lastUse_[i] = std::move(lastUse);
}

std::size_t BufferPool::bytes() const {
  return buffers_.size() * floats_ * sizeof(float);
}

void BufferPool::drain() {
  for (auto& pending : lastUse_) {
    if (!pending.valid()) continue;
    std::shared_future<void> wait = std::move(pending);
    pending = {};
    wait.get();
  }
}

}  // namespace hearth::shard_detail
