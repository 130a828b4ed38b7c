// mnist/settings.h — the configuration of the MNIST example: its schema
// (hearth's engine keys plus model.*, data.* and train.* keys, with a few
// engine defaults changed to suit this model) and the typed Settings read
// from a loaded Config. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/loop_settings.h"
#include "hearth/runtime/config.h"
#include "mnist/dataset.h"
#include "mnist/net.h"

namespace mnist {

hearth::ConfigSchema mnistSchema();

struct Settings : hearth::examples::LoopSettings {
  NetOptions model;
  DataOptions data;
  std::int64_t epochs = 0;
};

Settings settingsFromConfig(const hearth::Config& config);

}  // namespace mnist
