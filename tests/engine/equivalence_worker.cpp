// A worker for the multi-process equivalence test: launched by hearthrun, it
// trains its rank's share over real Gloo/TCP, then compares the parameters
// with a single-process run on the concatenated batch that it computes
// itself. Exit 0 on a match, 1 on a mismatch or error.
//   equivalence_worker sgd|adam [accumulation_steps]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "dp_harness.h"
#include "hearth/runtime/init.h"

int main(int argc, char** argv) {
  using namespace hearth::testing;
  const std::string optimizer = argc > 1 ? argv[1] : "sgd";
  const int accumulation = argc > 2 ? std::atoi(argv[2]) : 1;
  constexpr int kSteps = 20;
  constexpr int kMicro = 4;
  try {
    at::set_num_threads(1);
    auto ctx = hearth::init(hearth::InitOptions{hearth::Millis(60000)});
    hearth::EngineOptions options;
    options.bucketCapMb = 1.0 / 1024;
    options.gradientAccumulationSteps = accumulation;
    options.timeout = hearth::Millis(60000);
    const auto mine = trainRank(ctx.collectives, optimizer, kSteps, kMicro, options);
    const auto reference =
        trainReference(optimizer, kSteps, ctx.worldSize() * kMicro * accumulation);
    const double diff = maxAbsDiff(mine, reference);
    std::printf("rank %d/%d %s accumulation %d: max |dp - reference| = %.3g\n", ctx.rank(),
                ctx.worldSize(), optimizer.c_str(), accumulation, diff);
    return diff < 2e-5 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "equivalence_worker: %s\n", e.what());
    return 1;
  }
}
