// The Engine's configuration keys: one table, used for validation and docs.
#include "hearth/runtime/engine_schema.h"

#include "hearth/compress/registry.h"

namespace hearth {

ConfigSchema engineConfigSchema() {
  ConfigSchema s;
  using K = ConfigKind;
  s.add({"seed", K::kInt, 1234,
         "Base random seed: the model init uses it as is; rank r draws data with a seed mixed from "
         "it and r.",
         0});
  s.add({"world_size", K::kInt, 0,
         "Expected number of ranks; 0 accepts whatever the launcher started.", 0});
  s.add({"train_micro_batch_size_per_gpu", K::kInt, 16, "Samples per rank per micro-batch.", 1});
  s.add({"gradient_accumulation_steps", K::kInt, 1,
         "Micro-batches per optimizer step; gradients are communicated once per step.", 1});
  s.add({"train_batch_size", K::kInt, 0,
         "Global batch; 0 derives it. If set it must equal micro batch x accumulation x ranks.",
         0});
  s.add({"gradient_clipping", K::kFloat, 0.0,
         "Clip the global gradient norm to this value before each step; 0 disables.", 0.0});
  s.add({"optimizer.type",
         K::kString,
         "adamw",
         "Optimizer: sgd, adam or adamw.",
         {},
         {},
         {"sgd", "adam", "adamw"}});
  s.add({"optimizer.params.lr", K::kFloat, 1e-3, "Learning rate.", 0.0});
  s.add({"optimizer.params.momentum", K::kFloat, 0.0, "SGD momentum.", 0.0, 1.0});
  s.add({"optimizer.params.nesterov", K::kBool, false, "SGD Nesterov momentum."});
  s.add({"optimizer.params.betas",
         K::kFloatList,
         nlohmann::json::array({0.9, 0.999}),
         "Adam/AdamW betas.",
         0.0,
         1.0,
         {},
         2});
  s.add({"optimizer.params.eps", K::kFloat, 1e-8, "Adam/AdamW epsilon.", 0.0});
  s.add({"optimizer.params.weight_decay", K::kFloat, 0.0, "Weight decay.", 0.0});
  s.add({"communication.backend",
         K::kString,
         "auto",
         "Collective backend: gloo (c10d at MASTER_ADDR), hearth (ZeroMQ through a relay, for "
         "nodes behind NAT), or auto (hearth when HEARTH_RELAY is set, else gloo).",
         {},
         {},
         {"auto", "gloo", "hearth"}});
  s.add({"communication.relay", K::kString, "",
         "hearth backend: the relay's HOST:PORT (default: HEARTH_RELAY, set by hearthrun "
         "--rdzv-backend hearth). The join token comes from HEARTH_JOIN_TOKEN."});
  s.add({"communication.bucket_cap_mb", K::kFloat, 25.0,
         "Gradient bucket size in MiB; small tensors are fused into buckets of this size.",
         1.0 / 1024, 4096.0});
  s.add({"communication.timeout_s", K::kFloat, 300.0,
         "Timeout of every collective and of the rendezvous, in seconds.", 0.1, 86400.0});
  s.add({"compression.codec",
         K::kString,
         "none",
         "Gradient codec for large tensors (docs/codecs.md, docs/dgc.md); none = dense "
         "allreduce.",
         {},
         {},
         compress::codecNames()});
  s.add({"compression.params", K::kObject, nlohmann::json::object(),
         "The codec's parameters, e.g. {\"density\": 0.001} for dgc; override one with "
         "--set compression.params.density=0.001."});
  s.add({"compression.dense_below_numel", K::kInt, 1024,
         "Tensors with fewer elements go to dense (uncompressed) buckets.", 0});
  s.add({"compression.dense_1d", K::kBool, true,
         "1-D tensors (biases, norm weights) go to dense buckets, as in the DGC paper."});
  s.add({"compression.capture_dir", K::kString, "",
         "Directory where each rank saves its compressed payloads (hearth inspect reads them); "
         "empty disables."});
  s.add({"compression.capture_interval", K::kInt, 100,
         "Capture payloads every this many optimizer steps.", 1});
  s.add({"zero_optimization.stage", K::kInt, 0,
         "ZeRO stage: 0 plain data parallel; 1 shards optimizer state; 2 also gradients; 3 also "
         "the parameters of modules wrapped in hearth::ZeroUnit (docs/zero.md).",
         0, 3});
  s.add({"zero_optimization.persist_below_numel", K::kInt, 2048,
         "Stage 3: parameters of a ZeroUnit with fewer elements stay whole on every rank.", 0});
  s.add({"zero_optimization.bucket_cap_mb", K::kFloat, 4.0,
         "Stage 2/3: gradient reduce-scatter bucket in MiB (two staging buffers of this size; "
         "large tensors are split across buckets).",
         1.0 / 1024, 4096.0});
  s.add({"zero_optimization.prefetch", K::kBool, true,
         "Stage 3: gather the next unit's parameters while the current one computes."});
  s.add({"checkpoint.dir", K::kString, "",
         "Save a sharded checkpoint every checkpoint.interval steps into DIR/step-N (ZeRO "
         "stages 1-3; docs/checkpoints.md); empty disables."});
  s.add({"checkpoint.interval", K::kInt, 100, "Optimizer steps between checkpoints.", 1});
  s.add({"checkpoint.resume", K::kString, "",
         "Resume from this sharded checkpoint directory (saved at any world size); empty starts "
         "fresh."});
  s.add({"logging.log_interval", K::kInt, 10, "Steps between progress lines on rank 0.", 1});
  s.add({"logging.metrics_file", K::kString, "",
         "JSONL file for per-step metrics written by rank 0; empty disables."});
  return s;
}

void checkConfigAgainstWorld(const Config& config, int worldSize) {
  const auto expected = config.getInt("world_size");
  if (expected != 0 && expected != worldSize) {
    throw ConfigError("config: world_size is " + std::to_string(expected) +
                      " but the launcher started " + std::to_string(worldSize) +
                      " rank(s) (WORLD_SIZE=" + std::to_string(worldSize) + ")");
  }
  const auto global = config.getInt("train_batch_size");
  const auto micro = config.getInt("train_micro_batch_size_per_gpu");
  const auto accumulation = config.getInt("gradient_accumulation_steps");
  if (global != 0 && global != micro * accumulation * worldSize) {
    throw ConfigError("config: train_batch_size is " + std::to_string(global) +
                      " but train_micro_batch_size_per_gpu x gradient_accumulation_steps x "
                      "world size = " +
                      std::to_string(micro) + " x " + std::to_string(accumulation) + " x " +
                      std::to_string(worldSize) + " = " +
                      std::to_string(micro * accumulation * worldSize));
  }
}

}  // namespace hearth
