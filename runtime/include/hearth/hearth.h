// hearth/hearth.h — the one header a training program includes.
//
// Public API (stable): init() and Context, Engine and EngineOptions, Config
// with engineConfigSchema(), makeOptimizer(), logging, seeding, MetricsWriter,
// and the Collectives interface. Everything else is internal.
#pragma once

#include "hearth/runtime/config.h"
#include "hearth/runtime/engine.h"
#include "hearth/runtime/engine_schema.h"
#include "hearth/runtime/init.h"
#include "hearth/runtime/logging.h"
#include "hearth/runtime/metrics.h"
#include "hearth/runtime/optimizer_factory.h"
#include "hearth/runtime/seed.h"
#include "hearth/shard/checkpoint.h"
#include "hearth/shard/zero.h"
#include "hearth/shard/zero_unit.h"
#include "hearth/transport/collectives.h"
