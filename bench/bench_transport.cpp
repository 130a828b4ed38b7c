// bench_transport — allreduce over hearth's transport (ZeroMQ through
// hearth-relay, collectives over the Mesh) against Gloo's allreduce over
// direct TCP, in the same processes and the same run.
//
// Launch through a relay (the script scripts/bench_transport.sh does it):
//   hearth-relay --run-id B --world-size N &
//   hearthrun --nproc-per-node N --rdzv-backend hearth --rdzv-endpoint HOST:PORT
//             --rdzv-id B build/bench/bench_transport        (one command line)
// The Gloo group uses MASTER_ADDR:(MASTER_PORT+1). Every iteration checks the
// sum on rank-unique data. Rank 0 prints a table and one JSON line per size:
// median ms, effective bus bandwidth 2(N-1)/N x bytes / time, and the ratio.
//
// --paths (scripts/bench_transport.sh --paths): direct links vs the relay in
// the same run. Each rank also joins two more runs, one through the relay
// only (HEARTH_BENCH_RELAYED: a relay endpoint) and one where every node
// listens on loopback so that all pairs use direct links (HEARTH_BENCH_DIRECT),
// and measures (a) point-to-point rank 0 -> rank 1 for 64 KiB-64 MiB messages
// over the relayed Mesh, the direct Mesh and a plain TCP socket pair
// (MASTER_PORT+2), one message then a 1-byte ack per iteration, and (b) ring
// allreduce over Gloo, the relayed and the direct Mesh.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "bench_stats.h"
#include "hearth/runtime/gloo_backend.h"
#include "hearth/runtime/init.h"
#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"

namespace {

using hearth::bench::median;
using hearth::bench::slowestRank;

using Clock = std::chrono::steady_clock;

// ---- point-to-point, rank 0 -> rank 1, in two forms ----
// round trip: one message, then a 1-byte ack (latency-bound for small sizes);
// stream: `count` messages back to back, then one ack (throughput: the time
// per message). Each call is one timed iteration; rank 0 returns its ms (per
// message for a stream), rank 1 returns 0. Messages are built before the clock
// starts; the receiver gets a fresh buffer per message on every path.

constexpr hearth::MeshTag kP2pTag = 0x7000;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double meshP2pMs(hearth::Mesh& mesh, std::size_t bytes, int count, hearth::Millis timeout) {
  if (mesh.rank() == 0) {
    std::vector<hearth::MeshBytes> messages;
    for (int m = 0; m < count; ++m) messages.emplace_back(bytes, static_cast<std::uint8_t>(m));
    std::vector<std::unique_ptr<hearth::MeshRequest>> sends;
    const auto start = Clock::now();
    for (auto& message : messages) sends.push_back(mesh.isend(1, kP2pTag, std::move(message)));
    for (auto& send : sends) {
      if (!send->wait(timeout)) throw std::runtime_error("p2p: send timed out");
    }
    mesh.recv(1, kP2pTag + 1, timeout);
    return msSince(start) / count;
  }
  if (mesh.rank() == 1) {
    for (int m = 0; m < count; ++m) {
      if (mesh.recv(0, kP2pTag, timeout).size() != bytes) {
        throw std::runtime_error("p2p: wrong message size");
      }
    }
    mesh.send(0, kP2pTag + 1, hearth::MeshBytes(1), timeout);
  }
  return 0;
}

void writeAll(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) throw std::runtime_error("raw tcp: send failed");
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}
void readAll(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k <= 0) throw std::runtime_error("raw tcp: recv failed");
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

// A plain TCP connection between ranks 0 and 1 on 127.0.0.1:port (rank 1 listens).
int rawTcpPair(int rank, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  if (rank == 1) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0) {
      throw std::runtime_error("raw tcp: cannot listen on port " + std::to_string(port));
    }
    fd = ::accept(listener, nullptr, nullptr);
    ::close(listener);
  } else {
    for (int attempt = 0; attempt < 200; ++attempt) {
      fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
      ::close(fd);
      fd = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  if (fd < 0) throw std::runtime_error("raw tcp: no connection");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Rank 0 sends messages[0, count): distinct buffers, like the Mesh's (one
// buffer sent again and again would stay in the cache).
double rawP2pMs(int fd, int rank, const std::vector<std::vector<char>>& messages, int count) {
  std::uint64_t size = messages.front().size();
  char ack = 0;
  if (rank == 0) {
    const auto start = Clock::now();
    for (int m = 0; m < count; ++m) {
      writeAll(fd, &size, sizeof size);
      writeAll(fd, messages[m].data(), size);
    }
    readAll(fd, &ack, 1);
    return msSince(start) / count;
  }
  for (int m = 0; m < count; ++m) {
    readAll(fd, &size, sizeof size);
    std::vector<char> received(size);  // like the Mesh, hand out a fresh buffer
    readAll(fd, received.data(), size);
  }
  writeAll(fd, &ack, 1);
  return 0;
}

// Messages per timed stream: about 32 MiB, at least 4 and at most 512.
int streamCount(std::size_t bytes) {
  return static_cast<int>(std::clamp<std::size_t>((32u << 20) / std::max<std::size_t>(bytes, 1), 4, 512));
}

// Medians over `iterations` of raw TCP, the direct and the relayed Mesh for
// one size and form (count = 1: round trip), interleaved per iteration.
struct P2pMedians {
  double tcp, direct, relay;
};
P2pMedians p2pMedians(int fd, hearth::Mesh& direct, hearth::Mesh& relayed, int rank,
                      std::size_t bytes, int count, int iterations, hearth::Millis timeout) {
  std::vector<double> tcp, dir, rel;
  std::vector<std::vector<char>> messages(rank == 0 ? count : 1, std::vector<char>(bytes, 1));
  for (int i = 0; i < iterations + 1; ++i) {  // the first round warms up
    const double t = rank < 2 ? rawP2pMs(fd, rank, messages, count) : 0;
    const double d = meshP2pMs(direct, bytes, count, timeout);
    const double r = meshP2pMs(relayed, bytes, count, timeout);
    if (i == 0) continue;
    tcp.push_back(t);
    dir.push_back(d);
    rel.push_back(r);
  }
  return {median(tcp), median(dir), median(rel)};
}

std::shared_ptr<hearth::Mesh> joinBenchRun(const char* relayEnv, const std::string& runId,
                                           bool direct, int rank, hearth::Millis timeout) {
  const char* relay = std::getenv(relayEnv);
  if (relay == nullptr) {
    throw std::runtime_error(std::string("--paths needs ") + relayEnv +
                             " (scripts/bench_transport.sh --paths starts the relays)");
  }
  hearth::ZmqMeshOptions options;
  options.relayEndpoint = std::string("tcp://") + relay;
  options.runId = runId;
  if (const char* token = std::getenv("HEARTH_JOIN_TOKEN")) options.joinToken = token;
  options.requestedRank = rank;
  options.joinTimeout = timeout;
  options.heartbeatTimeout = hearth::Millis(30000);
  if (direct) options.listenEndpoint = "tcp://127.0.0.1:0";
  options.log = [](const std::string&) {};
  return hearth::connectZmqMesh(options);
}

// Throws unless data holds the sum of every rank's (rank + 1).
void checkSum(hearth::Collectives& c, const std::vector<float>& data, int world) {
  const float expected = float(world) * float(world + 1) / 2;
  if (data.front() != expected || data.back() != expected) {
    throw std::runtime_error(c.backendName() + ": wrong sum " + std::to_string(data.front()));
  }
}

double medianMs(hearth::Collectives& c, std::vector<float>& data, int rank, int world,
                int iterations, hearth::Millis timeout) {
  return hearth::bench::medianRunMs(
      c, data, rank, iterations, timeout,
      [&] { c.allreduceSum(data.data(), data.size(), timeout); },
      [&] { checkSum(c, data, world); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hearth transport allreduce vs Gloo, same run"};
  int iterations = 5;
  std::vector<double> sizesMb = {1, 16, 64};
  app.add_option("--iterations", iterations, "Timed iterations per size")
      ->check(CLI::PositiveNumber);
  app.add_option("--sizes-mb", sizesMb, "Buffer sizes in MiB");
  bool hearthOnly = false;
  app.add_flag("--hearth-only", hearthOnly,
               "Skip Gloo (e.g. behind NAT, where Gloo cannot connect): report hearth's time and "
               "the bytes each rank sent per second");
  bool paths = false;
  app.add_flag("--paths", paths,
               "Direct links vs the relay vs raw TCP / Gloo (needs HEARTH_BENCH_RELAYED and "
               "HEARTH_BENCH_DIRECT; see scripts/bench_transport.sh --paths)");
  std::vector<double> p2pKib = {64, 1024, 16384, 65536};
  app.add_option("--p2p-kib", p2pKib, "Point-to-point message sizes in KiB (--paths)");
  std::size_t chunkKib = hearth::MeshCollectivesOptions{}.chunkBytes / 1024;
  app.add_option(
      "--chunk-kib", chunkKib,
      "Ring chunk size in KiB for hearth's collectives (--paths; default: the library's)");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(1);
    const hearth::Millis timeout(300000);
    hearth::InitOptions options;
    options.backend = "hearth";
    options.timeout = timeout;
    auto ctx = hearth::init(options);
    const int rank = ctx.rank(), world = ctx.worldSize();

    std::unique_ptr<hearth::Collectives> gloo;
    if (!hearthOnly) {
      c10d::TCPStoreOptions store;
      store.port = static_cast<std::uint16_t>(ctx.env.masterPort + 1);
      store.isServer = rank == 0;
      store.numWorkers = static_cast<std::size_t>(world);
      store.timeout = timeout;
      auto tcpStore = c10::make_intrusive<c10d::TCPStore>(ctx.env.masterAddr, store);
      const char* host = std::getenv("HEARTH_GLOO_HOST");
      gloo = hearth::makeGlooCollectives(
          hearth::makeGlooProcessGroup(tcpStore, rank, world, timeout, host ? host : "127.0.0.1"),
          timeout);
    }

    if (paths) {
      const std::string run = ctx.env.runId.empty() ? "bench" : ctx.env.runId;
      auto relayed = joinBenchRun("HEARTH_BENCH_RELAYED", run + "-relayed", false, rank, timeout);
      auto direct = joinBenchRun("HEARTH_BENCH_DIRECT", run + "-direct", true, rank, timeout);
      if (world > 1 && (relayed->pathTo((rank + 1) % world) != "relay" ||
                        direct->pathTo((rank + 1) % world) != "direct")) {
        throw std::runtime_error("--paths: the meshes do not use the expected paths");
      }
      if (rank == 0) {
        std::printf("bench_transport --paths: %d ranks, %d iterations (median)\n", world,
                    iterations);
        std::printf(
            "point-to-point rank 0 -> 1; round trip = one message + 1-byte ack, stream = "
            "messages back to back + one ack (Gbit/s); %% = x / raw TCP:\n");
        std::printf("%10s | %9s %9s %9s %7s %7s | %9s %9s %9s %7s %7s\n", "KiB", "rt tcp ms",
                    "direct", "relay", "dir %", "rel %", "st tcp", "direct", "relay", "dir %",
                    "rel %");
      }
      const int fd = world > 1 && rank < 2 ? rawTcpPair(rank, ctx.env.masterPort + 2) : -1;
      for (double kib : p2pKib) {
        const auto bytes = static_cast<std::size_t>(kib * 1024);
        if (world < 2) break;
        ctx.collectives->barrier(timeout);
        const P2pMedians trip = p2pMedians(fd, *direct, *relayed, rank, bytes, 1, iterations, timeout);
        ctx.collectives->barrier(timeout);
        const int count = streamCount(bytes);
        const P2pMedians stream =
            p2pMedians(fd, *direct, *relayed, rank, bytes, count, iterations, timeout);
        ctx.collectives->barrier(timeout);
        if (rank == 0) {
          const double bits = double(bytes) * 8;
          std::printf(
              "%10.0f | %9.3f %9.3f %9.3f %6.0f%% %6.0f%% | %9.2f %9.2f %9.2f %6.0f%% %6.0f%%\n",
              kib, trip.tcp, trip.direct, trip.relay, 100 * trip.tcp / trip.direct,
              100 * trip.tcp / trip.relay, bits / stream.tcp / 1e6, bits / stream.direct / 1e6,
              bits / stream.relay / 1e6, 100 * stream.tcp / stream.direct,
              100 * stream.tcp / stream.relay);
          std::cout << nlohmann::json{{"bench", "transport_p2p"},
                                      {"kib", kib},
                                      {"tcp_ms", trip.tcp},
                                      {"direct_ms", trip.direct},
                                      {"relay_ms", trip.relay},
                                      {"stream_messages", count},
                                      {"stream_tcp_ms", stream.tcp},
                                      {"stream_direct_ms", stream.direct},
                                      {"stream_relay_ms", stream.relay}}
                           .dump()
                    << std::endl;
        }
      }
      if (fd >= 0) ::close(fd);
      hearth::MeshCollectivesOptions collOptions;
      collOptions.chunkBytes = chunkKib * 1024;
      auto relayedColl = hearth::makeMeshCollectives(relayed, collOptions);
      auto directColl = hearth::makeMeshCollectives(direct, collOptions);
      if (rank == 0) {
        std::printf("ring allreduce (slowest rank), bus Gbit/s = 2(N-1)/N x bytes / time:\n");
        std::printf("%10s | %10s %10s %10s | %10s %10s %10s | %8s %8s\n", "MiB", "gloo ms",
                    "direct ms", "relay ms", "gloo Gb/s", "direct", "relay", "dir/gloo",
                    "rel/gloo");
      }
      for (double mb : sizesMb) {
        std::vector<float> data(static_cast<std::size_t>(mb * (1 << 20) / sizeof(float)));
        std::vector<hearth::Collectives*> backends{directColl.get(), relayedColl.get()};
        if (gloo) backends.push_back(gloo.get());
        const std::vector<double> ms = hearth::bench::interleavedMedianRunMs(
            backends, data, rank, iterations, timeout,
            [&](std::size_t b) { backends[b]->allreduceSum(data.data(), data.size(), timeout); },
            [&](std::size_t b) { checkSum(*backends[b], data, world); });
        const double directMs = slowestRank(*ctx.collectives, ms[0], timeout);
        const double relayMs = slowestRank(*ctx.collectives, ms[1], timeout);
        const double glooMs = gloo ? slowestRank(*ctx.collectives, ms[2], timeout) : 0;
        if (rank == 0) {
          const double busBits = 2.0 * (world - 1) / world * double(data.size()) * 4 * 8;
          std::printf("%10.1f | %10.2f %10.2f %10.2f | %10.2f %10.2f %10.2f | %7.2fx %7.2fx\n", mb,
                      glooMs, directMs, relayMs, busBits / glooMs / 1e6, busBits / directMs / 1e6,
                      busBits / relayMs / 1e6, directMs / glooMs, relayMs / glooMs);
          std::cout << nlohmann::json{{"bench", "transport_paths_allreduce"},
                                      {"world", world},
                                      {"mib", mb},
                                      {"gloo_ms", glooMs},
                                      {"direct_ms", directMs},
                                      {"relay_ms", relayMs}}
                           .dump()
                    << std::endl;
        }
      }
      directColl->barrier(timeout);
      relayedColl->barrier(timeout);
      if (gloo) gloo->barrier(timeout);
      ctx.collectives->barrier(timeout);
      return 0;
    }

    if (rank == 0) {
      std::printf("bench_transport: %d ranks, %d iterations (median)\n", world, iterations);
      std::printf("%10s | %12s %12s | %14s %14s | %8s\n", "MiB", "gloo ms", "hearth ms",
                  "gloo Gbit/s", "hearth Gbit/s", "ratio");
    }
    for (double mb : sizesMb) {
      std::vector<float> data(static_cast<std::size_t>(mb * (1 << 20) / sizeof(float)));
      // A collective ends at different times on different ranks (a rank's
      // last sends may still be queued when it has all it needs): report the
      // slowest rank's median.
      const double hearthMs =
          slowestRank(*ctx.collectives,
                      medianMs(*ctx.collectives, data, rank, world, iterations, timeout), timeout);
      const double busBits = 2.0 * (world - 1) / world * double(data.size()) * 4 * 8;
      if (hearthOnly) {
        // Each rank sends busBits through its own uplink (to the relay).
        if (rank == 0) {
          std::printf("%10.1f MiB: hearth %.1f ms, %.2f Mbit/s sent per rank\n", mb, hearthMs,
                      busBits / hearthMs / 1e3);
        }
        continue;
      }
      const double glooMs = slowestRank(
          *ctx.collectives, medianMs(*gloo, data, rank, world, iterations, timeout), timeout);
      if (rank == 0) {
        std::printf("%10.1f | %12.2f %12.2f | %14.3f %14.3f | %7.2fx\n", mb, glooMs, hearthMs,
                    busBits / glooMs / 1e6, busBits / hearthMs / 1e6, hearthMs / glooMs);
        std::cout << nlohmann::json{{"bench", "transport_allreduce"},
                                    {"world", world},
                                    {"mib", mb},
                                    {"gloo_ms", glooMs},
                                    {"hearth_ms", hearthMs},
                                    {"hearth_over_gloo", hearthMs / glooMs}}
                         .dump()
                  << std::endl;
      }
    }
    if (gloo) gloo->barrier(timeout);
    ctx.collectives->barrier(timeout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_transport: %s\n", e.what());
    return 1;
  }
  return 0;
}
