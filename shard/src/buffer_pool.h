// buffer_pool.h (internal) — fixed-size fp32 buffers handed out and returned,
// allocated once (stage-3 gather buffers, reduce-scatter staging buffers).
//
// acquire() returns a free slot, or grows the pool by one buffer when none is
// free (counted in growths(); the steady state should not grow). Each slot
// may carry the future of the last task that used it: acquire() waits for it
// before handing the slot out, so a buffer is never refilled while a
// collective still reads it. Not thread-safe: one owner thread.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <future>
#include <vector>

namespace hearth::shard_detail {

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(std::size_t slots, std::size_t floatsPerSlot);

  int acquire();
  void release(int slot, std::shared_future<void> lastUse = {});
  float* data(int slot) { return buffers_[static_cast<std::size_t>(slot)].data_ptr<float>(); }
  at::Tensor& tensor(int slot) { return buffers_[static_cast<std::size_t>(slot)]; }
  std::size_t bytes() const;
  std::size_t growths() const { return growths_; }
  // Waits for every slot's last use (rethrows its error).
  void drain();

 private:
  std::size_t floats_ = 0;
  std::vector<at::Tensor> buffers_;
  std::vector<bool> busy_;
  std::vector<std::shared_future<void>> lastUse_;
  std::size_t growths_ = 0;
};

}  // namespace hearth::shard_detail
