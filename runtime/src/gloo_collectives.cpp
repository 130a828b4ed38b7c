// hearth::Collectives implemented with c10d::ProcessGroupGloo.
//
// LibTorch 1.13's ProcessGroupGloo has no reduce_scatter, so the bounds-based
// collectives are built here from its tagged send/recv (user tags < 2^31
// never meet Gloo's own collective slots, which carry a prefix above 2^56):
// - reduceScatterSum: ring; in step k (k = 0 .. W-2) rank r sends segment
//   r-k-1 to r+1 and receives segment r-k-2 from r-1 into one segment-sized
//   scratch buffer, then adds it in place. Each rank sends (W-1)/W x count.
// - allgatherInPlace: ring; step k sends segment r-k, receives r-k-1 straight
//   into the caller's buffer (from_blob, zero copy).
// - sparseReduceScatterAdd: all-to-all over send/recv: pair counts first, then
//   each owner's pairs as 8 bytes (u32 index, f32 value); the owner sums per
//   index in rank order and adds to `owned`.
// Every wait is bounded by the call's deadline; abort() also aborts the waits
// in flight, so these calls end promptly with CollectiveAborted.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <utility>

#include "hearth/runtime/gloo_backend.h"

namespace hearth {
namespace {

bool looksLikeTimeout(const std::string& message) {
  for (const char* marker : {"Timed out", "timed out", "Timeout", "timeout"}) {
    if (message.find(marker) != std::string::npos) return true;
  }
  return false;
}

[[noreturn]] void rethrow(const char* op, const std::exception& e) {
  const std::string first = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
  const std::string message = std::string("gloo ") + op + " failed: " + first;
  if (looksLikeTimeout(first)) throw CollectiveTimeout(message);
  throw CollectiveError(message);
}

constexpr int kReduceScatterTag = 1 << 20;
constexpr int kAllgatherTag = 2 << 20;
constexpr int kSparseCountTag = 3 << 20;
constexpr int kSparsePairTag = (3 << 20) + 1;

using Clock = std::chrono::steady_clock;
// Caps "no timeout" style values so that the deadline does not overflow.
constexpr Millis kLongestWait = std::chrono::hours(24 * 365);

struct Range {
  std::size_t lo = 0;
  std::size_t hi = 0;
  std::size_t size() const { return hi - lo; }
};

at::Tensor floatBlob(float* data, std::size_t count) {
  return at::from_blob(data, {static_cast<int64_t>(count)}, at::TensorOptions().dtype(at::kFloat));
}

class GlooCollectives final : public Collectives {
 public:
  GlooCollectives(c10::intrusive_ptr<GlooGroup> group, Millis timeout)
      : group_(std::move(group)), timeout_(timeout) {}

  int rank() const override { return group_->getRank(); }
  int worldSize() const override { return group_->getSize(); }
  std::string backendName() const override { return "gloo"; }
  GlooGroup* group() { return group_.get(); }

  void allreduceSum(float* data, std::size_t count, Millis timeout) override {
    if (count == 0) return;
    std::vector<at::Tensor> tensors{
        at::from_blob(data, {static_cast<int64_t>(count)}, at::TensorOptions().dtype(at::kFloat))};
    run("allreduceSum", timeout, [&] { return group_->allreduce(tensors); });
  }

  void broadcast(void* data, std::size_t bytes, int root, Millis timeout) override {
    if (root < 0 || root >= worldSize()) {
      throw CollectiveUsageError("gloo broadcast: root " + std::to_string(root) +
                                 " is not a rank of a group of " + std::to_string(worldSize()));
    }
    if (bytes == 0) return;
    std::vector<at::Tensor> tensors{
        at::from_blob(data, {static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(at::kByte))};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    run("broadcast", timeout, [&] { return group_->broadcast(tensors, options); });
  }

  std::vector<std::vector<std::uint8_t>> allgatherBytes(const std::vector<std::uint8_t>& mine,
                                                        Millis timeout) override {
    // Gloo's allgather needs equal sizes: gather the sizes, then pad to the max.
    const int world = worldSize();
    std::vector<at::Tensor> mySize{at::full({1}, static_cast<int64_t>(mine.size()), at::kLong)};
    std::vector<std::vector<at::Tensor>> sizes(1);
    for (int r = 0; r < world; ++r) sizes[0].push_back(at::empty({1}, at::kLong));
    run("allgatherBytes(sizes)", timeout, [&] { return group_->allgather(sizes, mySize); });
    int64_t longest = 0;
    for (const auto& s : sizes[0]) longest = std::max(longest, s.item<int64_t>());
    std::vector<std::vector<std::uint8_t>> result(world);
    if (longest == 0) return result;
    std::vector<at::Tensor> padded{at::zeros({longest}, at::kByte)};
    if (!mine.empty()) std::memcpy(padded[0].data_ptr(), mine.data(), mine.size());
    std::vector<std::vector<at::Tensor>> gathered(1);
    for (int r = 0; r < world; ++r) gathered[0].push_back(at::empty({longest}, at::kByte));
    run("allgatherBytes", timeout, [&] { return group_->allgather(gathered, padded); });
    for (int r = 0; r < world; ++r) {
      const auto n = static_cast<std::size_t>(sizes[0][r].item<int64_t>());
      const auto* begin = gathered[0][r].data_ptr<std::uint8_t>();
      result[r].assign(begin, begin + n);
    }
    return result;
  }

  void reduceScatterSum(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    const char* op = "reduceScatterSum";
    checkBounds(op, bounds);
    const int world = worldSize(), me = rank();
    if (world == 1) return;
    Exchange ex(*this, op, timeout);
    std::size_t largest = 0;
    for (int s = 0; s < world; ++s) largest = std::max(largest, segment(bounds, s).size());
    if (scratch_.size() < largest) scratch_.resize(largest);
    for (int step = 0; step < world - 1; ++step) {
      const Range out = segment(bounds, me - step - 1), in = segment(bounds, me - step - 2);
      ex.post(true, (me + 1) % world, data + out.lo, out.size(), kReduceScatterTag + step);
      ex.post(false, (me - 1 + world) % world, scratch_.data(), in.size(),
              kReduceScatterTag + step);
      ex.waitAll();
      float* dst = data + in.lo;
      for (std::size_t i = 0; i < in.size(); ++i) dst[i] = scratch_[i] + dst[i];
    }
  }

  void allgatherInPlace(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override {
    const char* op = "allgatherInPlace";
    checkBounds(op, bounds);
    const int world = worldSize(), me = rank();
    if (world == 1) return;
    Exchange ex(*this, op, timeout);
    for (int step = 0; step < world - 1; ++step) {
      const Range out = segment(bounds, me - step), in = segment(bounds, me - step - 1);
      ex.post(true, (me + 1) % world, data + out.lo, out.size(), kAllgatherTag + step);
      ex.post(false, (me - 1 + world) % world, data + in.lo, in.size(), kAllgatherTag + step);
      ex.waitAll();
    }
  }

  void sparseReduceScatterAdd(const std::vector<std::uint32_t>& indices,
                              const std::vector<float>& values,
                              const std::vector<std::size_t>& bounds, float* owned,
                              Millis timeout) override {
    const char* op = "sparseReduceScatterAdd";
    checkBounds(op, bounds);
    checkPairs(op, indices, values, bounds.back());
    const int world = worldSize(), me = rank();
    const Range mine = segment(bounds, me);
    // Pairs of every owner: [first[o], first[o + 1]) of indices/values.
    std::vector<std::size_t> first(world + 1, indices.size());
    for (int o = 0; o < world; ++o) {
      first[o] = std::lower_bound(indices.begin(), indices.end(), bounds[o]) - indices.begin();
    }
    std::vector<std::int64_t> sendCounts(world), recvCounts(world, 0);
    for (int o = 0; o < world; ++o) sendCounts[o] = std::int64_t(first[o + 1] - first[o]);
    Exchange ex(*this, op, timeout);
    for (int step = 1; step < world; ++step) {
      const int to = (me + step) % world, from = (me - step + world) % world;
      ex.post(true, to, &sendCounts[to], 1, kSparseCountTag);
      ex.post(false, from, &recvCounts[from], 1, kSparseCountTag);
    }
    ex.waitAll();
    std::vector<std::vector<std::uint32_t>> out(world), in(world);
    for (int s = 0; s < world; ++s) {
      if (s != me && (recvCounts[s] < 0 || std::size_t(recvCounts[s]) > mine.size())) {
        throw CollectiveUsageError(
            "gloo " + std::string(op) + ": rank " + std::to_string(me) + " was announced " +
            std::to_string(recvCounts[s]) + " pairs by rank " + std::to_string(s) +
            " for a range of " + std::to_string(mine.size()) + " (ranks passed different bounds)");
      }
    }
    for (int step = 1; step < world; ++step) {
      const int to = (me + step) % world, from = (me - step + world) % world;
      out[to] = packPairs(indices, values, first[to], first[to + 1]);
      in[from].resize(2 * std::size_t(recvCounts[from]));
      ex.post(true, to, out[to].data(), out[to].size(), kSparsePairTag);
      ex.post(false, from, in[from].data(), in[from].size(), kSparsePairTag);
    }
    ex.waitAll();
    std::vector<std::pair<std::uint32_t, float>> pairs;
    for (int s = 0; s < world; ++s) {
      if (s == me) {
        for (std::size_t i = first[me]; i < first[me + 1]; ++i) {
          pairs.emplace_back(indices[i], values[i]);
        }
        continue;
      }
      for (std::size_t i = 0; i < in[s].size(); i += 2) {
        float value = 0;
        std::memcpy(&value, &in[s][i + 1], sizeof value);
        if (in[s][i] < mine.lo || in[s][i] >= mine.hi) {
          throw CollectiveUsageError("gloo " + std::string(op) + ": rank " + std::to_string(me) +
                                     " got index " + std::to_string(in[s][i]) +
                                     " outside its range from rank " + std::to_string(s));
        }
        pairs.emplace_back(in[s][i], value);
      }
    }
    addRankOrderedSums(pairs, mine.lo, owned);
  }

  void barrier(Millis timeout) override {
    run("barrier", timeout, [&] { return group_->barrier(); });
  }

  void abort() override {
    std::lock_guard<std::mutex> lock(inflightMu_);
    aborted_ = true;
    for (auto& work : inflight_) work->abort();  // ends their waits with "false"
  }

 private:
  // The point-to-point steps of one call: post() starts a send or a receive
  // of `count` elements (none when 0), waitAll() waits for everything posted
  // within the call's deadline and maps failures like run().
  class Exchange {
   public:
    Exchange(GlooCollectives& owner, const char* op, Millis timeout)
        : owner_(owner),
          op_(op),
          deadline_(Clock::now() + std::min({timeout, owner.timeout_, kLongestWait})) {}
    ~Exchange() { owner_.forget(); }

    template <typename T>
    void post(bool send, int peer, T* data, std::size_t count, int tag) {
      if (count == 0) return;
      static_assert(sizeof(T) == 4 || sizeof(T) == 8, "4- or 8-byte elements");
      const auto dtype = sizeof(T) == 4 ? at::kFloat : at::kLong;  // bytes only
      std::vector<at::Tensor> tensors{
          at::from_blob(data, {static_cast<int64_t>(count)}, at::TensorOptions().dtype(dtype))};
      std::lock_guard<std::mutex> lock(owner_.inflightMu_);
      owner_.throwIfAborted(op_);
      try {
        owner_.inflight_.push_back(send ? owner_.group_->send(tensors, peer, tag)
                                        : owner_.group_->recv(tensors, peer, tag));
      } catch (const std::exception& e) {
        rethrow(op_, e);
      }
    }

    void waitAll() {
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      {
        std::lock_guard<std::mutex> lock(owner_.inflightMu_);
        works = owner_.inflight_;
      }
      for (auto& work : works) {
        const auto left = std::chrono::duration_cast<Millis>(deadline_ - Clock::now());
        if (left <= Millis(0)) {
          throw CollectiveTimeout(std::string("gloo ") + op_ + " timed out");
        }
        bool done = false;
        try {
          done = work->wait(left);
        } catch (const std::exception& e) {
          rethrow(op_, e);
        }
        if (!done) {
          owner_.throwIfAborted(op_);
          throw CollectiveError(std::string("gloo ") + op_ + ": a send/recv did not complete");
        }
      }
      owner_.forget();
    }

   private:
    GlooCollectives& owner_;
    const char* op_;
    Clock::time_point deadline_;
  };

  void forget() {
    std::lock_guard<std::mutex> lock(inflightMu_);
    inflight_.clear();
  }

  void throwIfAborted(const char* op) const {
    if (aborted_) throw CollectiveAborted(std::string("gloo ") + op + ": aborted on this rank");
  }

  // Segment s (taken mod W) of `bounds`.
  Range segment(const std::vector<std::size_t>& bounds, int s) const {
    const int world = worldSize();
    const int at = ((s % world) + world) % world;
    return Range{bounds[at], bounds[at + 1]};
  }

  [[noreturn]] void failUsage(const char* op, const std::string& why) const {
    throw CollectiveUsageError("gloo " + std::string(op) + ": rank " + std::to_string(rank()) +
                               ": " + why);
  }

  void checkBounds(const char* op, const std::vector<std::size_t>& bounds) const {
    throwIfAborted(op);
    const std::string why = boundsProblem(bounds, worldSize());
    if (!why.empty()) failUsage(op, why);
  }

  void checkPairs(const char* op, const std::vector<std::uint32_t>& indices,
                  const std::vector<float>& values, std::size_t n) const {
    const std::string why = sparsePairsProblem(indices, values.size(), n);
    if (!why.empty()) failUsage(op, why);
  }

  // Pairs [begin, end) as (index, value bits) words.
  static std::vector<std::uint32_t> packPairs(const std::vector<std::uint32_t>& indices,
                                              const std::vector<float>& values, std::size_t begin,
                                              std::size_t end) {
    std::vector<std::uint32_t> words(2 * (end - begin));
    for (std::size_t i = begin; i < end; ++i) {
      words[2 * (i - begin)] = indices[i];
      std::memcpy(&words[2 * (i - begin) + 1], &values[i], sizeof(float));
    }
    return words;
  }

  template <typename Launch>
  void run(const char* op, Millis timeout, Launch&& launch) {
    if (aborted_) throw CollectiveAborted(std::string("gloo ") + op + ": aborted on this rank");
    try {
      auto work = launch();
      if (!work->wait(std::min(timeout, timeout_))) {
        throw CollectiveTimeout(std::string("gloo ") + op + " timed out after " +
                                std::to_string(std::min(timeout, timeout_).count()) + " ms");
      }
    } catch (const CollectiveError&) {
      throw;
    } catch (const std::exception& e) {
      rethrow(op, e);
    }
  }

  c10::intrusive_ptr<GlooGroup> group_;
  Millis timeout_;
  std::atomic<bool> aborted_{false};
  std::mutex inflightMu_;  // guards inflight_ (abort() runs on any thread)
  std::vector<c10::intrusive_ptr<c10d::Work>> inflight_;
  std::vector<float> scratch_;  // reduceScatterSum's incoming segment, max size seen
};

}  // namespace

c10::intrusive_ptr<GlooGroup> makeGlooProcessGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                                   int rank, int worldSize, Millis timeout,
                                                   const std::string& deviceHost) {
  auto options = GlooGroup::Options::create(timeout);
  try {
    options->devices.push_back(deviceHost.empty() ? GlooGroup::createDefaultDevice()
                                                  : GlooGroup::createDeviceForHostname(deviceHost));
    return c10::make_intrusive<GlooGroup>(store, rank, worldSize, options);
  } catch (const std::exception& e) {
    rethrow("process group setup", e);
  }
}

std::unique_ptr<Collectives> makeGlooCollectives(c10::intrusive_ptr<GlooGroup> group,
                                                 Millis timeout) {
  return std::make_unique<GlooCollectives>(std::move(group), timeout);
}

GlooGroup* glooGroupOf(Collectives& collectives) {
  auto* gloo = dynamic_cast<GlooCollectives*>(&collectives);
  return gloo == nullptr ? nullptr : gloo->group();
}

}  // namespace hearth
