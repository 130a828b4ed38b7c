// Runs one thread per rank of a group of collectives (Collectives,
// MeshCollectives, ...) and collects what each rank threw; shared by the
// collectives tests, whose ranks are threads.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace hearth {
namespace testing {

// Runs fn(rank, *ranks[rank]) on one thread per rank; returns each rank's
// exception (null where it returned).
template <typename Ranks, typename Fn>
std::vector<std::exception_ptr> runRanks(const Ranks& ranks, const Fn& fn) {
  std::vector<std::exception_ptr> errors(ranks.size());
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(static_cast<int>(r), *ranks[r]);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

// A test failure naming the rank and the message for each rank that threw.
inline void expectNoErrors(const std::vector<std::exception_ptr>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r) {
    if (!errors[r]) continue;
    try {
      std::rethrow_exception(errors[r]);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank " << r << " threw: " << e.what();
    }
  }
}

}  // namespace testing
}  // namespace hearth
