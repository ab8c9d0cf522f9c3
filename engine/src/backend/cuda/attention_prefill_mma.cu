// Prefill attention on the tensor cores (AttentionArgs::prefill_mma_warps; bf16 activations, head dims that are
// multiples of 16 up to 128, a bf16 or fp8 cache): the result of attention_prefill.cu's kernel for the same
// kind of tiles, computed as flash attention 2 computes it. A block of W warps (1 or 4) takes one (query head,
// tile of up to 16 W query tokens of one sequence), each warp 16 of the tile's rows, and walks the context
// 0 .. the tile's last position in key tiles of KT = 32:
//   stage:   Q's rows once, then each key tile's K and V rows (through the block table) into shared memory as
//            bf16, by cp.async for a bf16 cache, dequantized (e4m3 * the row's scale, rounded to bf16) for an fp8
//            one; keys past the tile's end are zeros. Rows padded to HD + 8 elements: the fragment loads below hit
//            32 different banks. W = 1: one stage (v26). W = 4: the warps share each key tile (a quarter of the
//            one-warp form's reads a query), and two stages keep the next tile's copies in flight while this one
//            is computed (v27).
//   scores:  S = Q K^T by mma.sync.m16n8k16 (bf16 in, f32 out): Q's A fragments and K^T's B fragments (two
//            consecutive head-dim elements of one row) are 4-byte shared loads; causal mask (key > the query's
//            position) -> -inf; a warp skips key tiles past its own rows' last position (all masked)
//   softmax: exact online softmax in base 2 per query row (row g and g + 8 of each lane's fragments; the row's
//            4 lanes agree by two shuffles), the probabilities rounded to bf16 and the running sum summing the
//            rounded values, so the weights the values get are the ones the sum normalizes
//   values:  O += P V by mma.sync: P's f32 accumulators become the A fragments in registers (flash attention 2's
//            identity of the C and A layouts), V's B fragments by ldmatrix.trans from the staged rows.
// What it computes differently from the f32 kernel: q . k in bf16 products with an f32 sum (the same products,
// another order), and the probabilities in bf16 (relative error 2^-9 a weight): within the kernels' bf16 bounds
// (cuda_attention_prefill_test: PrefillTileMmaAttentionMatchesFloat64). A row's sums do not depend on W or on
// the other rows of its tile. Rows of a tile past its n tokens are computed as copies of its last token (finite,
// never stored).
//
// Registers (ptxas, sm_90a, HD = 128): W = 1 150, W = 4 168 (held to 3 blocks an SM). Shared memory,
// HD = 128: W = 1 21,760 bytes (10 warps an SM), W = 4 52,224 (dynamic, past the 48 KB default: 12 warps an SM).
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_frag.cuh"
#include "backend/cuda/paged_index.h"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int QT = kPrefillTileQ;  // query rows per warp: the mma's 16 rows
constexpr int KT = 32;             // keys per staged tile: 4 score n-tiles of 8, 2 value k-steps of 16
static_assert(QT == 16, "one m16n8k16 row block per tile");

template <int HD>
struct MCfg {
  static_assert(HD % 16 == 0 && HD <= 128, "prefill mma kernel: head_dim a multiple of 16, at most 128");
  static constexpr int LD = HD + 8;         // padded shared row, in bf16 elements (an odd number of 16 bytes)
  static constexpr int C = HD / 8;          // 16-byte chunks (8 elements) per row
  static constexpr int KS = HD / 16;        // k-steps of the score mma
  static constexpr int NT = HD / 8;         // n-tiles of 8 output dims
};

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void ldmatrix_x4_trans(const bf16* smem, uint32_t (&r)[4]) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// W warps a block (1 or 4), 16 query rows each: a tile of up to 16 W tokens. The block's shared memory: Q's 16 W
// rows, then S stages of (K tile, V tile): one stage with one warp (each key tile staged, then used), two with
// four (the next key tile's copies in flight while the warps compute on this one).
template <int HD, int W>
struct MSmem {
  static constexpr int S = W == 1 ? 1 : 2;
  static constexpr int kv_elems = KT * MCfg<HD>::LD;
  static constexpr int q_elems = QT * W * MCfg<HD>::LD;
  static constexpr size_t bytes = size_t(q_elems + 2 * S * kv_elems) * sizeof(bf16);
};

// Chunks of a key tile's K and V, fp8 cache: the bytes and scales a thread loads, held until stored as bf16.
template <int CH>
struct Fp8Chunks {
  uint2 k[CH], v[CH];
  float ks[CH], vs[CH];
};

// F8: the cache holds e4m3 bytes with one scale per (block, kv head, offset) row.
template <int HD, int W, bool F8>
__global__ void __launch_bounds__(32 * W, W == 4 ? 3 : 1) prefill_attention_mma_kernel(const AttentionArgs<bf16> a,
                                                                        const int32_t* __restrict__ tiles) {
  using K = MCfg<HD>;
  using Sm = MSmem<HD, W>;
  constexpr int LD = K::LD, S = Sm::S, NTH = 32 * W;
  constexpr int CH = (KT * K::C + NTH - 1) / NTH;  // chunks of a K (or V) tile a thread stages
  constexpr int QCH = QT * W * K::C / NTH;          // chunks of Q a thread stages (C / 2: whole)
  // fp8: chunks a thread has loaded at once (a whole tile's with two stages, which hold them across the compute)
  constexpr int G = CH < 4 ? CH : 4;
  static_assert(S == 1 || G == CH, "two stages hold a whole key tile's fp8 chunks in registers");
  static_assert((QT * W * K::C) % NTH == 0, "whole Q chunks per thread");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* const sQ = reinterpret_cast<bf16*>(smem_raw);
  auto sK = [&](int st) { return sQ + Sm::q_elems + st * 2 * Sm::kv_elems; };
  auto sV = [&](int st) { return sK(st) + Sm::kv_elems; };

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tg = lane % 4;  // the fragments' row group and thread in group
  const int h = blockIdx.x;
  const int32_t tile = tiles[blockIdx.y];
  const int t0 = tile >> kPrefillTileShift;
  const int n = (tile & ((1 << kPrefillTileShift) - 1)) + 1;  // 1 .. 16 W
  const int kvh = h / (a.nh / a.nkv);
  const PagedIndex pi(a.block_size);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t0];
  int kend = 0;  // the tile's last key + 1
  for (int r = 0; r < n; ++r) kend = max(kend, a.positions[t0 + r] + 1);
  // This warp's rows rb + g and rb + g + 8 (rows past n copy row n - 1); a warp past n only helps stage, and a
  // warp skips the key tiles past its own last key (their every score is masked: nothing to add).
  const int rb = QT * warp;
  const bool active = rb < n;
  const int r0 = min(rb + g, n - 1), r1 = min(rb + g + 8, n - 1);
  const int pos0 = a.positions[t0 + r0], pos1 = a.positions[t0 + r1];
  int wkend = max(pos0, pos1);
#pragma unroll
  for (int x = 16; x > 0; x >>= 1) wkend = max(wkend, __shfl_xor_sync(0xffffffffu, wkend, x));
  wkend = active ? wkend + 1 : 0;

  // Q (scaled later, in f32): its A fragments are read from shared memory for every key tile (k-step s covers
  // dims 16 s .. 16 s + 15; a0/a2 row g, a1/a3 row g + 8; a2/a3 the upper 8 dims).
#pragma unroll
  for (int i = 0; i < QCH; ++i) {
    const int ch = tid + NTH * i;
    const int r = ch / K::C, c = ch % K::C;
    cp_async16(sQ + r * LD + c * 8, a.q + static_cast<int64_t>(t0 + min(r, n - 1)) * a.q_stride + h * HD + c * 8);
  }
  // A key tile's chunk i of this thread: key j, chunk c of its row, and the row (-1 past kend: zeros); false
  // past the tile's chunks.
  auto chunk_at = [&](int k0, int i, int& j, int& c, int64_t& row) {
    const int ch = tid + NTH * i;
    j = ch / K::C, c = ch % K::C;
    row = ch < KT * K::C && k0 + j < kend ? pi.row_of(bt, k0 + j, a.nkv, kvh) : -1;
    return ch < KT * K::C;
  };
  // bf16 cache: keys k0 .. k0 + KT - 1 into stage st by cp.async.
  auto stage_async = [&](int k0, int st) {
#pragma unroll 4
    for (int i = 0; i < CH; ++i) {
      int j, c;
      int64_t row;
      if (!chunk_at(k0, i, j, c, row)) break;
      const int64_t off = (row < 0 ? 0 : row) * HD + c * 8;
      cp_async16_or_zero(sK(st) + j * LD + c * 8, a.k_cache + off, row >= 0);
      cp_async16_or_zero(sV(st) + j * LD + c * 8, a.v_cache + off, row >= 0);
    }
  };
  // fp8 cache: chunks i0 .. i0 + G - 1 of keys k0 .. (their bytes and scales) into registers, then dequantized to
  // bf16 into stage st.
  auto load_fp8 = [&](int k0, int i0, Fp8Chunks<G>& f) {
#pragma unroll
    for (int u = 0; u < G; ++u) {
      int j, c;
      int64_t row;
      f.k[u] = f.v[u] = make_uint2(0u, 0u);
      f.ks[u] = f.vs[u] = 0.f;
      if (chunk_at(k0, i0 + u, j, c, row) && row >= 0) {
        const int64_t off = row * HD + c * 8;
        f.k[u] = *reinterpret_cast<const uint2*>(a.k_fp8 + off);
        f.v[u] = *reinterpret_cast<const uint2*>(a.v_fp8 + off);
        f.ks[u] = a.k_scale[row];
        f.vs[u] = a.v_scale[row];
      }
    }
  };
  auto store_fp8 = [&](const Fp8Chunks<G>& f, int i0, int st) {
#pragma unroll
    for (int u = 0; u < G; ++u) {
      const int ch = tid + NTH * (i0 + u);
      if (ch >= KT * K::C) break;
      const int j = ch / K::C, c = ch % K::C;
      float fk[8], fv[8];
      e4m3x8_to_f32(f.k[u], fk);
      e4m3x8_to_f32(f.v[u], fv);
#pragma unroll
      for (int e = 0; e < 8; ++e) fk[e] *= f.ks[u], fv[e] *= f.vs[u];
      store8(sK(st) + j * LD + c * 8, fk);
      store8(sV(st) + j * LD + c * 8, fv);
    }
  };
  auto stage = [&](int k0, int st) {
    if constexpr (F8) {
      for (int i0 = 0; i0 < CH; i0 += G) {  // G chunks' loads in flight at a time
        Fp8Chunks<G> f;
        load_fp8(k0, i0, f);
        store_fp8(f, i0, st);
      }
    } else {
      stage_async(k0, st);
    }
  };

  float o[K::NT][4];
#pragma unroll
  for (int j = 0; j < K::NT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  // Running max (in units of log2: score * scale * log2 e) and this lane's share of the running sum, per row.
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float sl2 = a.scale * 1.4426950408889634f;
  const uint32_t* q0 = reinterpret_cast<const uint32_t*>(sQ + (rb + g) * LD);
  const uint32_t* q1 = reinterpret_cast<const uint32_t*>(sQ + (rb + g + 8) * LD);
  const int mi = lane / 8, mr = lane % 8;  // this lane's ldmatrix row: matrix mi, row mr

  // One key tile of stage st for this warp's rows.
  auto compute = [&](int k0, int st) {
    // ---- scores: n-tile jn holds keys k0 + 8 jn .. + 7; this lane's columns 2 tg, 2 tg + 1 of rows g, g + 8
    float sc[4][4];
#pragma unroll
    for (int jn = 0; jn < 4; ++jn) {
      sc[jn][0] = sc[jn][1] = sc[jn][2] = sc[jn][3] = 0.f;
      const uint32_t* krow = reinterpret_cast<const uint32_t*>(sK(st) + (8 * jn + g) * LD);
#pragma unroll
      for (int s = 0; s < K::KS; ++s)
        mma::mma_bf16(sc[jn], q0[8 * s + tg], q1[8 * s + tg], q0[8 * s + tg + 4], q1[8 * s + tg + 4], krow[8 * s + tg],
                      krow[8 * s + tg + 4]);
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int jn = 0; jn < 4; ++jn) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int p = k0 + 8 * jn + 2 * tg + e;
        sc[jn][e] = p <= pos0 ? sc[jn][e] * sl2 : -INFINITY;
        sc[jn][2 + e] = p <= pos1 ? sc[jn][2 + e] * sl2 : -INFINITY;
        mx0 = fmaxf(mx0, sc[jn][e]);
        mx1 = fmaxf(mx1, sc[jn][2 + e]);
      }
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
    }
    // Key 0 is in the first tile and every position is >= 0: the maxima are finite from the first tile on.
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);  // 0 on the first tile
    m0 = mn0, m1 = mn1;
    l0 *= al0, l1 *= al1;
#pragma unroll
    for (int j = 0; j < K::NT; ++j) {
      o[j][0] *= al0, o[j][1] *= al0;
      o[j][2] *= al1, o[j][3] *= al1;
    }
    // P as A fragments of the value mma: k-step kv takes n-tiles 2 kv (a0, a1) and 2 kv + 1 (a2, a3).
    uint32_t pf[2][4];
#pragma unroll
    for (int jn = 0; jn < 4; ++jn) {
      const uint32_t top = pack_bf16(exp2f(sc[jn][0] - mn0), exp2f(sc[jn][1] - mn0));
      const uint32_t bot = pack_bf16(exp2f(sc[jn][2] - mn1), exp2f(sc[jn][3] - mn1));
      const __nv_bfloat162 tb = *reinterpret_cast<const __nv_bfloat162*>(&top);
      const __nv_bfloat162 bb = *reinterpret_cast<const __nv_bfloat162*>(&bot);
      l0 += __low2float(tb) + __high2float(tb);
      l1 += __low2float(bb) + __high2float(bb);
      pf[jn / 2][(jn % 2) * 2] = top;
      pf[jn / 2][(jn % 2) * 2 + 1] = bot;
    }
    // ---- values: ldmatrix.trans of keys 16 kv .. + 15 x dims 16 d .. + 15 gives B fragments of n-tiles 2d, 2d+1.
    // Lane l addresses matrix l / 8 (keys + 8 for odd matrices, dims + 8 for the upper two), row l % 8.
#pragma unroll
    for (int kv = 0; kv < 2; ++kv) {
      const bf16* vbase = sV(st) + (16 * kv + (mi & 1) * 8 + mr) * LD + (mi >> 1) * 8;
#pragma unroll
      for (int d = 0; d < K::NT / 2; ++d) {
        uint32_t b[4];
        ldmatrix_x4_trans(vbase + 16 * d, b);
        mma::mma_bf16(o[2 * d], pf[kv][0], pf[kv][1], pf[kv][2], pf[kv][3], b[0], b[1]);
        mma::mma_bf16(o[2 * d + 1], pf[kv][0], pf[kv][1], pf[kv][2], pf[kv][3], b[2], b[3]);
      }
    }
  };

  // ---- the walk. S = 1: stage a tile, wait, compute, repeat. S = 2: tile it + 1's copies (bf16: cp.async; fp8:
  // loads into registers, stored after this tile's compute) are in flight while tile it is computed.
  stage(0, 0);
  cp_async_commit();  // Q, and tile 0 of a bf16 cache
  int it = 0;
  for (int k0 = 0; k0 < kend; k0 += KT, ++it) {
    const int st = S == 2 ? (it & 1) : 0;
    const bool next = k0 + KT < kend;
    [[maybe_unused]] Fp8Chunks<(F8 && S == 2) ? G : 1> pending;
    if constexpr (S == 2) {
      if (next) {
        if constexpr (F8) load_fp8(k0 + KT, 0, pending);
        else stage_async(k0 + KT, st ^ 1);
      }
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just committed: Q and this tile
    } else {
      if (it > 0) {
        stage(k0, 0);
        cp_async_commit();
      }
      cp_async_wait<0>();
    }
    __syncthreads();  // (A) this tile's K and V (and Q) visible to every warp
    if (active && k0 < wkend) compute(k0, st);
    if constexpr (S == 2 && F8) {
      if (next) store_fp8(pending, 0, st ^ 1);  // stage st ^ 1 was last read before the previous (B)
    }
    __syncthreads();  // (B) every warp is done with stage st before it is staged again
  }

  // ---- output: the row sums over the row's 4 lanes, then rows rb + g and rb + g + 8 where they are the tile's
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  if (!active) return;
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  const int64_t ostride = static_cast<int64_t>(a.nh) * HD;
  bf16* out0 = a.out + static_cast<int64_t>(t0 + rb + g) * ostride + h * HD + 2 * tg;
  bf16* out1 = a.out + static_cast<int64_t>(t0 + rb + g + 8) * ostride + h * HD + 2 * tg;
#pragma unroll
  for (int j = 0; j < K::NT; ++j) {
    if (rb + g < n) *reinterpret_cast<__nv_bfloat162*>(out0 + 8 * j) = __floats2bfloat162_rn(o[j][0] * inv0, o[j][1] * inv0);
    if (rb + g + 8 < n)
      *reinterpret_cast<__nv_bfloat162*>(out1 + 8 * j) = __floats2bfloat162_rn(o[j][2] * inv1, o[j][3] * inv1);
  }
}

template <int HD, int W, bool F8>
void launch_one(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, cudaStream_t s) {
  constexpr size_t bytes = MSmem<HD, W>::bytes;
  if constexpr (bytes > 48 * 1024) {
    static const bool opted_in = [] {  // once per kernel, before its first launch
      LLM_CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_mma_kernel<HD, W, F8>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
      return true;
    }();
    (void)opted_in;
  }
  prefill_attention_mma_kernel<HD, W, F8><<<dim3(a.nh, n_tiles), 32 * W, bytes, s>>>(a, tiles);
  LLM_CUDA_LAUNCHED(prefill_attention_mma_kernel);
}

template <int HD>
void launch(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, int warps, cudaStream_t s) {
  if (warps == 1) {
    if (a.k_fp8) launch_one<HD, 1, true>(a, tiles, n_tiles, s);
    else launch_one<HD, 1, false>(a, tiles, n_tiles, s);
  } else {
    if (a.k_fp8) launch_one<HD, 4, true>(a, tiles, n_tiles, s);
    else launch_one<HD, 4, false>(a, tiles, n_tiles, s);
  }
}

}  // namespace

void paged_attention_prefill_mma(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, int warps,
                                 cudaStream_t s) {
  if (n_tiles == 0) return;
  if (warps != 1 && warps != 4)
    throw std::invalid_argument("paged_attention_prefill_mma: " + std::to_string(warps) + " warps a block (1 or 4)");
  if (a.k_fp8 && (!a.v_fp8 || !a.k_scale || !a.v_scale))
    throw std::invalid_argument("paged_attention_prefill_mma: an fp8 KV cache needs v_fp8 and both scales");
  switch (a.hd) {
    case 16: launch<16>(a, tiles, n_tiles, warps, s); break;
    case 32: launch<32>(a, tiles, n_tiles, warps, s); break;
    case 48: launch<48>(a, tiles, n_tiles, warps, s); break;
    case 64: launch<64>(a, tiles, n_tiles, warps, s); break;
    case 80: launch<80>(a, tiles, n_tiles, warps, s); break;
    case 96: launch<96>(a, tiles, n_tiles, warps, s); break;
    case 112: launch<112>(a, tiles, n_tiles, warps, s); break;
    case 128: launch<128>(a, tiles, n_tiles, warps, s); break;
    default:
      throw std::invalid_argument("paged_attention_prefill_mma: head_dim " + std::to_string(a.hd) +
                                  " has no kernel (multiples of 16 up to 128)");
  }
}

}  // namespace engine::cuda
