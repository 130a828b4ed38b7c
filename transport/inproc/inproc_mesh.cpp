// Inproc Mesh backend: ranks are threads sharing one Hub guarded by one mutex.
// Undelayed messages are moved straight into the receiver's mailbox (or into a
// posted recv); delayed or bandwidth-capped ones wait in a time-ordered flight
// queue that a delivery thread drains. Every request waits on its own condition
// variable under the hub mutex.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "../common/mesh_core.h"
#include "hearth/transport/inproc_mesh.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::tuple<int, int, MeshTag>;  // (from, to, tag)
using Link = std::pair<int, int>;           // (from, to)
using FlightKey = std::pair<Clock::time_point, std::uint64_t>;

using meshcore::describe;
using meshcore::Status;

struct RequestState : meshcore::RequestState {
  bool inFlight = false;  // a delayed send waiting in the flight queue
  FlightKey flightKey;
};

struct InFlight {
  int from;
  int to;
  MeshTag tag;
  MeshBytes bytes;
  std::shared_ptr<RequestState> send;
};

struct Mutation {
  bool truncate;
  std::size_t keepBytes;
};

class Hub {
 public:
  Hub(int worldSize, InprocFaultOptions options)
      : worldSize_(worldSize),
        alive_(worldSize, true),
        delay_(options.delay),
        bandwidth_(worldSize, options.bytesPerSecond),
        uplinkFreeAt_(worldSize, Clock::time_point::min()) {}

  ~Hub() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    flightCv_.notify_all();
    if (deliverer_.joinable()) deliverer_.join();
  }

  int worldSize() const { return worldSize_; }

  void checkRank(int rank, const char* what) const {
    meshcore::checkRankInRange(rank, worldSize_, "inproc mesh", what);
  }

  std::uint64_t epoch() {
    std::lock_guard<std::mutex> lock(mu_);
    return epoch_;
  }

  bool isAlive(int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    return alive_[rank];
  }

  std::shared_ptr<RequestState> isend(int from, int to, MeshTag tag, MeshBytes bytes) {
    auto st = makeState(false, from, to, tag);
    std::lock_guard<std::mutex> lock(mu_);
    if (failIfDeadLocked(*st)) return st;
    applyMutationLocked(from, to, bytes);
    const Link link{from, to};
    const double cap = bandwidth_[from];
    if (delay_.count() <= 0 && cap <= 0 && linkInFlight_[link] == 0) {
      deliverLocked(from, to, tag, std::move(bytes));
      st->status = Status::kDone;
      return st;
    }
    const auto now = Clock::now();
    auto finish = now;
    if (cap > 0) {
      const auto start = std::max(now, uplinkFreeAt_[from]);
      finish = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(static_cast<double>(bytes.size()) / cap));
      uplinkFreeAt_[from] = finish;
    }
    auto deliverAt = std::max(finish + delay_, lastDeliverAt_[link]);
    lastDeliverAt_[link] = deliverAt;
    const FlightKey key{deliverAt, nextSeq_++};
    flight_.emplace(key, InFlight{from, to, tag, std::move(bytes), st});
    ++linkInFlight_[link];
    st->inFlight = true;
    st->flightKey = key;
    if (!deliverer_.joinable()) deliverer_ = std::thread([this] { deliverLoop(); });
    flightCv_.notify_all();
    return st;
  }

  std::shared_ptr<RequestState> irecv(int me, int from, MeshTag tag) {
    auto st = makeState(true, me, from, tag);
    std::lock_guard<std::mutex> lock(mu_);
    if (!alive_[me]) {
      failLocked(*st, std::make_exception_ptr(MeshAborted(-1, describe(*st) + ": aborted")));
      return st;
    }
    const Key key{from, me, tag};
    if (mailbox_.takeQueuedLocked(key, *st)) return st;
    if (failIfDeadLocked(*st)) return st;
    mailbox_.postLocked(key, st);
    return st;
  }

  // The mutex guarding every RequestState of this hub.
  std::mutex& mutex() { return mu_; }

  bool cancel(RequestState& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.status != Status::kPending) return false;
    if (st.isRecv) {
      mailbox_.unpostLocked(Key{st.peer, st.owner, st.tag}, st);
    } else if (st.inFlight) {
      if (flight_.erase(st.flightKey) > 0) --linkInFlight_[Link{st.owner, st.peer}];
    }
    st.inFlight = false;
    meshcore::failCancelledLocked(st);
    return true;
  }

  void killRank(int rank, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!alive_[rank]) return;
    alive_[rank] = false;
    ++epoch_;
    const std::string lost = ": peer lost (rank " + std::to_string(rank) + " " + reason + ")";
    const std::string aborted = ": aborted (" + reason + ")";
    mailbox_.failPostedLocked(
        [&](const Key& key) { return std::get<0>(key) == rank || std::get<1>(key) == rank; },
        [&](const Key& key, RequestState& st) {
          if (std::get<1>(key) == rank) {
            failLocked(st, std::make_exception_ptr(MeshAborted(-1, describe(st) + aborted)));
          } else {
            failLocked(st, std::make_exception_ptr(MeshPeerLost(rank, describe(st) + lost)));
          }
        });
    mailbox_.dropQueuedLocked([&](const Key& key) { return std::get<1>(key) == rank; });
    for (auto it = flight_.begin(); it != flight_.end();) {
      InFlight& f = it->second;
      if (f.from != rank && f.to != rank) {
        ++it;
        continue;
      }
      if (f.from == rank) {
        failLocked(*f.send, std::make_exception_ptr(MeshAborted(-1, describe(*f.send) + aborted)));
      } else {
        failLocked(*f.send, std::make_exception_ptr(MeshPeerLost(rank, describe(*f.send) + lost)));
      }
      --linkInFlight_[Link{f.from, f.to}];
      it = flight_.erase(it);
    }
  }

  void setDelay(Millis delay) {
    std::lock_guard<std::mutex> lock(mu_);
    delay_ = delay;
  }

  void setBandwidth(int rank, double bytesPerSecond) {
    std::lock_guard<std::mutex> lock(mu_);
    bandwidth_[rank] = bytesPerSecond;
  }

  void addMutation(int from, int to, Mutation m, int count) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < count; ++i) mutations_[Link{from, to}].push_back(m);
  }

 private:
  static std::shared_ptr<RequestState> makeState(bool isRecv, int owner, int peer, MeshTag tag) {
    return meshcore::makeRequest<RequestState>("inproc", isRecv, owner, peer, tag);
  }

  // Fails `st` at once if its owner or its peer is dead. Returns true if so.
  bool failIfDeadLocked(RequestState& st) {
    if (!alive_[st.owner]) {
      failLocked(st, std::make_exception_ptr(MeshAborted(-1, describe(st) + ": aborted")));
      return true;
    }
    if (!alive_[st.peer]) {
      failLocked(st, std::make_exception_ptr(
                         MeshPeerLost(st.peer, describe(st) + ": peer lost (rank " +
                                                   std::to_string(st.peer) + " is dead)")));
      return true;
    }
    return false;
  }

  static void failLocked(RequestState& st, std::exception_ptr error) {
    st.inFlight = false;
    meshcore::failLocked(st, std::move(error));
  }

  void applyMutationLocked(int from, int to, MeshBytes& bytes) {
    auto it = mutations_.find(Link{from, to});
    if (it == mutations_.end() || it->second.empty()) return;
    const Mutation m = it->second.front();
    it->second.pop_front();
    if (m.truncate) {
      bytes.truncate(m.keepBytes);
    } else if (!bytes.empty()) {
      bytes[bytes.size() / 2] ^= 0xFF;
    }
  }

  void deliverLocked(int from, int to, MeshTag tag, MeshBytes bytes) {
    mailbox_.deliverLocked(Key{from, to, tag}, std::move(bytes));
  }

  void deliverLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (flight_.empty()) {
        flightCv_.wait(lock);
        continue;
      }
      auto first = flight_.begin();
      if (Clock::now() < first->first.first) {
        flightCv_.wait_until(lock, first->first.first);
        continue;
      }
      InFlight f = std::move(first->second);
      flight_.erase(first);
      --linkInFlight_[Link{f.from, f.to}];
      // killRank removed every message to or from a dead rank, so both are alive.
      deliverLocked(f.from, f.to, f.tag, std::move(f.bytes));
      f.send->inFlight = false;
      meshcore::finishLocked(*f.send);
    }
  }

  const int worldSize_;
  std::mutex mu_;
  std::vector<bool> alive_;
  std::uint64_t epoch_ = 0;
  meshcore::MailboxCore<Key, RequestState> mailbox_;  // mailboxes and posted recvs

  Millis delay_;
  std::vector<double> bandwidth_;
  std::vector<Clock::time_point> uplinkFreeAt_;
  std::map<Link, Clock::time_point> lastDeliverAt_;
  std::map<Link, int> linkInFlight_;
  std::map<Link, std::deque<Mutation>> mutations_;
  std::map<FlightKey, InFlight> flight_;
  std::uint64_t nextSeq_ = 0;
  std::condition_variable flightCv_;
  bool stop_ = false;
  std::thread deliverer_;  // started on the first delayed message
};

using InprocRequest = meshcore::MeshRequestImpl<Hub, RequestState>;

class InprocMesh : public Mesh {
 public:
  InprocMesh(std::shared_ptr<Hub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}
  ~InprocMesh() override { hub_->killRank(rank_, "destroyed its mesh"); }

  int rank() const override { return rank_; }
  int worldSize() const override { return hub_->worldSize(); }
  std::uint64_t epoch() const override { return hub_->epoch(); }
  bool isPeerAlive(int peer) const override {
    hub_->checkRank(peer, "isPeerAlive");
    return hub_->isAlive(peer);
  }
  std::string backendName() const override { return "inproc"; }

  std::unique_ptr<MeshRequest> isend(int peer, MeshTag tag, MeshBytes bytes) override {
    hub_->checkRank(peer, "isend");
    return std::make_unique<InprocRequest>(hub_, hub_->isend(rank_, peer, tag, std::move(bytes)));
  }
  std::unique_ptr<MeshRequest> irecv(int peer, MeshTag tag) override {
    hub_->checkRank(peer, "irecv");
    return std::make_unique<InprocRequest>(hub_, hub_->irecv(rank_, peer, tag));
  }
  void abort() override { hub_->killRank(rank_, "aborted"); }

 private:
  std::shared_ptr<Hub> hub_;
  const int rank_;
};

class HubFaults : public InprocFaults {
 public:
  explicit HubFaults(std::shared_ptr<Hub> hub) : hub_(std::move(hub)) {}
  void killRank(int rank) override {
    hub_->checkRank(rank, "killRank");
    hub_->killRank(rank, "killed by fault injection");
  }
  void setDelay(Millis delay) override { hub_->setDelay(delay); }
  void setBandwidth(int rank, double bytesPerSecond) override {
    hub_->checkRank(rank, "setBandwidth");
    hub_->setBandwidth(rank, bytesPerSecond);
  }
  void corruptNext(int from, int to, int count) override {
    hub_->checkRank(from, "corruptNext");
    hub_->checkRank(to, "corruptNext");
    hub_->addMutation(from, to, Mutation{false, 0}, count);
  }
  void truncateNext(int from, int to, std::size_t keepBytes, int count) override {
    hub_->checkRank(from, "truncateNext");
    hub_->checkRank(to, "truncateNext");
    hub_->addMutation(from, to, Mutation{true, keepBytes}, count);
  }

 private:
  std::shared_ptr<Hub> hub_;
};

}  // namespace

InprocMeshGroup makeInprocMesh(int worldSize, InprocFaultOptions options) {
  if (worldSize < 1) {
    throw MeshUsageError(
        -1, "makeInprocMesh: worldSize must be >= 1, got " + std::to_string(worldSize));
  }
  auto hub = std::make_shared<Hub>(worldSize, options);
  InprocMeshGroup group;
  for (int r = 0; r < worldSize; ++r) group.ranks.push_back(std::make_unique<InprocMesh>(hub, r));
  group.faults = std::make_shared<HubFaults>(hub);
  return group;
}

}  // namespace hearth
