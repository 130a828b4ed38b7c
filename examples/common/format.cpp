// Number formatting for progress lines.
#include "common/format.h"

#include <cstdarg>
#include <cstdio>
#include <vector>

namespace hearth::examples {

std::string humanBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? formatString("%llu B", static_cast<unsigned long long>(bytes))
                   : formatString("%.1f %s", value, kUnits[unit]);
}

std::string formatString(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  const int size = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::vector<char> buffer(static_cast<std::size_t>(size > 0 ? size : 0) + 1);
  std::vsnprintf(buffer.data(), buffer.size(), format, args);
  va_end(args);
  return std::string(buffer.data(), static_cast<std::size_t>(size > 0 ? size : 0));
}

}  // namespace hearth::examples
