#include "mesh_core.h"

namespace hearth {
namespace meshcore {

std::string describe(const RequestState& st) {
  return std::string(st.backend) + " mesh rank " + std::to_string(st.owner) + ": " +
         (st.isRecv ? "recv from rank " : "send to rank ") + std::to_string(st.peer) + " tag " +
         std::to_string(st.tag);
}

void checkRankInRange(int rank, int worldSize, const std::string& who, const char* what) {
  if (rank < 0 || rank >= worldSize) {
    throw MeshUsageError(rank, who + ": " + what + ": rank " + std::to_string(rank) +
                                   " is out of range [0, " + std::to_string(worldSize) + ")");
  }
}

void finishLocked(RequestState& st) {
  st.status = Status::kDone;
  st.cv.notify_all();
}

void failLocked(RequestState& st, std::exception_ptr error) {
  st.status = Status::kFailed;
  st.error = std::move(error);
  st.cv.notify_all();
}

void failCancelledLocked(RequestState& st) {
  failLocked(st, std::make_exception_ptr(MeshCancelled(st.peer, describe(st) + ": cancelled")));
}

bool testRequest(std::mutex& mu, const RequestState& st) {
  std::lock_guard<std::mutex> lock(mu);
  return st.status != Status::kPending;
}

bool waitRequest(std::mutex& mu, RequestState& st, Millis timeout) {
  std::unique_lock<std::mutex> lock(mu);
  auto finished = [&] { return st.status != Status::kPending; };
  if (timeout == kMeshNoTimeout) {
    st.cv.wait(lock, finished);
  } else if (!st.cv.wait_for(lock, timeout, finished)) {
    return false;
  }
  if (st.status == Status::kFailed) std::rethrow_exception(st.error);
  return true;
}

MeshBytes takeRequest(std::mutex& mu, RequestState& st) {
  std::lock_guard<std::mutex> lock(mu);
  if (!st.isRecv || st.status != Status::kDone || st.taken) {
    throw MeshUsageError(st.peer, describe(st) +
                                      ": take() needs a successfully finished recv "
                                      "whose message was not taken yet");
  }
  st.taken = true;
  return std::move(st.payload);
}

}  // namespace meshcore
}  // namespace hearth
