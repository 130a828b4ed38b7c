// The example's configuration keys and their typed view.
#include "charlm/settings.h"

#include "hearth/runtime/engine_schema.h"

namespace charlm {

hearth::ConfigSchema charlmSchema() {
  auto schema = hearth::engineConfigSchema();
  // Engine keys whose defaults differ for this example.
  schema.setDefault("train_micro_batch_size_per_gpu", 16)
      .setDefault("optimizer.params.lr", 3e-3)
      .setDefault("gradient_clipping", 1.0)
      .setDefault("logging.log_interval", 25);
  using K = hearth::ConfigKind;
  schema.add({"model.n_layer", K::kInt, 2, "Transformer blocks.", 1, 64});
  schema.add(
      {"model.n_head", K::kInt, 4, "Attention heads per block; must divide model.n_embd.", 1, 64});
  schema.add({"model.n_embd", K::kInt, 64, "Embedding (residual stream) width.", 4, 4096});
  schema.add({"model.block_size", K::kInt, 64, "Context length in characters.", 2, 4096});
  schema.add({"model.dropout", K::kFloat, 0.0,
              "Dropout probability in attention, MLP and embeddings.", 0.0, 0.9});
  schema.add({"model.checkpoint_segments", K::kInt, 0,
              "Activation checkpointing: split the blocks into this many segments and recompute "
              "all but the last in backward (docs/activation_checkpointing.md); 0 = off, -1 = "
              "ceil(sqrt(n_layer)).",
              -1, 64});
  schema.add({"data.path", K::kString, "",
              "Text file to train on (raw bytes, one token per distinct byte); empty: the "
              "built-in generated text."});
  schema.add({"data.val_fraction", K::kFloat, 0.1,
              "Share of the text held out (taken from its end) for the validation loss.", 0.01,
              0.5});
  schema.add({"data.builtin_chars", K::kInt, 300000,
              "Size in characters of the built-in text (when data.path is empty).", 10000,
              100000000});
  schema.add({"train.steps", K::kInt, 400, "Optimizer steps.", 1});
  schema.add({"train.warmup_steps", K::kInt, 20,
              "Linear learning-rate warm-up steps; then cosine decay to train.min_lr_ratio x lr.",
              0});
  schema.add({"train.min_lr_ratio", K::kFloat, 0.1,
              "Final learning rate as a fraction of optimizer.params.lr (1 = constant).", 0.0,
              1.0});
  schema.add({"train.eval_interval", K::kInt, 100,
              "Steps between validation-loss evaluations (and always after the last step).", 1});
  schema.add({"train.eval_batches", K::kInt, 8,
              "Micro-batches of evenly spaced held-out windows per evaluation (rank 0).", 1});
  schema.add({"train.sample_chars", K::kInt, 300,
              "Characters sampled from the model after training (rank 0); 0 disables.", 0});
  schema.add({"train.sample_temperature", K::kFloat, 0.8, "Sampling temperature.", 0.01, 10.0});
  return schema;
}

Settings settingsFromConfig(const hearth::Config& config) {
  Settings s;
  static_cast<hearth::examples::LoopSettings&>(s) = hearth::examples::readLoopSettings(config);
  s.model.nLayer = config.getInt("model.n_layer");
  s.model.nHead = config.getInt("model.n_head");
  s.model.nEmbd = config.getInt("model.n_embd");
  s.model.blockSize = config.getInt("model.block_size");
  s.model.dropout = config.getFloat("model.dropout");
  s.model.checkpointSegments = config.getInt("model.checkpoint_segments");
  if (s.model.nEmbd % s.model.nHead != 0) {
    throw hearth::ConfigError("config: model.n_embd (" + std::to_string(s.model.nEmbd) +
                              ") must be divisible by model.n_head (" +
                              std::to_string(s.model.nHead) + ")");
  }
  s.data.path = config.getString("data.path");
  s.data.valFraction = config.getFloat("data.val_fraction");
  s.data.defaultChars = static_cast<std::size_t>(config.getInt("data.builtin_chars"));
  s.data.seed = s.seed;
  s.data.blockSize = s.model.blockSize;
  s.steps = config.getInt("train.steps");
  s.evalInterval = config.getInt("train.eval_interval");
  s.evalBatches = config.getInt("train.eval_batches");
  s.warmupSteps = config.getInt("train.warmup_steps");
  s.minLrRatio = config.getFloat("train.min_lr_ratio");
  s.sampleChars = config.getInt("train.sample_chars");
  s.sampleTemperature = config.getFloat("train.sample_temperature");
  return s;
}

}  // namespace charlm
