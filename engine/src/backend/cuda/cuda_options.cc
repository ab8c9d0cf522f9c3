// The CUDA backend's switches (cuda_options.h): the one place that reads LLM_CUDA_* from the environment.
#include "backend/cuda/cuda_options.h"

#include "backend/cuda/kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_set>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {
namespace {
bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "0";
}
// For the switches that are off by default: set to "1".
bool switched_on(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "1";
}
std::atomic<bool> g_pdl{false};
std::atomic<int> g_carveout{-1};
}  // namespace

void set_pdl_enabled(bool on) { g_pdl.store(on, std::memory_order_relaxed); }
bool pdl_enabled() { return g_pdl.load(std::memory_order_relaxed); }

void set_kernel_carveout(int percent) { g_carveout.store(percent, std::memory_order_relaxed); }
int kernel_carveout() { return g_carveout.load(std::memory_order_relaxed); }

void apply_kernel_carveout(const void* kernel) {
  const int c = kernel_carveout();
  if (c < 0) return;
  static std::mutex mu;
  static std::unordered_set<const void*> done;
  std::lock_guard<std::mutex> lock(mu);
  if (!done.insert(kernel).second) return;
  LLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, c));
}

CudaOptions read_cuda_options(const EngineConfig& cfg) {
  CudaOptions o;
  o.f32 = cfg.dtype == ComputeDType::kF32;
  // Switches for measuring what each part buys.
  o.graphs = !switched_off("LLM_CUDA_GRAPHS");
  o.graphs_at_load = !switched_off("LLM_CUDA_GRAPHS_AT_LOAD");
  o.gemv = !switched_off("LLM_CUDA_GEMV");
  o.prefill_kernel = !switched_off("LLM_CUDA_PREFILL_KERNEL");
  if (const char* m = std::getenv("LLM_CUDA_PREFILL_MMA"); m && !o.f32) {
    const int w = std::atoi(m);
    o.prefill_mma = w >= 4 ? 4 : w >= 1 ? 1 : 0;
  }
  o.attn_v2 = !switched_off("LLM_CUDA_ATTN_V2");
  if (const char* b = std::getenv("LLM_CUDA_ATTN_SPLIT_BLOCKS")) o.attn_split_blocks = std::clamp(std::atoi(b), 1, 8);
  if (const char* w = std::getenv("LLM_CUDA_ATTN_WARPS")) {
    const int v = std::atoi(w);
    o.attn_warps = v >= 16 ? 16 : v >= 8 ? 8 : v >= 4 ? 4 : 0;
  }
  if (const char* r = std::getenv("LLM_CUDA_ATTN_R")) o.attn_tokens = std::atoi(r) >= 8 ? 8 : 4;
  if (const char* b = std::getenv("LLM_CUDA_FP8_LANE_BYTES")) o.fp8_lane_bytes = std::atoi(b) == 8 ? 8 : 16;
  if (const char* r = std::getenv("LLM_CUDA_ATTN_RING")) {
    const int v = std::atoi(r);
    o.attn_ring = v >= 4 ? 4 : v >= 2 ? v : 0;
  }
  if (const char* f = std::getenv("LLM_CUDA_FUSE_ROPE_ATTN")) o.fuse_rope_attn_rows = std::max(0, std::atoi(f));
  if (const char* e = std::getenv("LLM_CUDA_ATTN_EARLY_KV")) o.attn_early_kv_rows = std::max(0, std::atoi(e));
  if (const char* r = std::getenv("LLM_CUDA_L2_PREFETCH_ROWS")) o.l2_prefetch_rows = std::max(0, std::atoi(r));
  if (const char* k = std::getenv("LLM_CUDA_GEMV_PRELOAD_KB")) o.gemv_preload = std::clamp(std::atoi(k), 0, 256) * 1024;
  if (const char* k = std::getenv("LLM_CUDA_GEMV_BULK_KB")) o.gemv_bulk_prefix = std::clamp(std::atoi(k), 0, 256) * 1024;
  if (const char* k = std::getenv("LLM_CUDA_GEMV_L2_AHEAD_KB")) o.gemv_l2_ahead = std::clamp(std::atoi(k), 0, 4096) * 1024;
  o.merge_in_kernel = !switched_off("LLM_CUDA_MERGE_IN_KERNEL");
  o.pdl = !switched_off("LLM_CUDA_PDL");
  o.fuse_swiglu = !switched_off("LLM_CUDA_FUSE_SWIGLU");
  o.fuse_norm = !switched_off("LLM_CUDA_FUSE_NORM");
  o.gemv_units = !switched_off("LLM_CUDA_GEMV_UNITS");
  o.gemv_int_cvt = !switched_off("LLM_CUDA_GEMV_INT_CVT");
  if (const char* t = std::getenv("LLM_CUDA_TUNED_GEMM")) {
    const std::string v = t;
    if (v == "0") o.tuned_gemm = CudaOptions::TunedGemmMode::kOff;
    if (v == "fastest") o.tuned_gemm = CudaOptions::TunedGemmMode::kFastest;
    if (v == "ordered") o.tuned_gemm = CudaOptions::TunedGemmMode::kOrdered;
  }
  o.gemm_log = switched_on("LLM_CUDA_GEMM_LOG");
  if (const char* m = std::getenv("LLM_CUDA_GEMV_MAX_M")) o.gemv_max_m = std::clamp(std::atoi(m), 1, kUnitsMaxM);
  if (const char* q = std::getenv("LLM_CUDA_GEMV_MMA")) {
    if (std::string(q) == "1") o.gemv_mma = true;
    if (std::string(q) == "0") o.gemv_mma = false;
  }
  if (const char* m = std::getenv("LLM_CUDA_GEMV_MMA_MIN_M")) o.gemv_mma_min_m = std::clamp(std::atoi(m), 1, kMmaMaxM);
  if (const char* m = std::getenv("LLM_CUDA_GEMV_MMA_MAX_M")) o.gemv_mma_max_m = std::clamp(std::atoi(m), 1, kMmaMaxM);
  o.gemv_mma_xsmem = !switched_off("LLM_CUDA_GEMV_MMA_XSMEM");
  o.gemv_mma_pp = !switched_off("LLM_CUDA_GEMV_MMA_PP");
  if (const char* q = std::getenv("LLM_CUDA_GEMM_TMA")) {
    if (std::string(q) == "1") o.gemm_tma = true;
    if (std::string(q) == "0") o.gemm_tma = false;
  }
  o.gemm_tma_tuning.pipelined = !switched_off("LLM_CUDA_GEMM_TMA_PIPE");
  o.gemm_tma_tuning.evict_first = !switched_off("LLM_CUDA_GEMM_TMA_HINT");
  o.gemm_tma_tuning.pdl = !switched_off("LLM_CUDA_GEMM_TMA_PDL");
  o.gemm_tma_tuning.partials_first = !switched_off("LLM_CUDA_GEMM_TMA_ORDER");
  if (const char* a = std::getenv("LLM_CUDA_GEMM_TMA_ACC")) o.gemm_tma_tuning.accumulator_sets = std::atoi(a) == 1 ? 1 : 4;
  if (const char* c = std::getenv("LLM_CUDA_CARVEOUT")) o.smem_carveout = std::clamp(std::atoi(c), -1, 100);
  o.gemm_tma_tuning.prefetch_descriptors = switched_on("LLM_CUDA_GEMM_TMA_PREFETCH");
  if (const char* st = std::getenv("LLM_CUDA_GEMM_TMA_STAGES")) o.gemm_tma_tuning.stages = std::clamp(std::atoi(st), 0, 16);
  if (const char* m = std::getenv("LLM_CUDA_GEMM_TMA_MIN_M")) o.gemm_tma_min_m = std::clamp(std::atoi(m), 1, kTmaMaxM);
  if (const char* m = std::getenv("LLM_CUDA_GEMM_TMA_MAX_M")) o.gemm_tma_max_m = std::clamp(std::atoi(m), 1, kTmaMaxM);
  // Off unless LLM_CUDA_SKINNY=1: measured slower than cuBLAS at batch 4..64 on the H200 (docs/cuda-notes.md, v8).
  o.skinny = switched_on("LLM_CUDA_SKINNY");
  if (cfg.kv_cache_dtype == KvCacheDType::kFp8) {
    if (o.f32) throw ModelLoadError("kv_cache_dtype fp8 needs the bf16 mode (dtype auto or bf16), not f32");
    o.fp8_kv = true;  // every attention kernel reads it (the tiled prefill kernel dequantizes while staging)
  }
  if (cfg.deterministic) {
    // bf16: TunedGemm's kOrdered policy (det_fixed). The f32 mode, or LLM_CUDA_DET_FIXED=0: cuBLAS calls of 128 rows, so
    // decode steps of up to 128 sequences and every prefill chunk of 128 tokens cost one pass over the weights
    // (docs/cuda-notes.md has what each costs).
    o.det_rows = 128;
    if (const char* r = std::getenv("LLM_CUDA_DET_ROWS")) o.det_rows = std::max(1, std::atoi(r));
    o.det_fixed = !switched_off("LLM_CUDA_DET_FIXED");
    o.det_gemv = o.det_fixed && !o.f32 && !switched_off("LLM_CUDA_DET_GEMV");
    if (const char* g = std::getenv("LLM_CUDA_DET_GEMV_SHAPE")) o.det_gemv_shape = std::atoi(g);
    if (const char* r = std::getenv("LLM_CUDA_DET_ATTN_R")) o.det_attn_tokens = std::atoi(r) >= 8 ? 8 : 4;
    if (const char* w = std::getenv("LLM_CUDA_DET_ATTN_WARPS")) {
      const int v = std::atoi(w);
      o.det_attn_warps = v >= 16 ? 16 : v >= 8 ? 8 : 4;  // 4, 8 or 16
    }

    o.gemv = false;  // a GEMV at one row and cuBLAS at more would sum in different orders
    o.skinny = false;  // likewise: the skinny kernel at <= 64 rows and cuBLAS beyond
    o.gemv_mma = false;  // likewise: gemv_mma at its rows and cuBLAS at the others
    o.gemm_tma = false;  // likewise
    // A token's attention must take the same path whatever else is in the step; the prefill kernel sums in
    // another order than the paged kernel, and a tile's boundaries depend on the chunking of the prompt, so
    // this mode keeps the paged kernel for every token.
    o.prefill_kernel = false;
  }
  return o;
}

}  // namespace engine::cuda
