// The example's configuration keys and their typed view.
#include "mnist/settings.h"

#include <map>
#include <optional>

#include "hearth/runtime/engine_schema.h"

namespace mnist {
namespace {

hearth::ConfigKey makeKey(std::string path, hearth::ConfigKind kind, nlohmann::json defaultValue,
                          std::string doc, std::optional<double> min = std::nullopt,
                          std::optional<double> max = std::nullopt) {
  hearth::ConfigKey key;
  key.path = std::move(path);
  key.kind = kind;
  key.defaultValue = std::move(defaultValue);
  key.doc = std::move(doc);
  key.min = min;
  key.max = max;
  return key;
}

}  // namespace

hearth::ConfigSchema mnistSchema() {
  const std::map<std::string, nlohmann::json> exampleDefaults = {
      {"train_micro_batch_size_per_gpu", 32},
      {"optimizer.params.lr", 2e-3},
      {"logging.log_interval", 25},
  };
  const hearth::ConfigSchema engine = hearth::engineConfigSchema();
  hearth::ConfigSchema schema;
  for (hearth::ConfigKey key : engine.keys()) {
    if (auto it = exampleDefaults.find(key.path); it != exampleDefaults.end()) {
      key.defaultValue = it->second;
    }
    schema.add(key);
  }
  using K = hearth::ConfigKind;
  schema.add(makeKey("model.channels", K::kInt, 8,
                     "Channels of the first conv layer (the second has twice as many).", 1, 256));
  schema.add(makeKey("model.hidden", K::kInt, 64, "Width of the hidden linear layer.", 1, 4096));
  schema.add(makeKey("data.path", K::kString, "",
                     "Directory with the MNIST IDX files; empty (or files missing): generated "
                     "digits."));
  schema.add(makeKey("data.synthetic_train", K::kInt, 20000,
                     "Generated training images (when no IDX files are used).", 10, 10000000));
  schema.add(makeKey("data.synthetic_test", K::kInt, 4000,
                     "Generated held-out images (when no IDX files are used).", 10, 10000000));
  schema.add(makeKey("train.epochs", K::kInt, 3, "Passes over the training set.", 1, 100000));
  return schema;
}

Settings settingsFromConfig(const hearth::Config& config) {
  Settings s;
  s.model.channels = config.getInt("model.channels");
  s.model.hidden = config.getInt("model.hidden");
  s.seed = static_cast<std::uint64_t>(config.getInt("seed"));
  s.data.dir = config.getString("data.path");
  s.data.syntheticTrain = static_cast<std::size_t>(config.getInt("data.synthetic_train"));
  s.data.syntheticTest = static_cast<std::size_t>(config.getInt("data.synthetic_test"));
  s.data.seed = s.seed;
  s.microBatch = config.getInt("train_micro_batch_size_per_gpu");
  s.accumulation = config.getInt("gradient_accumulation_steps");
  s.epochs = config.getInt("train.epochs");
  s.logInterval = config.getInt("logging.log_interval");
  s.metricsFile = config.getString("logging.metrics_file");
  return s;
}

}  // namespace mnist
