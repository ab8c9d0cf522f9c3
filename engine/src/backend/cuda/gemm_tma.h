// gemm_tma (gemm_tma.cu; docs/cuda-notes.md, v19): y[m, n] = sum_k x[m, k] * w[n, k] for decode GEMMs of
// 1..kTmaMaxM rows on Hopper, the weights streamed by the TMA unit into a ring of shared-memory stages and
// multiplied by one warpgroup's wgmma (the weights as A, 64 rows a tile; x as B, M padded to 8, 16, 32 or 64).
// One block per SM over a contiguous range of (64-row tile, 64-k chunk) units, so every SM streams the same
// bytes whatever N is; a tile cut between blocks is summed by the last of them to finish, from fp32 partials
// in a scratch buffer, in block order (the same bits every run).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace engine::cuda {

constexpr int kTmaMaxM = 64;

/// Whether gemm_tma runs this product: an sm_90 device (wgmma, TMA), 1 <= M <= kTmaMaxM, K % 8 == 0 (TMA's
/// 16-byte row pitch), N within the scratch's tile counters, x and w 16-byte aligned.
bool gemm_tma_supported(int M, int N, int K, const void* x, const void* w);

/// The scratch a stream's gemm_tma calls share: per-block fp32 partial tiles and one arrival counter per
/// 64-row tile (zero between calls: the block that sums a tile resets its counter). Kernels on one stream run
/// in order, so one scratch serves every call on it.
class TmaScratch {
 public:
  TmaScratch();
  ~TmaScratch();
  TmaScratch(const TmaScratch&) = delete;
  TmaScratch& operator=(const TmaScratch&) = delete;
  float* partials() const { return partials_; }
  unsigned* counters() const { return counters_; }
  static constexpr int kMaxTiles = 8192;  ///< N <= 8192 * 64

 private:
  float* partials_ = nullptr;
  unsigned* counters_ = nullptr;
};

/// y [M, N]: f32 when y_f32, else bf16 (rounded once). Throws std::invalid_argument where gemm_tma_supported
/// is false.
void gemm_tma(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, bool y_f32, int M, int N, int K,
              const TmaScratch& scratch, cudaStream_t s);

/// Whether the consumer keeps one stage's wgmmas in flight while it issues the next (the default) or waits for
/// each stage's (the first version; LLM_CUDA_GEMM_TMA_PIPE=0, for measurements). The same values either way.
void set_gemm_tma_pipelined(bool on);
/// Whether the weights' TMA loads carry the L2 evict-first hint (default) or none (LLM_CUDA_GEMM_TMA_HINT=0).
void set_gemm_tma_evict_first(bool on);
/// Whether gemm_tma is launched with programmatic dependent launch (default, where CudaOptions::pdl is on) or
/// in plain stream order (LLM_CUDA_GEMM_TMA_PDL=0). The same values either way.
void set_gemm_tma_pdl(bool on);
/// Whether a block takes the pieces of the tiles it shares with its neighbours first (the default: their sums
/// meet while the blocks still have whole tiles to do) or its units in order (LLM_CUDA_GEMM_TMA_ORDER=0).
/// The same values either way.
void set_gemm_tma_partials_first(bool on);
/// Independent accumulator sets a tile: 4 (the default: four chains of wgmmas, one a unit each, added when the
/// tile is done) or 1 (one chain; LLM_CUDA_GEMM_TMA_ACC=1, for measurements). Other bits (another fixed order).
void set_gemm_tma_accumulators(int sets);

}  // namespace engine::cuda
