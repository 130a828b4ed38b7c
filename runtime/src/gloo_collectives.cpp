// hearth::Collectives implemented with c10d::ProcessGroupGloo.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <atomic>
#include <cstring>

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

  void barrier(Millis timeout) override {
    run("barrier", timeout, [&] { return group_->barrier(); });
  }

  void abort() override { aborted_ = true; }

 private:
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
