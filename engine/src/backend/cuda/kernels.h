// Host-side launchers of the CUDA backend's own kernels (everything that is not a cuBLAS GEMM).
// Plain C++ header: includable from .cc files compiled by the host compiler (the backend and the tests).
// Every launcher is asynchronous on `stream`; none allocates memory, so all of them can be captured
// into a CUDA graph.
//
// E is the storage type of the mode: bf16 (dtype auto/bf16: the fast path) or float (dtype f32: the
// reference mode). Launchers templated on E are explicitly instantiated for both in their .cu file.
// Arithmetic is f32 in both modes; an E output is rounded once, when it is stored.
//
// Layouts (row-major throughout; T = tokens in the step, bf16 = __nv_bfloat16):
//   residual x        f32 [T, dim]
//   h (norm output)   E   [T, dim]
//   qkv (GEMM output) f32 [T, (nh + 2*nkv) * hd]   q heads, then k heads, then v heads (not rotated)
//   q (rotated)       E   [T, nh * hd]               attention's query input
//   KV cache (1 layer) E  [num_blocks, nkv, block_size, hd]  one (block, kv head) tile is contiguous
//                      or fp8 e4m3 [same], with float scales [num_blocks, nkv, block_size] for K and for V
//   attention output  E   [T, nh * hd]
//   delta (O / down GEMM output) f32 [T, dim]       added to x by the next add_rmsnorm
//   gu (gate/up GEMM output) E [T, 2 * hidden];  SwiGLU output E [T, hidden]
//   rope table        f32x2 [max_pos, hd/2]          (cos, sin) of pos * theta^(-2i/hd)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace engine::cuda {

using bf16 = __nv_bfloat16;

/// Programmatic dependent launch for the launchers below (pdl.cuh): off until the backend turns it on
/// (CudaOptions::pdl on an sm_90+ device); process-wide, like the environment switch it comes from.
void set_pdl_enabled(bool on);
/// The shared-memory carveout asked for every launch_pdl kernel (CudaOptions::smem_carveout; -1: none).
void set_kernel_carveout(int percent);

/// x[t, :] = float(table[tokens[t], :]).                                   table: E [vocab, dim]
template <typename E>
void embedding(const int32_t* tokens, const E* table, float* x, int T, int dim, cudaStream_t s);

/// Residual add fused with RMSNorm. For each output row r (source row i = rows ? rows[r] : r):
///   v = x[i] + (delta ? delta[i] : 0);   if write_back: x[i] = v;
///   out[r] = E(v * rsqrt(mean(v^2) + eps) * w)
/// x: f32 [*, dim]; delta: f32 [*, dim] or null; w: f32 [dim]; out: E [n_rows, dim].
template <typename E>
void add_rmsnorm(float* x, const float* delta, const float* w, E* out, const int32_t* rows, int n_rows, int dim,
                 float eps, bool write_back, cudaStream_t s);

/// RoPE (HF "half" pairing: dims i and i + hd/2) of token t at positions[t], read from the f32 GEMM output
/// qkv [T, (nh + 2*nkv)*hd] (left unchanged): the rotated q heads go to q_out [T, nh*hd] (every row, padding
/// included), the rotated k and the v of token t to the paged cache at slot slots[t] (= block * block_size +
/// offset; a negative slot writes nothing: padding rows). Each stored value is rounded to E once.
template <typename E>
void rope_kv_write(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope, E* q_out,
                   E* k_cache, E* v_cache, int T, int nh, int nkv, int hd, int block_size, cudaStream_t s);
/// The same with an fp8 (e4m3) cache: each (token, kv head) row of k and of v is stored as fp8(x / scale) with
/// scale = max|x| / 448 (1 for an all-zero row) in k_scale / v_scale [num_blocks, nkv, block_size]. q_out: bf16.
void rope_kv_write_fp8(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                       bf16* q_out, uint8_t* k_cache, uint8_t* v_cache, float* k_scale, float* v_scale, int T, int nh,
                       int nkv, int hd, int block_size, cudaStream_t s);

/// out[t, j] = silu(gu[t, j]) * gu[t, hidden + j].              gu: E [T, 2*hidden]; out: E [T, hidden]
template <typename E>
void swiglu(const E* gu, E* out, int T, int hidden, cudaStream_t s);

/// Paged attention of T query tokens, each against its own sequence's cached K/V at positions
/// 0 .. positions[t] (causal: the cache already holds this step's K/V). Query token t reads its
/// sequence's block table at block_tables[bt_start[t] ...]. With num_splits > 1 each (token, head)
/// is split over the context in num_splits pieces (flash-decoding) whose partial results
/// `part` [T, nh, num_splits, hd + 2] are combined by a second kernel (or by the last split block: split_count).
template <typename E>
struct AttentionArgs {
  const E* q = nullptr;       ///< [T, q_stride], head h at column h*hd; q_stride % 8 == 0
  int q_stride = 0;
  const E* k_cache = nullptr; ///< [num_blocks, nkv, block_size, hd]
  const E* v_cache = nullptr; ///< same layout
  const int32_t* positions = nullptr;     ///< [T]
  const int32_t* bt_start = nullptr;      ///< [T]
  const int32_t* block_tables = nullptr;
  E* out = nullptr;           ///< [T, nh*hd]
  float* part = nullptr;      ///< [T, nh, num_splits, hd + 2]; needed when num_splits > 1
  /// Optional, with num_splits > 1: [T * nh] counters, all 0 before the launch (and left at 0 after it). When
  /// set, the split block of each (token, head) that finishes last merges the partials (attention_splits.cuh)
  /// and no combine kernel runs; the same sums in the same order as the combine kernel's.
  int* split_count = nullptr;
  int T = 0, nh = 0, nkv = 0, hd = 0, block_size = 0, num_splits = 1;
  float scale = 1.0f;         ///< softmax scale, 1/sqrt(hd)
  /// paged_attention only: when set, the kernel runs over the T token indices tokens[0 .. T-1] (rows of q,
  /// positions, bt_start and out) instead of tokens 0 .. T-1; `part` is then indexed by list entry.
  const int32_t* tokens = nullptr;
  /// An fp8 cache (every attention kernel, bf16 activations; k_cache and v_cache unused): e4m3
  /// bytes in the layout above and the scales of each (block, kv head, offset) row.
  const uint8_t* k_fp8 = nullptr;
  const uint8_t* v_fp8 = nullptr;
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;
  /// decode_attention only: warps per block (4, 8 or 16), each warp's lane groups taking the context's tokens
  /// in turn. The sums depend on it, so one mode keeps one value: 4, or CudaOptions::det_attn_warps in the
  /// deterministic mode, whose rows never split the context and need the wider blocks at small batch.
  int warps = 4;
  /// decode_attention only: tokens each lane group has in flight per iteration (4 or 8). The sums depend on
  /// it too (each iteration's online-softmax update covers that many tokens), so a mode keeps one value.
  int tokens_in_flight = 4;
  /// decode_attention with an fp8 cache only: bytes (= elements) of a K/V row each lane loads, 16 or 8 (8: as many
  /// lanes per token as bf16, half the registers; attention_decode.cu). The sums differ (the lanes split a row
  /// differently), so a mode keeps one value.
  int fp8_lane_bytes = 16;
  /// decode_attention only: 0 loads each iteration's K/V into registers; 2, 3 or 4 copies them by cp.async into a
  /// ring of that many stages in shared memory, that many less one iterations ahead (a bf16 cache, or fp8 at 16
  /// bytes a lane; std::invalid_argument for the others). The same tokens and sums either way: speed only.
  int ring_stages = 0;
  /// decode_attention only: set when every row's one token written by this step is its last position
  /// (positions[t]), i.e. decode rows, and the rows' inputs (positions, block tables, token list) come from the
  /// host, not from a kernel. The kernel then issues the K/V loads of its tokens before that one before it waits
  /// on the kernel ahead of it (pdl.cuh), which writes that token's K/V and q; the loads of the iteration that
  /// holds the last position, and q, follow the wait. Speed only: the same bits.
  bool kv_before_wait = false;
  /// decode_attention only, a bf16 or float cache: RoPE and the K/V write fused into the attention (decode rows
  /// only, no rope_kv_write before it). q is then read from the QKV GEMM's f32 output qkv [T, q_stride] (q_stride
  /// = (nh + 2 nkv) hd; `q` unused) and rotated by rope [positions, hd/2] as rope_kv_write rotates it, rounded to
  /// E as it stores it; the split that holds a row's new token first writes that token's rotated k and its v to
  /// the cache at slots[t] (a negative slot: none; every block of a kv head's group writes the same bytes), then
  /// reads them back like the other tokens. The same bits as rope_kv_write followed by the attention.
  const float* qkv = nullptr;
  const float2* rope = nullptr;
  const int32_t* slots = nullptr;
  /// Optional: a read-only range (the next GEMV's weights) the kernel's blocks prefetch into L2 after their
  /// wait on the kernel before (l2_prefetch.cuh), while the step's attention leaves the memory bus mostly idle.
  /// Speed only: nothing reads it here.
  const void* l2_prefetch = nullptr;
  size_t l2_prefetch_bytes = 0;
  /// paged_attention_prefill only, bf16 activations: 1 or 4 sends the tiles through the tensor-core kernel
  /// (attention_prefill_mma.cu) with that many warps a block, where it has the head dim (multiples of 16 up to
  /// 128; prefill_mma_used); the tiles then hold up to 16 x that many tokens (prefill_tile_queries). 0: the f32
  /// kernel. Not the same bits: its products are bf16 x bf16 and its probabilities bf16 (within the bf16 bounds).
  int prefill_mma_warps = 0;
};
/// Throws std::invalid_argument for a head_dim without a kernel (attention_supports_head_dim), or an fp8
/// cache with float activations. Any block_size works.
template <typename E>
void paged_attention(const AttentionArgs<E>& a, cudaStream_t s);
/// True when paged_attention has a kernel for this head dimension.
bool attention_supports_head_dim(int hd);
/// Merges the num_splits partials of each (token, head) in a.part into a.out (the second kernel of
/// paged_attention and decode_attention).
template <typename E>
void combine_attention_splits(const AttentionArgs<E>& a, cudaStream_t s);

/// Decode attention, version 2 (attention_decode.cu): the result of paged_attention for the same arguments
/// (splits, token list) with lane groups that each run their own online softmax over a share of the context,
/// more bytes in flight and no block-wide barrier per tile. Head dims 64 and 128; with AttentionArgs::k_fp8
/// set, an fp8 cache (bf16 activations only). Throws std::invalid_argument otherwise.
bool decode_attention_supports_head_dim(int hd);
/// True when decode_attention can take AttentionArgs::ring_stages > 0 for these arguments' cache (its lanes read
/// 16-byte slices: a bf16 cache, or fp8 at 16 bytes a lane); otherwise a ring is an std::invalid_argument.
template <typename E>
bool decode_attention_has_ring(const AttentionArgs<E>& a);
template <typename E>
void decode_attention(const AttentionArgs<E>& a, cudaStream_t s);

/// Prefill attention (attention_prefill.cu): the same result as paged_attention for the query tokens of
/// `tiles`, but one thread block per (query head, tile of up to kPrefillTileQ tokens of ONE sequence) that
/// stages the sequence's K/V in shared memory once for all the tile's queries. A tile is packed in one
/// int32 by prefill_tile(t0, n): tokens t0 .. t0+n-1, which must share bt_start (one sequence); their
/// positions are read from a.positions (causal: each attends to 0 .. its own position). Uses q, q_stride,
/// k_cache, v_cache (or k_fp8, v_fp8, k_scale, v_scale), positions, bt_start, block_tables, out, nh, nkv, hd,
/// block_size, scale of `a` (not T, num_splits, part or tokens). Head dims: multiples of 8 up to 128; throws std::invalid_argument for
/// others (!prefill_attention_supports_head_dim(hd)).
constexpr int kPrefillTileQ = 16;
constexpr int kPrefillTileShift = 7;  ///< tile = (t0 << shift) | (n - 1); n - 1 < 2^shift (tiles of up to 128)
inline int32_t prefill_tile(int t0, int n) { return (t0 << kPrefillTileShift) | (n - 1); }
bool prefill_attention_supports_head_dim(int hd);
template <typename E>
void paged_attention_prefill(const AttentionArgs<E>& a, const int32_t* tiles, int n_tiles, cudaStream_t s);
/// The same tiles on the tensor cores (attention_prefill_mma.cu; flash attention 2's arithmetic): `warps` warps a
/// block (1 or 4), 16 query rows a warp, so tiles of up to 16 x warps tokens; bf16 activations with a bf16 or
/// fp8 cache, head dims multiples of 16 up to 128 (others, or another warp count: std::invalid_argument).
/// paged_attention_prefill<bf16> runs it when prefill_mma_used(a.prefill_mma_warps, true, a.hd).
inline bool prefill_attention_mma_supports_head_dim(int hd) { return hd % 16 == 0 && hd >= 16 && hd <= 128; }
void paged_attention_prefill_mma(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, int warps,
                                 cudaStream_t s);
/// Whether paged_attention_prefill takes the tensor-core kernel for these arguments (mma_warps 1 or 4, bf16
/// activations, a head dim it has), and the most tokens a tile may then hold: whoever builds the tiles and the
/// dispatch agree through these two.
inline bool prefill_mma_used(int mma_warps, bool bf16_activations, int hd) {
  return (mma_warps == 1 || mma_warps == 4) && bf16_activations && prefill_attention_mma_supports_head_dim(hd);
}
inline int prefill_tile_queries(int mma_warps, bool bf16_activations, int hd) {
  return prefill_mma_used(mma_warps, bf16_activations, hd) ? 16 * mma_warps : kPrefillTileQ;
}

/// y[m, n] = sum_k x[m, k] * w[n, k] for a few rows (decode at batch <= kGemvMaxM), f32 accumulation.
/// x: bf16 [M, K]; w: bf16 [N, K]; y: [M, N], f32 when y_f32 else bf16. Needs gemv_supported(M, K).
/// bf16 only: in the f32 mode the backend uses cuBLAS at every M.
constexpr int kGemvMaxM = 4;
bool gemv_supported(int M, int K);
void gemv(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);

/// GEMVs (M = 1) that make their input themselves instead of reading it, each replacing two launches of the
/// decode step at batch 1 (docs/cuda-notes.md, v11). Same results as the two kernels they replace (the input
/// is rounded to bf16 where those round it), f32 accumulation; y f32 when y_f32 else bf16.
///   gemv_swiglu:  x = silu(gu[0 .. K-1]) * gu[K .. 2K-1] (swiglu, T = 1, hidden = K); then y = w x.
///   gemv_rmsnorm: v = x_in + (delta ? delta : 0); x_out = v (x_out must not alias x_in: the other blocks
///                 still read x_in while one writes x_out); x = RMSNorm(v) * norm_w (add_rmsnorm); y = w x.
/// x_in, delta, norm_w, x_out: f32 [K]; gu bf16 [2K]; w bf16 [N, K]. Needs gemv_fused_supported(N, K, norm):
/// K % 8 == 0, the input and the row sums in 48 KB of shared memory, and for the norm K <= 8192.
bool gemv_fused_supported(int N, int K, bool norm);
void gemv_swiglu(const bf16* gu, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s);
/// The plain product y[m, n] = sum_k x[m, k] * w[n, k] for M = 1..kUnitsMaxM rows with the fused kernels'
/// layout: x (bf16 [M, K]) copied to shared memory, one block per SM, rows of w cut into 1024-value units, each
/// weight element loaded once and multiplied by all M rows; y [M, N], f32 when y_f32 else bf16. Row m's result
/// is the same bits whatever M is. What the backend runs at M = 1 and, up to CudaOptions::gemv_max_m, at small
/// M (docs/cuda-notes.md, v11 and v12; LLM_CUDA_GEMV_UNITS=0: gemv above at M = 1, cuBLAS beyond). Needs
/// gemv_units_supported: K % 8 == 0, and the M rows of x plus the row sums in shared memory (48 KB at M = 1,
/// the device's opt-in limit beyond: 227 KB on Hopper, so M = 8 at K = 11008).
constexpr int kUnitsMaxM = 8;
/// Whether gemv_units and the fused GEMVs turn bf16 into float with integer operations (the default, v12) or
/// with cvt.f32.bf16 (LLM_CUDA_GEMV_INT_CVT=0: the conversion before v12). The same values either way.
void set_gemv_int_convert(bool on);
/// Bytes of its weights each block of the unit-layout GEMVs (gemv_units, gemv_swiglu, gemv_rmsnorm) and of
/// ordered_gemv* prefetches into L2 before it waits on the kernel before it (programmatic dependent launch), so
/// the bus stays busy through that kernel's tail; 0 (the default) prefetches nothing. Speed only: no result
/// changes. CudaOptions::gemv_l2_ahead.
void set_gemv_l2_ahead(int bytes);
int gemv_l2_ahead();
/// Bytes of its weights each block of the one-row unit-layout GEMVs (gemv_units at M = 1, gemv_swiglu,
/// gemv_rmsnorm) copies into shared memory by bulk copies before its PDL wait (gemv_bulk.cuh; docs/cuda-notes.md,
/// v25), so more bytes are in flight through the tail of the kernel before it than the register loads alone hold
/// (measured slower at batch 1 on an H100); clamped to 256 KB and what shared memory holds beside x; 0 (the
/// default) or a device before sm_90: none. Speed only: no result changes. CudaOptions::gemv_bulk_prefix.
void set_gemv_bulk_prefix(int bytes);
int gemv_bulk_prefix();
bool gemv_units_supported(int M, int N, int K);
void gemv_units(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);
void gemv_rmsnorm(const float* x_in, const float* delta, const float* norm_w, float eps, float* x_out, const bf16* w,
                  void* y, bool y_f32, int N, int K, cudaStream_t s);
/// gemv_units at M = 1 (the same bits) in blocks of 512 threads that copy the first `preload` bytes (<= 256 KB, a
/// multiple of 16) of their weight rows into shared memory by bulk copies before their PDL wait, so that behind a
/// kernel that leaves room on the SM (the batch-1 decode attention) the weights stream while it runs
/// (gemv_preload.cu; docs/cuda-notes.md, v24). Needs gemv_preload_supported: an sm_90 device, K % 8 == 0, the
/// preload, x and the row sums within a block's shared memory.
bool gemv_preload_supported(int N, int K, int preload);
void gemv_preload(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, int preload, cudaStream_t s);

/// The same product for up to kSkinnyMaxM rows on the tensor cores (gemm_skinny.cu): decode GEMMs at batch
/// 1..64 as a stream over the weights, f32 accumulation; y f32 when y_f32 else bf16. Each row's result is
/// the same whatever M is. Needs skinny_gemm_supported (N % 16 == 0, K % 32 == 0); throws otherwise.
constexpr int kSkinnyMaxM = 64;
bool skinny_gemm_supported(int M, int N, int K);
void skinny_gemm(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);

/// The plain product y[m, n] = sum_k x[m, k] * w[n, k] for M = 1..kMmaMaxM rows on the tensor cores in the
/// unit layout (gemv_mma.cu, docs/cuda-notes.md v13): one block per SM over a contiguous range of rows in
/// 16-row tiles, the (tile, 32-k) steps cut evenly between the warps, x in shared memory where it fits (else
/// read through L1), mma.sync m16n8k16 with the weights as A and x as B (M padded to 8 or 16); f32
/// accumulation, y [M, N] f32 when y_f32 else bf16. Row m's result is the same bits whatever M is. What the
/// backend runs for CudaOptions::gemv_mma_min_m <= M <= gemv_mma_max_m when CudaOptions::gemv_mma is on (off
/// by default: on the H200 it tied cuBLAS at M = 4 and 8 and lost at 16 and to gemv_units at M = 1, 2).
/// Needs gemv_mma_supported: K % 8 == 0 and the row sums in shared memory; throws otherwise.
constexpr int kMmaMaxM = 16;
bool gemv_mma_supported(int M, int N, int K);
void gemv_mma(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);
/// Whether gemv_mma keeps x in shared memory where it fits (the default) or always reads it through L1
/// (LLM_CUDA_GEMV_MMA_XSMEM=0, for measurements). The same values either way.
void set_gemv_mma_x_shared(bool on);
/// Whether gemv_mma keeps x in shared memory at this shape (M rows of x fit beside the row sums): measured,
/// x through L1 is much slower (v13), so the backend takes gemv_mma only where this holds.
bool gemv_mma_x_in_shared(int M, int N, int K);
/// gemv_mma's weight pipeline: two register sets in ping-pong (the default) or the first version's single
/// set with a copy (LLM_CUDA_GEMV_MMA_PP=0, for measurements). The same values either way.
void set_gemv_mma_pingpong(bool on);

/// The deterministic mode's definition of y[m, n] = sum_k x[m, k] * w[n, k] (gemm_ordered.cu): k from 0 to K in
/// steps of 16, one mma.sync.m16n8k16 per step (bf16 x bf16, k past K as zeros) into one f32 accumulator; y f32
/// when y_f32, else bf16 (rounded to nearest even once). A slow reference, not a fast path: TunedGemm's
/// kOrdered policy (gemm_tuned.h) checks every cuBLASLt algorithm it uses against it bit for bit. Needs K even; throws
/// std::invalid_argument otherwise.
void ordered_gemm(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s);
/// The deterministic mode's GEMMs of one row (gemv_ordered.cu): y[n] = sum_k x[k] * w[n, k] with ordered_gemm's
/// sums bit for bit (the same mma.sync fragments in the same k order), so a row gives the same bits at M = 1 as
/// at any other M; streamed like a GEMV (one warp per 8 weight rows over the whole K, cp.async into shared
/// memory, programmatic dependent launch). The fused forms make x as gemv_swiglu / gemv_rmsnorm do (the same
/// bits as the swiglu / add_rmsnorm kernels they replace). y [N], f32 when y_f32 else bf16. Needs
/// ordered_gemv_supported: N % 8 == 0, K % 64 == 0 and, for the norm, K <= 8192; throws otherwise.
bool ordered_gemv_supported(int N, int K, bool norm);
/// How ordered_gemv streams the weights (the same bits whichever): shape i of gemv_ordered.cu's table of
/// (k per item, items in flight); CudaOptions::det_gemv_shape (LLM_CUDA_DET_GEMV_SHAPE), for A/B runs.
void set_ordered_gemv_shape(int i);
constexpr int kOrderedGemvShapes = 6;
void ordered_gemv(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s);
void ordered_gemv_swiglu(const bf16* gu, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s);
void ordered_gemv_rmsnorm(const float* x_in, const float* delta, const float* norm_w, float eps, float* x_out,
                          const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s);
/// *count (device memory) = how many of the n 16-bit elements of a and b differ (f32 data: n = 2 * floats).
void count_unequal_u16(const void* a, const void* b, size_t n, unsigned long long* count, cudaStream_t s);
/// p[i] = uniform in [-scale, scale), from a hash of (i, seed): the same values on every device.
void fill_random_bf16(bf16* p, size_t n, uint64_t seed, float scale, cudaStream_t s);

/// ids[r] = argmax_j logits[r, j] (lowest index among equal maxima; NaN never wins). logits: f32 [rows, vocab]
void argmax_rows(const float* logits, int32_t* ids, int rows, int vocab, cudaStream_t s);

/// Fills n values of E with uniform(-amp, amp) from a counter-based hash of (seed, index).
template <typename E>
void fill_uniform(E* p, int64_t n, float amp, uint64_t seed, cudaStream_t s);
/// n fp8 (e4m3) values of uniform(-1, 1) from the same hash (scales set the amplitude).
void fill_uniform_fp8(uint8_t* p, int64_t n, uint64_t seed, cudaStream_t s);

}  // namespace engine::cuda
