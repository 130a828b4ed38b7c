// bench_transport --paths (transport_paths.h).
#include "transport_paths.h"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench_stats.h"
#include "hearth/transport/curve_keys.h"
#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"

namespace hearth::bench {
namespace {

using Clock = std::chrono::steady_clock;

// ---- point-to-point, rank 0 -> rank 1, in two forms ----
// round trip: one message, then a 1-byte ack (latency-bound for small sizes);
// stream: `count` messages back to back, then one ack (throughput: the time
// per message). Each call is one timed iteration; rank 0 returns its ms (per
// message for a stream), rank 1 returns 0. Messages are built before the clock
// starts; the receiver gets a fresh buffer per message on every path.

constexpr MeshTag kP2pTag = 0x7000;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double meshP2pMs(Mesh& mesh, std::size_t bytes, int count, Millis timeout) {
  if (mesh.rank() == 0) {
    std::vector<MeshBytes> messages;
    for (int m = 0; m < count; ++m) messages.emplace_back(bytes, static_cast<std::uint8_t>(m));
    std::vector<std::unique_ptr<MeshRequest>> sends;
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
    mesh.send(0, kP2pTag + 1, MeshBytes(1), timeout);
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

// A connected TCP socket between ranks 0 and 1 (-1 on other ranks): rank 1
// listens on a port the kernel chooses and hands it to rank 0 over `control`.
int rawTcpPair(Collectives& control, int rank, Millis timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int listener = -1;
  std::string port;
  if (rank == 1) {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("raw tcp: cannot listen on loopback");
    }
    port = std::to_string(ntohs(addr.sin_port));
  }
  port = valueOfRank(control, 1, port, timeout);
  int fd = -1;
  if (rank == 1) {
    fd = ::accept(listener, nullptr, nullptr);
    ::close(listener);
  } else if (rank == 0) {
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      fd = -1;
    }
  } else {
    return -1;
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
  return static_cast<int>(
      std::clamp<std::size_t>((32u << 20) / std::max<std::size_t>(bytes, 1), 4, 512));
}

// The paths under test, in column order.
struct Path {
  const char* name;
  std::shared_ptr<Mesh> mesh;
  const char* expectedPath;  // what mesh->pathTo(next rank) must say
};

// Medians over `iterations` of raw TCP and every path for one size and form
// (count = 1: round trip), interleaved per iteration. [0] is raw TCP.
std::vector<double> p2pMedians(int fd, const std::vector<Path>& paths, int rank, std::size_t bytes,
                               int count, int iterations, Millis timeout) {
  std::vector<std::vector<double>> ms(paths.size() + 1);
  std::vector<std::vector<char>> messages(rank == 0 ? count : 1, std::vector<char>(bytes, 1));
  for (int i = 0; i < iterations + 1; ++i) {  // the first round warms up
    std::vector<double> round{rank < 2 ? rawP2pMs(fd, rank, messages, count) : 0};
    for (const Path& path : paths) round.push_back(meshP2pMs(*path.mesh, bytes, count, timeout));
    if (i == 0) continue;
    for (std::size_t k = 0; k < round.size(); ++k) ms[k].push_back(round[k]);
  }
  std::vector<double> medians;
  for (auto& sample : ms) medians.push_back(median(sample));
  return medians;
}

// What a bench node's direct links carry DATA on.
enum class Lanes { kNone, kTcp, kCrossMemory };

ZmqMeshOptions benchNodeOptions(const std::string& relayEndpoint, const std::string& runId,
                                bool listen, Lanes lanes, int rank, Millis timeout) {
  ZmqMeshOptions options;
  options.relayEndpoint = relayEndpoint;
  options.runId = runId;
  if (const char* token = std::getenv("HEARTH_JOIN_TOKEN")) options.joinToken = token;
  options.requestedRank = rank;
  options.joinTimeout = timeout;
  options.heartbeatTimeout = Millis(30000);
  if (listen) options.listenEndpoint = "tcp://127.0.0.1:0";
  options.bulkLanes = lanes != Lanes::kNone;
  options.crossMemoryLanes = lanes == Lanes::kCrossMemory;
  // HEARTH_BENCH_PACED_LANES=1: lanes keep the system's congestion control
  // even between ranks on this host (for comparison; see unpacedLocalLanes).
  options.unpacedLocalLanes = std::getenv("HEARTH_BENCH_PACED_LANES") == nullptr;
  // HEARTH_BENCH_VERBOSE=1: the nodes' log lines (links, lanes) to stderr.
  if (std::getenv("HEARTH_BENCH_VERBOSE") == nullptr) options.log = [](const std::string&) {};
  return options;
}

std::shared_ptr<Mesh> joinBenchRun(const char* relayEnv, const std::string& runId, bool listen,
                                   Lanes lanes, int rank, Millis timeout) {
  const char* relay = std::getenv(relayEnv);
  if (relay == nullptr) {
    throw std::runtime_error(std::string("--paths needs ") + relayEnv +
                             " (scripts/bench_transport.sh --paths starts the relays)");
  }
  return connectZmqMesh(
      benchNodeOptions(std::string("tcp://") + relay, runId, listen, lanes, rank, timeout));
}

// The CURVE run: rank 0 starts a relay with a fresh key in this process and
// tells the others its endpoint and public key; every node listens, so every
// pair gets an encrypted direct link. The relay must outlive the meshes.
struct CurveRun {
  std::unique_ptr<ZmqRelay> relay;
  std::shared_ptr<Mesh> mesh;
};

CurveRun joinCurveRun(Collectives& control, const std::string& runId, int rank, int world,
                      Millis timeout) {
  CurveRun run;
  std::string where;  // "ENDPOINT PUBLICKEY"
  if (rank == 0) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("hearth_bench_curve_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string keyFile = (dir / "relay.key").string();
    writeCurveSecretKeyFile(keyFile, generateCurveKeyPair(), true);
    ZmqRelayOptions options;
    options.runId = runId;
    options.worldSize = world;
    if (const char* token = std::getenv("HEARTH_JOIN_TOKEN")) options.joinToken = token;
    options.heartbeatTimeout = Millis(30000);
    options.curveSecretKeyFile = keyFile;
    options.log = [](const std::string&) {};
    run.relay = std::make_unique<ZmqRelay>(options);  // reads the key file
    std::filesystem::remove_all(dir);
    run.relay->start();
    where = run.relay->endpoint() + " " + run.relay->publicKey();
  }
  where = valueOfRank(control, 0, where, timeout);
  const auto space = where.find(' ');
  ZmqMeshOptions options =
      benchNodeOptions(where.substr(0, space), runId, true, Lanes::kCrossMemory, rank, timeout);
  options.relayPublicKey = where.substr(space + 1);
  run.mesh = connectZmqMesh(options);
  return run;
}

void printP2p(double kib, std::size_t bytes, int count, const std::vector<Path>& paths,
              const std::vector<double>& trip, const std::vector<double>& stream) {
  const double bits = double(bytes) * 8;
  std::printf("%10.0f | %9.3f", kib, trip[0]);
  for (std::size_t k = 1; k < trip.size(); ++k) {
    std::printf(" %9.3f %4.0f%%", trip[k], 100 * trip[0] / trip[k]);
  }
  std::printf(" | %9.2f", bits / stream[0] / 1e6);
  for (std::size_t k = 1; k < stream.size(); ++k) {
    std::printf(" %9.2f %4.0f%%", bits / stream[k] / 1e6, 100 * stream[0] / stream[k]);
  }
  std::printf("\n");
  nlohmann::json line{{"bench", "transport_p2p"},
                      {"kib", kib},
                      {"tcp_ms", trip[0]},
                      {"stream_messages", count},
                      {"stream_tcp_ms", stream[0]}};
  for (std::size_t k = 0; k < paths.size(); ++k) {
    line[std::string(paths[k].name) + "_ms"] = trip[k + 1];
    line[std::string("stream_") + paths[k].name + "_ms"] = stream[k + 1];
  }
  std::cout << line.dump() << std::endl;
}

// cpuMs: rank 0's process CPU per allreduce, paths first, then Gloo's (if any).
void printAllreduce(double mb, std::size_t elems, int world, const std::vector<Path>& paths,
                    const std::vector<double>& ms, double glooMs,
                    const std::vector<double>& cpuMs) {
  const double busBits = 2.0 * (world - 1) / world * double(elems) * 4 * 8;
  std::printf("%10.1f | %9.2f %6.2f", mb, glooMs, busBits / glooMs / 1e6);
  for (std::size_t k = 0; k < paths.size(); ++k) {
    std::printf(" | %9.2f %6.2f %6.2fx", ms[k], busBits / ms[k] / 1e6, ms[k] / glooMs);
  }
  std::printf("\n");
  const bool withGloo = cpuMs.size() > paths.size();
  std::printf("%10s   rank 0's CPU ms per allreduce:", "");
  if (withGloo) std::printf(" gloo %.1f", cpuMs.back());
  for (std::size_t k = 0; k < paths.size(); ++k) {
    std::printf(" | %s %.1f", paths[k].name, cpuMs[k]);
    if (withGloo) std::printf(" (%.2fx)", cpuMs[k] / cpuMs.back());
  }
  std::printf("\n");
  nlohmann::json line{
      {"bench", "transport_paths_allreduce"}, {"world", world}, {"mib", mb}, {"gloo_ms", glooMs}};
  if (withGloo) line["gloo_cpu_ms"] = cpuMs.back();
  for (std::size_t k = 0; k < paths.size(); ++k) {
    line[std::string(paths[k].name) + "_ms"] = ms[k];
    line[std::string(paths[k].name) + "_cpu_ms"] = cpuMs[k];
  }
  std::cout << line.dump() << std::endl;
}

}  // namespace

std::string valueOfRank(Collectives& control, int from, const std::string& mine, Millis timeout) {
  const auto all =
      control.allgatherBytes(std::vector<std::uint8_t>(mine.begin(), mine.end()), timeout);
  return std::string(all.at(static_cast<std::size_t>(from)).begin(),
                     all.at(static_cast<std::size_t>(from)).end());
}

void runTransportPaths(Context& ctx,
                       const std::function<std::unique_ptr<Collectives>()>& connectGloo,
                       const PathsConfig& config, Millis timeout) {
  const int rank = ctx.rank(), world = ctx.worldSize();
  Collectives& control = *ctx.collectives;
  const std::string run = ctx.env.runId.empty() ? "bench" : ctx.env.runId;
  CurveRun curve = joinCurveRun(control, run + "-curve", rank, world, timeout);
  const std::vector<Path> allPaths{{"direct",
                                    joinBenchRun("HEARTH_BENCH_DIRECT", run + "-direct", true,
                                                 Lanes::kCrossMemory, rank, timeout),
                                    "direct"},
                                   {"tcplane",
                                    joinBenchRun("HEARTH_BENCH_DIRECT_TCP", run + "-direct-tcp",
                                                 true, Lanes::kTcp, rank, timeout),
                                    "direct"},
                                   {"zmqdirect",
                                    joinBenchRun("HEARTH_BENCH_DIRECT_ZMQ", run + "-direct-zmq",
                                                 true, Lanes::kNone, rank, timeout),
                                    "direct"},
                                   {"relay",
                                    joinBenchRun("HEARTH_BENCH_RELAYED", run + "-relayed", false,
                                                 Lanes::kCrossMemory, rank, timeout),
                                    "relay"},
                                   {"curve", curve.mesh, "direct"}};
  std::vector<Path> paths;
  for (const Path& path : allPaths) {
    const bool wanted = config.only.empty() || std::find(config.only.begin(), config.only.end(),
                                                         path.name) != config.only.end();
    if (wanted) paths.push_back(path);
  }
  // "gloo" among --only names no path: Gloo alone (e.g. to profile it).
  const bool glooNamed =
      std::find(config.only.begin(), config.only.end(), "gloo") != config.only.end();
  if (paths.size() + (glooNamed ? 1 : 0) < std::max<std::size_t>(1, config.only.size())) {
    throw std::runtime_error(
        "--only: the paths are direct, tcplane, zmqdirect, relay and curve (and gloo)");
  }
  const int next = (rank + 1) % world;
  for (const Path& path : allPaths) {
    if (world > 1 && path.mesh->pathTo(next) != path.expectedPath) {
      throw std::runtime_error(std::string("--paths: the ") + path.name + " mesh goes " +
                               path.mesh->pathTo(next) + " to rank " + std::to_string(next) +
                               ", expected " + path.expectedPath);
    }
  }
  if (rank == 0) {
    std::printf("bench_transport --paths: %d ranks, %d iterations (median)\n", world,
                config.iterations);
    std::printf(
        "point-to-point rank 0 -> 1. round trip: one message + 1-byte ack, ms; stream: "
        "messages back to back + one ack, Gbit/s; %% = raw TCP's figure / the path's\n");
    std::printf("%10s | %9s", "KiB", "rt tcp");
    for (const Path& path : paths) std::printf(" %9s %5s", path.name, "%");
    std::printf(" | %9s", "st tcp");
    for (const Path& path : paths) std::printf(" %9s %5s", path.name, "%");
    std::printf("\n");
  }
  const int fd = world > 1 ? rawTcpPair(control, rank, timeout) : -1;
  for (double kib : config.p2pKib) {
    if (world < 2) break;
    const auto bytes = static_cast<std::size_t>(kib * 1024);
    control.barrier(timeout);
    const auto trip = p2pMedians(fd, paths, rank, bytes, 1, config.iterations, timeout);
    control.barrier(timeout);
    const int count = streamCount(bytes);
    const auto stream = p2pMedians(fd, paths, rank, bytes, count, config.iterations, timeout);
    control.barrier(timeout);
    if (rank == 0) printP2p(kib, bytes, count, paths, trip, stream);
  }
  if (fd >= 0) ::close(fd);
  if (rank == 0 && world > 1) {
    std::printf("what carries DATA from rank 0 to rank 1 (zmqLaneTo):");
    for (const Path& path : paths)
      std::printf(" %s=%s", path.name, zmqLaneTo(*path.mesh, 1).c_str());
    std::printf("\n");
  }

  const std::unique_ptr<Collectives> glooGroup = connectGloo();
  Collectives* gloo = glooGroup.get();
  MeshCollectivesOptions collOptions;
  if (config.chunkKib > 0) collOptions.chunkBytes = config.chunkKib * 1024;
  std::vector<std::unique_ptr<Collectives>> pathColls;
  std::vector<Collectives*> backends;
  for (const Path& path : paths) {
    pathColls.push_back(makeMeshCollectives(path.mesh, collOptions));
    backends.push_back(pathColls.back().get());
  }
  if (gloo != nullptr) backends.push_back(gloo);
  if (rank == 0) {
    std::printf(
        "ring allreduce, slowest rank's median ms, bus Gbit/s = 2(N-1)/N x bytes / time, "
        "x = the path's time / Gloo's:\n");
    std::printf("%10s | %9s %6s", "MiB", "gloo ms", "Gb/s");
    for (const Path& path : paths) std::printf(" | %9s %6s %7s", path.name, "Gb/s", "x gloo");
    std::printf("\n");
  }
  for (double mb : config.sizesMb) {
    std::vector<float> data(static_cast<std::size_t>(mb * (1 << 20) / sizeof(float)));
    std::vector<double> cpuMs;
    const std::vector<double> ms = interleavedMedianRunMs(
        backends, data, rank, config.iterations, timeout,
        [&](std::size_t b) { backends[b]->allreduceSum(data.data(), data.size(), timeout); },
        [&](std::size_t b) { checkRankSum(*backends[b], data, world); }, &cpuMs);
    std::vector<double> slowest;
    for (double m : ms) slowest.push_back(slowestRank(control, m, timeout));
    if (rank == 0) {
      printAllreduce(mb, data.size(), world, paths, slowest, gloo != nullptr ? slowest.back() : 0.0,
                     cpuMs);
    }
  }
  for (Collectives* c : backends) c->barrier(timeout);
  control.barrier(timeout);
}

}  // namespace hearth::bench
