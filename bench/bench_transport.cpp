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

// ---- point-to-point: rank 0 sends one message, rank 1 answers a 1-byte ack ----

double meshP2pMs(hearth::Mesh& mesh, std::size_t bytes, int iterations, hearth::Millis timeout) {
  std::vector<double> ms;
  const hearth::MeshTag tag = 0x7000;
  for (int i = 0; i < iterations + 1; ++i) {
    if (mesh.rank() == 0) {
      hearth::MeshBytes message(bytes, static_cast<std::uint8_t>(i));
      const auto start = Clock::now();
      mesh.send(1, tag, std::move(message), timeout);
      mesh.recv(1, tag + 1, timeout);
      if (i > 0)
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    } else if (mesh.rank() == 1) {
      const auto got = mesh.recv(0, tag, timeout);
      if (got.size() != bytes) throw std::runtime_error("p2p: wrong message size");
      mesh.send(0, tag + 1, hearth::MeshBytes(1), timeout);
    }
  }
  return ms.empty() ? 0 : median(ms);
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

double rawP2pMs(int fd, int rank, std::size_t bytes, int iterations) {
  std::vector<double> ms;
  std::vector<char> buffer(bytes);
  for (int i = 0; i < iterations + 1; ++i) {
    std::uint64_t size = bytes;
    char ack = 0;
    if (rank == 0) {
      std::fill(buffer.begin(), buffer.end(), static_cast<char>(i));
      const auto start = Clock::now();
      writeAll(fd, &size, sizeof size);
      writeAll(fd, buffer.data(), bytes);
      readAll(fd, &ack, 1);
      if (i > 0)
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    } else {
      readAll(fd, &size, sizeof size);
      std::vector<char> received(size);  // like the Mesh, hand out a fresh buffer
      readAll(fd, received.data(), size);
      writeAll(fd, &ack, 1);
    }
  }
  return ms.empty() ? 0 : median(ms);
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

double medianMs(hearth::Collectives& c, std::vector<float>& data, int rank, int world,
                int iterations, hearth::Millis timeout) {
  return hearth::bench::medianRunMs(
      c, data, rank, iterations, timeout,
      [&] { c.allreduceSum(data.data(), data.size(), timeout); },
      [&] {
        const float expected = float(world) * float(world + 1) / 2;
        if (data.front() != expected || data.back() != expected) {
          throw std::runtime_error(c.backendName() + ": wrong sum " + std::to_string(data.front()));
        }
      });
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
        std::printf("point-to-point rank 0 -> 1 (one message + 1-byte ack):\n");
        std::printf("%10s | %10s %10s %10s | %12s %12s %12s | %8s %8s\n", "KiB", "tcp ms",
                    "direct ms", "relay ms", "tcp Gbit/s", "direct Gb/s", "relay Gb/s", "dir/tcp",
                    "rel/tcp");
      }
      const int fd = world > 1 && rank < 2 ? rawTcpPair(rank, ctx.env.masterPort + 2) : -1;
      for (double kib : p2pKib) {
        const auto bytes = static_cast<std::size_t>(kib * 1024);
        if (world < 2) break;
        const double tcpMs = rank < 2 ? rawP2pMs(fd, rank, bytes, iterations) : 0;
        ctx.collectives->barrier(timeout);
        const double directMs = meshP2pMs(*direct, bytes, iterations, timeout);
        ctx.collectives->barrier(timeout);
        const double relayMs = meshP2pMs(*relayed, bytes, iterations, timeout);
        ctx.collectives->barrier(timeout);
        if (rank == 0) {
          const double bits = double(bytes) * 8;
          std::printf("%10.0f | %10.3f %10.3f %10.3f | %12.2f %12.2f %12.2f | %7.0f%% %7.0f%%\n",
                      kib, tcpMs, directMs, relayMs, bits / tcpMs / 1e6, bits / directMs / 1e6,
                      bits / relayMs / 1e6, 100 * tcpMs / directMs, 100 * tcpMs / relayMs);
          std::cout << nlohmann::json{{"bench", "transport_p2p"},
                                      {"kib", kib},
                                      {"tcp_ms", tcpMs},
                                      {"direct_ms", directMs},
                                      {"relay_ms", relayMs}}
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
        const double glooMs =
            gloo ? slowestRank(*ctx.collectives,
                               medianMs(*gloo, data, rank, world, iterations, timeout), timeout)
                 : 0;
        const double directMs =
            slowestRank(*ctx.collectives,
                        medianMs(*directColl, data, rank, world, iterations, timeout), timeout);
        const double relayMs =
            slowestRank(*ctx.collectives,
                        medianMs(*relayedColl, data, rank, world, iterations, timeout), timeout);
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
