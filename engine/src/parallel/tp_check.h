// The settings checks of tensor parallelism behind engine::check_tensor_parallel (engine.h), split so the
// Engine constructor runs them on the config it has already loaded.
#pragma once

#include <string_view>

#include "engine/engine.h"
#include "model/model.h"

namespace engine::parallel {

/// N >= 1, and for N > 1: make_tp_plan(model, N) (the shape) and what the backend, the build and the
/// visible GPUs allow. Throws std::invalid_argument "<option> N: ...".
void check_tp_settings(const EngineConfig& config, const ModelConfig& model, std::string_view option);

}  // namespace engine::parallel
