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

#include "hearth/transport/inproc_mesh.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::tuple<int, int, MeshTag>;  // (from, to, tag)
using Link = std::pair<int, int>;           // (from, to)
using FlightKey = std::pair<Clock::time_point, std::uint64_t>;

enum class Status { kPending, kDone, kFailed };

struct RequestState {
  bool isRecv = false;
  int owner = 0;  // the rank that issued the request
  int peer = 0;
  MeshTag tag = 0;
  Status status = Status::kPending;
  std::exception_ptr error;
  MeshBytes payload;
  bool taken = false;
  bool inFlight = false;  // a delayed send waiting in the flight queue
  FlightKey flightKey;
  std::condition_variable cv;
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

std::string describe(const RequestState& st) {
  return "inproc mesh rank " + std::to_string(st.owner) + ": " +
         (st.isRecv ? "recv from rank " : "send to rank ") + std::to_string(st.peer) + " tag " +
         std::to_string(st.tag);
}

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
    if (rank < 0 || rank >= worldSize_) {
      throw MeshUsageError(rank, std::string("inproc mesh: ") + what + ": rank " +
                                     std::to_string(rank) + " is out of range [0, " +
                                     std::to_string(worldSize_) + ")");
    }
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
    auto box = mailbox_.find(key);
    if (box != mailbox_.end() && !box->second.empty()) {
      st->payload = std::move(box->second.front());
      box->second.pop_front();
      st->status = Status::kDone;
      return st;
    }
    if (failIfDeadLocked(*st)) return st;
    posted_[key].push_back(st);
    return st;
  }

  bool test(const RequestState& st) {
    std::lock_guard<std::mutex> lock(mu_);
    return st.status != Status::kPending;
  }

  bool wait(RequestState& st, Millis timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    auto finished = [&] { return st.status != Status::kPending; };
    if (timeout == kMeshNoTimeout) {
      st.cv.wait(lock, finished);
    } else if (!st.cv.wait_for(lock, timeout, finished)) {
      return false;
    }
    if (st.status == Status::kFailed) std::rethrow_exception(st.error);
    return true;
  }

  bool cancel(RequestState& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.status != Status::kPending) return false;
    if (st.isRecv) {
      auto it = posted_.find(Key{st.peer, st.owner, st.tag});
      if (it != posted_.end()) {
        auto& q = it->second;
        q.erase(std::remove_if(q.begin(), q.end(), [&](const auto& p) { return p.get() == &st; }),
                q.end());
      }
    } else if (st.inFlight) {
      if (flight_.erase(st.flightKey) > 0) --linkInFlight_[Link{st.owner, st.peer}];
    }
    failLocked(st, std::make_exception_ptr(MeshCancelled(st.peer, describe(st) + ": cancelled")));
    return true;
  }

  MeshBytes take(RequestState& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!st.isRecv || st.status != Status::kDone || st.taken) {
      throw MeshUsageError(st.peer, describe(st) +
                                        ": take() needs a successfully finished recv "
                                        "whose message was not taken yet");
    }
    st.taken = true;
    return std::move(st.payload);
  }

  void killRank(int rank, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!alive_[rank]) return;
    alive_[rank] = false;
    ++epoch_;
    const std::string lost = ": peer lost (rank " + std::to_string(rank) + " " + reason + ")";
    const std::string aborted = ": aborted (" + reason + ")";
    for (auto it = posted_.begin(); it != posted_.end();) {
      const int from = std::get<0>(it->first);
      const int to = std::get<1>(it->first);
      if (to != rank && from != rank) {
        ++it;
        continue;
      }
      for (auto& st : it->second) {
        if (to == rank) {
          failLocked(*st, std::make_exception_ptr(MeshAborted(-1, describe(*st) + aborted)));
        } else {
          failLocked(*st, std::make_exception_ptr(MeshPeerLost(rank, describe(*st) + lost)));
        }
      }
      it = posted_.erase(it);
    }
    for (auto it = mailbox_.begin(); it != mailbox_.end();) {
      it = std::get<1>(it->first) == rank ? mailbox_.erase(it) : std::next(it);
    }
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
    auto st = std::make_shared<RequestState>();
    st->isRecv = isRecv;
    st->owner = owner;
    st->peer = peer;
    st->tag = tag;
    return st;
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
    st.status = Status::kFailed;
    st.error = std::move(error);
    st.inFlight = false;
    st.cv.notify_all();
  }

  void applyMutationLocked(int from, int to, MeshBytes& bytes) {
    auto it = mutations_.find(Link{from, to});
    if (it == mutations_.end() || it->second.empty()) return;
    const Mutation m = it->second.front();
    it->second.pop_front();
    if (m.truncate) {
      if (bytes.size() > m.keepBytes) bytes.resize(m.keepBytes);
    } else if (!bytes.empty()) {
      bytes[bytes.size() / 2] ^= 0xFF;
    }
  }

  void deliverLocked(int from, int to, MeshTag tag, MeshBytes bytes) {
    const Key key{from, to, tag};
    auto it = posted_.find(key);
    if (it != posted_.end() && !it->second.empty()) {
      auto st = std::move(it->second.front());
      it->second.pop_front();
      st->payload = std::move(bytes);
      st->status = Status::kDone;
      st->cv.notify_all();
      return;
    }
    mailbox_[key].push_back(std::move(bytes));
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
      f.send->status = Status::kDone;
      f.send->inFlight = false;
      f.send->cv.notify_all();
    }
  }

  const int worldSize_;
  std::mutex mu_;
  std::vector<bool> alive_;
  std::uint64_t epoch_ = 0;
  std::map<Key, std::deque<MeshBytes>> mailbox_;
  std::map<Key, std::deque<std::shared_ptr<RequestState>>> posted_;

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

class InprocRequest : public MeshRequest {
 public:
  InprocRequest(std::shared_ptr<Hub> hub, std::shared_ptr<RequestState> st)
      : hub_(std::move(hub)), st_(std::move(st)) {}
  ~InprocRequest() override {
    if (st_->isRecv) hub_->cancel(*st_);  // a send is detached: still delivered
  }

  bool test() override { return hub_->test(*st_); }
  bool wait(Millis timeout) override { return hub_->wait(*st_, timeout); }
  bool cancel() override { return hub_->cancel(*st_); }
  MeshBytes take() override { return hub_->take(*st_); }
  int peer() const override { return st_->peer; }
  MeshTag tag() const override { return st_->tag; }

 private:
  std::shared_ptr<Hub> hub_;
  std::shared_ptr<RequestState> st_;
};

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
