// Prefill attention on the tensor cores (AttentionArgs::prefill_mma; bf16 activations, head dims that are
// multiples of 16 up to 128, a bf16 or fp8 cache): the same tiles and the same result as attention_prefill.cu's
// kernel, computed as flash attention 2 computes it. One warp is one block and takes one (query head, tile of up
// to 16 query tokens of one sequence); it walks the context 0 .. the tile's last position in key tiles of KT = 32:
//   stage:   the key tile's K and V rows (through the block table) into shared memory as bf16, by cp.async for a
//            bf16 cache, dequantized (e4m3 * the row's scale, rounded to bf16) for an fp8 one; keys past the
//            tile's end are zeros. Rows padded to HD + 8 elements: the fragment loads below hit 32 banks.
//   scores:  S = Q K^T by mma.sync.m16n8k16 (bf16 in, f32 out): Q's 16 rows as the A fragments, held in
//            registers for the whole walk (q unscaled, as stored); K^T's fragments are two consecutive head-dim
//            elements of one key row, a 4-byte shared load each; causal mask (key > the query's position) -> -inf
//   softmax: exact online softmax in base 2 per query row (row g and g + 8 of each lane's fragments; the row's
//            4 lanes agree by two shuffles), the probabilities rounded to bf16 and the running sum summing the
//            rounded values, so the weights the values get are the ones the sum normalizes
//   values:  O += P V by mma.sync: P's f32 accumulators become the A fragments in registers (flash attention 2's
//            identity of the C and A layouts), V's fragments by ldmatrix.trans from the staged rows.
// What it computes differently from the f32 kernel: q . k in bf16 products with an f32 sum (the same products,
// another order), and the probabilities in bf16 (relative error 2^-9 a weight): within the kernels' bf16 bounds
// (cuda_attention_test: PrefillTileAttentionMatchesFloat64's mma cases). Rows of a tile past its n tokens are
// computed as copies of its last token (finite, never stored).
//
// Registers (HD = 128): Q 32, O 64, S 16 a lane. Shared memory: 2 x 32 x (HD + 8) x 2 bytes = 17,408 at HD = 128.
// Work (the mixed step's 28 prompts of 65 tokens, 7B shapes): 4,480 warps a layer of 1-3 key tiles, each tile
// 2 x 4 x 8 = 64 mma.sync where the f32 kernel runs 128 threads x ~1,600 shared-memory clocks.
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_frag.cuh"
#include "backend/cuda/paged_index.h"

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
  static constexpr int CH = KT * C / 32;    // chunks of a K (or V) tile a lane stages
  static_assert((KT * C) % 32 == 0, "whole chunks per lane");
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

// F8: the cache holds e4m3 bytes with one scale per (block, kv head, offset) row.
template <int HD, bool F8>
__global__ void __launch_bounds__(32) prefill_attention_mma_kernel(const AttentionArgs<bf16> a,
                                                                    const int32_t* __restrict__ tiles) {
  using K = MCfg<HD>;
  constexpr int LD = K::LD;
  __shared__ __align__(16) bf16 sK[KT * LD];
  __shared__ __align__(16) bf16 sV[KT * LD];
  __shared__ __align__(16) bf16 sQ[QT * LD];

  const int lane = threadIdx.x;
  const int g = lane / 4, tg = lane % 4;  // the fragments' row group and thread in group
  const int h = blockIdx.x;
  const int32_t tile = tiles[blockIdx.y];
  const int t0 = tile >> kPrefillTileShift;
  const int n = (tile & ((1 << kPrefillTileShift) - 1)) + 1;  // 1 .. QT
  const int kvh = h / (a.nh / a.nkv);
  const PagedIndex pi(a.block_size);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t0];
  // This lane's two query rows (g, g + 8; rows past n copy row n - 1) and the tile's last key + 1.
  const int r0 = min(g, n - 1), r1 = min(g + 8, n - 1);
  const int pos0 = a.positions[t0 + r0], pos1 = a.positions[t0 + r1];
  int kend = 0;
  for (int r = 0; r < n; ++r) kend = max(kend, a.positions[t0 + r] + 1);

  // Q's 16 rows (rows past n copy row n - 1) staged once; its A fragments are read from there for every key tile
  // (k-step s covers dims 16 s .. 16 s + 15; a0/a2 row g, a1/a3 row g + 8; a2/a3 the upper 8 dims), which keeps
  // 32 registers a lane free for the accumulators.
#pragma unroll
  for (int i = 0; i < QT * K::C / 32; ++i) {
    const int ch = lane + 32 * i;
    const int r = ch / K::C, c = ch % K::C;
    cp_async16(sQ + r * LD + c * 8, a.q + static_cast<int64_t>(t0 + min(r, n - 1)) * a.q_stride + h * HD + c * 8);
  }
  cp_async_commit();
  const uint32_t* q0 = reinterpret_cast<const uint32_t*>(sQ + g * LD);
  const uint32_t* q1 = reinterpret_cast<const uint32_t*>(sQ + (g + 8) * LD);
  float o[K::NT][4];
#pragma unroll
  for (int j = 0; j < K::NT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  // Running max (in units of log2: score * scale * log2 e) and this lane's share of the running sum, per row.
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float sl2 = a.scale * 1.4426950408889634f;

  for (int k0 = 0; k0 < kend; k0 += KT) {
    // ---- stage keys k0 .. k0 + KT - 1 (zeros past kend)
#pragma unroll 4
    for (int i = 0; i < K::CH; ++i) {
      const int ch = lane + 32 * i;
      const int j = ch / K::C, c = ch % K::C;
      const int p = k0 + j;
      const bool ok = p < kend;
      const int64_t row = ok ? pi.row_of(bt, p, a.nkv, kvh) : 0;
      const int64_t off = row * HD + c * 8;
      if constexpr (F8) {
        uint2 kb = make_uint2(0u, 0u), vb = make_uint2(0u, 0u);
        float ks = 0.f, vs = 0.f;
        if (ok) {
          kb = *reinterpret_cast<const uint2*>(a.k_fp8 + off);
          vb = *reinterpret_cast<const uint2*>(a.v_fp8 + off);
          ks = a.k_scale[row];
          vs = a.v_scale[row];
        }
        float fk[8], fv[8];
        e4m3x8_to_f32(kb, fk);
        e4m3x8_to_f32(vb, fv);
        uint4 pk, pv;
        pk.x = pack_bf16(fk[0] * ks, fk[1] * ks), pk.y = pack_bf16(fk[2] * ks, fk[3] * ks);
        pk.z = pack_bf16(fk[4] * ks, fk[5] * ks), pk.w = pack_bf16(fk[6] * ks, fk[7] * ks);
        pv.x = pack_bf16(fv[0] * vs, fv[1] * vs), pv.y = pack_bf16(fv[2] * vs, fv[3] * vs);
        pv.z = pack_bf16(fv[4] * vs, fv[5] * vs), pv.w = pack_bf16(fv[6] * vs, fv[7] * vs);
        *reinterpret_cast<uint4*>(sK + j * LD + c * 8) = pk;
        *reinterpret_cast<uint4*>(sV + j * LD + c * 8) = pv;
      } else {
        cp_async16_or_zero(sK + j * LD + c * 8, a.k_cache + off, ok);
        cp_async16_or_zero(sV + j * LD + c * 8, a.v_cache + off, ok);
      }
    }
    cp_async_commit();
    cp_async_wait<0>();  // (the first tile's wait also covers Q's copies)
    __syncwarp();

    // ---- scores: n-tile jn holds keys k0 + 8 jn .. + 7; this lane's columns 2 tg, 2 tg + 1 of rows g, g + 8
    float sc[4][4];
#pragma unroll
    for (int jn = 0; jn < 4; ++jn) {
      sc[jn][0] = sc[jn][1] = sc[jn][2] = sc[jn][3] = 0.f;
      const uint32_t* krow = reinterpret_cast<const uint32_t*>(sK + (8 * jn + g) * LD);
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
    const int mi = lane / 8, mr = lane % 8;
#pragma unroll
    for (int kv = 0; kv < 2; ++kv) {
      const bf16* vbase = sV + (16 * kv + (mi & 1) * 8 + mr) * LD + (mi >> 1) * 8;
#pragma unroll
      for (int d = 0; d < K::NT / 2; ++d) {
        uint32_t b[4];
        ldmatrix_x4_trans(vbase + 16 * d, b);
        mma::mma_bf16(o[2 * d], pf[kv][0], pf[kv][1], pf[kv][2], pf[kv][3], b[0], b[1]);
        mma::mma_bf16(o[2 * d + 1], pf[kv][0], pf[kv][1], pf[kv][2], pf[kv][3], b[2], b[3]);
      }
    }
    __syncwarp();  // sK, sV are rewritten by the next tile
  }

  // ---- output: the row sums over the row's 4 lanes, then rows g and g + 8 where they are the tile's
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  const int64_t ostride = static_cast<int64_t>(a.nh) * HD;
  bf16* out0 = a.out + static_cast<int64_t>(t0 + g) * ostride + h * HD + 2 * tg;
  bf16* out1 = a.out + static_cast<int64_t>(t0 + g + 8) * ostride + h * HD + 2 * tg;
#pragma unroll
  for (int j = 0; j < K::NT; ++j) {
    if (g < n) *reinterpret_cast<__nv_bfloat162*>(out0 + 8 * j) = __floats2bfloat162_rn(o[j][0] * inv0, o[j][1] * inv0);
    if (g + 8 < n)
      *reinterpret_cast<__nv_bfloat162*>(out1 + 8 * j) = __floats2bfloat162_rn(o[j][2] * inv1, o[j][3] * inv1);
  }
}

template <int HD>
void launch(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, cudaStream_t s) {
  const dim3 grid(a.nh, n_tiles);
  if (a.k_fp8) prefill_attention_mma_kernel<HD, true><<<grid, 32, 0, s>>>(a, tiles);
  else prefill_attention_mma_kernel<HD, false><<<grid, 32, 0, s>>>(a, tiles);
  LLM_CUDA_LAUNCHED(prefill_attention_mma_kernel);
}

}  // namespace

bool prefill_attention_mma_supports_head_dim(int hd) { return hd % 16 == 0 && hd >= 16 && hd <= 128; }

void paged_attention_prefill_mma(const AttentionArgs<bf16>& a, const int32_t* tiles, int n_tiles, cudaStream_t s) {
  if (n_tiles == 0) return;
  if (a.k_fp8 && (!a.v_fp8 || !a.k_scale || !a.v_scale))
    throw std::invalid_argument("paged_attention_prefill_mma: an fp8 KV cache needs v_fp8 and both scales");
  switch (a.hd) {
    case 16: launch<16>(a, tiles, n_tiles, s); break;
    case 32: launch<32>(a, tiles, n_tiles, s); break;
    case 48: launch<48>(a, tiles, n_tiles, s); break;
    case 64: launch<64>(a, tiles, n_tiles, s); break;
    case 80: launch<80>(a, tiles, n_tiles, s); break;
    case 96: launch<96>(a, tiles, n_tiles, s); break;
    case 112: launch<112>(a, tiles, n_tiles, s); break;
    case 128: launch<128>(a, tiles, n_tiles, s); break;
    default:
      throw std::invalid_argument("paged_attention_prefill_mma: head_dim " + std::to_string(a.hd) +
                                  " has no kernel (multiples of 16 up to 128)");
  }
}

}  // namespace engine::cuda
