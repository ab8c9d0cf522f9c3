// The CPU backend: float32 Llama forward pass with OpenBLAS GEMMs over the whole step's tokens, OpenMP for
// attention and elementwise work, and a paged KV cache in host memory.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace engine::cpu {

/// Uses config.num_threads (0: OpenMP's default) for both OpenMP regions and OpenBLAS.
std::unique_ptr<Backend> make_cpu_backend(const EngineConfig& config);

}  // namespace engine::cpu
