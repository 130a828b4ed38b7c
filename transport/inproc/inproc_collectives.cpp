// Inproc Collectives backend: ranks are threads sharing one Hub. Every
// collective is "publish my slot, wait for all, read the slots, wait for all".
// The bounds-based collectives publish pointers instead of copies: between
// the two waits each rank reads the other ranks' buffers (only ranges that
// their owners do not write) and writes only its own.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>

#include "hearth/transport/inproc.h"

namespace hearth {
namespace {

class Hub {
 public:
  explicit Hub(int worldSize) : worldSize_(worldSize), slots_(worldSize), pointers_(worldSize) {}

  int worldSize() const { return worldSize_; }

  void publish(int rank, const void* data, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = slots_[rank];
    slot.resize(bytes);
    if (bytes > 0) std::memcpy(slot.data(), data, bytes);
  }

  // Publishes a pointer to this rank's argument of a zero-copy collective.
  void publishPointer(int rank, const void* args) {
    std::lock_guard<std::mutex> lock(mu_);
    pointers_[rank] = args;
  }
  const void* pointer(int rank) const { return pointers_[rank]; }

  // Only valid between the two arriveAndWait calls of a collective: no rank
  // writes its slot then.
  const std::vector<std::uint8_t>& slot(int rank) const { return slots_[rank]; }

  // Generation barrier with timeout. A timeout poisons the hub so that the
  // other ranks fail too instead of waiting for a rank that gave up.
  void arriveAndWait(int rank, const char* op, Millis timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    throwIfAborted(op);
    const std::uint64_t myGeneration = generation_;
    if (++arrived_ == worldSize_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    const bool done =
        cv_.wait_for(lock, timeout, [&] { return generation_ != myGeneration || aborted_; });
    if (generation_ != myGeneration) return;
    if (!done) {
      abortLocked("rank " + std::to_string(rank) + " timed out in " + op);
      throw CollectiveTimeout(std::string("inproc ") + op + ": rank " + std::to_string(rank) +
                              " timed out after " + std::to_string(timeout.count()) +
                              " ms waiting for " + std::to_string(worldSize_ - arrived_) +
                              " other rank(s)");
    }
    throwIfAborted(op);
  }

  void abort(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    abortLocked(reason);
  }

 private:
  void abortLocked(const std::string& reason) {
    if (!aborted_) {
      aborted_ = true;
      abortReason_ = reason;
    }
    cv_.notify_all();
  }
  void throwIfAborted(const char* op) const {
    if (aborted_) {
      throw CollectiveAborted(std::string("inproc ") + op + ": group aborted (" + abortReason_ +
                              ")");
    }
  }

  const int worldSize_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t generation_ = 0;
  int arrived_ = 0;
  bool aborted_ = false;
  std::string abortReason_;
  std::vector<std::vector<std::uint8_t>> slots_;
  std::vector<const void*> pointers_;
};

// One rank's arguments to a bounds-based collective, shared by pointer.
struct RangeArgs {
  float* data = nullptr;
  const std::vector<std::size_t>* bounds = nullptr;
  const std::vector<std::uint32_t>* indices = nullptr;
  const std::vector<float>* values = nullptr;
};

class InprocCollectives final : public Collectives {
 public:
  InprocCollectives(std::shared_ptr<Hub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}

  int rank() const override { return rank_; }
  int worldSize() const override { return hub_->worldSize(); }
  std::string backendName() const override { return "inproc"; }

  void allreduceSum(float* data, std::size_t count, Millis timeout) override {
    hub_->publish(rank_, data, count * sizeof(float));
    hub_->arriveAndWait(rank_, "allreduceSum", timeout);
    const std::size_t bytes = count * sizeof(float);
    for (int r = 0; r < worldSize(); ++r) {
      if (hub_->slot(r).size() != bytes) {
        hub_->abort("size mismatch in allreduceSum");
        throw CollectiveUsageError("inproc allreduceSum: rank " + std::to_string(r) + " passed " +
                                   std::to_string(hub_->slot(r).size() / sizeof(float)) +
                                   " floats, rank " + std::to_string(rank_) + " passed " +
                                   std::to_string(count));
      }
    }
    // Sum in rank order so that every rank gets bitwise identical results.
    if (count > 0) {
      std::memcpy(data, hub_->slot(0).data(), bytes);
      for (int r = 1; r < worldSize(); ++r) {
        const auto* other = reinterpret_cast<const float*>(hub_->slot(r).data());
        for (std::size_t i = 0; i < count; ++i) data[i] += other[i];
      }
    }
    hub_->arriveAndWait(rank_, "allreduceSum", timeout);
  }

  void broadcast(void* data, std::size_t bytes, int root, Millis timeout) override {
    if (root < 0 || root >= worldSize()) {
      throw CollectiveUsageError("inproc broadcast: root " + std::to_string(root) +
                                 " is not a rank of a group of " + std::to_string(worldSize()));
    }
    if (rank_ == root) hub_->publish(rank_, data, bytes);
    hub_->arriveAndWait(rank_, "broadcast", timeout);
    const auto& src = hub_->slot(root);
    if (src.size() != bytes) {
      hub_->abort("size mismatch in broadcast");
      throw CollectiveUsageError("inproc broadcast: root sent " + std::to_string(src.size()) +
                                 " bytes, rank " + std::to_string(rank_) + " expected " +
                                 std::to_string(bytes));
    }
    if (rank_ != root && bytes > 0) std::memcpy(data, src.data(), bytes);
    hub_->arriveAndWait(rank_, "broadcast", timeout);
  }

  std::vector<std::vector<std::uint8_t>> allgatherBytes(const std::vector<std::uint8_t>& mine,
                                                        Millis timeout) override {
    hub_->publish(rank_, mine.data(), mine.size());
    hub_->arriveAndWait(rank_, "allgatherBytes", timeout);
    std::vector<std::vector<std::uint8_t>> all(worldSize());
    for (int r = 0; r < worldSize(); ++r) all[r] = hub_->slot(r);
    hub_->arriveAndWait(rank_, "allgatherBytes", timeout);
    return all;
  }

  void reduceScatterSum(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    const RangeArgs mine{data, &bounds};  // read by the other ranks until the last wait
    const auto& all = exchange("reduceScatterSum", mine, timeout);
    // Rank-order sum of our range; other ranks read other ranges of `data`.
    for (std::size_t i = bounds[rank_]; i < bounds[rank_ + 1]; ++i) {
      float sum = all[0]->data[i];
      for (int r = 1; r < worldSize(); ++r) sum += all[r]->data[i];
      data[i] = sum;
    }
    hub_->arriveAndWait(rank_, "reduceScatterSum", timeout);
  }

  void allgatherInPlace(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    const RangeArgs mine{data, &bounds};
    const auto& all = exchange("allgatherInPlace", mine, timeout);
    for (int r = 0; r < worldSize(); ++r) {
      const std::size_t n = bounds[r + 1] - bounds[r];
      if (r != rank_ && n > 0)
        std::memcpy(data + bounds[r], all[r]->data + bounds[r], n * sizeof(float));
    }
    hub_->arriveAndWait(rank_, "allgatherInPlace", timeout);
  }

  void sparseReduceScatterAdd(const std::vector<std::uint32_t>& indices,
                              const std::vector<float>& values,
                              const std::vector<std::size_t>& bounds, float* owned,
                              Millis timeout) override {
    const char* op = "sparseReduceScatterAdd";
    const std::string why =
        sparsePairsProblem(indices, values.size(), bounds.empty() ? 0 : bounds.back());
    if (!why.empty()) fail(op, why);
    const RangeArgs mine{owned, &bounds, &indices, &values};
    const auto& all = exchange(op, mine, timeout);
    // Per index, the sum over ranks in rank order, then added to `owned`:
    // merge the ranks' sorted pairs inside our range.
    const std::size_t lo = bounds[rank_], hi = bounds[rank_ + 1];
    std::vector<std::size_t> at(worldSize()), end(worldSize());
    for (int r = 0; r < worldSize(); ++r) {
      const auto& idx = *all[r]->indices;
      at[r] = std::lower_bound(idx.begin(), idx.end(), lo) - idx.begin();
      end[r] = std::lower_bound(idx.begin() + at[r], idx.end(), hi) - idx.begin();
    }
    for (;;) {
      std::size_t next = hi;
      for (int r = 0; r < worldSize(); ++r) {
        if (at[r] < end[r]) next = std::min<std::size_t>(next, (*all[r]->indices)[at[r]]);
      }
      if (next == hi) break;
      bool first = true;
      float sum = 0;
      for (int r = 0; r < worldSize(); ++r) {
        if (at[r] == end[r] || (*all[r]->indices)[at[r]] != next) continue;
        const float v = (*all[r]->values)[at[r]++];
        sum = first ? v : sum + v;
        first = false;
      }
      owned[next - lo] += sum;
    }
    hub_->arriveAndWait(rank_, op, timeout);
  }

  void barrier(Millis timeout) override { hub_->arriveAndWait(rank_, "barrier", timeout); }

  void abort() override { hub_->abort("rank " + std::to_string(rank_) + " called abort()"); }

 private:
  [[noreturn]] void fail(const char* op, const std::string& why) {
    hub_->abort(std::string("usage error in ") + op);
    throw CollectiveUsageError(std::string("inproc ") + op + ": rank " + std::to_string(rank_) +
                               ": " + why);
  }

  void checkBounds(const char* op, const std::vector<std::size_t>& bounds) {
    const std::string why = boundsProblem(bounds, worldSize());
    if (!why.empty()) fail(op, why);
  }

  // Validates `mine`, publishes it, waits for every rank, and checks that all
  // ranks passed the same bounds. Returns every rank's arguments by rank.
  const std::vector<const RangeArgs*>& exchange(const char* op, const RangeArgs& mine,
                                                Millis timeout) {
    checkBounds(op, *mine.bounds);
    hub_->publishPointer(rank_, &mine);
    hub_->arriveAndWait(rank_, op, timeout);
    args_.resize(worldSize());
    std::string mismatch;
    for (int r = 0; r < worldSize(); ++r) {
      args_[r] = static_cast<const RangeArgs*>(hub_->pointer(r));
      if (mismatch.empty() && *args_[r]->bounds != *mine.bounds) {
        mismatch = "rank " + std::to_string(r) + " passed different bounds";
      }
    }
    if (!mismatch.empty()) {
      // Every rank sees some rank whose bounds differ from its own, so all
      // get here: wait until nobody reads another rank's (stack) arguments
      // any more, then fail together.
      hub_->arriveAndWait(rank_, op, timeout);
      fail(op, mismatch);
    }
    return args_;
  }

  std::shared_ptr<Hub> hub_;
  const int rank_;
  std::vector<const RangeArgs*> args_;
};

}  // namespace

std::vector<std::unique_ptr<Collectives>> makeInprocGroup(int worldSize) {
  if (worldSize < 1) {
    throw CollectiveUsageError("makeInprocGroup: world size must be >= 1, got " +
                               std::to_string(worldSize));
  }
  auto hub = std::make_shared<Hub>(worldSize);
  std::vector<std::unique_ptr<Collectives>> group;
  group.reserve(worldSize);
  for (int r = 0; r < worldSize; ++r) group.push_back(std::make_unique<InprocCollectives>(hub, r));
  return group;
}

}  // namespace hearth
