// hearth_mnist: trains a small CNN on MNIST (IDX files) or on generated
// digits, data-parallel across the ranks started by hearthrun (or alone).
//
// Every epoch all ranks shuffle the training set identically; each step every
// rank takes its own shard of the global batch (sharding.h), and
// hearth::Engine averages the gradients. Rank 0 evaluates held-out accuracy
// after every epoch, prints progress and writes the metrics.
//
// Exit codes: 0 success; 2 bad command line, configuration, launch
// environment or data (one "hearth_mnist: error: ..." line on stderr); 1 any
// failure while training (e.g. a peer died).
#include <ATen/core/grad_mode.h>
#include <torch/optim/optimizer.h>  // complete type for the unique_ptr from makeOptimizer

#include <algorithm>
#include <limits>

#include "common/clock.h"
#include "common/example_main.h"
#include "common/format.h"
#include "common/metrics.h"
#include "hearth/hearth.h"
#include "mnist/dataset.h"
#include "mnist/idx.h"
#include "mnist/net.h"
#include "mnist/settings.h"
#include "mnist/sharding.h"

namespace mnist {
namespace {

using hearth::examples::Clock;
using hearth::examples::formatString;
using hearth::examples::humanBytes;
using hearth::examples::secondsSince;

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

Evaluation evaluate(Net& net, const ImageSet& set) {
  at::NoGradGuard noGrad;
  constexpr std::int64_t kChunk = 1000;
  double lossSum = 0;
  std::int64_t correct = 0;
  for (std::int64_t begin = 0; begin < set.size(); begin += kChunk) {
    const auto end = std::min(set.size(), begin + kChunk);
    const auto images = set.images.slice(0, begin, end);
    const auto labels = set.labels.slice(0, begin, end);
    const auto logits = net.logits(images);
    lossSum += net.loss(images, labels).item<double>() * static_cast<double>(end - begin);
    correct += logits.argmax(1).eq(labels).sum().item<std::int64_t>();
  }
  const auto n = static_cast<double>(std::max<std::int64_t>(1, set.size()));
  return {lossSum / n, static_cast<double>(correct) / n};
}

int train(const Settings& s, const hearth::Config& config, const hearth::Context& ctx,
          const MnistData& data) {
  const bool rank0 = ctx.isRank0();
  const std::int64_t globalBatch = s.microBatch * ctx.worldSize();
  ShardedSampler sampler(data.train.size(), s.microBatch, ctx.rank(), ctx.worldSize(), s.seed);
  const std::int64_t stepsPerEpoch = sampler.stepsPerEpoch();
  if (stepsPerEpoch < s.accumulation) {
    throw hearth::ConfigError(
        "config: " + std::to_string(data.train.size()) + " training images are fewer than " +
        "gradient_accumulation_steps x one global batch (train_micro_batch_size_per_gpu " +
        std::to_string(s.microBatch) + " x " + std::to_string(ctx.worldSize()) + " ranks)");
  }
  // Optimizer steps per epoch; a tail of micro-batches short of a step is skipped.
  const std::int64_t optimizerStepsPerEpoch = stepsPerEpoch / s.accumulation;
  const std::int64_t totalSteps = optimizerStepsPerEpoch * s.epochs;

  hearth::seedModel(s.seed);
  Net net(s.model);
  auto optimizer = hearth::makeOptimizer(config, net.parameters());
  hearth::MetricsWriter metrics = hearth::examples::openMetrics(rank0 ? s.metricsFile : "");
  hearth::Engine engine(net.module(), *optimizer, ctx.collectives,
                        hearth::EngineOptions::fromConfig(config));

  hearth::logRank0(formatString(
      "mnist: %s: %lld training, %lld held-out images; CNN with %lld parameters; %d rank(s) x "
      "%lld images x %lld accumulation per step, %lld steps/epoch, %lld epoch(s)",
      data.description.c_str(), static_cast<long long>(data.train.size()),
      static_cast<long long>(data.test.size()), static_cast<long long>(net.parameterCount()),
      ctx.worldSize(), static_cast<long long>(s.microBatch), static_cast<long long>(s.accumulation),
      static_cast<long long>(optimizerStepsPerEpoch), static_cast<long long>(s.epochs)));

  const auto start = Clock::now();
  auto intervalStart = start;
  double intervalLoss = 0;
  std::int64_t intervalSteps = 0, step = 0;
  double trainLoss = std::numeric_limits<double>::quiet_NaN();
  Evaluation last{std::numeric_limits<double>::quiet_NaN(), 0.0};
  for (std::int64_t epoch = 0; epoch < s.epochs; ++epoch) {
    std::int64_t micro = 0;
    for (std::int64_t k = 0; k < optimizerStepsPerEpoch; ++k) {
      double stepLoss = 0;
      for (std::int64_t a = 0; a < s.accumulation; ++a, ++micro) {
        const auto index = sampler.shard(epoch, micro);
        const auto loss = net.loss(data.train.images.index_select(0, index),
                                   data.train.labels.index_select(0, index));
        engine.backward(loss);
        stepLoss += loss.item<double>();
      }
      engine.step();
      ++step;
      intervalLoss += stepLoss / static_cast<double>(s.accumulation);
      ++intervalSteps;
      if (step % s.logInterval == 0 || step == totalSteps) {
        const double seconds = std::max(secondsSince(intervalStart), 1e-9);
        const double samplesPerSecond =
            static_cast<double>(globalBatch * s.accumulation * intervalSteps) / seconds;
        trainLoss = intervalLoss / static_cast<double>(intervalSteps);
        const auto stats = engine.stats();
        const double elapsed = secondsSince(start);
        hearth::logRank0(formatString(
            "step %lld/%lld  epoch %lld  loss %.4f  %.0f samples/s  sent %s/rank  %.1fs",
            static_cast<long long>(step), static_cast<long long>(totalSteps),
            static_cast<long long>(epoch + 1), trainLoss, samplesPerSecond,
            humanBytes(stats.wireBytesEstimate).c_str(), elapsed));
        metrics.write({{"event", "train"},
                       {"step", step},
                       {"epoch", epoch + 1},
                       {"train_loss", trainLoss},
                       {"samples_per_s", samplesPerSecond},
                       {"wire_bytes", stats.wireBytesEstimate},
                       {"elapsed_s", elapsed}});
        intervalLoss = 0;
        intervalSteps = 0;
        intervalStart = Clock::now();
      }
    }
    if (rank0) {
      const auto evalStart = Clock::now();
      last = evaluate(net, data.test);
      hearth::logRank0(
          formatString("eval epoch %lld: held-out accuracy %.2f%% (chance 10%%), loss %.4f",
                       static_cast<long long>(epoch + 1), 100.0 * last.accuracy, last.loss));
      metrics.write({{"event", "eval"},
                     {"step", step},
                     {"epoch", epoch + 1},
                     {"test_accuracy", last.accuracy},
                     {"test_loss", last.loss},
                     {"elapsed_s", secondsSince(start)}});
      intervalStart += Clock::now() - evalStart;  // keep evaluation out of samples/s
    }
  }

  if (!rank0) return 0;
  const double elapsed = secondsSince(start);
  const auto stats = engine.stats();
  const double samplesPerSecond =
      static_cast<double>(globalBatch * s.accumulation * totalSteps) / elapsed;
  hearth::logRank0(formatString(
      "done: %lld steps in %.1fs, %.0f samples/s; held-out accuracy %.2f%%; sent %s/rank",
      static_cast<long long>(totalSteps), elapsed, samplesPerSecond, 100.0 * last.accuracy,
      humanBytes(stats.wireBytesEstimate).c_str()));
  metrics.write({{"event", "final"},
                 {"step", totalSteps},
                 {"epochs", s.epochs},
                 {"train_loss", trainLoss},
                 {"test_accuracy", last.accuracy},
                 {"test_loss", last.loss},
                 {"chance_accuracy", 0.1},
                 {"samples_per_s", samplesPerSecond},
                 {"wire_bytes", stats.wireBytesEstimate},
                 {"elapsed_s", elapsed},
                 {"world_size", ctx.worldSize()},
                 {"parameters", net.parameterCount()},
                 {"data", data.description}});
  return 0;
}

int run(int argc, char** argv) {
  const hearth::examples::ProgramSpec spec{
      "hearth_mnist",
      "Trains a small CNN on MNIST (or generated digits), data-parallel with hearth.",
      hearth::examples::withEngineShorthands(
          {{"--data", "data.path", "Directory with the MNIST IDX files (data.path)"},
           {"--epochs", "train.epochs", "Passes over the data (train.epochs)"}})};
  Settings settings;
  MnistData data;
  const hearth::examples::ExampleSteps steps{
      [&](const hearth::Config& config) {
        settings = settingsFromConfig(config);
        data = loadData(settings.data);
        if (!data.warning.empty() && hearth::examples::firstOnItsHost()) {
          hearth::logWarning(data.warning);
        }
      },
      [&](const hearth::Config& config, const hearth::Context& ctx) {
        return train(settings, config, ctx, data);
      }};
  return hearth::examples::runExample(argc, argv, mnistSchema(), spec, steps);
}

}  // namespace
}  // namespace mnist

int main(int argc, char** argv) {
  return mnist::run(argc, argv);
}
