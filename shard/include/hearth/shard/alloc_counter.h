// hearth/shard/alloc_counter.h — counts LibTorch CPU allocations, for memory
// benchmarks and tests (activation checkpointing, ZeRO).
//
// AllocationCounter::instance().install() puts a counting allocator in front
// of the current c10 CPU allocator (c10::SetCPUAllocator). Every allocate() is
// forwarded to the previous allocator; the returned DataPtr is wrapped so that
// its deleter updates the counters and then runs the original deleter.
//
// What is counted: every storage the CPU allocator hands out while installed,
// i.e. every CPU tensor allocation through ATen (at::empty and everything built
// on it: operator outputs, autograd temporaries and saved activations,
// gradients, optimizer state, resize_ growth), including zero-byte ones, and
// raw_allocate() blocks (some kernels, e.g. the oneDNN-backed gelu, take
// their scratch space from the CPU allocator that way).
// A storage allocated while installed is counted as freed when it is released,
// even if that happens after uninstall().
// What is not counted: memory that does not go through c10's CPU allocator —
// plain malloc/new (std::vector, at::from_blob over caller memory, scratch
// buffers that BLAS/MKL/oneDNN allocate themselves, the allocator's own bookkeeping), pinned or
// CUDA memory, storages allocated before install() (their frees are not
// counted either), and allocator-internal padding (bytes are the requested
// sizes). The figures are exact for what they count, not the process RSS.
//
// The counters are process-wide atomics: safe to update from any thread
// (autograd, DataLoader, Engine threads). install()/uninstall() are
// serialized by a mutex; install() is idempotent. uninstall() restores the
// previous allocator only if the counting one is still the current one
// (otherwise it throws std::logic_error rather than drop an allocator that was
// installed on top). The allocator object is never destroyed, so storages that
// outlive uninstall() or static destruction stay safe to free.
//
// Each counted block carries a 64-byte header in front of the caller's bytes
// (not counted), so that the DataPtr keeps data == context and raw_allocate()
// keeps working (oneDNN/MKL kernels use it).
#pragma once

#include <cstdint>

namespace hearth {

class AllocationCounter {
 public:
  struct Snapshot {
    std::uint64_t allocations = 0;  // allocate() calls since process start (while installed)
    std::uint64_t frees = 0;        // counted storages released so far
    std::int64_t liveBytes = 0;     // bytes of counted storages not yet released
    std::int64_t peakBytes = 0;     // max of liveBytes since install / the last resetPeak()
  };

  static AllocationCounter& instance();

  // Puts the counting allocator in front of the current CPU allocator.
  // Idempotent. Throws std::runtime_error if c10 keeps a higher-priority
  // allocator in place.
  void install();
  // Restores the allocator that was current at install(). No-op when not
  // installed. Counters keep their values.
  void uninstall();
  bool installed() const;

  Snapshot snapshot() const;
  // Sets peakBytes to the current liveBytes.
  void resetPeak();
  // Raises peakBytes to at least `bytes` (used by AllocationScope to restore
  // an enclosing scope's peak).
  void raisePeak(std::int64_t bytes);

 private:
  AllocationCounter() = default;
};

// RAII measurement of one region (installs the counter if needed).
//   AllocationScope scope;
//   ... work ...
//   scope.allocations();   // allocate() calls since construction
//   scope.peakBytesAbove(); // max(live) - live at construction, >= 0
// Scopes nest on one thread (the inner scope restores the outer's running
// peak when it ends). Concurrent scopes on different threads see each
// other's allocations, because the counters are process-wide.
class AllocationScope {
 public:
  AllocationScope();
  ~AllocationScope();
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;

  std::uint64_t allocations() const;
  std::uint64_t frees() const;
  // Peak live bytes in this scope minus the live bytes at its start.
  std::int64_t peakBytesAbove() const;
  // Live bytes now minus live bytes at the start (negative if it freed more).
  std::int64_t liveBytesDelta() const;

 private:
  AllocationCounter::Snapshot start_;
  std::int64_t outerPeak_;
};

}  // namespace hearth
