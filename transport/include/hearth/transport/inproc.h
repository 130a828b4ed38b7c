// hearth/transport/inproc.h — factory for the inproc Collectives backend:
// N ranks as threads of one process sharing memory. For fast tests (Gloo's
// base_test style) and as the reference the real backends are checked against.
//
// Contract
// - makeInprocGroup(n) returns n Collectives objects, element i being rank i.
//   Give each to its own thread; the objects share one hub (kept alive by all).
// - Results are bitwise identical on every rank (sums are taken in rank order).
// - Timeouts and abort() behave as collectives.h says; abort() on one rank
//   also fails the calls other ranks are blocked in, so no rank hangs.
#pragma once

#include <memory>
#include <vector>

#include "hearth/transport/collectives.h"

namespace hearth {

// REQUIRES: worldSize >= 1.
std::vector<std::unique_ptr<Collectives>> makeInprocGroup(int worldSize);

}  // namespace hearth
