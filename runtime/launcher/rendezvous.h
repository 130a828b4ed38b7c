// rendezvous.h: decides this node's rank, the node count and the workers'
// MASTER_ADDR:MASTER_PORT.
//
// Contract: performRendezvous() dispatches on the options:
//  - --standalone: node 0 of 1, MASTER_ADDR=127.0.0.1 and a free loopback port.
//  - static: node rank = --node-rank (default 0), nnodes = --nnodes; MASTER_ADDR
//    = --master-addr, else the --rdzv-endpoint host, else 127.0.0.1; MASTER_PORT
//    = --master-port, else the endpoint port, else 29500. No network traffic.
//  - c10d: every agent joins a c10d::TCPStore at --rdzv-endpoint (an agent whose
//    endpoint host is local first tries to host it; if binding fails it connects
//    as a client). Keys live under "hearthrun/<rdzv-id>/". Node ranks follow
//    arrival order. Node 0 closes the rendezvous once MAX nodes joined, or once
//    at least MIN joined and no new node arrived for --rdzv-last-call seconds,
//    then publishes nnodes, MASTER_ADDR (--master-addr or the address of its
//    interface towards the endpoint) and MASTER_PORT (--master-port or a free
//    port). Agents arriving after the close, or beyond MAX, fail. Every agent
//    waits (bounded by the rendezvous timeout) until all nodes have read the
//    result before returning, so the hosting agent cannot take the store down
//    early; the store stays alive as long as RendezvousResult::keepAlive.
// Errors: throws RendezvousError with a one-line explanation, e.g. when fewer
// than MIN nodes joined within --rdzv-timeout seconds.
// Blocking: c10d blocks up to --rdzv-timeout (plus the last-call period);
// static and standalone return at once.
// Thread-safety: call from one thread; the result is a plain value.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "launch_options.h"

namespace hearth::launcher {

class RendezvousError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RendezvousResult {
  int nodeRank = 0;
  int nnodes = 1;
  std::string masterAddr;
  int masterPort = kDefaultMasterPort;
  std::shared_ptr<void> keepAlive;  // the rendezvous store, if any
};

RendezvousResult performRendezvous(const LaunchOptions& options);

}  // namespace hearth::launcher
