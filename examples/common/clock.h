// common/clock.h — wall-clock timing for the examples' progress lines
// (steady clock, so samples/s are not disturbed by clock changes).
// Pure functions; thread-safe.
#pragma once

#include <chrono>

namespace hearth::examples {

using Clock = std::chrono::steady_clock;

inline double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace hearth::examples
