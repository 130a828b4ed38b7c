// bench_checkpointing — activation memory and step time of a transformer
// block stack with activation checkpointing (hearth::CheckpointedSequential)
// against the same stack without it, in the same run.
//
//   build/bench/bench_checkpointing [--blocks 12 --d-model 256 --heads 8 --seq 256
//                                    --batch 8 --steps 5 --warmup 1 --segments 1,3,4,12]
// Segment count 1 is the baseline (no checkpointing); s > 1 checkpoints every
// segment except the last. All configurations start from the same weights and
// data; steps are interleaved (config A, B, C, ... then again) so that a
// change in machine load hits every configuration alike.
// Memory: peak live bytes of the LibTorch CPU allocator (hearth's
// AllocationCounter) above the baseline taken right before forward, when the
// parameters, their (zeroed, kept) gradients and the input already exist: the
// activations, saved tensors and temporaries of forward + backward. Exact for
// what the allocator hands out (see alloc_counter.h), not the RSS.
// Time: median wall time of forward + backward over the timed steps (warm-up
// excluded; at least one warm-up step). Prints a table and one JSON line per configuration.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/utils.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench_stats.h"
#include "hearth/shard/alloc_counter.h"
#include "hearth/shard/checkpoint.h"

namespace {

using hearth::bench::median;

using Clock = std::chrono::steady_clock;

// GPT-style pre-LayerNorm block: causal multi-head self-attention, 4x GELU
// MLP, dropout on the attention weights and on both residual branches.
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t d, int64_t heads, double p)
      : heads(heads),
        ln1(register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        ln2(register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        qkv(register_module("qkv", torch::nn::Linear(d, 3 * d))),
        proj(register_module("proj", torch::nn::Linear(d, d))),
        fc1(register_module("fc1", torch::nn::Linear(d, 4 * d))),
        fc2(register_module("fc2", torch::nn::Linear(4 * d, d))),
        drop(register_module("drop", torch::nn::Dropout(p))) {}

  at::Tensor forward(at::Tensor x) {
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
    auto parts = qkv(ln1(x)).view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    at::Tensor att = at::matmul(parts[0], parts[1].transpose(-2, -1)) / std::sqrt(double(hd));
    const at::Tensor mask = at::ones({t, t}, at::kBool).triu(1);
    att = drop(at::softmax(att.masked_fill(mask, -INFINITY), -1));
    at::Tensor y = at::matmul(att, parts[2]).transpose(1, 2).reshape({b, t, d});
    x = x + drop(proj(y));
    return x + drop(fc2(at::gelu(fc1(ln2(x)))));
  }

  int64_t heads;
  torch::nn::LayerNorm ln1, ln2;
  torch::nn::Linear qkv, proj, fc1, fc2;
  torch::nn::Dropout drop;
};
TORCH_MODULE(Block);

struct Config {
  int segments = 1;
  hearth::CheckpointedSequential model{nullptr};
  std::vector<double> ms;
  int64_t peakBytes = 0;
  uint64_t allocations = 0;
  double loss = 0;
};

std::vector<int> parseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Activation checkpointing: peak activation memory and step time"};
  int blocks = 12, dModel = 256, heads = 8, seq = 256, batch = 8, steps = 5, warmup = 1;
  int threads = 0;
  double dropout = 0.1;
  std::string segmentList = "1,3,4,12";
  app.add_option("--blocks", blocks)->check(CLI::PositiveNumber);
  app.add_option("--d-model", dModel)->check(CLI::PositiveNumber);
  app.add_option("--heads", heads)->check(CLI::PositiveNumber);
  app.add_option("--seq", seq)->check(CLI::PositiveNumber);
  app.add_option("--batch", batch)->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "Timed steps per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Untimed steps per configuration");
  app.add_option("--dropout", dropout);
  app.add_option("--threads", threads, "at::set_num_threads (0: LibTorch default)");
  app.add_option("--segments", segmentList, "Comma-separated segment counts; 1 = baseline");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) at::set_num_threads(threads);
    hearth::AllocationCounter::instance().install();

    std::vector<Config> configs;
    for (int s : parseList(segmentList)) {
      Config c;
      c.segments = s;
      torch::manual_seed(1);  // same weights for every configuration
      c.model = hearth::CheckpointedSequential();
      for (int b = 0; b < blocks; ++b) c.model->push_back(Block(dModel, heads, dropout));
      c.model->setSegments(s);
      c.model->train();
      configs.push_back(std::move(c));
    }
    torch::manual_seed(2);
    const at::Tensor input = at::randn({batch, seq, dModel});

    warmup = std::max(warmup, 1);  // the first step also allocates the gradients
    for (int step = 0; step < warmup + steps; ++step) {
      for (Config& c : configs) {
        for (auto& p : c.model->parameters()) {
          if (p.grad().defined()) p.grad().zero_();  // keep: part of the baseline
        }
        torch::manual_seed(100 + step);  // same dropout masks in every configuration
        const auto t0 = Clock::now();
        hearth::AllocationScope scope;
        at::Tensor loss = c.model->forward(input).pow(2).mean();
        loss.backward();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (step < warmup) continue;
        c.peakBytes = std::max(c.peakBytes, scope.peakBytesAbove());
        c.allocations = scope.allocations();
        c.loss = loss.item<double>();
        c.ms.push_back(ms);
      }
    }

    const Config& base = configs.front();
    std::printf(
        "bench_checkpointing: %d blocks, d_model %d, %d heads, seq %d, batch %d, dropout %.2f, "
        "%d threads, %d timed steps (median)\n",
        blocks, dModel, heads, seq, batch, dropout, at::get_num_threads(), steps);
    std::printf("%-10s %8s %12s %10s %10s %10s %12s\n", "segments", "blocks/s", "peak MiB",
                "mem ratio", "step ms", "time ratio", "loss");
    for (const Config& c : configs) {
      const double mib = double(c.peakBytes) / (1 << 20);
      const double memRatio = double(c.peakBytes) / double(base.peakBytes);
      const double timeRatio = median(c.ms) / median(base.ms);
      std::printf("%-10d %8.1f %12.1f %10.3f %10.1f %9.3fx %12.6f\n", c.segments,
                  double(blocks) / c.model->segments(), mib, memRatio, median(c.ms), timeRatio,
                  c.loss);
      nlohmann::json record = {{"bench", "activation_checkpointing"},
                               {"blocks", blocks},
                               {"d_model", dModel},
                               {"seq", seq},
                               {"batch", batch},
                               {"segments", c.model->segments()},
                               {"peak_activation_bytes", c.peakBytes},
                               {"memory_ratio", memRatio},
                               {"step_ms_median", median(c.ms)},
                               {"time_ratio", timeRatio},
                               {"allocations_per_step", c.allocations},
                               {"loss", c.loss}};
      std::cout << record.dump() << "\n";
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpointing: %s\n", e.what());
    return 1;
  }
  return 0;
}
