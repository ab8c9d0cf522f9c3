// Host-side launchers of the CUDA backend's own kernels (everything that is not a cuBLAS GEMM).
// Plain C++ header: includable from .cc files compiled by the host compiler (the backend and the tests).
// Every launcher is asynchronous on `stream`; none allocates memory, so all of them can be captured
// into a CUDA graph.
//
// Layouts (row-major throughout; T = tokens in the step, bf16 = __nv_bfloat16):
//   residual x        f32  [T, dim]
//   qkv               bf16 [T, (nh + 2*nkv) * hd]   q heads, then k heads, then v heads
//   KV cache (1 layer) bf16 [num_blocks, nkv, block_size, hd]  one (block, kv head) tile is contiguous
//   rope table        f32x2 [max_pos, hd/2]          (cos, sin) of pos * theta^(-2i/hd)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace engine::cuda {

using bf16 = __nv_bfloat16;

/// x[t, :] = float(table[tokens[t], :]).                                   table: [vocab, dim]
void embedding(const int32_t* tokens, const bf16* table, float* x, int T, int dim, cudaStream_t s);

/// Residual add fused with RMSNorm. For each output row r (source row i = rows ? rows[r] : r):
///   v = x[i] + (delta ? delta[i] : 0);   if write_back: x[i] = v;
///   out[r] = bf16(v * rsqrt(mean(v^2) + eps) * w)
/// x: f32 [*, dim]; delta: bf16 [*, dim] or null; w: f32 [dim]; out: bf16 [n_rows, dim].
void add_rmsnorm(float* x, const bf16* delta, const float* w, bf16* out, const int32_t* rows, int n_rows,
                 int dim, float eps, bool write_back, cudaStream_t s);

/// Rotates q and k of every token in place in `qkv` (HF "half" pairing: dims i and i + hd/2) at
/// positions[t], then writes the rotated k and the v of token t into the paged cache at slot
/// slots[t] (= block * block_size + offset; a negative slot writes nothing: padding rows).
void rope_kv_write(bf16* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                   bf16* k_cache, bf16* v_cache, int T, int nh, int nkv, int hd, int block_size,
                   cudaStream_t s);

/// out[t, j] = silu(gu[t, j]) * gu[t, hidden + j].          gu: bf16 [T, 2*hidden]; out: bf16 [T, hidden]
void swiglu(const bf16* gu, bf16* out, int T, int hidden, cudaStream_t s);

/// Paged attention of T query tokens, each against its own sequence's cached K/V at positions
/// 0 .. positions[t] (causal: the cache already holds this step's K/V). Query token t reads its
/// sequence's block table at block_tables[bt_start[t] ...]. With num_splits > 1 each (token, head)
/// is split over the context in num_splits pieces (flash-decoding) whose partial results
/// `part` [T, nh, num_splits, hd + 2] are combined by a second kernel.
struct AttentionArgs {
  const bf16* q = nullptr;    ///< [T, q_stride], head h at column h*hd
  int q_stride = 0;
  const bf16* k_cache = nullptr;
  const bf16* v_cache = nullptr;
  const int32_t* positions = nullptr;     ///< [T]
  const int32_t* bt_start = nullptr;      ///< [T]
  const int32_t* block_tables = nullptr;
  bf16* out = nullptr;        ///< [T, nh*hd]
  float* part = nullptr;      ///< [T, nh, num_splits, hd + 2]; needed when num_splits > 1
  int T = 0, nh = 0, nkv = 0, hd = 0, block_size = 0, num_splits = 1;
  float scale = 1.0f;         ///< softmax scale, 1/sqrt(hd)
};
/// Throws std::invalid_argument for a head_dim without a kernel (attention_supports_head_dim).
/// Any block_size works.
void paged_attention(const AttentionArgs& a, cudaStream_t s);
/// True when paged_attention has a kernel for this head dimension.
bool attention_supports_head_dim(int hd);

/// y[m, n] = sum_k x[m, k] * w[n, k] for a few rows (decode at batch <= kGemvMaxM), f32 accumulation.
/// x: bf16 [M, K]; w: bf16 [N, K]; y: [M, N], f32 when y_f32 else bf16. Needs gemv_supported(M, K).
constexpr int kGemvMaxM = 4;
bool gemv_supported(int M, int K);
void gemv(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);

/// ids[r] = argmax_j logits[r, j] (lowest index among equal maxima; NaN never wins). logits: f32 [rows, vocab]
void argmax_rows(const float* logits, int32_t* ids, int rows, int vocab, cudaStream_t s);

/// Fills n bf16 values with uniform(-amp, amp) from a counter-based hash of (seed, index).
void fill_uniform_bf16(bf16* p, int64_t n, float amp, uint64_t seed, cudaStream_t s);

}  // namespace engine::cuda
