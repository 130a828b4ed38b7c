// Recycled payload buffers for bulk lanes.
#include "buffer_pool.h"

namespace hearth {
namespace zmqlane {

MeshBytes BufferPool::take(std::size_t size) {
  if (size == 0) return MeshBytes();
  std::uint8_t* data = nullptr;
  if (size >= kMinPooledBytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      data = it->second.back();
      it->second.pop_back();
      pooledBytes_ -= size;
    }
  }
  if (data == nullptr) data = new std::uint8_t[size];  // uninitialized
  std::weak_ptr<BufferPool> pool = weak_from_this();
  std::shared_ptr<std::uint8_t> owner(data, [pool, size](std::uint8_t* p) {
    if (auto alive = pool.lock()) {
      alive->give(p, size);
    } else {
      delete[] p;
    }
  });
  return MeshBytes::adopt(data, size, std::move(owner));
}

void BufferPool::give(std::uint8_t* data, std::size_t size) {
  if (size >= kMinPooledBytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pooledBytes_ + size <= maxPooledBytes_) {
      free_[size].push_back(data);
      pooledBytes_ += size;
      return;
    }
  }
  delete[] data;
}

BufferPool::~BufferPool() {
  for (auto& [size, buffers] : free_) {
    for (std::uint8_t* data : buffers) delete[] data;
  }
}

std::size_t BufferPool::pooledBytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return pooledBytes_;
}

}  // namespace zmqlane
}  // namespace hearth
