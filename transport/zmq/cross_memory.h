// Internal to transport/zmq: reading another process's memory on this host
// (Linux cross-memory attach, process_vm_readv) for same-host bulk lanes
// (bulk_lane.h "Cross-memory reads", docs/transport_protocol.md).
//
// Why: between two processes on one host a TCP connection copies every byte
// twice (sender into the kernel, kernel into the receiver); a cross-memory
// read copies it once, straight from the sender's buffer into the
// receiver's. On this machine that moves a byte for ~40% of the CPU.
//
// Contract
// - readProcessMemory never writes outside [into, into + size) and never
//   touches the other process's memory other than by reading it. The
//   kernel allows it only where the reader may ptrace the other process
//   (same user, or root; Yama and seccomp may forbid it): errors are
//   returned (false and why), never thrown.
// - FenceTable is the sender's side of "is the body I described still
//   there": one word per described body, live (a fresh nonzero value) until
//   revoked (0). Not thread-safe: one thread (the lane's owner) takes and
//   revokes; readers in other processes only read the words. A reader that
//   finds the word still holding the value it was told, after it copied the
//   body, copied a body its sender had not taken back yet: revoke() is a
//   sequentially consistent store made before the memory is released.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hearth {
namespace zmqlane {

// Copies `size` bytes at address `from` of process `pid` into `into`.
bool readProcessMemory(std::int64_t pid, std::uint64_t from, void* into, std::size_t size,
                       std::string* why);

// Whether this process may read memory this way at all (a read of its own
// memory: only a seccomp filter, e.g. a container's default, forbids that).
// False and why if not.
bool crossMemoryReadsPermitted(std::string* why);

// A live fence: the word at `address` holds `value` until revoked.
struct Fence {
  std::size_t slot;
  std::uint64_t address;
  std::uint64_t value;
};

class FenceTable {
 public:
  explicit FenceTable(std::size_t slots);
  // A free slot made live with a value never used before (and never 0);
  // nullopt when every slot is live.
  std::optional<Fence> take();
  // Slot `slot` holds 0 from now on and is free again.
  void revoke(std::size_t slot);
  std::size_t live() const { return size_ - free_.size(); }

 private:
  std::size_t size_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
  std::vector<std::size_t> free_;
  std::uint64_t next_;  // the next value (random start: stale readers never match)
};

}  // namespace zmqlane
}  // namespace hearth
