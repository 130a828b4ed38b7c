// Helpers shared by the zmq transport tests: quiet, fast-heartbeat node
// options and a concurrent join of n nodes ordered by rank.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"

namespace hearth::zmqtest {

// Node options for a relay at `endpoint`: 10 s join timeout, 100 ms
// heartbeats, 1.5 s heartbeat timeout, no log output.
inline ZmqMeshOptions quietNodeOptions(const std::string& endpoint, const std::string& runId,
                                       const std::string& token) {
  ZmqMeshOptions options;
  options.relayEndpoint = endpoint;
  options.runId = runId;
  options.joinToken = token;
  options.joinTimeout = Millis(10000);
  options.heartbeatInterval = Millis(100);
  options.heartbeatTimeout = Millis(1500);
  options.log = [](const std::string&) {};
  return options;
}

// Joins `n` nodes with `options` concurrently; returns them ordered by rank.
template <typename Pointer = std::unique_ptr<Mesh>>
std::vector<Pointer> joinAllByRank(int n, const ZmqMeshOptions& options) {
  std::vector<std::future<std::unique_ptr<Mesh>>> joins;
  for (int i = 0; i < n; ++i) {
    joins.push_back(std::async(std::launch::async, [options] { return connectZmqMesh(options); }));
  }
  std::vector<Pointer> ranks(static_cast<std::size_t>(n));
  for (auto& join : joins) {
    auto mesh = join.get();
    const int r = mesh->rank();
    ranks.at(static_cast<std::size_t>(r)) = std::move(mesh);
  }
  return ranks;
}

// The relay's forwarded-frame count once it reached `expected` (or after
// `timeout`): the relay counts a frame after handing it on, so a receiver can
// see the frame before the count moves.
inline std::uint64_t forwardedOnceAtLeast(const ZmqRelay& relay, std::uint64_t expected,
                                          Millis timeout = Millis(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (relay.stats().forwarded < expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return relay.stats().forwarded;
}

}  // namespace hearth::zmqtest
