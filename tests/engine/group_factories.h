// Collectives groups for thread-based tests: inproc, and real Gloo over
// loopback TCP with an in-memory c10d store (Gloo's base_test pattern).
#pragma once

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hearth/runtime/gloo_backend.h"
#include "hearth/transport/inproc.h"

namespace hearth::testing {

inline std::vector<std::shared_ptr<Collectives>> inprocGroup(int world) {
  std::vector<std::shared_ptr<Collectives>> group;
  for (auto& c : makeInprocGroup(world)) group.push_back(std::move(c));
  return group;
}

inline std::vector<std::shared_ptr<Collectives>> glooGroup(int world, Millis timeout) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::shared_ptr<Collectives>> group(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      group[r] =
          makeGlooCollectives(makeGlooProcessGroup(store, r, world, timeout, "127.0.0.1"), timeout);
    });
  }
  for (auto& t : threads) t.join();
  return group;
}

inline std::vector<std::shared_ptr<Collectives>> makeGroup(const std::string& backend, int world,
                                                           Millis timeout = Millis(30000)) {
  return backend == "gloo" ? glooGroup(world, timeout) : inprocGroup(world);
}

// Decorator that counts the allreduce, reduce-scatter (dense and sparse) and
// allgatherInPlace calls reaching the backend; forwards everything.
class CountingCollectives final : public Collectives {
 public:
  explicit CountingCollectives(std::shared_ptr<Collectives> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int worldSize() const override { return inner_->worldSize(); }
  std::string backendName() const override { return inner_->backendName(); }
  void allreduceSum(float* data, std::size_t count, Millis timeout) override {
    ++allreduceCalls;
    inner_->allreduceSum(data, count, timeout);
  }
  void broadcast(void* data, std::size_t bytes, int root, Millis timeout) override {
    inner_->broadcast(data, bytes, root, timeout);
  }
  std::vector<std::vector<std::uint8_t>> allgatherBytes(const std::vector<std::uint8_t>& mine,
                                                        Millis timeout) override {
    return inner_->allgatherBytes(mine, timeout);
  }
  void reduceScatterSum(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    ++reduceScatterCalls;
    inner_->reduceScatterSum(data, bounds, timeout);
  }
  void allgatherInPlace(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    ++allgatherCalls;
    inner_->allgatherInPlace(data, bounds, timeout);
  }
  void sparseReduceScatterAdd(const std::vector<std::uint32_t>& indices,
                              const std::vector<float>& values,
                              const std::vector<std::size_t>& bounds, float* owned,
                              Millis timeout) override {
    ++sparseReduceScatterCalls;
    inner_->sparseReduceScatterAdd(indices, values, bounds, owned, timeout);
  }
  void barrier(Millis timeout) override { inner_->barrier(timeout); }
  void abort() override { inner_->abort(); }

  std::atomic<int> allreduceCalls{0};
  std::atomic<int> reduceScatterCalls{0};
  std::atomic<int> allgatherCalls{0};
  std::atomic<int> sparseReduceScatterCalls{0};

 private:
  std::shared_ptr<Collectives> inner_;
};

}  // namespace hearth::testing
