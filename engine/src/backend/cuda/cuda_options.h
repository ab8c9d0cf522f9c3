// The CUDA backend's switches, decided once when the backend is made: from EngineConfig (dtype,
// deterministic) and the LLM_CUDA_* environment variables that turn one part off for A/B measurements
// (bench/gpu/run.sh, docs/cuda-notes.md). Nothing else in the backend reads the environment.
#pragma once

#include <cstddef>

#include "backend/cuda/gemm_tma.h"
#include "engine/engine.h"

namespace engine::cuda {

struct CudaOptions {
  /// dtype f32: weights, KV cache and activations in float, pedantic f32 GEMMs, no GEMV (a reference mode
  /// that matches the CPU backend). Otherwise (auto, bf16) all three in bf16.
  bool f32 = false;
  /// Decode-only steps replay a CUDA graph captured per padded batch size. LLM_CUDA_GRAPHS=0: eager decode.
  bool graphs = true;
  /// With graphs: every decode graph (each padded batch size up to max_num_seqs) captured when the KV cache is
  /// allocated, as vLLM captures its graphs at start-up, instead of by the first step of each size during a run
  /// (a capture costs that step a few milliseconds, inside its requests' inter-token time). Measured on an H100,
  /// the contest run's TTFT max 130.7 -> 17.8 ms and TPOT max 13.9 -> 7.0 ms (docs/cuda-notes.md, v18).
  /// LLM_CUDA_GRAPHS_AT_LOAD=0: each graph captured by the first step of its size, as before v18.
  bool graphs_at_load = true;
  /// GEMMs of one row (decode at batch 1) through the bf16 GEMV (gemv.cu; the bf16 mode only).
  /// LLM_CUDA_GEMV=0 or the deterministic mode: cuBLAS at every M.
  bool gemv = true;
  /// Prefill slices (query_len > 1) through the tiled kernel (attention_prefill.cu).
  /// LLM_CUDA_PREFILL_KERNEL=0 or the deterministic mode: the per-token paged kernel for every token.
  bool prefill_kernel = true;
  /// With prefill_kernel, bf16: the tiles through the tensor-core kernel (attention_prefill_mma.cu, flash
  /// attention 2's arithmetic) where it has the head dim, with this many warps a block (AttentionArgs::
  /// prefill_mma_warps): 1 (v26: a warp a 16-token tile) or 4 (v27: 64-token tiles whose warps share each K/V
  /// tile, double-buffered). 0, off until measured (docs/cuda-notes.md, v26 / v27); LLM_CUDA_PREFILL_MMA=1 or 4.
  int prefill_mma = 0;
  /// EngineConfig::deterministic (batch invariance): > 0 runs every GEMM as cuBLAS calls of exactly this many
  /// rows (the last one padded), so the kernel cuBLAS picks, and with it each row's order of sums, never depends
  /// on how many tokens share the step; attention then runs unsplit. 128 (LLM_CUDA_DET_ROWS=N: N, at least 1,
  /// for measurements). 0: the fastest kernels for each shape.
  int det_rows = 0;
  /// In the deterministic mode (bf16), every GEMM as one cuBLASLt call whose sums are ordered_gemm's
  /// (kernels.h) at every M: per row-count bucket the fastest algorithm that matched it bit for bit
  /// (gemm_tuned.h; docs/cuda-notes.md, v15). LLM_CUDA_DET_FIXED=0: the det_rows-row calls instead.
  bool det_fixed = true;
  /// The deterministic mode's decode_attention blocks: warps per (token, head) (AttentionArgs::warps; its rows
  /// never split the context): 8 (docs/cuda-notes.md, v15, has what 4, 8 and 16 cost on the H200).
  /// LLM_CUDA_DET_ATTN_WARPS = 4, 8 or 16.
  int det_attn_warps = 8;
  /// In the deterministic mode with det_fixed (bf16), decode steps of one token run their GEMMs as
  /// ordered_gemv (kernels.h: ordered_gemm's sums at the weights' rate) with the add + RMSNorm and the SwiGLU
  /// made inside the GEMVs, as the default mode's batch-1 path does (docs/cuda-notes.md, v16).
  /// LLM_CUDA_DET_GEMV=0: TunedGemm's cuBLASLt calls and the separate kernels at M = 1 too.
  bool det_gemv = false;
  /// ordered_gemv's stream shape (set_ordered_gemv_shape); LLM_CUDA_DET_GEMV_SHAPE=0..5.
  int det_gemv_shape = 4;
  /// bf16, not deterministic: how GEMMs that reach cuBLAS choose their algorithm. kOff (the default):
  /// cublasGemmEx, cuBLAS's own choice. LLM_CUDA_TUNED_GEMM=fastest: TunedGemm's fastest policy (any
  /// algorithm, split-K included, timed per shape and row bucket at load); =ordered: its ordered policy (the
  /// deterministic mode's GEMMs). Measured on the H200, one lease: neither beats cuBLAS's choice by more than
  /// the run-to-run spread at batch 1-256 or in the mixed step (docs/cuda-notes.md, v15), so they stay off.
  enum class TunedGemmMode { kOff, kFastest, kOrdered };
  TunedGemmMode tuned_gemm = TunedGemmMode::kOff;
  /// LLM_CUDA_GEMM_LOG=1: what TunedGemm timed and chose for each shape and row bucket (stderr, at load).
  bool gemm_log = false;
  /// EngineConfig::kv_cache_dtype fp8: K and V stored as e4m3 with a float scale per (token, kv head); decode rows
  /// read by decode_attention (head dims 64, 128) or paged_attention (the others), prompt tiles by the tiled
  /// prefill kernel (or its tensor-core form), which dequantize while staging (docs/cuda-notes.md, v17, v26).
  bool fp8_kv = false;
  /// Decode rows through decode_attention (attention_decode.cu) where it has a kernel for the head dim.
  /// LLM_CUDA_ATTN_V2=0: attention.cu's kernel (which reads an fp8 cache too).
  bool attn_v2 = true;
  /// Default mode: a decode step's attention splits each context into ceil(attn_split_blocks * SMs / (T * heads))
  /// pieces (1..16), i.e. splits until there are about attn_split_blocks blocks per SM, and decode_attention
  /// blocks have attn_warps warps (4, 8 or 16; 0: 8 while the step has at most 4 blocks per SM, else 4). 2 and
  /// auto measured best on the H200 (docs/cuda-notes.md, v16; before v16: 8 and 4).
  /// LLM_CUDA_ATTN_SPLIT_BLOCKS (1..8), LLM_CUDA_ATTN_WARPS, for A/B runs.
  int attn_split_blocks = 2;
  int attn_warps = 0;
  /// decode_attention's tokens in flight per lane group (AttentionArgs::tokens_in_flight, 4 or 8): attn_tokens in
  /// the default mode, det_attn_tokens in the deterministic one (whose unsplit rows walk the whole context in
  /// one block: more tokens per trip to memory would shorten that chain at small batch). 4 in both: 8 measured
  /// slower on an H100 at batch 16-256 in both modes and in fp8 (docs/cuda-notes.md, v18). LLM_CUDA_ATTN_R,
  /// LLM_CUDA_DET_ATTN_R.
  int attn_tokens = 4;
  int det_attn_tokens = 4;
  /// decode_attention's fp8 loads: 16 bytes per lane (the default) or 8 (AttentionArgs::fp8_lane_bytes: the
  /// registers and occupancy of the bf16 kernel; docs/cuda-notes.md, v18: 8 measured slower on an H100 from
  /// batch 16, +4 % at 256). LLM_CUDA_FP8_LANE_BYTES=8.
  int fp8_lane_bytes = 16;
  /// decode_attention's loads through a ring of n shared-memory stages by cp.async (AttentionArgs::ring_stages:
  /// 2, 3 or 4; 0 = into registers, the default until measured). Used where the kernel has it (bf16 activations
  /// with a bf16 cache, or fp8 at 16 bytes a lane); the same bits either way. LLM_CUDA_ATTN_RING=n.
  int attn_ring = 0;
  /// Decode steps of at most this many rows have decode_attention start on its K/V before it waits on the kernel
  /// before it (AttentionArgs::kv_before_wait; pdl.cuh). 1: on an H100 batch 1 -0.8 %, 4 and 16 a tie, 64 +0.2 %
  /// and 256 +0.8 % with it (docs/cuda-notes.md, v21). LLM_CUDA_ATTN_EARLY_KV=N (0: never).
  int attn_early_kv_rows = 1;
  /// Decode steps (bf16 or float cache) of at most this many rows rotate q and write each row's new K/V inside
  /// decode_attention instead of in rope_kv_write (AttentionArgs::qkv): one launch fewer a layer, the same bits.
  /// 16: on an H100 batch 1 -0.9 %, 16 -0.1 to -0.6 %, 64 +0.3 % and 256 +0.9 % with it (docs/cuda-notes.md, v22).
  /// LLM_CUDA_FUSE_ROPE_ATTN=N (0: never).
  int fuse_rope_attn_rows = 16;
  /// Decode steps of at most this many rows (no prefill tiles) have their attention kernel prefetch the O
  /// projection's weights into L2 (AttentionArgs::l2_prefetch) when they fit in 3/4 of it: at small batch the
  /// attention leaves the memory bus idle, and the O GEMV would then read from L2 (docs/cuda-notes.md, v18).
  /// 0 (never): 4 measured +0.8 % at batch 1 on an H100; LLM_CUDA_L2_PREFETCH_ROWS=N.
  int l2_prefetch_rows = 0;
  /// A split attention's partials merged by the split block that finishes last (AttentionArgs::split_count)
  /// instead of by a combine kernel: one launch fewer per layer, the same bits (docs/cuda-notes.md, v18: batch 1
  /// 5.033 -> 5.016 ms on an H100, no change where nothing splits). LLM_CUDA_MERGE_IN_KERNEL=0: the combine kernel.
  bool merge_in_kernel = true;
  /// Bytes each block of the batch-1 GEMVs prefetches into L2 from the start of its weights before it waits on
  /// the kernel before it (set_gemv_l2_ahead): the bus kept busy through that kernel's tail (docs/cuda-notes.md,
  /// v18). 0: 128 KB measured +0.8 % at batch 1 on an H100; LLM_CUDA_GEMV_L2_AHEAD_KB=N.
  int gemv_l2_ahead = 0;
  /// Bytes of its weights each block of the O projection's GEMV copies into shared memory before its PDL wait in
  /// one-row decode steps (gemv_preload: resident beside the attention, so the weights stream while it runs; the
  /// same bits as gemv_units). 0: gemv_units; 160 KB measured +1.9 % at batch 1 on an H100 (docs/cuda-notes.md,
  /// v24). LLM_CUDA_GEMV_PRELOAD_KB=N.
  int gemv_preload = 0;
  /// Bytes of its weights each block of the other one-row GEMVs (QKV with its RMSNorm, gate/up with its RMSNorm,
  /// down with its SwiGLU, the O projection without gemv_preload, the LM head) copies into shared memory before
  /// its PDL wait (set_gemv_bulk_prefix; the same bits). 0: none; 160 KB measured +1.5 % at batch 1 on an H100
  /// (docs/cuda-notes.md, v25). LLM_CUDA_GEMV_BULK_KB=N.
  int gemv_bulk_prefix = 0;
  /// GEMMs of 2..64 rows (and of 1 without the GEMV) through skinny_gemm (gemm_skinny.cu; the bf16 mode only)
  /// when LLM_CUDA_SKINNY=1: an experiment that measured slower than cuBLAS (docs/cuda-notes.md, v8); never in
  /// the deterministic mode.
  bool skinny = false;
  /// The decode path's own kernels launched with programmatic dependent launch (pdl.cuh): each may start while
  /// the one before it finishes (the GEMV fetches its first weights then). LLM_CUDA_PDL=0: ordinary launches.
  bool pdl = true;
  /// The shared-memory carveout (percent of the SM's unified L1 / shared memory) asked for every kernel
  /// launched through launch_pdl (pdl.cuh), set once a kernel; -1 (the default): none, the driver picks per
  /// kernel. LLM_CUDA_CARVEOUT=100 measures whether kernels that need different splits (gemm_tma's 144-160 KB
  /// rings against small kernels') cost a drain of the SM between them.
  int smem_carveout = -1;
  /// At batch 1 (where the GEMV runs) the SwiGLU is made by the down-projection GEMV from the gate/up output
  /// (gemv_swiglu), one launch instead of two. LLM_CUDA_FUSE_SWIGLU=0: the SwiGLU kernel, then the GEMV.
  bool fuse_swiglu = true;
  /// At batch 1 the residual add + RMSNorm is made by the QKV and gate/up GEMVs that read its output
  /// (gemv_rmsnorm; the residual then alternates between two buffers). LLM_CUDA_FUSE_NORM=0: add_rmsnorm, then
  /// the GEMV.
  bool fuse_norm = true;
  /// The GEMVs that are not fused (O, lm_head, and the others with a fusion off) through gemv_units, the fused
  /// kernels' layout without a fusion (one block per SM, rows cut into units): 4.43 -> 3.85 ms at batch 1 on its
  /// own (docs/cuda-notes.md, v11). LLM_CUDA_GEMV_UNITS=0: gemv.cu's one-row-per-warp kernel.
  bool gemv_units = true;
  /// The most rows a GEMM may have to take gemv_units (M rows of x in shared memory, each weight element read
  /// once for all of them; docs/cuda-notes.md, v12); more rows go to cuBLAS. 2: measured on the H200, batch 2
  /// 4.35 -> 4.04 ms, while M = 4 lost to cuBLAS (4.87 vs 4.43 ms) and M = 8 by far (8.42 vs 4.59).
  /// LLM_CUDA_GEMV_MAX_M=N sets it (clamped to 1..kUnitsMaxM = 8); 1 is the path before v12 (cuBLAS from M = 2).
  int gemv_max_m = 2;
  /// gemv_units and the fused GEMVs convert bf16 to float with integer operations (v12).
  /// LLM_CUDA_GEMV_INT_CVT=0: with cvt.f32.bf16, as before v12 (the same values).
  bool gemv_int_cvt = true;
  /// GEMMs of gemv_mma_min_m..gemv_mma_max_m rows through gemv_mma (gemv_mma.cu: the unit layout on the
  /// tensor cores; docs/cuda-notes.md, v13), ahead of gemv_units and cuBLAS; the bf16 mode only, never in the
  /// deterministic mode. LLM_CUDA_GEMV_MMA=1 / 0 turns it on / off; LLM_CUDA_GEMV_MMA_MIN_M and
  /// LLM_CUDA_GEMV_MMA_MAX_M (clamped to 1..kMmaMaxM = 16) set the range; LLM_CUDA_GEMV_MMA_XSMEM=0 makes it
  /// read x through L1 instead of shared memory. Off: measured on the H200 it ties cuBLAS at batch 4 and 8
  /// (4.43 vs 4.44, 4.61 vs 4.60 ms) and loses at 16 (5.40 vs 5.03) and to gemv_units at batch 1, 2.
  bool gemv_mma = false;
  int gemv_mma_min_m = 3;
  int gemv_mma_max_m = 16;
  bool gemv_mma_xsmem = true;
  /// gemv_mma's two-set weight pipeline (v13); LLM_CUDA_GEMV_MMA_PP=0: the first version's single set.
  bool gemv_mma_pp = true;
  /// GEMMs of gemm_tma_min_m..gemm_tma_max_m rows through gemm_tma (gemm_tma.h: the weights streamed by TMA
  /// into shared memory, wgmma; docs/cuda-notes.md, v19), ahead of every other path; the bf16 mode on an
  /// sm_90 device only, never in the deterministic mode. LLM_CUDA_GEMM_TMA=1 / 0 turns it on / off;
  /// LLM_CUDA_GEMM_TMA_MIN_M and LLM_CUDA_GEMM_TMA_MAX_M (clamped to 1..kTmaMaxM = 64) set the range.
  bool gemm_tma = false;
  int gemm_tma_min_m = 2;
  int gemm_tma_max_m = 64;
  /// gemm_tma's variants for measurements (gemm_tma.h): LLM_CUDA_GEMM_TMA_PIPE=0 (a wait per stage, the first
  /// version), LLM_CUDA_GEMM_TMA_ACC=1 (one accumulator set), LLM_CUDA_GEMM_TMA_ORDER=0 (a block's units in
  /// order), LLM_CUDA_GEMM_TMA_HINT=0 (no L2 evict-first hint), LLM_CUDA_GEMM_TMA_PDL=0 (no PDL),
  /// LLM_CUDA_GEMM_TMA_STAGES=n (a ring of n stages, 2..16), LLM_CUDA_GEMM_TMA_PREFETCH=1 (the tensor maps'
  /// descriptors prefetched at the kernel's start).
  GemmTmaTuning gemm_tma_tuning;

  /// Bytes of one stored element (weights, KV cache, E activations): 4 in the f32 mode, else 2 (bf16).
  size_t elem_bytes() const { return f32 ? 4 : 2; }
};

/// Reads the switches: `cfg` for the mode, the environment for LLM_CUDA_GRAPHS, LLM_CUDA_GEMV,
/// LLM_CUDA_PREFILL_KERNEL, LLM_CUDA_ATTN_V2, LLM_CUDA_PDL, LLM_CUDA_FUSE_SWIGLU, LLM_CUDA_FUSE_NORM, LLM_CUDA_GEMV_UNITS, LLM_CUDA_GEMV_INT_CVT,
/// LLM_CUDA_GEMV_MMA_XSMEM, LLM_CUDA_GEMV_MMA_PP, LLM_CUDA_GEMM_TMA_PIPE, LLM_CUDA_GEMM_TMA_HINT, LLM_CUDA_GEMM_TMA_PDL,
/// LLM_CUDA_GEMM_TMA_ORDER, LLM_CUDA_MERGE_IN_KERNEL, LLM_CUDA_GRAPHS_AT_LOAD (each off only when set to "0"), LLM_CUDA_GEMV_MMA, LLM_CUDA_GEMM_TMA and LLM_CUDA_GEMM_TMA_PREFETCH ("1" on, "0" off), LLM_CUDA_GEMV_MAX_M,
/// LLM_CUDA_GEMM_TMA_MIN_M, LLM_CUDA_GEMM_TMA_MAX_M,
/// LLM_CUDA_GEMV_MMA_MIN_M, LLM_CUDA_GEMV_MMA_MAX_M, LLM_CUDA_ATTN_SPLIT_BLOCKS, LLM_CUDA_ATTN_WARPS, LLM_CUDA_ATTN_R, LLM_CUDA_ATTN_RING, LLM_CUDA_FP8_LANE_BYTES, LLM_CUDA_L2_PREFETCH_ROWS, LLM_CUDA_GEMV_L2_AHEAD_KB, LLM_CUDA_DET_GEMV_SHAPE, LLM_CUDA_GEMM_TMA_ACC, LLM_CUDA_GEMM_TMA_STAGES, LLM_CUDA_CARVEOUT, LLM_CUDA_PREFILL_MMA (numbers), LLM_CUDA_SKINNY and LLM_CUDA_GEMM_LOG (on only when
/// "1"), LLM_CUDA_TUNED_GEMM ("0", "fastest" or "ordered") and, in the deterministic mode, LLM_CUDA_DET_ROWS,
/// LLM_CUDA_DET_ATTN_WARPS, LLM_CUDA_DET_ATTN_R (numbers), LLM_CUDA_DET_FIXED and LLM_CUDA_DET_GEMV (off only when "0"). Throws ModelLoadError for an fp8
/// KV cache in the f32 mode.
CudaOptions read_cuda_options(const EngineConfig& cfg);

}  // namespace engine::cuda
