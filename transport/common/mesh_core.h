// Internal to hearth_transport: the request and matching core shared by the
// Mesh backends (inproc, zmq). Not installed.
//
// Contract:
//  - A RequestState is the state of one isend/irecv. Its fields are guarded by
//    its owner's mutex (the backend's one mutex: the inproc Hub or the zmq
//    Core); this file has no mutex of its own. Functions whose name ends in
//    `Locked` must be called with that mutex held; the others take it.
//  - MailboxCore<Key> matches messages to receives per Key (e.g. (peer, tag)):
//    a delivered message completes the oldest posted recv for its key, else
//    it is queued, and a later recv for that key takes the oldest queued one.
//    FIFO per key. All of it is `Locked`.
//  - waitRequest blocks on the request's condition variable until it finishes
//    or `timeout` passes (kMeshNoTimeout: forever); it returns false on
//    timeout, true on success, and rethrows the request's error on failure.
//    Nothing else here blocks.
//  - MeshRequestImpl<Owner, State> is the MeshRequest handed to callers. Owner
//    provides `std::mutex& mutex()` and `bool cancel(State&)` (which removes
//    the request from the owner's queues and fails it with MeshCancelled).
//    Destroying an unfinished recv cancels it; an unfinished send is detached
//    and still delivered.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "hearth/transport/mesh.h"

namespace hearth {
namespace meshcore {

enum class Status { kPending, kDone, kFailed };

struct RequestState {
  const char* backend = "";  // for messages: "inproc", "zmq"
  bool isRecv = false;
  int owner = 0;  // the rank that issued the request
  int peer = 0;
  MeshTag tag = 0;
  Status status = Status::kPending;
  std::exception_ptr error;
  MeshBytes payload;
  bool taken = false;
  std::condition_variable cv;
};

// Throws MeshUsageError("<who>: <what>: rank R is out of range [0, N)") unless
// 0 <= rank < worldSize.
void checkRankInRange(int rank, int worldSize, const std::string& who, const char* what);

template <class State = RequestState>
std::shared_ptr<State> makeRequest(const char* backend, bool isRecv, int owner, int peer,
                                   MeshTag tag) {
  auto st = std::make_shared<State>();
  st->backend = backend;
  st->isRecv = isRecv;
  st->owner = owner;
  st->peer = peer;
  st->tag = tag;
  return st;
}

// "<backend> mesh rank R: recv from rank P tag T" (or "send to rank ...").
std::string describe(const RequestState& st);

// Marks `st` done (a recv's payload must be set before) and wakes its waiters.
void finishLocked(RequestState& st);
// Marks `st` failed with `error` and wakes its waiters.
void failLocked(RequestState& st, std::exception_ptr error);
// Fails `st` with MeshCancelled.
void failCancelledLocked(RequestState& st);

bool testRequest(std::mutex& mu, const RequestState& st);
bool waitRequest(std::mutex& mu, RequestState& st, Millis timeout);
// Moves a finished recv's payload out; throws MeshUsageError otherwise.
MeshBytes takeRequest(std::mutex& mu, RequestState& st);

template <class Key, class State = RequestState>
class MailboxCore {
 public:
  // Completes `st` with the oldest queued message for `key`, if any.
  bool takeQueuedLocked(const Key& key, State& st) {
    auto box = mailbox_.find(key);
    if (box == mailbox_.end() || box->second.empty()) return false;
    st.payload = std::move(box->second.front());
    box->second.pop_front();
    st.status = Status::kDone;
    return true;
  }

  void postLocked(const Key& key, std::shared_ptr<State> st) {
    posted_[key].push_back(std::move(st));
  }

  // Takes the oldest recv posted for `key` if it is an irecvInto of exactly
  // `size` (> 0) bytes; else null and nothing changes. Needs a State with
  // `into` and `intoSize` (the zmq backend's).
  std::shared_ptr<State> claimIntoLocked(const Key& key, std::size_t size) {
    auto it = posted_.find(key);
    if (size == 0 || it == posted_.end() || it->second.empty()) return nullptr;
    const State& front = *it->second.front();
    if (front.into == nullptr || front.intoSize != size) return nullptr;
    auto claimed = std::move(it->second.front());
    it->second.pop_front();
    return claimed;
  }

  // Puts a claimed recv back as the oldest posted for `key`.
  void repostFrontLocked(const Key& key, std::shared_ptr<State> st) {
    posted_[key].push_front(std::move(st));
  }

  // Removes `st` from the recvs posted for `key`.
  void unpostLocked(const Key& key, const State& st) {
    auto it = posted_.find(key);
    if (it == posted_.end()) return;
    auto& q = it->second;
    q.erase(std::remove_if(q.begin(), q.end(), [&](const auto& p) { return p.get() == &st; }),
            q.end());
  }

  // Hands `bytes` to the oldest recv posted for `key`, else queues it.
  void deliverLocked(const Key& key, MeshBytes bytes) {
    auto it = posted_.find(key);
    if (it != posted_.end() && !it->second.empty()) {
      auto st = std::move(it->second.front());
      it->second.pop_front();
      st->payload = std::move(bytes);
      finishLocked(*st);
      return;
    }
    mailbox_[key].push_back(std::move(bytes));
  }

  // For every key with match(key): calls fail(key, state) on each posted recv,
  // then forgets them.
  template <class Match, class Fail>
  void failPostedLocked(Match match, Fail fail) {
    for (auto it = posted_.begin(); it != posted_.end();) {
      if (!match(it->first)) {
        ++it;
        continue;
      }
      for (auto& st : it->second) fail(it->first, *st);
      it = posted_.erase(it);
    }
  }

  // Drops the queued messages of every key with match(key).
  template <class Match>
  void dropQueuedLocked(Match match) {
    for (auto it = mailbox_.begin(); it != mailbox_.end();) {
      it = match(it->first) ? mailbox_.erase(it) : std::next(it);
    }
  }

 private:
  std::map<Key, std::deque<MeshBytes>> mailbox_;
  std::map<Key, std::deque<std::shared_ptr<State>>> posted_;
};

template <class Owner, class State = RequestState>
class MeshRequestImpl : public MeshRequest {
 public:
  MeshRequestImpl(std::shared_ptr<Owner> owner, std::shared_ptr<State> st)
      : owner_(std::move(owner)), st_(std::move(st)) {}
  ~MeshRequestImpl() override {
    if (st_->isRecv) owner_->cancel(*st_);  // a send is detached: still delivered
  }

  bool test() override { return testRequest(owner_->mutex(), *st_); }
  bool wait(Millis timeout) override { return waitRequest(owner_->mutex(), *st_, timeout); }
  bool cancel() override { return owner_->cancel(*st_); }
  MeshBytes take() override { return takeRequest(owner_->mutex(), *st_); }
  int peer() const override { return st_->peer; }
  MeshTag tag() const override { return st_->tag; }

 private:
  std::shared_ptr<Owner> owner_;
  std::shared_ptr<State> st_;
};

}  // namespace meshcore
}  // namespace hearth
