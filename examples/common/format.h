// common/format.h — human-readable numbers for the examples' progress lines.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::examples {

// 1536 -> "1.5 KiB", 3 * 2^20 -> "3.0 MiB" (binary units, one decimal).
std::string humanBytes(std::uint64_t bytes);
// printf-style formatting into a std::string.
std::string formatString(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace hearth::examples
