// The CUDA backend's switches, decided once when the backend is made: from EngineConfig (dtype,
// deterministic) and the LLM_CUDA_* environment variables that turn one part off for A/B measurements
// (bench/gpu/run.sh, docs/cuda-notes.md). Nothing else in the backend reads the environment.
#pragma once

#include <cstddef>

#include "engine/engine.h"

namespace engine::cuda {

struct CudaOptions {
  /// dtype f32: weights, KV cache and activations in float, pedantic f32 GEMMs, no GEMV (a reference mode
  /// that matches the CPU backend). Otherwise (auto, bf16) all three in bf16.
  bool f32 = false;
  /// Decode-only steps replay a CUDA graph captured per padded batch size. LLM_CUDA_GRAPHS=0: eager decode.
  bool graphs = true;
  /// GEMMs of one row (decode at batch 1) through the bf16 GEMV (gemv.cu; the bf16 mode only).
  /// LLM_CUDA_GEMV=0 or the deterministic mode: cuBLAS at every M.
  bool gemv = true;
  /// Prefill slices (query_len > 1) through the tiled kernel (attention_prefill.cu).
  /// LLM_CUDA_PREFILL_KERNEL=0 or the deterministic mode: the per-token paged kernel for every token.
  bool prefill_kernel = true;
  /// EngineConfig::deterministic (batch invariance): > 0 runs every GEMM as cuBLAS calls of exactly this many
  /// rows (the last one padded), so the kernel cuBLAS picks, and with it each row's order of sums, never depends
  /// on how many tokens share the step; attention then runs unsplit. 128 (LLM_CUDA_DET_ROWS=N: N, at least 1,
  /// for measurements). 0: the fastest kernels for each shape.
  int det_rows = 0;

  /// Bytes of one stored element (weights, KV cache, E activations): 4 in the f32 mode, else 2 (bf16).
  size_t elem_bytes() const { return f32 ? 4 : 2; }
};

/// Reads the switches: `cfg` for the mode, the environment for LLM_CUDA_GRAPHS, LLM_CUDA_GEMV,
/// LLM_CUDA_PREFILL_KERNEL (each off only when set to "0") and, in the deterministic mode, LLM_CUDA_DET_ROWS.
CudaOptions read_cuda_options(const EngineConfig& cfg);

}  // namespace engine::cuda
