// The example's configuration keys and their typed view.
#include "mnist/settings.h"

#include "hearth/runtime/engine_schema.h"

namespace mnist {

hearth::ConfigSchema mnistSchema() {
  auto schema = hearth::engineConfigSchema();
  // Engine keys whose defaults differ for this example.
  schema.setDefault("train_micro_batch_size_per_gpu", 32)
      .setDefault("optimizer.params.lr", 2e-3)
      .setDefault("logging.log_interval", 25);
  using K = hearth::ConfigKind;
  schema.add({"model.channels", K::kInt, 8,
              "Channels of the first conv layer (the second has twice as many).", 1, 256});
  schema.add({"model.hidden", K::kInt, 64, "Width of the hidden linear layer.", 1, 4096});
  schema.add({"data.path", K::kString, "",
              "Directory with the MNIST IDX files; empty (or files missing): generated digits."});
  schema.add({"data.synthetic_train", K::kInt, 20000,
              "Generated training images (when no IDX files are used).", 10, 10000000});
  schema.add({"data.synthetic_test", K::kInt, 4000,
              "Generated held-out images (when no IDX files are used).", 10, 10000000});
  schema.add({"train.epochs", K::kInt, 3, "Passes over the training set.", 1, 100000});
  return schema;
}

Settings settingsFromConfig(const hearth::Config& config) {
  Settings s;
  static_cast<hearth::examples::LoopSettings&>(s) = hearth::examples::readLoopSettings(config);
  s.model.channels = config.getInt("model.channels");
  s.model.hidden = config.getInt("model.hidden");
  s.data.dir = config.getString("data.path");
  s.data.syntheticTrain = static_cast<std::size_t>(config.getInt("data.synthetic_train"));
  s.data.syntheticTest = static_cast<std::size_t>(config.getInt("data.synthetic_test"));
  s.data.seed = s.seed;
  s.epochs = config.getInt("train.epochs");
  return s;
}

}  // namespace mnist
