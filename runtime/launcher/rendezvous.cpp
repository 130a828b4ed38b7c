#include "rendezvous.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <thread>

#include "net_util.h"
#include "posix_util.h"

namespace hearth::launcher {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<uint8_t> toBytes(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string fromBytes(const std::vector<uint8_t>& v) {
  return {v.begin(), v.end()};
}

milliseconds toMs(double seconds) {
  return milliseconds(static_cast<long long>(seconds * 1000.0));
}

std::string formatSeconds(double seconds) {
  std::string s = std::to_string(seconds);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

RendezvousResult staticRendezvous(const LaunchOptions& o) {
  RendezvousResult r;
  r.nodeRank = o.nodeRank.value_or(0);
  r.nnodes = o.maxNodes;
  std::optional<HostPort> endpoint;
  if (!o.rdzvEndpoint.empty()) endpoint = parseHostPort(o.rdzvEndpoint, kDefaultMasterPort);
  if (!o.masterAddr.empty()) {
    r.masterAddr = o.masterAddr;
  } else {
    r.masterAddr = endpoint ? endpoint->host : "127.0.0.1";
  }
  r.masterPort = o.masterPort.value_or(endpoint ? endpoint->port : kDefaultMasterPort);
  return r;
}

// The rendezvous store at ep, hosted by this agent when it is on this machine
// and nobody serves it yet (*hosting says whether it does).
std::shared_ptr<c10d::TCPStore> connectStore(const HostPort& ep, milliseconds timeout,
                                             bool* hosting) {
  *hosting = false;
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(ep.port);
  opts.numWorkers = c10::nullopt;
  opts.waitWorkers = false;
  opts.timeout = timeout;
  // Host the store when the endpoint is this machine and nobody serves it yet;
  // a lost race (bind fails) falls back to joining as a client.
  if (isLocalHost(ep.host) && !canConnect(ep.host, ep.port, 500)) {
    opts.isServer = true;
    try {
      auto store = std::make_shared<c10d::TCPStore>(ep.host, opts);
      logLine("hosting the c10d rendezvous store on port " + std::to_string(ep.port));
      *hosting = true;
      return store;
    } catch (const std::exception&) {
      // Another agent on this machine hosts it already: join as a client.
    }
    opts.isServer = false;
  }
  try {
    return std::make_shared<c10d::TCPStore>(ep.host, opts);
  } catch (const std::exception& e) {
    throw RendezvousError("cannot reach the rendezvous store at " + ep.host + ":" +
                          std::to_string(ep.port) + ": " + e.what());
  }
}

RendezvousResult c10dRendezvous(const LaunchOptions& o) {
  const HostPort ep = *parseHostPort(o.rdzvEndpoint, kDefaultRdzvPort);
  const auto start = Clock::now();
  const auto deadline = start + toMs(o.rdzvTimeoutSec);
  const std::string what =
      "rendezvous '" + o.rdzvId + "' at " + ep.host + ":" + std::to_string(ep.port);
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    return std::max(left, milliseconds(1));
  };
  auto timedOut = [&](const std::string& detail) {
    return RendezvousError(what + " timed out after " + formatSeconds(o.rdzvTimeoutSec) +
                           " s: " + detail);
  };

  bool hosting = false;
  std::shared_ptr<c10d::TCPStore> store = connectStore(ep, toMs(o.rdzvTimeoutSec), &hosting);
  const std::string prefix = "hearthrun/" + o.rdzvId + "/";
  const std::string joinedKey = prefix + "joined";
  const std::string nnodesKey = prefix + "nnodes";
  const std::string addrKey = prefix + "master_addr";
  const std::string portKey = prefix + "master_port";
  const std::string ackKey = prefix + "acked";

  RendezvousResult r;
  try {
    const int64_t order = store->add(joinedKey, 1) - 1;
    if (order >= o.maxNodes) {
      throw RendezvousError(what + " is full: " + std::to_string(o.maxNodes) +
                            " nodes already joined");
    }
    r.nodeRank = static_cast<int>(order);
    if (order == 0) {
      logLine("waiting for " +
              (o.minNodes == o.maxNodes
                   ? std::to_string(o.maxNodes)
                   : std::to_string(o.minNodes) + ".." + std::to_string(o.maxNodes)) +
              " nodes to join " + what);
      int64_t lastCount = 1;
      auto lastChange = Clock::now();
      while (true) {
        int64_t count = store->add(joinedKey, 0);
        if (count != lastCount) {
          lastCount = count;
          lastChange = Clock::now();
        }
        if (count >= o.maxNodes) {
          r.nnodes = o.maxNodes;
          break;
        }
        if (count >= o.minNodes && Clock::now() - lastChange >= toMs(o.rdzvLastCallSec)) {
          r.nnodes = static_cast<int>(count);
          break;
        }
        if (Clock::now() >= deadline) {
          throw timedOut(std::to_string(count) + " of " + std::to_string(o.minNodes) +
                         " required nodes joined");
        }
        std::this_thread::sleep_for(milliseconds(100));
      }
      r.masterAddr = o.masterAddr.empty() ? localAddressTowards(ep.host, ep.port) : o.masterAddr;
      r.masterPort = o.masterPort ? *o.masterPort : findFreePort("0.0.0.0");
      store->set(addrKey, toBytes(r.masterAddr));
      store->set(portKey, toBytes(std::to_string(r.masterPort)));
      store->set(nnodesKey, toBytes(std::to_string(r.nnodes)));  // closes the rendezvous
    } else {
      try {
        store->wait({nnodesKey}, remaining());
      } catch (const std::exception&) {
        throw timedOut("node 0 did not close the rendezvous (fewer than " +
                       std::to_string(o.minNodes) + " nodes joined?)");
      }
      r.nnodes = std::stoi(fromBytes(store->get(nnodesKey)));
      if (order >= r.nnodes) {
        throw RendezvousError(what + " was closed with " + std::to_string(r.nnodes) +
                              " nodes before this node joined");
      }
      r.masterAddr = fromBytes(store->get(addrKey));
      r.masterPort = std::stoi(fromBytes(store->get(portKey)));
    }
    store->add(ackKey, 1);
    // The agent that hosts the store keeps it up until every node has read
    // the result. The others go on at once: one that polled too would find
    // the store gone once the host had seen the last ack and exited (a
    // "Broken pipe" that failed the rendezvous now and then).
    while (hosting && Clock::now() < deadline && store->add(ackKey, 0) < r.nnodes) {
      std::this_thread::sleep_for(milliseconds(50));
    }
  } catch (const RendezvousError&) {
    throw;
  } catch (const std::exception& e) {
    throw RendezvousError(what + " failed: " + e.what());
  }
  logLine("rendezvous complete: node rank " + std::to_string(r.nodeRank) + " of " +
          std::to_string(r.nnodes) + ", master " + r.masterAddr + ":" +
          std::to_string(r.masterPort));
  r.keepAlive = store;
  return r;
}

}  // namespace

RendezvousResult performRendezvous(const LaunchOptions& o) {
  if (o.standalone) {
    RendezvousResult r;
    r.nodeRank = 0;
    r.nnodes = 1;
    r.masterAddr = "127.0.0.1";
    try {
      r.masterPort = findFreePort("127.0.0.1");
    } catch (const std::exception& e) {
      throw RendezvousError(std::string("cannot find a free loopback port: ") + e.what());
    }
    return r;
  }
  if (o.rdzvBackend == RdzvBackend::kStatic || o.rdzvBackend == RdzvBackend::kHearth) {
    return staticRendezvous(o);
  }
  return c10dRendezvous(o);
}

}  // namespace hearth::launcher
