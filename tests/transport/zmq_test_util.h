// Helpers shared by the zmq transport tests: quiet, fast-heartbeat node
// options, a concurrent join of n nodes ordered by rank, hand-written frames
// and a bounded wait for a child process. The backend-neutral ones (byte/string
// conversions, elapsed milliseconds) are in mesh_conformance.h.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "mesh_conformance.h"

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

// The protocol version the tests' hand-written frames speak
// (docs/transport_protocol.md; transport/zmq/zmq_wire.h must agree).
constexpr std::uint8_t kWireVersion = 9;

// A frame of raw bytes, e.g. a header written by hand: {kWireVersion, type, ...}.
inline zmq::message_t header(std::initializer_list<std::uint8_t> bytes) {
  std::vector<std::uint8_t> v(bytes);
  return zmq::message_t(v.data(), v.size());
}

// The little-endian u64 at byte `at` of frame `m`.
inline std::uint64_t u64At(const zmq::message_t& m, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= std::uint64_t{static_cast<const std::uint8_t*>(m.data())[at + i]} << (8 * i);
  }
  return v;
}

// The next message on raw socket `s` within `timeout`, passing over those
// whose header (frame `headerAt`: 1 behind a ROUTER's identity frame, else 0)
// has wire type `skipType` (e.g. PING); empty if none came in time.
inline std::vector<zmq::message_t> recvSkippingType(zmq::socket_t& s, Millis timeout,
                                                    std::size_t headerAt, std::uint8_t skipType) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, left);
    std::vector<zmq::message_t> frames;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    if (!zmq::recv_multipart(s, std::back_inserter(frames))) return {};
    if (frames.size() <= headerAt) return frames;
    const auto* h = static_cast<const std::uint8_t*>(frames[headerAt].data());
    if (frames[headerAt].size() >= 2 && h[1] == skipType) continue;
    return frames;
  }
}

// A fresh directory under /tmp named `prefix`.XXXXXX, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A hearth-relay process (HEARTH_RELAY_BIN) and the read ends of the pipes
// on its stdout and, if captured, its stderr (else -1).
struct RelayChild {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};

// Starts HEARTH_RELAY_BIN with `args`, its stdout on a pipe and, with
// `captureStderr`, its stderr on another (otherwise it keeps the test's).
inline RelayChild spawnRelay(const std::vector<std::string>& args, bool captureStderr) {
  int out[2];
  int err[2] = {-1, -1};
  EXPECT_EQ(::pipe(out), 0);
  if (captureStderr) {
    EXPECT_EQ(::pipe(err), 0);
  }
  RelayChild c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(out[1], 1);
    if (captureStderr) ::dup2(err[1], 2);
    ::close(out[0]);
    if (captureStderr) ::close(err[0]);
    std::vector<char*> argv;
    std::string bin = HEARTH_RELAY_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (captureStderr) ::close(err[1]);
  c.out = out[0];
  c.err = err[0];
  return c;
}

// One line from `fd`, read a byte at a time (nothing past the newline), without
// the newline.
inline std::string readLine(int fd) {
  std::string line;
  char ch;
  while (::read(fd, &ch, 1) == 1 && ch != '\n') line += ch;
  return line;
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
