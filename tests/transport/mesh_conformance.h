// Conformance suite for hearth::Mesh backends (TensorPipe style): the tests
// live in mesh_conformance.cpp and run against every backend that
// instantiates them, one line per backend:
//
//   INSTANTIATE_TEST_SUITE_P(Zmq, MeshConformance, ::testing::Values(zmqMeshBackend()),
//                            meshBackendName);
//
// A backend supplies a factory for a world of N ranks, a way to crash one rank
// as abruptly as it can, the size of the large-message test (>= 256 MiB for
// the real suite) and how long survivors may take to notice a crashed peer.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hearth/transport/mesh.h"

namespace hearth {
namespace testing {

struct MeshWorld {
  std::vector<std::unique_ptr<Mesh>> ranks;  // element i is rank i
  // Crashes rank r (kill -9 semantics). Empty: ranks[r]->abort() is used.
  std::function<void(int)> kill;
};

struct MeshBackend {
  std::string name;
  std::function<MeshWorld(int worldSize)> make;
  std::size_t largeMessageBytes = std::size_t{256} << 20;
  // Upper bound for survivors to see a killed peer as lost (heartbeat-driven
  // backends need more than inproc).
  Millis peerLossBound{1000};
};

class MeshConformance : public ::testing::TestWithParam<MeshBackend> {
 protected:
  MeshWorld makeWorld(int worldSize) {
    MeshWorld world = GetParam().make(worldSize);
    EXPECT_EQ(static_cast<int>(world.ranks.size()), worldSize);
    return world;
  }
  static void killRank(MeshWorld& world, int r) {
    if (world.kill) {
      world.kill(r);
    } else {
      world.ranks[r]->abort();
    }
  }
};

inline std::string meshBackendName(const ::testing::TestParamInfo<MeshBackend>& info) {
  return info.param.name;
}

// Byte/string conversions and elapsed milliseconds, shared by the Mesh tests.
inline MeshBytes bytesOf(const std::string& s) {
  return MeshBytes(s.begin(), s.end());
}
inline std::string stringOf(const MeshBytes& b) {
  return std::string(b.begin(), b.end());
}
inline long msSince(std::chrono::steady_clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace testing
}  // namespace hearth
