// The plain float64 Llama: a direct transcription of transformers' LlamaForCausalLM for one sequence, with
// no cache, no batching and no blocking, that every backend is checked against (tests/
// cpu_backend_reference_test.cc, tests/cuda/cuda_backend_test.cc) and that bench/bf16_error_budget uses to
// price each bf16 rounding point of the forward pass.
//
// Optionally, values are rounded to bf16 (round to nearest even, like __float2bfloat16) at chosen points,
// so a bf16 backend can be compared with float64 rounded where it stores bf16: what is left between the
// two is the order of sums. K and V can instead be stored as the fp8 KV cache stores them (e4m3 with a
// scale per token and kv head), to price that cache the same way.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace engine::reference {

/// Where the forward pass may round to bf16. Combine with |.
enum Bf16Point : unsigned {
  kNormOut = 1u << 0,       ///< RMSNorm outputs: the QKV and gate/up GEMM inputs
  kAttnOut = 1u << 1,       ///< attention output: the O GEMM input
  kActOut = 1u << 2,        ///< SwiGLU output: the down GEMM input
  kFinalNormOut = 1u << 3,  ///< final RMSNorm output: the lm_head GEMM input
  kQkvOut = 1u << 4,        ///< q, k, v as the QKV GEMM writes them, before RoPE
  kQRoped = 1u << 5,        ///< q after RoPE
  kKvCache = 1u << 6,       ///< k (after RoPE) and v as a bf16 KV cache stores them
  kDelta = 1u << 7,         ///< O and down GEMM outputs, before they are added to the residual
  kGateUp = 1u << 8,        ///< gate/up GEMM outputs
  kWeights = 1u << 9,       ///< the weight matrices themselves (a no-op for bf16 checkpoints)
  kKFp8 = 1u << 10,         ///< k (after RoPE) as the fp8 KV cache stores it: e4m3 with a scale per (token, kv head)
  kVFp8 = 1u << 11,         ///< v likewise (either replaces kKvCache's bf16 rounding for its half)
};
/// What bf16 tensor-core GEMMs cannot avoid: every GEMM input in bf16.
constexpr unsigned kGemmInputs = kNormOut | kAttnOut | kActOut | kFinalNormOut;
/// The CUDA backend's bf16 mode (backend/cuda/kernels.h): GEMM inputs, q after RoPE, the KV cache and the
/// gate/up outputs are bf16; the QKV output, the residual deltas and the logits stay f32. Weights are not
/// included: a bf16 checkpoint needs no rounding, and for f32 checkpoints add kWeights.
constexpr unsigned kCudaBf16 = kGemmInputs | kQRoped | kKvCache | kGateUp;

/// x rounded to the nearest bf16 value (ties to even) through float, as the GPU's conversion does.
double bf16_round(double x);

/// x rounded to the nearest e4m3 value (ties to even; 3 mantissa bits, subnormals below 2^-6, saturating at
/// +-448 as __NV_SATFINITE does).
double e4m3_round(double x);

/// One (token, kv head) row as the CUDA fp8 cache stores it (rope_kv.cu): scale = max|x| / 448 in float (1 for
/// a zero row), each element x / scale rounded to e4m3, then times the scale again.
void fp8_row_round(double* row, int n);

/// Logits [vocab] after each position first .. tokens.size()-1 of one sequence (a full causal recompute),
/// rounded to bf16 at `bf16_points`. Norm weights are never rounded (backends keep them in f32). Matrix
/// products run on OpenMP threads; each result is one left-to-right float64 sum, so threads do not change
/// the numbers.
std::vector<std::vector<double>> llama_f64_logits(const ModelWeights& w, const std::vector<int32_t>& tokens,
                                                  int first, unsigned bf16_points = 0);

}  // namespace engine::reference
