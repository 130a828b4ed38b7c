// transport_paths.h — bench_transport --paths: direct links vs the relay vs
// CURVE-encrypted direct links, against a plain TCP socket pair (point-to-point)
// and c10d ProcessGroupGloo (ring allreduce), in the same processes.
//
// Each rank joins five more runs besides the one hearth::init uses: one
// through the relay only (HEARTH_BENCH_RELAYED: a relay endpoint), three
// where every node listens on loopback so that all pairs use direct links
// (HEARTH_BENCH_DIRECT: bulk lanes with cross-memory reads;
// HEARTH_BENCH_DIRECT_TCP: bulk lanes carrying bytes; HEARTH_BENCH_DIRECT_ZMQ:
// ZeroMQ only), and one with CURVE on every socket (a relay rank 0 starts in
// its own process with a fresh key; every node listens: encrypted direct
// links). scripts/bench_transport.sh --paths starts the four relays.
//
// Point-to-point, rank 0 -> rank 1, in two forms, every path interleaved per
// iteration: round trip (one message, then a 1-byte ack: latency) and stream
// (messages back to back, then one ack: throughput, the time per message).
// Allreduce: the pipelined ring of MeshCollectives over each Mesh and Gloo's,
// interleaved per iteration, slowest rank's median. Rank 0 prints tables and
// one JSON line per size.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hearth/runtime/init.h"
#include "hearth/transport/collectives.h"

namespace hearth::bench {

struct PathsConfig {
  int iterations = 5;
  std::vector<double> sizesMb;    // allreduce sizes
  std::vector<double> p2pKib;     // point-to-point message sizes
  std::size_t chunkKib = 0;       // ring chunk size of hearth's collectives
  std::vector<std::string> only;  // path names to run (empty: all)
};

// What rank `from` passed as `mine` (every rank calls it; the others'
// values are ignored): how the benchmarks hand a port or an endpoint that
// one rank chose to the others, instead of guessing free ports.
std::string valueOfRank(Collectives& control, int from, const std::string& mine, Millis timeout);

// Runs the whole --paths benchmark; every rank of ctx calls it. connectGloo
// makes the Gloo group after the point-to-point phase (Gloo's threads
// busy-poll once it exists and would share the cores with what that phase
// measures); it may return null (no Gloo column). Throws std::runtime_error on a wrong result or a
// missing relay endpoint.
void runTransportPaths(Context& ctx,
                       const std::function<std::unique_ptr<Collectives>()>& connectGloo,
                       const PathsConfig& config, Millis timeout);

}  // namespace hearth::bench
