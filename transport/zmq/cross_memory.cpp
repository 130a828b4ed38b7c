// Cross-memory reads and the sender's fence words (cross_memory.h).
#include "cross_memory.h"

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace hearth {
namespace zmqlane {

bool readProcessMemory(std::int64_t pid, std::uint64_t from, void* into, std::size_t size,
                       std::string* why) {
  auto* at = static_cast<std::uint8_t*>(into);
  std::size_t done = 0;
  while (done < size) {
    iovec local{at + done, size - done};
    iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(from + done)), size - done};
    const ssize_t n = ::process_vm_readv(static_cast<pid_t>(pid), &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *why = std::string("cross-memory read of process ") + std::to_string(pid) + ": " +
             (n < 0 ? std::strerror(errno) : "nothing read");
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool crossMemoryReadsPermitted(std::string* why) {
  static const std::uint64_t probe = 0x6865'6172'7468'4c31;
  std::uint64_t seen = 0;
  return readProcessMemory(::getpid(),
                           static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&probe)),
                           &seen, sizeof seen, why) &&
         seen == probe;
}

FenceTable::FenceTable(std::size_t slots)
    : size_(slots), words_(std::make_unique<std::atomic<std::uint64_t>[]>(slots)) {
  for (std::size_t i = 0; i < slots; ++i) words_[i].store(0);
  free_.reserve(slots);
  for (std::size_t i = slots; i > 0; --i) free_.push_back(i - 1);
  std::random_device device;
  next_ = (std::uint64_t{device()} << 32) | device();
}

std::optional<Fence> FenceTable::take() {
  if (free_.empty()) return std::nullopt;
  const std::size_t slot = free_.back();
  free_.pop_back();
  if (++next_ == 0) ++next_;
  words_[slot].store(next_);
  return Fence{slot, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&words_[slot])),
               next_};
}

void FenceTable::revoke(std::size_t slot) {
  words_[slot].store(0, std::memory_order_seq_cst);
  free_.push_back(slot);
}

}  // namespace zmqlane
}  // namespace hearth
