// Counting CPU allocator: forwards to the previous c10 CPU allocator and wraps
// each DataPtr so that its release is counted.
#include "hearth/shard/alloc_counter.h"

#include <atomic>
#include <mutex>
#include <new>
#include <stdexcept>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

namespace hearth {
namespace {

// Priority used for both install and restore; c10 replaces an allocator only
// when the new priority is >= the current one.
constexpr std::uint8_t kPriority = 0;

struct Counters {
  std::atomic<std::uint64_t> allocations{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::int64_t> live{0};
  std::atomic<std::int64_t> peak{0};

  void raisePeak(std::int64_t value) {
    std::int64_t seen = peak.load(std::memory_order_relaxed);
    while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }
};

Counters& counters() {
  static Counters* c = new Counters();  // never destroyed: deleters may run at exit
  return *c;
}

// Each counted block is allocated kHeader bytes larger than asked for; the
// header in front of the caller's bytes holds the previous allocator's DataPtr
// and the requested size. The returned DataPtr has data == context (the
// caller's bytes), so raw_allocate()/raw_deallocate() work, as ATen's oneDNN
// and MKL paths require. kHeader keeps c10's 64-byte alignment.
constexpr std::size_t kHeader = 64;

struct Header {
  c10::DataPtr original;
  std::int64_t bytes;
};
static_assert(sizeof(Header) <= kHeader, "header must fit in front of the data");

void countingDelete(void* data) {
  if (data == nullptr) return;
  auto* header = reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader);
  Counters& c = counters();
  c.live.fetch_sub(header->bytes, std::memory_order_relaxed);
  c.frees.fetch_add(1, std::memory_order_relaxed);
  c10::DataPtr original = std::move(header->original);
  header->~Header();
  // `original` goes out of scope here: the previous allocator frees the block.
}

class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr original = previous_->allocate(n + kHeader);
    char* base = static_cast<char*>(original.get());
    if (base == nullptr) throw std::bad_alloc();
    const c10::Device device = original.device();
    const auto bytes = static_cast<std::int64_t>(n);
    new (base) Header{std::move(original), bytes};
    void* data = base + kHeader;
    Counters& c = counters();
    c.allocations.fetch_add(1, std::memory_order_relaxed);
    c.raisePeak(c.live.fetch_add(bytes, std::memory_order_relaxed) + bytes);
    return c10::DataPtr(data, data, &countingDelete, device);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &countingDelete; }

  void setPrevious(c10::Allocator* previous) { previous_ = previous; }
  c10::Allocator* previous() const { return previous_; }

 private:
  c10::Allocator* previous_ = nullptr;
};

std::mutex& installMutex() {
  static std::mutex* m = new std::mutex();
  return *m;
}

CountingAllocator& countingAllocator() {
  static CountingAllocator* a = new CountingAllocator();  // never destroyed
  return *a;
}

bool installedLocked() {
  return c10::GetCPUAllocator() == &countingAllocator();
}

}  // namespace

AllocationCounter& AllocationCounter::instance() {
  static AllocationCounter* counter = new AllocationCounter();
  return *counter;
}

void AllocationCounter::install() {
  std::lock_guard<std::mutex> lock(installMutex());
  if (installedLocked()) return;
  CountingAllocator& counting = countingAllocator();
  counting.setPrevious(c10::GetCPUAllocator());
  c10::SetCPUAllocator(&counting, kPriority);
  if (!installedLocked()) {
    throw std::runtime_error(
        "AllocationCounter::install: c10 kept a higher-priority CPU allocator in place");
  }
  Counters& c = counters();
  c.peak.store(c.live.load());
}

void AllocationCounter::uninstall() {
  std::lock_guard<std::mutex> lock(installMutex());
  CountingAllocator& counting = countingAllocator();
  if (counting.previous() == nullptr) return;  // never installed
  if (!installedLocked()) {
    if (c10::GetCPUAllocator() == counting.previous()) return;  // already uninstalled
    throw std::logic_error(
        "AllocationCounter::uninstall: another CPU allocator was installed on top");
  }
  c10::SetCPUAllocator(counting.previous(), kPriority);
}

bool AllocationCounter::installed() const {
  std::lock_guard<std::mutex> lock(installMutex());
  return installedLocked();
}

AllocationCounter::Snapshot AllocationCounter::snapshot() const {
  const Counters& c = counters();
  Snapshot s;
  s.allocations = c.allocations.load();
  s.frees = c.frees.load();
  s.liveBytes = c.live.load();
  s.peakBytes = c.peak.load();
  return s;
}

void AllocationCounter::resetPeak() {
  Counters& c = counters();
  c.peak.store(c.live.load());
}

void AllocationCounter::raisePeak(std::int64_t bytes) {
  counters().raisePeak(bytes);
}

AllocationScope::AllocationScope() {
  AllocationCounter& counter = AllocationCounter::instance();
  counter.install();
  outerPeak_ = counter.snapshot().peakBytes;
  counter.resetPeak();
  start_ = counter.snapshot();
}

AllocationScope::~AllocationScope() {
  AllocationCounter::instance().raisePeak(outerPeak_);
}

std::uint64_t AllocationScope::allocations() const {
  return AllocationCounter::instance().snapshot().allocations - start_.allocations;
}

std::uint64_t AllocationScope::frees() const {
  return AllocationCounter::instance().snapshot().frees - start_.frees;
}

std::int64_t AllocationScope::peakBytesAbove() const {
  const std::int64_t above = AllocationCounter::instance().snapshot().peakBytes - start_.liveBytes;
  return above > 0 ? above : 0;
}

std::int64_t AllocationScope::liveBytesDelta() const {
  return AllocationCounter::instance().snapshot().liveBytes - start_.liveBytes;
}

}  // namespace hearth
