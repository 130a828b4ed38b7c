// charlm/settings.h — the configuration of the char-level LM example: its
// schema (hearth's engine keys plus model.*, data.* and train.* keys) and the
// typed Settings read from a loaded Config.
//
// charlmSchema() starts from hearth::engineConfigSchema() and changes a few
// engine defaults to suit this model (learning rate, micro batch, clipping,
// log interval), so that running with no flags is a sensible ~1 minute run.
// settingsFromConfig() also checks relations between keys (n_embd divisible
// by n_head) and throws hearth::ConfigError with one line naming the keys.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "charlm/corpus.h"
#include "charlm/gpt.h"
#include "common/loop_settings.h"
#include "hearth/runtime/config.h"

namespace charlm {

hearth::ConfigSchema charlmSchema();

struct Settings : hearth::examples::LoopSettings {
  GptOptions model;  // vocabSize is filled in once the corpus is loaded
  CorpusOptions data;
  std::int64_t steps = 0;
  std::int64_t evalInterval = 0;
  std::int64_t evalBatches = 0;
  std::int64_t warmupSteps = 0;
  double minLrRatio = 1.0;
  std::int64_t sampleChars = 0;
  double sampleTemperature = 1.0;
};

Settings settingsFromConfig(const hearth::Config& config);

}  // namespace charlm
