// Helpers shared by the zmq transport tests: quiet, fast-heartbeat node
// options, a concurrent join of n nodes ordered by rank, byte/string
// conversions, elapsed milliseconds and a bounded wait for a child process.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

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

inline long msSince(std::chrono::steady_clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start).count());
}
// The protocol version the tests' hand-written frames speak
// (docs/transport_protocol.md; transport/zmq/zmq_wire.h must agree).
constexpr std::uint8_t kWireVersion = 4;

// A frame of raw bytes, e.g. a header written by hand: {kWireVersion, type, ...}.
inline zmq::message_t header(std::initializer_list<std::uint8_t> bytes) {
  std::vector<std::uint8_t> v(bytes);
  return zmq::message_t(v.data(), v.size());
}

inline MeshBytes bytesOf(const std::string& s) {
  return MeshBytes(s.begin(), s.end());
}
inline std::string stringOf(const MeshBytes& b) {
  return std::string(b.begin(), b.end());
}

// Exit status of child `pid` within `timeout`; -1 if it died of a signal, -2
// if it had to be killed (SIGKILL) at the timeout.
inline int waitExit(pid_t pid, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(Millis(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -2;
}

}  // namespace hearth::zmqtest
