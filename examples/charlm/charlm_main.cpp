// hearth_charlm: trains a small GPT-style character-level language model,
// data-parallel across the ranks started by hearthrun (or alone).
//
// Every rank builds the same model (seeded identically, and the Engine
// broadcasts rank 0's weights anyway), samples its own random training
// windows (seeded per rank), and lets hearth::Engine average the gradients.
// Rank 0 evaluates the held-out loss, prints progress, writes the metrics and
// samples text at the end.
//
// Exit codes: 0 success; 2 bad command line, configuration, launch
// environment or data file (one "hearth_charlm: error: ..." line on stderr);
// 1 any failure while training (e.g. a peer died).
#include <ATen/core/grad_mode.h>
#include <torch/optim/optimizer.h>  // complete type for the unique_ptr from makeOptimizer

#include <cmath>
#include <iostream>
#include <limits>

#include "charlm/corpus.h"
#include "charlm/gpt.h"
#include "charlm/lr_schedule.h"
#include "charlm/settings.h"
#include "common/clock.h"
#include "common/example_main.h"
#include "common/format.h"
#include "common/metrics.h"
#include "hearth/hearth.h"
#include "hearth/shard/zero.h"

namespace charlm {
namespace {

using hearth::examples::Clock;
using hearth::examples::formatString;
using hearth::examples::humanBytes;
using hearth::examples::secondsSince;

double heldOutLoss(Gpt& model, const std::vector<TokenBatch>& batches) {
  at::NoGradGuard noGrad;
  model.setTraining(false);
  double sum = 0;
  std::int64_t windows = 0;
  for (const auto& batch : batches) {
    const auto n = batch.inputs.size(0);
    sum += model.loss(batch.inputs, batch.targets).item<double>() * static_cast<double>(n);
    windows += n;
  }
  model.setTraining(true);
  return sum / static_cast<double>(windows);
}

std::string sampleText(Gpt& model, const Corpus& corpus, const Settings& s) {
  const auto& vocab = corpus.vocab();
  const std::int64_t start = vocab.contains('\n') ? vocab.idOf('\n') : 0;
  hearth::seedModel(s.seed);  // the same sample for the same run
  auto ids = model.generate({start}, s.sampleChars, s.sampleTemperature);
  ids.erase(ids.begin());  // drop the prompt
  return vocab.decode(ids);
}

int train(const Settings& s, const hearth::Config& config, const hearth::Context& ctx,
          const Corpus& corpus) {
  const bool rank0 = ctx.isRank0();
  GptOptions modelOptions = s.model;
  modelOptions.vocabSize = corpus.vocab().size();
  hearth::seedModel(s.seed);
  Gpt model(modelOptions);
  auto optimizer = hearth::makeOptimizer(config, model.parameters());
  hearth::MetricsWriter metrics = hearth::examples::openMetrics(rank0 ? s.metricsFile : "");
  hearth::Engine engine(model.module(), *optimizer, ctx.collectives,
                        hearth::EngineOptions::fromConfig(config));
  hearth::seedData(s.seed, ctx.rank());
  // Under ZeRO stage 3 every forward pass gathers parameters with a
  // collective, so every rank evaluates and samples (rank 0 reports).
  const bool sharded = engine.zero() != nullptr && engine.zero()->stage() == 3;
  const bool evaluates = rank0 || sharded;

  const LrSchedule schedule{config.getFloat("optimizer.params.lr"), s.warmupSteps, s.steps,
                            s.minLrRatio};
  const std::int64_t samplesPerStep = s.microBatch * ctx.worldSize() * s.accumulation;
  const double unigram = corpus.unigramLoss();
  std::vector<TokenBatch> heldOut;
  if (evaluates)
    heldOut = corpus.heldOutBatches(s.evalBatches * s.microBatch, s.microBatch, s.model.blockSize);

  hearth::logRank0(formatString(
      "charlm: %s: %lld training + %lld held-out characters, vocabulary %lld; unigram baseline "
      "%.4f nats/char",
      corpus.description().c_str(), static_cast<long long>(corpus.trainChars()),
      static_cast<long long>(corpus.heldOutChars()), static_cast<long long>(corpus.vocab().size()),
      unigram));
  hearth::logRank0(formatString(
      "charlm: GPT %lld layers x %lld heads x %lld wide, context %lld, %lld parameters; %d "
      "rank(s) x %lld sequences x %lld accumulation = %lld sequences/step, %lld steps",
      static_cast<long long>(s.model.nLayer), static_cast<long long>(s.model.nHead),
      static_cast<long long>(s.model.nEmbd), static_cast<long long>(s.model.blockSize),
      static_cast<long long>(model.parameterCount()), ctx.worldSize(),
      static_cast<long long>(s.microBatch), static_cast<long long>(s.accumulation),
      static_cast<long long>(samplesPerStep), static_cast<long long>(s.steps)));

  const auto start = Clock::now();
  auto intervalStart = start;
  double intervalLoss = 0;
  std::int64_t intervalSteps = 0;
  double trainLoss = std::numeric_limits<double>::quiet_NaN();
  double valLoss = std::numeric_limits<double>::quiet_NaN();
  // Sharded checkpoints (ZeRO stages 1-3): resume, then save every interval.
  const std::string checkpointDir = config.getString("checkpoint.dir");
  const std::string resumeFrom = config.getString("checkpoint.resume");
  if ((!checkpointDir.empty() || !resumeFrom.empty()) && engine.zero() == nullptr) {
    throw hearth::ConfigError(
        "config: checkpoint.dir and checkpoint.resume need zero_optimization.stage 1, 2 or 3 "
        "(sharded checkpoints)");
  }
  std::int64_t firstStep = 1;
  if (!resumeFrom.empty()) {
    firstStep = engine.zero()->loadCheckpoint(resumeFrom) + 1;
    hearth::logRank0(formatString("resumed from %s at step %lld", resumeFrom.c_str(),
                                  static_cast<long long>(firstStep - 1)));
  }
  for (std::int64_t step = firstStep; step <= s.steps; ++step) {
    const double lr = scheduledLearningRate(schedule, step);
    setLearningRate(*optimizer, lr);
    double stepLoss = 0;
    for (std::int64_t micro = 0; micro < s.accumulation; ++micro) {
      const auto batch = corpus.sampleTrainBatch(s.microBatch, s.model.blockSize);
      const auto loss = model.loss(batch.inputs, batch.targets);
      engine.backward(loss);
      stepLoss += loss.item<double>();
    }
    engine.step();
    intervalLoss += stepLoss / static_cast<double>(s.accumulation);
    ++intervalSteps;

    if (step % s.logInterval == 0 || step == s.steps) {
      const double seconds = secondsSince(intervalStart);
      const double samplesPerSecond =
          static_cast<double>(samplesPerStep * intervalSteps) / std::max(seconds, 1e-9);
      trainLoss = intervalLoss / static_cast<double>(intervalSteps);
      const auto stats = engine.stats();
      const double elapsed = secondsSince(start);
      hearth::logRank0(
          formatString("step %lld/%lld  loss %.4f  lr %.2e  %.0f samples/s  sent %s/rank  %.1fs",
                       static_cast<long long>(step), static_cast<long long>(s.steps), trainLoss, lr,
                       samplesPerSecond, humanBytes(stats.wireBytesEstimate).c_str(), elapsed));
      metrics.write({{"event", "train"},
                     {"step", step},
                     {"train_loss", trainLoss},
                     {"lr", lr},
                     {"samples_per_s", samplesPerSecond},
                     {"tokens_per_s", samplesPerSecond * static_cast<double>(s.model.blockSize)},
                     {"wire_bytes", stats.wireBytesEstimate},
                     {"elapsed_s", elapsed}});
      intervalLoss = 0;
      intervalSteps = 0;
      intervalStart = Clock::now();
    }
    if (!checkpointDir.empty() && step % config.getInt("checkpoint.interval") == 0) {
      const std::string dir = checkpointDir + "/step-" + std::to_string(step);
      engine.zero()->saveCheckpoint(dir, step);
      hearth::logRank0("checkpoint saved to " + dir);
    }
    if (evaluates && (step % s.evalInterval == 0 || step == s.steps)) {
      const auto evalStart = Clock::now();
      valLoss = heldOutLoss(model, heldOut);
      hearth::logRank0(formatString(
          "eval step %lld: held-out loss %.4f nats/char (unigram baseline %.4f, ratio %.2f)",
          static_cast<long long>(step), valLoss, unigram, valLoss / unigram));
      metrics.write({{"event", "eval"},
                     {"step", step},
                     {"val_loss", valLoss},
                     {"unigram_loss", unigram},
                     {"elapsed_s", secondsSince(start)}});
      intervalStart += Clock::now() - evalStart;  // keep evaluation out of samples/s
    }
  }

  const double elapsed = secondsSince(start);
  const auto stats = engine.stats();
  if (!evaluates) return 0;
  const std::string sample = s.sampleChars > 0 ? sampleText(model, corpus, s) : "";
  if (!rank0) return 0;
  hearth::logRank0(formatString(
      "done: %lld steps in %.1fs, %.0f samples/s; held-out loss %.4f vs unigram %.4f nats/char "
      "(%.0f%%); sent %s/rank",
      static_cast<long long>(s.steps), elapsed,
      static_cast<double>(samplesPerStep * (s.steps - firstStep + 1)) / elapsed, valLoss, unigram,
      100.0 * valLoss / unigram, humanBytes(stats.wireBytesEstimate).c_str()));
  metrics.write(
      {{"event", "final"},
       {"step", s.steps},
       {"train_loss", trainLoss},
       {"val_loss", valLoss},
       {"unigram_loss", unigram},
       {"val_over_unigram", valLoss / unigram},
       {"samples_per_s", static_cast<double>(samplesPerStep * (s.steps - firstStep + 1)) / elapsed},
       {"wire_bytes", stats.wireBytesEstimate},
       {"elapsed_s", elapsed},
       {"world_size", ctx.worldSize()},
       {"parameters", model.parameterCount()}});
  if (!sample.empty()) {
    std::cout << "--- sample (" << s.sampleChars << " characters, temperature "
              << s.sampleTemperature << ") ---\n"
              << sample << "\n---" << std::endl;
  }
  return 0;
}

int run(int argc, char** argv) {
  const hearth::examples::ProgramSpec spec{
      "hearth_charlm",
      "Trains a small GPT-style character-level language model, data-parallel with hearth.",
      hearth::examples::withEngineShorthands(
          {{"--data", "data.path", "Text file to train on (data.path)"},
           {"--steps", "train.steps", "Optimizer steps (train.steps)"}})};
  Settings settings;
  Corpus corpus;
  const hearth::examples::ExampleSteps steps{
      [&](const hearth::Config& config) {
        settings = settingsFromConfig(config);
        corpus = Corpus::load(settings.data);
      },
      [&](const hearth::Config& config, const hearth::Context& ctx) {
        return train(settings, config, ctx, corpus);
      }};
  return hearth::examples::runExample(argc, argv, charlmSchema(), spec, steps);
}

}  // namespace
}  // namespace charlm

int main(int argc, char** argv) {
  return charlm::run(argc, argv);
}
