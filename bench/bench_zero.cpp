// bench_zero — per-rank model-state bytes, bytes communicated per step and
// step time of ZeRO stages 1-3 (hearth::ZeroEngine) against stage 0 (the
// data-parallel hearth::Engine), on the same model, in the same run.
//
// Run under the launcher, one process per rank (Gloo via hearth::init()):
//   hearthrun --standalone --nproc-per-node 4 build/bench/bench_zero [--steps 20 --warmup 3]
//
// Model: a stack of --blocks MLP blocks (x + fc2(gelu(fc1(x))), d -> 4d -> d),
// each wrapped in a hearth::ZeroUnit, trained with Adam (fp32) on an MSE
// loss. Stage 3 partitions the unit weights; the biases have fewer than
// --persist-below elements and stay whole on every rank (ZeroOptions::
// persistBelowNumel), as in stage 2.
//
// Per configuration (every configuration is built, stepped once and measured
// before the next is built; all stay alive for the timing phase):
// - model state: ZeroEngine::memory().modelStateBytes() (parameters +
//   gradients + optimizer state); for stage 0 the same sum for the Engine:
//   parameter bytes, gradient bytes (views into its buckets) and Adam state.
//   Next to the fp32 + Adam formula (16Ψ; 8Ψ + 8Ψ/N; 4Ψ + 12Ψ/N; 16Ψ/N).
// - cross-checks: live bytes the LibTorch CPU allocator holds for this
//   configuration (AllocationCounter, after one step minus before building
//   the model: model state + gather pool + buckets + anything else torch
//   keeps), and the growth of the process RSS over the same span (malloc's
//   mmap threshold is pinned so that large blocks come from and go back to
//   the kernel). Both as the maximum over ranks.
// - wire bytes per optimizer step per rank (ZeroStats / EngineStats
//   wireBytesEstimate over the timed steps), in units of Ψ floats, next to
//   the ring algorithms' k(N-1)/N (k = 2, 2, 2, 3; the 2Ψ/3Ψ are the
//   large-N limits).
// - step time: median over --steps steps (after --warmup) of zeroGrad +
//   forward + backward + step, rank 0's clock, ranks synchronized by a
//   barrier before every step; configurations interleaved step by step, and
//   the ratio against stage 0.
// Rank 0 prints a table and one JSON line per configuration.
//
// Adding a configuration (e.g. DGC inside ZeRO-2): one more Variant in
// variants(); adding a figure: one more Column in columns().
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_stats.h"
#include "hearth/hearth.h"
#include "hearth/shard/alloc_counter.h"
#include "hearth/shard/zero.h"
#include "hearth/shard/zero_unit.h"

namespace {

using hearth::bench::median;

using Clock = std::chrono::steady_clock;
const hearth::Millis kTimeout(300000);

struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(int64_t d) {
    fc1 = register_module("fc1", torch::nn::Linear(d, 4 * d));
    fc2 = register_module("fc2", torch::nn::Linear(4 * d, d));
  }
  at::Tensor forward(const at::Tensor& x) {
    return x + fc2->forward(torch::nn::functional::gelu(fc1->forward(x)));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Block);

struct NetImpl : torch::nn::Module {
  NetImpl(int blocks, int64_t d) {
    units = register_module("units", torch::nn::ModuleList());
    for (int i = 0; i < blocks; ++i) units->push_back(hearth::ZeroUnit(Block(d)));
  }
  at::Tensor forward(at::Tensor h) {
    for (const auto& unit : *units) h = unit->as<hearth::ZeroUnit>()->forward(h);
    return h;
  }
  torch::nn::ModuleList units{nullptr};
};
TORCH_MODULE(Net);

struct Settings {
  int blocks = 8;
  int64_t width = 256;
  int64_t batch = 8;
  int steps = 20;
  int warmup = 3;
  double bucketMb = 4.0;
  std::size_t persistBelow = 4096;
  std::vector<int> stages{0, 1, 2, 3};
  bool dgc = true;  // also run ZeRO-2/3 with DGC at 0.1%
};

// What one configuration reports about itself.
struct MemoryFigures {
  std::size_t parameterBytes = 0;
  std::size_t gradientBytes = 0;
  std::size_t optimizerStateBytes = 0;
  std::size_t poolBytes = 0;    // stage 3 gather pool
  std::size_t bucketBytes = 0;  // communication staging (ZeRO); 0 for stage 0,
                                // whose buckets are its gradients
  std::size_t modelStateBytes() const {
    return parameterBytes + gradientBytes + optimizerStateBytes;
  }
};

// One training setup: a model, an optimizer and an engine over them.
class Trainer {
 public:
  virtual ~Trainer() = default;
  virtual void step(const at::Tensor& x, const at::Tensor& y) = 0;
  virtual MemoryFigures memory() const = 0;
  virtual std::uint64_t wireBytes() const = 0;
  virtual std::uint64_t optimizerSteps() const = 0;
};

std::size_t adamStateBytes(const torch::optim::Optimizer& optimizer) {
  std::size_t total = 0;
  for (const auto& entry : optimizer.state()) {
    if (auto* s = dynamic_cast<const torch::optim::AdamParamState*>(entry.second.get())) {
      for (const at::Tensor& t : {s->exp_avg(), s->exp_avg_sq(), s->max_exp_avg_sq()}) {
        if (t.defined()) total += t.nbytes();
      }
    }
  }
  return total;
}

Net makeNet(const Settings& s) {
  torch::manual_seed(1234);
  return Net(s.blocks, s.width);
}

at::Tensor lossOf(Net& net, const at::Tensor& x, const at::Tensor& y) {
  return torch::nn::functional::mse_loss(net->forward(x), y);
}

// The model, Adam and an engine of type E (hearth::Engine or
// hearth::ZeroEngine: the same loop and stats fields) over them; subclasses
// build engine_ and report memory().
template <typename E>
class EngineTrainer : public Trainer {
 public:
  void step(const at::Tensor& x, const at::Tensor& y) override {
    engine_->zeroGrad();
    engine_->backward(lossOf(net_, x, y));
    engine_->step();
  }
  std::uint64_t wireBytes() const override { return engine_->stats().wireBytesEstimate; }
  std::uint64_t optimizerSteps() const override { return engine_->stats().optimizerSteps; }

 protected:
  explicit EngineTrainer(const Settings& s)
      : net_(makeNet(s)), adam_(net_->parameters(), torch::optim::AdamOptions(1e-4)) {}

  Net net_;
  torch::optim::Adam adam_;
  std::unique_ptr<E> engine_;
};

class DataParallelTrainer : public EngineTrainer<hearth::Engine> {
 public:
  DataParallelTrainer(const Settings& s, std::shared_ptr<hearth::Collectives> comm)
      : EngineTrainer(s) {
    hearth::EngineOptions options;
    options.bucketCapMb = s.bucketMb;
    options.timeout = kTimeout;
    engine_ = std::make_unique<hearth::Engine>(*net_, adam_, std::move(comm), options);
  }
  MemoryFigures memory() const override {
    MemoryFigures m;
    for (const auto& p : net_->parameters()) {
      m.parameterBytes += p.nbytes();
      if (p.grad().defined()) m.gradientBytes += p.grad().nbytes();
    }
    m.optimizerStateBytes = adamStateBytes(adam_);
    return m;
  }
};

class ZeroTrainer : public EngineTrainer<hearth::ZeroEngine> {
 public:
  ZeroTrainer(const Settings& s, std::shared_ptr<hearth::Collectives> comm,
              hearth::ZeroOptions options)
      : EngineTrainer(s) {
    options.timeout = kTimeout;
    engine_ = std::make_unique<hearth::ZeroEngine>(*net_, adam_, std::move(comm), options);
  }
  MemoryFigures memory() const override {
    const hearth::ZeroMemory z = engine_->memory();
    MemoryFigures m;
    m.parameterBytes = z.parameterBytes;
    m.gradientBytes = z.gradientBytes;
    m.optimizerStateBytes = z.optimizerStateBytes;
    m.poolBytes = z.gatherPoolBytes;
    m.bucketBytes = z.bucketBytes;
    return m;
  }
};

// A configuration to measure. `formulaPsi(N)` is the model-state formula in
// bytes per parameter; `wireK` the expected wire volume per step in Ψ floats
// for large N (times (N-1)/N for the ring algorithms).
struct Variant {
  std::string name;
  int stage = 0;
  std::function<double(int)> formulaPsi;
  double wireK = 2;
  std::function<std::unique_ptr<Trainer>(const Settings&, std::shared_ptr<hearth::Collectives>)>
      make;
};

std::vector<Variant> variants(const Settings& s) {
  // A ZeroTrainer at `stage`; with `dgc`, DGC inside it (see below).
  auto zero = [](int stage, bool dgc = false) {
    return [stage, dgc](const Settings& settings, std::shared_ptr<hearth::Collectives> comm) {
      hearth::ZeroOptions options;
      options.stage = stage;
      options.bucketCapMb = settings.bucketMb;
      options.persistBelowNumel = settings.persistBelow;
      if (dgc) {
        options.codec = "dgc";
        options.codecParams = {{"density", 0.001}, {"momentum", 0.0}, {"warmup_periods", 0}};
      }
      return std::unique_ptr<Trainer>(new ZeroTrainer(settings, std::move(comm), options));
    };
  };
  std::vector<Variant> all;
  all.push_back({"stage 0 (Engine)", 0, [](int) { return 16.0; }, 2,
                 [](const Settings& settings, std::shared_ptr<hearth::Collectives> comm) {
                   return std::unique_ptr<Trainer>(
                       new DataParallelTrainer(settings, std::move(comm)));
                 }});
  all.push_back({"ZeRO-1", 1, [](int n) { return 8.0 + 8.0 / n; }, 2, zero(1)});
  all.push_back({"ZeRO-2", 2, [](int n) { return 4.0 + 12.0 / n; }, 2, zero(2)});
  all.push_back({"ZeRO-3", 3, [](int n) { return 16.0 / n; }, 3, zero(3)});
  // DGC at 0.1% inside ZeRO-2/3: the gradient reduce-scatter becomes a sparse
  // one (8-byte pairs, ~0.002 Psi per step); only the parameter allgathers
  // stay dense. With Adam, DGC runs without momentum (docs/dgc.md).
  if (s.dgc) {
    all.push_back({"ZeRO-2 + DGC", 2, [](int n) { return 4.0 + 12.0 / n; }, 1.002, zero(2, true)});
    all.push_back({"ZeRO-3 + DGC", 3, [](int n) { return 16.0 / n; }, 2.002, zero(3, true)});
  }
  std::vector<Variant> chosen;
  for (auto& v : all) {
    if (std::find(s.stages.begin(), s.stages.end(), v.stage) != s.stages.end()) {
      chosen.push_back(std::move(v));
    }
  }
  return chosen;
}

std::int64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

// Max over ranks (each rank writes its slot, a sum gathers them).
double maxOverRanks(hearth::Collectives& comm, double value) {
  std::vector<float> slots(static_cast<std::size_t>(comm.worldSize()), 0.0f);
  slots[static_cast<std::size_t>(comm.rank())] = static_cast<float>(value);
  comm.allreduceSum(slots.data(), slots.size(), kTimeout);
  return *std::max_element(slots.begin(), slots.end());
}

struct Result {
  const Variant* variant = nullptr;
  MemoryFigures memory;
  double liveBytes = 0;  // max over ranks
  double rssBytes = 0;   // max over ranks
  double wirePerStep = 0;
  std::vector<double> ms;
  double stepMs = 0;
};

struct TableContext {
  int world = 1;
  double psi = 0;         // parameters
  double baselineMs = 0;  // stage 0's median step
};

struct Column {
  std::string header;
  int width;
  std::function<std::string(const Result&, const TableContext&)> cell;
  std::string jsonKey;  // empty: not in the JSON line
  std::function<double(const Result&, const TableContext&)> value;
};

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

constexpr double kMiB = 1024.0 * 1024.0;

std::vector<Column> columns() {
  std::vector<Column> c;
  auto number = [&c](std::string header, int width, const char* format, std::string key,
                     std::function<double(const Result&, const TableContext&)> value) {
    c.push_back({std::move(header), width,
                 [format, value](const Result& r, const TableContext& t) {
                   return fmt(format, value(r, t));
                 },
                 std::move(key), value});
  };
  number("state MiB", 10, "%.2f", "model_state_mib",
         [](const Result& r, const TableContext&) { return r.memory.modelStateBytes() / kMiB; });
  number("B/param", 8, "%.3f", "bytes_per_param",
         [](const Result& r, const TableContext& t) { return r.memory.modelStateBytes() / t.psi; });
  number("formula", 8, "%.3f", "formula_bytes_per_param",
         [](const Result& r, const TableContext& t) { return r.variant->formulaPsi(t.world); });
  number("vs formula", 10, "%+.1f%%", "vs_formula_pct", [](const Result& r, const TableContext& t) {
    return 100.0 * (r.memory.modelStateBytes() / t.psi / r.variant->formulaPsi(t.world) - 1.0);
  });
  number("pool+bkt MiB", 12, "%.2f", "pool_bucket_mib", [](const Result& r, const TableContext&) {
    return (r.memory.poolBytes + r.memory.bucketBytes) / kMiB;
  });
  number("live MiB", 9, "%.2f", "live_mib",
         [](const Result& r, const TableContext&) { return r.liveBytes / kMiB; });
  number("RSS MiB", 8, "%.2f", "rss_growth_mib",
         [](const Result& r, const TableContext&) { return r.rssBytes / kMiB; });
  number("wire Psi/st", 10, "%.3f", "wire_psi_per_step",
         [](const Result& r, const TableContext& t) { return r.wirePerStep / 4.0 / t.psi; });
  number("expected", 8, "%.3f", "expected_wire_psi", [](const Result& r, const TableContext& t) {
    return r.variant->wireK * (t.world - 1) / t.world;
  });
  number("step ms", 9, "%.1f", "step_ms",
         [](const Result& r, const TableContext&) { return r.stepMs; });
  number("vs stage 0", 10, "%.2fx", "time_ratio", [](const Result& r, const TableContext& t) {
    return t.baselineMs > 0 ? r.stepMs / t.baselineMs : 0.0;
  });
  return c;
}

void printTable(const std::vector<Result>& results, const TableContext& t, const Settings& s) {
  const auto cols = columns();
  std::printf("%-18s", "config");
  for (const auto& c : cols) std::printf(" %*s", c.width, c.header.c_str());
  std::printf("\n");
  for (const auto& r : results) {
    std::printf("%-18s", r.variant->name.c_str());
    for (const auto& c : cols) std::printf(" %*s", c.width, c.cell(r, t).c_str());
    std::printf("\n");
  }
  for (const auto& r : results) {
    nlohmann::json record = {{"bench", "zero"},
                             {"world", t.world},
                             {"config", r.variant->name},
                             {"stage", r.variant->stage},
                             {"params", static_cast<std::int64_t>(t.psi)},
                             {"blocks", s.blocks},
                             {"width", s.width},
                             {"persist_below", s.persistBelow},
                             {"parameter_bytes", r.memory.parameterBytes},
                             {"gradient_bytes", r.memory.gradientBytes},
                             {"optimizer_state_bytes", r.memory.optimizerStateBytes},
                             {"pool_bytes", r.memory.poolBytes},
                             {"bucket_bytes", r.memory.bucketBytes}};
    for (const auto& c : cols) {
      if (!c.jsonKey.empty()) record[c.jsonKey] = c.value(r, t);
    }
    std::cout << record.dump() << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ZeRO stages 1-3 vs the data-parallel Engine: memory, wire bytes, step time"};
  Settings s;
  std::string stages = "0,1,2,3";
  app.add_option("--blocks", s.blocks, "ZeroUnit-wrapped MLP blocks")->check(CLI::PositiveNumber);
  app.add_option("--width", s.width, "Block width d (d -> 4d -> d)")->check(CLI::PositiveNumber);
  app.add_option("--batch", s.batch, "Rows per rank per step")->check(CLI::PositiveNumber);
  app.add_option("--steps", s.steps, "Timed steps per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", s.warmup, "Untimed steps after the measured first step")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--bucket-mb", s.bucketMb, "Bucket cap in MiB (Engine and ZeRO)")
      ->check(CLI::PositiveNumber);
  app.add_option("--persist-below", s.persistBelow,
                 "ZeRO-3: unit tensors with fewer elements stay whole");
  app.add_option("--stages", stages, "Comma-separated stages to run (0 = Engine)");
  app.add_flag("!--no-dgc", s.dgc, "Skip the ZeRO-2/3 + DGC (0.1%) rows");
  CLI11_PARSE(app, argc, argv);
  s.stages.clear();
  {
    std::stringstream in(stages);
    std::string item;
    while (std::getline(in, item, ',')) s.stages.push_back(std::stoi(item));
  }

  try {
    // Large blocks always come from (and go back to) mmap, so that RSS growth
    // follows what is live rather than malloc's heap history.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    at::set_num_threads(1);
    hearth::AllocationCounter::instance().install();
    auto ctx = hearth::init();
    auto& comm = *ctx.collectives;
    const int world = ctx.worldSize();

    // Same data shape on every rank, different values.
    torch::manual_seed(100 + static_cast<std::uint64_t>(ctx.rank()));
    const at::Tensor x = at::randn({s.batch, s.width});
    const at::Tensor y = at::randn({s.batch, s.width});

    TableContext table;
    table.world = world;
    std::int64_t psi = 0, persistent = 0;
    for (const auto& p : makeNet(s)->parameters()) {
      psi += p.numel();
      if (static_cast<std::size_t>(p.numel()) < s.persistBelow) persistent += p.numel();
    }
    table.psi = static_cast<double>(psi);
    if (ctx.isRank0()) {
      std::printf(
          "bench_zero: %d ranks, backend %s, %d blocks x width %lld: %.0f params (Ψ), "
          "%lld (%.2f%%) below --persist-below %zu stay whole in stage 3; batch %lld, "
          "Adam fp32, %d timed steps\n",
          world, comm.backendName().c_str(), s.blocks, static_cast<long long>(s.width), table.psi,
          static_cast<long long>(persistent), 100.0 * persistent / table.psi, s.persistBelow,
          static_cast<long long>(s.batch), s.steps);
    }

    const std::vector<Variant> chosen = variants(s);
    std::vector<std::unique_ptr<Trainer>> trainers;
    std::vector<Result> results(chosen.size());
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      comm.barrier(kTimeout);
      const auto live0 = hearth::AllocationCounter::instance().snapshot().liveBytes;
      const auto rss0 = residentBytes();
      trainers.push_back(chosen[i].make(s, ctx.collectives));
      trainers.back()->step(x, y);  // optimizer state exists after one step
      const auto live1 = hearth::AllocationCounter::instance().snapshot().liveBytes;
      const auto rss1 = residentBytes();
      results[i].variant = &chosen[i];
      results[i].memory = trainers.back()->memory();
      results[i].liveBytes = maxOverRanks(comm, static_cast<double>(live1 - live0));
      results[i].rssBytes = maxOverRanks(comm, static_cast<double>(rss1 - rss0));
    }

    // Timing: configurations interleaved step by step.
    std::vector<std::uint64_t> wire0(chosen.size()), steps0(chosen.size());
    for (int it = 0; it < s.warmup + s.steps; ++it) {
      for (std::size_t i = 0; i < chosen.size(); ++i) {
        if (it == s.warmup) {
          wire0[i] = trainers[i]->wireBytes();
          steps0[i] = trainers[i]->optimizerSteps();
        }
        comm.barrier(kTimeout);
        const auto start = Clock::now();
        trainers[i]->step(x, y);
        results[i].ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      }
    }
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      auto& r = results[i];
      r.ms.erase(r.ms.begin(), r.ms.begin() + s.warmup);
      r.stepMs = median(r.ms);
      const auto steps = trainers[i]->optimizerSteps() - steps0[i];
      r.wirePerStep = steps ? double(trainers[i]->wireBytes() - wire0[i]) / double(steps) : 0.0;
      if (chosen[i].stage == 0) table.baselineMs = r.stepMs;
    }
    if (ctx.isRank0()) printTable(results, table, s);
    std::fflush(stdout);
    comm.barrier(kTimeout);
    trainers.clear();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_zero: %s\n", e.what());
    return 1;
  }
  return 0;
}
