// hearth/runtime/seed.h — deterministic seeding.
//
// seedForRank(base, rank) mixes a base seed with a rank (splitmix64), so ranks
// draw different but reproducible data orders. seedModel(base) seeds torch's
// global generator identically on every rank (use before building the model;
// the Engine also broadcasts rank 0's parameters). seedData(base, rank) seeds
// it per rank. Not thread-safe with respect to other users of torch's global
// generator.
#pragma once

#include <cstdint>

namespace hearth {

std::uint64_t seedForRank(std::uint64_t base, int rank);
void seedModel(std::uint64_t base);
void seedData(std::uint64_t base, int rank);

}  // namespace hearth
