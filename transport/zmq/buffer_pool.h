// Internal to transport/zmq: recycled payload buffers for bulk lanes.
//
// Why: a lane receives every frame into a buffer of its own, and the frames
// of a ring collective live for a few chunk times (read, reduced, forwarded,
// kept until acknowledged). Straight from malloc those megabyte blocks come
// back as fresh pages again and again (glibc unmaps freed thread-arena heaps):
// a page fault and a zeroed page per 4 KiB received. The pool keeps freed
// buffers and hands them out again while they are hot.
//
// Contract
// - take() is thread-safe; buffers come back from any thread when the last
//   MeshBytes holding them goes away, also after the pool itself is gone
//   (then they are simply freed).
// - Bytes are uninitialized. Sizes below kMinPooledBytes are not pooled.
// - At most maxPooledBytes of free buffers are kept; the rest go back to
//   malloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "hearth/transport/mesh_bytes.h"

namespace hearth {
namespace zmqlane {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static constexpr std::size_t kMinPooledBytes = 64 * 1024;

  static std::shared_ptr<BufferPool> create(std::size_t maxPooledBytes) {
    return std::shared_ptr<BufferPool>(new BufferPool(maxPooledBytes));
  }
  // `size` uninitialized bytes.
  MeshBytes take(std::size_t size);
  std::size_t pooledBytes();
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

 private:
  explicit BufferPool(std::size_t maxPooledBytes) : maxPooledBytes_(maxPooledBytes) {}
  void give(std::uint8_t* data, std::size_t size);

  const std::size_t maxPooledBytes_;
  std::mutex mu_;
  std::map<std::size_t, std::vector<std::uint8_t*>> free_;  // by size
  std::size_t pooledBytes_ = 0;
};

}  // namespace zmqlane
}  // namespace hearth
