// The data-parallel Engine: bucketed gradient averaging overlapped with backward.
#include "hearth/runtime/engine.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bucket_reducer.h"
#include "compression_settings.h"
#include "hearth/compress/registry.h"
#include "hearth/runtime/bucket_plan.h"
#include "hearth/shard/zero.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<at::Tensor> trainable(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> result;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const auto& p = parameters[i];
    if (!p.requires_grad()) continue;
    if (p.scalar_type() != at::kFloat) {
      throw std::invalid_argument("hearth Engine: parameter " + std::to_string(i) + " is " +
                                  std::string(c10::toString(p.scalar_type())) +
                                  "; this release averages fp32 parameters only");
    }
    if (!p.device().is_cpu()) {
      throw std::invalid_argument("hearth Engine: parameter " + std::to_string(i) + " is on " +
                                  p.device().str() + "; this release averages CPU tensors only");
    }
    if (!p.is_leaf()) {
      throw std::invalid_argument("hearth Engine: parameter " + std::to_string(i) +
                                  " is not a leaf tensor");
    }
    result.push_back(p);
  }
  return result;
}

}  // namespace

EngineOptions EngineOptions::fromConfig(const Config& config) {
  EngineOptions options;
  options.gradientAccumulationSteps =
      static_cast<int>(config.getInt("gradient_accumulation_steps"));
  options.bucketCapMb = config.getFloat("communication.bucket_cap_mb");
  options.timeout = Millis(static_cast<int64_t>(config.getFloat("communication.timeout_s") * 1000));
  options.gradientClipping = config.getFloat("gradient_clipping");
  const CompressionSettings compression = resolveCompression(config);
  if (compression.clippingMoved) options.gradientClipping = 0;  // DGC clips locally
  options.codec = compression.codec;
  options.codecParams = compression.params;
  options.denseBelowNumel = compression.denseBelowNumel;
  options.denseOneDimensional = compression.denseOneDimensional;
  options.localMomentum = compression.localMomentum;
  options.localNesterov = compression.localNesterov;
  options.localWeightDecay = compression.localWeightDecay;
  options.captureDir = config.getString("compression.capture_dir");
  options.captureInterval = config.getInt("compression.capture_interval");
  options.zeroStage = static_cast<int>(config.getInt("zero_optimization.stage"));
  options.zeroPersistBelowNumel =
      static_cast<std::size_t>(config.getInt("zero_optimization.persist_below_numel"));
  options.zeroPrefetch = config.getBool("zero_optimization.prefetch");
  options.zeroBucketCapMb = config.getFloat("zero_optimization.bucket_cap_mb");
  if (options.zeroStage > 0 && options.codec == "dgc" && options.localWeightDecay > 0) {
    throw ConfigError(
        "config: optimizer.params.weight_decay with compression.codec dgc is not supported "
        "inside ZeRO (zero_optimization.stage > 0) yet; set it to 0 or use stage 0");
  }
  return options;
}

struct Engine::Impl {
  Impl(std::vector<at::Tensor> parameters, std::vector<at::Tensor> buffers,
       torch::optim::Optimizer& optimizer, std::shared_ptr<Collectives> collectives,
       EngineOptions options);
  ~Impl();

  void broadcastInitialState(const std::vector<at::Tensor>& state);
  void buildBuckets();
  void buildReducers();
  void applyLocalWeightDecay();
  void installHooks(const std::shared_ptr<Impl>& self);
  void removeHooks();

  // Makes parameter i's .grad our bucket view again if the user replaced it.
  void adoptGrad(std::size_t i);
  void onGradReady(std::size_t i);  // autograd thread
  void launchReadyLocked();         // REQUIRES: mu_ held
  void communicationLoop();         // communication thread
  void rethrowIfFailed();
  void backward(const at::Tensor& loss);
  bool step();
  void zeroGrad();

  std::shared_ptr<Collectives> comm_;
  torch::optim::Optimizer& optimizer_;
  const EngineOptions options_;
  std::vector<at::Tensor> params_;
  BucketPlan plan_;
  std::vector<at::Tensor> bucketBuffers_;
  std::vector<std::unique_ptr<BucketReducer>> reducers_;
  std::vector<at::Tensor> weightDecayBuffers_;
  double epoch_ = 0.0;
  std::vector<at::Tensor> gradViews_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hookKeys_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool syncing_ = false;
  std::vector<std::size_t> pendingInBucket_;
  std::vector<char> gradSeen_;
  std::size_t nextToLaunch_ = 0;
  std::deque<std::size_t> queue_;
  std::size_t completed_ = 0;
  std::exception_ptr error_;
  bool shutdown_ = false;
  int microInWindow_ = 0;
  EngineStats stats_;
  std::thread commThread_;
};

namespace {

// Calls back into the Engine when a parameter's gradient has been accumulated.
class GradReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  GradReadyHook(std::weak_ptr<Engine::Impl> engine, std::size_t index)
      : engine_(std::move(engine)), index_(index) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    if (auto engine = engine_.lock()) engine->onGradReady(index_);
    return outputs;
  }

 private:
  std::weak_ptr<Engine::Impl> engine_;
  std::size_t index_;
};

}  // namespace

Engine::Impl::Impl(std::vector<at::Tensor> parameters, std::vector<at::Tensor> buffers,
                   torch::optim::Optimizer& optimizer, std::shared_ptr<Collectives> collectives,
                   EngineOptions options)
    : comm_(std::move(collectives)), optimizer_(optimizer), options_(options) {
  if (!comm_) throw std::invalid_argument("hearth Engine: collectives must not be null");
  if (options_.gradientAccumulationSteps < 1) {
    throw std::invalid_argument("hearth Engine: gradient accumulation steps must be >= 1, got " +
                                std::to_string(options_.gradientAccumulationSteps));
  }
  if (!(options_.bucketCapMb > 0)) {
    throw std::invalid_argument("hearth Engine: bucket cap must be > 0 MiB");
  }
  params_ = trainable(parameters);
  if (options_.broadcastInitialState) {
    std::vector<at::Tensor> state = parameters;
    state.insert(state.end(), buffers.begin(), buffers.end());
    broadcastInitialState(state);
  }
  buildBuckets();
  buildReducers();
  commThread_ = std::thread([this] { communicationLoop(); });
}

Engine::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  if (commThread_.joinable()) commThread_.join();
}

void Engine::Impl::broadcastInitialState(const std::vector<at::Tensor>& state) {
  // First make sure every rank holds the same shapes, so a mismatch is a clear
  // error instead of a garbled broadcast.
  std::string signature;
  std::size_t totalBytes = 0;
  for (const auto& t : state) {
    signature += std::string(c10::toString(t.scalar_type())) + "/" + std::to_string(t.dim()) + ":";
    for (auto d : t.sizes()) signature += std::to_string(d) + ",";
    signature += ";";
    totalBytes += t.numel() * t.element_size();
  }
  const auto all = comm_->allgatherBytes(
      std::vector<std::uint8_t>(signature.begin(), signature.end()), options_.timeout);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (std::string(all[r].begin(), all[r].end()) != signature) {
      throw std::invalid_argument("hearth Engine: rank " + std::to_string(r) +
                                  " has a different model (parameter/buffer shapes differ from "
                                  "rank " +
                                  std::to_string(comm_->rank()) + "'s)");
    }
  }
  std::vector<std::uint8_t> packed(totalBytes);
  std::size_t offset = 0;
  if (comm_->rank() == 0) {
    for (const auto& t : state) {
      const auto c = t.detach().contiguous();
      const std::size_t n = c.numel() * c.element_size();
      if (n > 0) std::memcpy(packed.data() + offset, c.data_ptr(), n);
      offset += n;
    }
  }
  comm_->broadcast(packed.data(), packed.size(), 0, options_.timeout);
  if (comm_->rank() != 0) {
    at::NoGradGuard noGrad;
    offset = 0;
    for (const auto& t : state) {
      const std::size_t n = t.numel() * t.element_size();
      auto source =
          at::from_blob(packed.data() + offset, t.sizes(), t.options().requires_grad(false));
      t.detach().copy_(source);
      offset += n;
    }
  }
}

void Engine::Impl::buildBuckets() {
  std::vector<std::size_t> numels;
  for (const auto& p : params_) numels.push_back(static_cast<std::size_t>(p.numel()));
  const auto capElements = std::max<std::size_t>(
      1, static_cast<std::size_t>(options_.bucketCapMb * 1024.0 * 1024.0 / sizeof(float)));
  // With compression, biases, norms and small tensors get dense buckets of
  // their own (group 1), as in the DGC reference implementation.
  std::vector<int> groups(params_.size(), 0);
  if (options_.codec != "none") {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const bool small = (options_.denseOneDimensional && params_[i].dim() <= 1) ||
                         static_cast<std::size_t>(params_[i].numel()) < options_.denseBelowNumel;
      groups[i] = small ? 1 : 0;
    }
  }
  plan_ = planBuckets(numels, capElements, groups);
  bucketBuffers_.clear();
  for (const auto& bucket : plan_.buckets) {
    bucketBuffers_.push_back(at::zeros({static_cast<int64_t>(bucket.numel)}, at::kFloat));
  }
  gradViews_.assign(params_.size(), at::Tensor());
  for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
    for (const auto& slot : plan_.buckets[b].slots) {
      auto view =
          bucketBuffers_[b]
              .narrow(0, static_cast<int64_t>(slot.offset), static_cast<int64_t>(slot.numel))
              .view(params_[slot.tensorIndex].sizes());
      auto& grad = params_[slot.tensorIndex].mutable_grad();
      if (grad.defined()) view.copy_(grad);
      grad = view;
      gradViews_[slot.tensorIndex] = view;
    }
  }
  pendingInBucket_.assign(plan_.buckets.size(), 0);
  gradSeen_.assign(params_.size(), 0);
}

void Engine::Impl::buildReducers() {
  bool codecOwnsMomentum = false;
  reducers_.clear();
  for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
    const bool compressed = options_.codec != "none" && plan_.buckets[b].group == 0;
    if (compressed) {
      std::unique_ptr<compress::Compressor> compressor;
      try {
        compressor =
            compress::makeCompressor(options_.codec, options_.codecParams, plan_.buckets[b].numel);
      } catch (const std::invalid_argument& e) {
        throw ConfigError(std::string("compression: ") + e.what());
      }
      codecOwnsMomentum = codecOwnsMomentum || compressor->ownsMomentum();
      PayloadCapture capture{options_.captureDir, options_.captureInterval, b};
      reducers_.push_back(
          makeCompressedReducer(*comm_, options_.timeout, std::move(compressor), capture));
    } else {
      reducers_.push_back(makeDenseReducer(*comm_, options_.timeout, options_.localMomentum,
                                           options_.localNesterov));
    }
  }
  if (codecOwnsMomentum) {
    if (auto* sgd = dynamic_cast<torch::optim::SGD*>(&optimizer_)) {
      for (const auto& group : sgd->param_groups()) {
        const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
        if (o.momentum() != 0 || o.weight_decay() != 0) {
          throw ConfigError(
              "compression: codec '" + options_.codec +
              "' applies momentum itself; the SGD optimizer must have momentum 0 and weight decay "
              "0 (build it with hearth::makeOptimizer, which does this)");
        }
      }
    }
  }
}

void Engine::Impl::applyLocalWeightDecay() {
  if (options_.localWeightDecay <= 0) return;
  at::NoGradGuard noGrad;
  if (weightDecayBuffers_.empty()) weightDecayBuffers_.resize(params_.size());
  const double m = options_.localMomentum;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    at::Tensor decay = params_[i].detach() * options_.localWeightDecay;
    auto& buffer = weightDecayBuffers_[i];
    if (m > 0) {
      if (!buffer.defined()) {
        buffer = decay.clone();
      } else {
        buffer.mul_(m).add_(decay);
      }
      if (options_.localNesterov) {
        decay.add_(buffer, m);
      } else {
        decay = buffer;
      }
    }
    params_[i].mutable_grad().add_(decay);
  }
}

void Engine::Impl::installHooks(const std::shared_ptr<Impl>& self) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[i]);
    if (!accumulator) {
      throw std::invalid_argument("hearth Engine: parameter " + std::to_string(i) +
                                  " has no gradient accumulator");
    }
    hookKeys_.push_back(
        accumulator->add_post_hook(std::make_unique<GradReadyHook>(std::weak_ptr<Impl>(self), i)));
    accumulators_.push_back(std::move(accumulator));
  }
}

void Engine::Impl::removeHooks() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i) {
    accumulators_[i]->del_post_hook(hookKeys_[i]);
  }
  accumulators_.clear();
  hookKeys_.clear();
}

void Engine::Impl::adoptGrad(std::size_t i) {
  auto& grad = params_[i].mutable_grad();
  auto& view = gradViews_[i];
  if (grad.defined() && grad.data_ptr() == view.data_ptr()) return;
  at::NoGradGuard noGrad;
  if (grad.defined()) {
    view.copy_(grad);
  } else {
    view.zero_();
  }
  grad = view;
}

void Engine::Impl::onGradReady(std::size_t i) {
  adoptGrad(i);
  std::lock_guard<std::mutex> lock(mu_);
  if (!syncing_ || gradSeen_[i]) return;
  gradSeen_[i] = 1;
  const std::size_t b = plan_.bucketOfTensor[i];
  if (--pendingInBucket_[b] == 0) launchReadyLocked();
}

void Engine::Impl::launchReadyLocked() {
  bool launched = false;
  while (nextToLaunch_ < plan_.buckets.size() && pendingInBucket_[nextToLaunch_] == 0) {
    queue_.push_back(nextToLaunch_++);
    launched = true;
  }
  if (launched) cv_.notify_all();
}

void Engine::Impl::communicationLoop() {
  for (;;) {
    std::size_t b = 0;
    compress::StepInfo info;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
      if (shutdown_) return;
      b = queue_.front();
      queue_.pop_front();
      info.step = static_cast<std::int64_t>(stats_.optimizerSteps);
      info.epoch = epoch_;
      info.rank = comm_->rank();
      info.worldSize = comm_->worldSize();
      if (error_) {  // the group is broken: do not start more collectives
        ++completed_;
        cv_.notify_all();
        continue;
      }
    }
    const auto start = Clock::now();
    std::exception_ptr failure;
    BucketTraffic traffic;
    try {
      traffic = reducers_[b]->reduce(bucketBuffers_[b], info);
    } catch (...) {
      failure = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.collectiveCalls += traffic.collectiveCalls;
    stats_.bytesReduced += traffic.payloadBytes;
    stats_.wireBytesEstimate += traffic.wireBytes;
    stats_.commSeconds += secondsSince(start);
    if (failure && !error_) {
      error_ = failure;
      comm_->abort();
    }
    ++completed_;
    cv_.notify_all();
  }
}

void Engine::Impl::rethrowIfFailed() {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_) std::rethrow_exception(error_);
}

void Engine::Impl::backward(const at::Tensor& loss) {
  rethrowIfFailed();
  const int k = options_.gradientAccumulationSteps;
  const bool sync = microInWindow_ + 1 >= k;
  {
    std::lock_guard<std::mutex> lock(mu_);
    syncing_ = sync;
    nextToLaunch_ = 0;
    completed_ = 0;
    queue_.clear();
    std::fill(gradSeen_.begin(), gradSeen_.end(), 0);
    for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
      pendingInBucket_[b] = plan_.buckets[b].slots.size();
    }
  }
  try {
    if (k > 1) {
      (loss / k).backward();
    } else {
      loss.backward();
    }
  } catch (const std::exception& e) {
    if (sync) {
      // Some buckets may be in flight: the ranks are out of step now, so the
      // group must not be used again. Other ranks see the abort or a timeout.
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) {
        error_ = std::make_exception_ptr(CollectiveAborted(
            std::string("hearth Engine: backward failed on this rank during a sync step: ") +
            e.what()));
        comm_->abort();
      }
    }
    throw;
  }
  ++microInWindow_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.microSteps;
  }
  if (!sync) return;

  const auto waitStart = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  // Parameters that got no gradient this time still take part, so that every
  // rank launches every bucket.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (gradSeen_[i]) continue;
    lock.unlock();
    adoptGrad(i);
    lock.lock();
    gradSeen_[i] = 1;
    --pendingInBucket_[plan_.bucketOfTensor[i]];
  }
  launchReadyLocked();
  const auto deadline =
      Clock::now() + options_.timeout * static_cast<int64_t>(plan_.buckets.size() + 1);
  const bool done = cv_.wait_until(lock, deadline, [&] {
    return completed_ == plan_.buckets.size() || (error_ && queue_.empty());
  });
  syncing_ = false;
  stats_.exposedCommSeconds += secondsSince(waitStart);
  if (error_) std::rethrow_exception(error_);
  if (!done) {
    comm_->abort();
    error_ = std::make_exception_ptr(
        CollectiveTimeout("hearth Engine: gradient averaging did not finish in time"));
    std::rethrow_exception(error_);
  }
}

bool Engine::Impl::step() {
  rethrowIfFailed();
  if (microInWindow_ < options_.gradientAccumulationSteps) return false;
  if (options_.gradientClipping > 0) {
    torch::nn::utils::clip_grad_norm_(params_, options_.gradientClipping);
  }
  applyLocalWeightDecay();
  optimizer_.step();
  zeroGrad();
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.optimizerSteps;
  return true;
}

void Engine::Impl::zeroGrad() {
  at::NoGradGuard noGrad;
  for (auto& buffer : bucketBuffers_) buffer.zero_();
  for (std::size_t i = 0; i < params_.size(); ++i) adoptGrad(i);
  microInWindow_ = 0;
}

namespace {

std::unique_ptr<ZeroEngine> makeZeroEngine(torch::nn::Module& model,
                                           torch::optim::Optimizer& optimizer,
                                           std::shared_ptr<Collectives> collectives,
                                           const EngineOptions& options) {
  ZeroOptions zero;
  zero.stage = options.zeroStage;
  zero.bucketCapMb = options.zeroBucketCapMb;
  zero.timeout = options.timeout;
  zero.gradientAccumulationSteps = options.gradientAccumulationSteps;
  zero.gradientClipping = options.gradientClipping;
  zero.broadcastInitialState = options.broadcastInitialState;
  zero.persistBelowNumel = options.zeroPersistBelowNumel;
  zero.prefetch = options.zeroPrefetch;
  zero.codec = options.codec;
  zero.codecParams = options.codecParams;
  return std::make_unique<ZeroEngine>(model, optimizer, std::move(collectives), zero);
}

}  // namespace

Engine::Engine(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
               std::shared_ptr<Collectives> collectives, EngineOptions options) {
  if (options.zeroStage > 0) {
    zero_ = makeZeroEngine(model, optimizer, std::move(collectives), options);
    return;
  }
  impl_ = std::make_shared<Impl>(model.parameters(), model.buffers(), optimizer,
                                 std::move(collectives), options);
  impl_->installHooks(impl_);
}

Engine::Engine(std::vector<at::Tensor> parameters, std::vector<at::Tensor> buffers,
               torch::optim::Optimizer& optimizer, std::shared_ptr<Collectives> collectives,
               EngineOptions options) {
  if (options.zeroStage > 0) {
    throw std::invalid_argument(
        "hearth Engine: ZeRO (zeroStage > 0) needs the Module constructor (parameter names and "
        "ZeroUnits)");
  }
  impl_ = std::make_shared<Impl>(std::move(parameters), std::move(buffers), optimizer,
                                 std::move(collectives), options);
  impl_->installHooks(impl_);
}

Engine::~Engine() {
  if (impl_) impl_->removeHooks();
}

void Engine::backward(const at::Tensor& loss) {
  if (zero_) return zero_->backward(loss);
  impl_->backward(loss);
}
bool Engine::step() {
  if (zero_) return zero_->step();
  return impl_->step();
}
void Engine::zeroGrad() {
  if (zero_) return zero_->zeroGrad();
  impl_->zeroGrad();
}
bool Engine::syncsNextBackward() const {
  if (zero_) return true;  // stage 2/3 reduce every micro-batch
  return impl_->microInWindow_ + 1 >= impl_->options_.gradientAccumulationSteps;
}
int Engine::numBuckets() const {
  if (zero_) return 0;
  return static_cast<int>(impl_->plan_.buckets.size());
}
int Engine::rank() const {
  if (zero_) return zero_->rank();
  return impl_->comm_->rank();
}
int Engine::worldSize() const {
  if (zero_) return zero_->worldSize();
  return impl_->comm_->worldSize();
}
std::string Engine::codec() const {
  if (zero_) return zero_->options().codec;
  return impl_->options_.codec;
}
void Engine::setEpoch(double epoch) {
  if (zero_) return;
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->epoch_ = epoch;
}
EngineStats Engine::stats() const {
  if (zero_) {
    const ZeroStats z = zero_->stats();
    EngineStats stats;
    stats.optimizerSteps = z.optimizerSteps;
    stats.microSteps = z.microSteps;
    stats.collectiveCalls = z.reduceScatterCalls + z.allgatherCalls;
    stats.wireBytesEstimate = z.wireBytesEstimate;
    stats.commSeconds = z.commSeconds;
    return stats;
  }
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->stats_;
}

}  // namespace hearth
