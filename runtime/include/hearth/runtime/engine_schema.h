// hearth/runtime/engine_schema.h — the configuration keys of the Engine,
// init() and the optimizer factory. Programs extend this schema with their own
// keys (model, data, ...) before loading a Config.
//
// Key names follow DeepSpeed where one exists (train_micro_batch_size_per_gpu,
// gradient_accumulation_steps, gradient_clipping, optimizer.type/params).
// docs/config.md is generated from this schema (`hearth-config --markdown`).
#pragma once

#include "hearth/runtime/config.h"

namespace hearth {

ConfigSchema engineConfigSchema();

// Checks the relations between keys that depend on the launched world size:
// `world_size` (if non-zero) must equal worldSize, and `train_batch_size` (if
// non-zero) must equal micro batch x accumulation steps x worldSize.
// Throws ConfigError naming the keys and values.
void checkConfigAgainstWorld(const Config& config, int worldSize);

}  // namespace hearth
