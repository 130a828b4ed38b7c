#include "hearth/runtime/seed.h"

#include <ATen/Context.h>

namespace hearth {

std::uint64_t seedForRank(std::uint64_t base, int rank) {
  std::uint64_t z = base + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(rank) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;
}

void seedModel(std::uint64_t base) {
  at::manual_seed(base);
}

void seedData(std::uint64_t base, int rank) {
  at::manual_seed(seedForRank(base, rank));
}

}  // namespace hearth
