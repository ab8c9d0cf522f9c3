// The CUDA backend's factory and its profiling hook. Plain C++: no CUDA headers, so backend.cc and
// benchmark programs include it freely.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "engine/engine.h"

namespace engine {

/// Weights in bf16 on the GPU (config.dtype auto or bf16; f32: weights, KV cache and activations in
/// float, f32 GEMMs without TF32), f32 accumulation, cuBLAS GEMMs over the whole batch, own kernels for
/// the rest, paged KV cache in GPU memory, CUDA graphs for decode-only steps. Throws ModelLoadError
/// when no CUDA device is usable.
std::unique_ptr<Backend> make_cuda_backend(const EngineConfig& config);

/// Runs `batch` once eagerly (no graph) with device events between the stages of the forward pass and
/// returns milliseconds per stage summed over layers ("qkv_gemm", "attention", ...), in pass order.
/// `backend` must come from make_cuda_backend, loaded and with its KV cache allocated.
std::vector<std::pair<std::string, double>> cuda_profile_forward(Backend& backend, const StepBatch& batch);

/// Fills the whole KV cache with uniform(-amp, amp) values in its storage type (bf16, or f32 in the f32
/// mode): benchmarks time attention on random data, never on zeros.
void cuda_fill_kv_cache(Backend& backend, float amp, uint64_t seed);

}  // namespace engine
