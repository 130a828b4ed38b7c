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
// --paths (scripts/bench_transport.sh --paths): direct links, the relay and
// CURVE-encrypted direct links against a plain TCP socket pair and Gloo, in
// the same run (transport_paths.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "bench_stats.h"
#include "hearth/runtime/gloo_backend.h"
#include "hearth/runtime/init.h"
#include "hearth/transport/mesh_collectives.h"
#include "transport_paths.h"

namespace {

using hearth::bench::slowestRank;

double medianMs(hearth::Collectives& c, std::vector<float>& data, int rank, int world,
                int iterations, hearth::Millis timeout) {
  return hearth::bench::medianRunMs(
      c, data, rank, iterations, timeout,
      [&] { c.allreduceSum(data.data(), data.size(), timeout); },
      [&] { hearth::bench::checkRankSum(c, data, world); });
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
               "Direct links vs the relay vs raw TCP / Gloo (needs HEARTH_BENCH_RELAYED, "
               "HEARTH_BENCH_DIRECT, HEARTH_BENCH_DIRECT_TCP and HEARTH_BENCH_DIRECT_ZMQ; see "
               "scripts/bench_transport.sh "
               "--paths)");
  std::vector<double> p2pKib = {64, 1024, 16384, 65536};
  app.add_option("--p2p-kib", p2pKib, "Point-to-point message sizes in KiB (--paths)");
  std::size_t chunkKib = hearth::MeshCollectivesOptions{}.chunkBytes / 1024;
  app.add_option(
      "--chunk-kib", chunkKib,
      "Ring chunk size in KiB for hearth's collectives (--paths; default: the library's)");
  std::vector<std::string> only;
  app.add_option("--only", only,
                 "Paths to run (--paths): direct (bulk lanes, cross-memory reads between "
                 "processes of one host), tcplane (bulk lanes carrying bytes), zmqdirect "
                 "(direct links over ZeroMQ only), relay, curve; default: all; gloo alone: "
                 "Gloo only");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(1);
    const hearth::Millis timeout(300000);
    hearth::InitOptions options;
    options.backend = "hearth";
    options.timeout = timeout;
    auto ctx = hearth::init(options);
    const int rank = ctx.rank(), world = ctx.worldSize();

    // Gloo's group (its transport threads busy-poll from then on, so --paths
    // creates it only after its point-to-point phase, which Gloo is not in).
    auto connectGloo = [&]() -> std::unique_ptr<hearth::Collectives> {
      if (hearthOnly) return nullptr;
      // Gloo's store: rank 0 serves it on a port the kernel chooses (a
      // guessed one can be taken: "Address already in use") and hands the
      // port to the others over hearth's control collectives.
      c10d::TCPStoreOptions store;
      store.isServer = rank == 0;
      store.numWorkers = static_cast<std::size_t>(world);
      store.timeout = timeout;
      store.waitWorkers = false;
      c10::intrusive_ptr<c10d::TCPStore> tcpStore;
      if (rank == 0) {
        store.port = 0;
        tcpStore = c10::make_intrusive<c10d::TCPStore>(ctx.env.masterAddr, store);
      }
      const std::string port = hearth::bench::valueOfRank(
          *ctx.collectives, 0, rank == 0 ? std::to_string(tcpStore->getPort()) : "", timeout);
      if (rank != 0) {
        store.port = static_cast<std::uint16_t>(std::stoi(port));
        tcpStore = c10::make_intrusive<c10d::TCPStore>(ctx.env.masterAddr, store);
      }
      const char* host = std::getenv("HEARTH_GLOO_HOST");
      return hearth::makeGlooCollectives(
          hearth::makeGlooProcessGroup(tcpStore, rank, world, timeout, host ? host : "127.0.0.1"),
          timeout);
    };

    if (paths) {
      hearth::bench::PathsConfig config;
      config.iterations = iterations;
      config.sizesMb = sizesMb;
      config.p2pKib = p2pKib;
      config.chunkKib = chunkKib;
      config.only = only;
      hearth::bench::runTransportPaths(ctx, connectGloo, config, timeout);
      return 0;
    }
    const std::unique_ptr<hearth::Collectives> gloo = connectGloo();

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
