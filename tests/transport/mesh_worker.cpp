// hearth_mesh_worker: one node of a zmq Mesh run for scripted tests (the NAT
// test bed's relay-restart test). No torch. Joins the relay, prints its paths,
// runs PHASE1 allreduces of rank-unique data (checking every sum), prints
// "phase1 done", waits for GO_FILE to exist (the script restarts the relay
// meanwhile), runs PHASE2 more allreduces, prints "phase2 done" and exits 0.
// Any failure prints one line and exits 1.
//
//   hearth_mesh_worker RELAY RUN_ID RANK WORLD PHASE1 PHASE2 GO_FILE
// Environment: HEARTH_JOIN_TOKEN, HEARTH_LISTEN / HEARTH_ADVERTISE (direct
// links), HEARTH_LANE_PORT (their bulk lanes' port), HEARTH_SAME_HOST_LINKS=1
// (links over loopback with members on this host), HEARTH_ALLOW_PLAINTEXT=1 (the test bed is not
// loopback).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

void allreduces(hearth::MeshCollectives& coll, int rank, int world, int count) {
  const int n = 1 << 18;  // 1 MiB of floats: a chunk per ring step at world 3
  for (int i = 0; i < count; ++i) {
    std::vector<float> data(n, float(rank + 1 + i));
    coll.allreduceSum(data.data(), data.size(), hearth::Millis(60000));
    const float want = float(world) * float(world + 1) / 2 + float(world * i);
    for (float v : data) {
      if (v != want) {
        throw std::runtime_error("allreduce " + std::to_string(i) + ": got " + std::to_string(v) +
                                 ", want " + std::to_string(want));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s RELAY RUN_ID RANK WORLD PHASE1 PHASE2 GO_FILE\n", argv[0]);
    return 2;
  }
  const int rank = std::atoi(argv[3]);
  const int world = std::atoi(argv[4]);
  try {
    hearth::ZmqMeshOptions options;
    options.relayEndpoint = argv[1];
    options.runId = argv[2];
    options.joinToken = env("HEARTH_JOIN_TOKEN");
    options.requestedRank = rank;
    options.allowPlaintext = env("HEARTH_ALLOW_PLAINTEXT") == "1";
    options.listenEndpoint = env("HEARTH_LISTEN");
    if (!env("HEARTH_LANE_PORT").empty())
      options.lanePort = std::atoi(env("HEARTH_LANE_PORT").c_str());
    options.advertiseEndpoint = env("HEARTH_ADVERTISE");
    options.sameHostLinks = env("HEARTH_SAME_HOST_LINKS") == "1";
    options.heartbeatInterval = hearth::Millis(200);
    options.heartbeatTimeout = hearth::Millis(3000);
    options.relayReconnectTimeout = hearth::Millis(30000);
    options.joinTimeout = hearth::Millis(30000);
    std::shared_ptr<hearth::Mesh> mesh = hearth::connectZmqMesh(options);
    std::string paths;
    for (int p = 0; p < mesh->worldSize(); ++p) {
      paths += (p == 0 ? "" : " ") + std::to_string(p) + "=" + mesh->pathTo(p);
    }
    std::printf("rank %d paths: %s\n", rank, paths.c_str());
    std::fflush(stdout);
    auto coll = hearth::makeMeshCollectives(mesh);
    allreduces(*coll, rank, world, std::atoi(argv[5]));
    std::printf("rank %d phase1 done\n", rank);
    std::fflush(stdout);
    struct stat st {};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (::stat(argv[7], &st) != 0) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("no GO_FILE");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    allreduces(*coll, rank, world, std::atoi(argv[6]));
    // Read the epoch before the final barrier: no node leaves (and so no
    // PEER_LOST arrives) before every node has entered it.
    const auto epoch = static_cast<unsigned long long>(mesh->epoch());
    coll->barrier(hearth::Millis(60000));
    std::printf("rank %d phase2 done, epoch %llu\n", rank, epoch);
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::printf("rank %d FAILED: %s\n", rank, e.what());
    return 1;
  }
  return 0;
}
