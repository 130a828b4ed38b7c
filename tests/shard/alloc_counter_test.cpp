// AllocationCounter / AllocationScope: counts at::empty of a known size, peak
// tracking, frees, nothing counted when nothing is allocated, autograd works
// through the counting allocator.
#include "hearth/shard/alloc_counter.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

namespace hearth {
namespace {

constexpr std::int64_t kFloats = 1 << 16;  // 256 KiB of float
constexpr std::int64_t kBytes = kFloats * 4;

TEST(AllocationCounter, InstallIsIdempotentAndForwards) {
  AllocationCounter& counter = AllocationCounter::instance();
  counter.install();
  c10::Allocator* current = c10::GetCPUAllocator();
  counter.install();
  EXPECT_EQ(c10::GetCPUAllocator(), current);
  EXPECT_TRUE(counter.installed());
  at::Tensor t = at::arange(10, at::kFloat);
  EXPECT_FLOAT_EQ(t.sum().item<float>(), 45.0f);
}

TEST(AllocationCounter, CountsEmptyOfKnownSize) {
  AllocationCounter& counter = AllocationCounter::instance();
  counter.install();
  const auto before = counter.snapshot();
  {
    at::Tensor t = at::empty({kFloats}, at::kFloat);
    const auto during = counter.snapshot();
    EXPECT_EQ(during.allocations - before.allocations, 1u);
    EXPECT_EQ(during.liveBytes - before.liveBytes, kBytes);
    EXPECT_GE(during.peakBytes, during.liveBytes);
  }
  const auto after = counter.snapshot();
  EXPECT_EQ(after.frees - before.frees, 1u);
  EXPECT_EQ(after.liveBytes, before.liveBytes);
}

TEST(AllocationCounter, PeakTracksAndResets) {
  AllocationScope scope;
  {
    at::Tensor a = at::empty({kFloats}, at::kFloat);
    at::Tensor b = at::empty({2 * kFloats}, at::kFloat);
  }
  at::Tensor c = at::empty({kFloats}, at::kFloat);
  EXPECT_EQ(scope.allocations(), 3u);
  EXPECT_EQ(scope.frees(), 2u);
  EXPECT_EQ(scope.peakBytesAbove(), 3 * kBytes);
  EXPECT_EQ(scope.liveBytesDelta(), kBytes);

  AllocationCounter& counter = AllocationCounter::instance();
  counter.resetPeak();
  const auto s = counter.snapshot();
  EXPECT_EQ(s.peakBytes, s.liveBytes);
}

TEST(AllocationCounter, NestedScopeKeepsOuterPeak) {
  AllocationScope outer;
  { at::Tensor big = at::empty({4 * kFloats}, at::kFloat); }
  {
    AllocationScope inner;
    at::Tensor small = at::empty({kFloats}, at::kFloat);
    EXPECT_EQ(inner.peakBytesAbove(), kBytes);
  }
  EXPECT_EQ(outer.peakBytesAbove(), 4 * kBytes);
  EXPECT_EQ(outer.allocations(), 2u);
}

TEST(AllocationCounter, NothingCountedWhenNothingAllocated) {
  at::Tensor t = at::ones({16}, at::kFloat);
  AllocationScope scope;
  float* p = t.data_ptr<float>();
  p[0] = 3.0f;
  at::Tensor view = t.narrow(0, 0, 4);  // a view shares the storage
  EXPECT_EQ(scope.allocations(), 0u);
  EXPECT_EQ(scope.frees(), 0u);
  EXPECT_EQ(scope.peakBytesAbove(), 0);
  EXPECT_EQ(scope.liveBytesDelta(), 0);
}

TEST(AllocationCounter, CountsAutogradTemporaries) {
  at::Tensor w = at::randn({64, 64}).set_requires_grad(true);
  at::Tensor x = at::randn({8, 64});
  AllocationScope scope;
  at::Tensor loss = at::tanh(at::matmul(x, w)).sum();
  loss.backward();
  EXPECT_GE(scope.allocations(), 3u);  // matmul out, tanh out, the grad at least
  ASSERT_TRUE(w.grad().defined());
  EXPECT_GE(scope.liveBytesDelta(), 64 * 64 * 4);  // w.grad stays alive
}

TEST(AllocationCounter, RawAllocateWorksAndIsCounted) {
  AllocationScope scope;
  c10::Allocator* allocator = c10::GetCPUAllocator();
  void* p = allocator->raw_allocate(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
  static_cast<char*>(p)[999] = 1;
  EXPECT_EQ(scope.liveBytesDelta(), 1000);
  allocator->raw_deallocate(p);
  EXPECT_EQ(scope.allocations(), 1u);
  EXPECT_EQ(scope.frees(), 1u);
  EXPECT_EQ(scope.liveBytesDelta(), 0);
  // gelu's backward and forward go through raw_allocate on some builds.
  at::Tensor x = at::randn({32, 32}).set_requires_grad(true);
  at::gelu(x).sum().backward();
  EXPECT_TRUE(x.grad().defined());
}

TEST(AllocationCounter, UninstallRestoresAndStillCountsLateFrees) {
  AllocationCounter& counter = AllocationCounter::instance();
  counter.install();
  at::Tensor kept = at::empty({kFloats}, at::kFloat);
  const auto mid = counter.snapshot();
  counter.uninstall();
  EXPECT_FALSE(counter.installed());
  at::Tensor uncounted = at::empty({kFloats}, at::kFloat);
  EXPECT_EQ(counter.snapshot().allocations, mid.allocations);
  kept = at::Tensor();
  EXPECT_EQ(counter.snapshot().frees, mid.frees + 1);
  EXPECT_EQ(counter.snapshot().liveBytes, mid.liveBytes - kBytes);
  counter.uninstall();  // no-op
  counter.install();
  EXPECT_TRUE(counter.installed());
}

}  // namespace
}  // namespace hearth
