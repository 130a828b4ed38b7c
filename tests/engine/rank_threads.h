// Helpers shared by the thread-based data-parallel tests (tests/engine and
// tests/shard): torch's global generator guarded for use from rank threads,
// ranks run as threads with their failures rethrown, and the largest
// element-wise difference of two parameter lists.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hearth::testing {

// torch's global generator is shared by all threads: serialize its use.
inline std::mutex& globalGeneratorMutex() {
  static std::mutex mutex;
  return mutex;
}

// Runs `body(rank)` for every rank of `world` on a thread of its own and
// joins them all; then, if any body threw a std::exception, throws
// std::runtime_error("rank <r>: <what>") for the lowest such rank.
inline void runOnRankThreads(int world, const std::function<void(int)>& body) {
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    if (!errors[static_cast<std::size_t>(r)].empty()) {
      throw std::runtime_error("rank " + std::to_string(r) + ": " +
                               errors[static_cast<std::size_t>(r)]);
    }
  }
}

// max |a[i] - b[i]| over all elements of all tensors (a and b pair up).
inline double maxAbsDiff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  }
  return worst;
}

}  // namespace hearth::testing
