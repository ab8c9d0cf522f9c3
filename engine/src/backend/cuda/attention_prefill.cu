// Prefill attention: one thread block per (query head, tile of up to QT = kPrefillTileQ consecutive query
// tokens of ONE sequence). The block walks the sequence's context 0 .. max position of the tile in key tiles
// of KT = 32 tokens; each key tile's K and V rows are read once (through the block table) into shared memory
// as f32 and used by all the tile's queries, where the paged attention kernel (attention.cu) has one block
// per query token that re-reads the whole prefix for itself.
//
// Per key tile (128 threads, four barriers):
//   stage:   K, V rows -> sK, sV (f32, rows padded to HD + 4 floats: conflict-free 16-byte reads)
//   scores:  S[q][j] = q_q . k_j (q pre-scaled), thread (qi = tid/16, kj = tid%16) computes the 2x2 block
//            q in {qi, qi+8} x j in {kj, kj+16}: 4 float4 shared loads per 16 FMAs; causal mask j > pos_q
//            (keys past the end of the context are also past every query's position) -> -inf
//   softmax: warp w takes queries w, w+4, w+8, w+12, lane = key: exact online softmax per query (running
//            max m and sum l in shared memory, rescale factor alpha = e^(m_old - m_new)), P overwrites S
//   values:  thread (qi, dc) owns queries {qi, qi+8} x float4 columns {i*16 + dc < HD/4}: acc =
//            alpha*acc + sum_j P[q][j] * v_j
// An fp8 cache is dequantized while staging (fp8 * the row's scale; the tiles stay f32).
// Head dims: multiples of 8 up to 128 (at HD % 64 != 0 some threads idle in the value phase and staging).
// Rows of a tile past its n tokens are computed as copies of its last token (finite, never stored).
//
// Shared memory (static, under 48 KB): sQ QT*(HD+4) + sK, sV 2*KT*(HD+4) + sP QT*(KT+1) floats + 4*QT
// floats/ints of per-query state: HD = 128: 8448 + 33792 + 2112 + 256 = 44,608 bytes (room for 5 blocks per
// SM; 128 registers a thread (ptxas, no spills at 64/128) allow 4);
// HD = 64: 24,128 bytes.
//
// Traffic and time (prediction for the mixed step of 2,012 tokens = 192 decodes + 28 prompts of 65 tokens,
// Llama-2-7B shapes nh = nkv = 32, hd 128, bf16, 32 layers, H100):
//   K/V rows read by the prefill queries per (sequence, head): per-token kernel sum_{p<65} (p+1) = 2,145;
//   this kernel, tiles of 16 (keys 0..15, ..31, ..47, ..63, ..64) = 16+32+48+64+65 = 225 loaded (in
//   1+1+2+2+3 = 9 key tiles of 32), 9.5x fewer. Per layer 28*32*2,145*512 B = 0.98 GB of L2->SM traffic
//   becomes 0.10 GB; over 32 layers 31.5 GB -> 3.3 GB. Blocks: 28*32*65 = 58k blocks (one 256-key tile of
//   fixed cost each) become 28*32*5 = 4,480 blocks of 1-3 key tiles.
//   Time: shared-memory bound at ~1,600 clocks per (block, key tile) (768 wavefronts of scores + 768 of
//   P.V per tile), 8,064 block-tiles per layer / 132 SMs -> ~100k clocks ~ 60 us per layer at 1.7 GHz,
//   plus staging latency (two dependent global round trips per key tile, hidden by 4 blocks per SM):
//   ~80-120 us per layer, ~2.5-4 ms over 32 layers for the prefill rows (was most of the 15.5 ms). The decode
//   rows keep the paged kernel (one split at 192 tokens, bound by their own KV reads from HBM). Expected mixed
//   step attention: ~15.5 -> ~5-7 ms (step ~59 -> ~49-51 ms), the exact split depending on the decode rows'
//   context lengths, which this prediction does not know.
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/paged_index.h"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int QT = kPrefillTileQ;  // query rows per block
constexpr int KT = 32;             // key rows per shared tile (= warp size: one lane per key in the softmax)
static_assert(QT == 16, "the thread mappings below assume 16 query rows (8 row pairs x 16 threads)");
static_assert(QT - 1 < (1 << kPrefillTileShift), "tile count must fit the packed tile");

template <int HD>
struct PCfg {
  static_assert(HD % 8 == 0 && HD <= 128, "prefill kernel: head_dim a multiple of 8, at most 128");
  static constexpr int LD = HD + 4;                            // padded shared row (floats), 16-byte rows
  static constexpr int C = HD / 8;                             // 8-element chunks per row
  static constexpr int C4 = HD / 4;                            // float4 columns per row
  static constexpr int NV = (C4 + 15) / 16;                    // float4 columns per thread, value phase
  static constexpr int KCH = (KT * C + kThreads - 1) / kThreads;  // K (and V) chunks staged per thread
  static constexpr int QCH = (QT * C + kThreads - 1) / kThreads;  // q chunks staged per thread
  // Column i*16 + dc exists (always for HD % 64 == 0; the last group is partial otherwise).
  static __device__ __forceinline__ bool col_ok(int i, int dc) { return C4 % 16 == 0 || i * 16 + dc < C4; }
};

__device__ __forceinline__ void st_shared8(float* p, const float* f) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// F8: the cache holds e4m3 bytes (AttentionArgs::k_fp8 ...) with one scale per (block, kv head, offset) row;
// staging dequantizes them (fp8 * scale, as every other reader does) into the same f32 tiles.
template <typename E, int HD, bool F8>
__global__ void __launch_bounds__(kThreads, 4)
    prefill_attention_kernel(const AttentionArgs<E> a, const int32_t* __restrict__ tiles) {
  using K = PCfg<HD>;
  constexpr int LD = K::LD;
  __shared__ __align__(16) float sQ[QT * LD];
  __shared__ __align__(16) float sK[KT * LD];
  __shared__ __align__(16) float sV[KT * LD];
  __shared__ float sP[QT * (KT + 1)];
  __shared__ float s_m[QT], s_l[QT], s_alpha[QT];
  __shared__ int s_pos[QT];

  const int tid = threadIdx.x;
  const int h = blockIdx.x;
  const int32_t tile = tiles[blockIdx.y];
  const int t0 = tile >> kPrefillTileShift;
  const int n = (tile & ((1 << kPrefillTileShift) - 1)) + 1;  // 1 .. QT
  const int kvh = h / (a.nh / a.nkv);
  const int bs = a.block_size;
  const PagedIndex pi(bs);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t0];
  // Keys 0 .. kend-1: every thread computes the same maximum position (no barrier needed).
  int kend = 0;
  for (int r = 0; r < n; ++r) kend = max(kend, a.positions[t0 + r] + 1);

  // Stage q (scaled) and the per-query state; rows r >= n copy row n-1.
#pragma unroll
  for (int i = 0; i < K::QCH; ++i) {
    const int ch = tid + i * kThreads;
    if ((QT * K::C) % kThreads != 0 && ch >= QT * K::C) break;
    const int r = ch / K::C, c = ch % K::C;
    const int t = t0 + min(r, n - 1);
    float f[8];
    load8(a.q + static_cast<int64_t>(t) * a.q_stride + h * HD + c * 8, f);
#pragma unroll
    for (int k = 0; k < 8; ++k) f[k] *= a.scale;
    st_shared8(sQ + r * LD + c * 8, f);
  }
  if (tid < QT) {
    s_pos[tid] = a.positions[t0 + min(tid, n - 1)];
    s_m[tid] = -INFINITY;
    s_l[tid] = 0.f;
  }

  const int qi = tid / 16;         // query rows qi and qi + 8 (scores and values)
  const int kj = tid % 16;         // score phase: keys kj and kj + 16
  const int dc = tid % 16;         // value phase: float4 columns dc, dc + 16, ...
  const int warp = tid / 32, lane = tid % 32;
  float acc[2][K::NV][4];
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int i = 0; i < K::NV; ++i)
#pragma unroll
      for (int k = 0; k < 4; ++k) acc[r][i][k] = 0.f;

  for (int k0 = 0; k0 < kend; k0 += KT) {
    // ---- stage K and V rows k0 .. k0+KT-1 (zeros past kend: P is 0 there, and 0 * garbage could be NaN)
    {
      using Raw = std::conditional_t<F8, uint2, Pack8<E>>;  // 8 elements: e4m3 bytes or as stored
      Raw kp[K::KCH], vp[K::KCH];
      float ksc[K::KCH], vsc[K::KCH];
      bool ok[K::KCH];
#pragma unroll
      for (int i = 0; i < K::KCH; ++i) {
        const int ch = tid + i * kThreads;
        const int j = ch / K::C, c = ch % K::C;
        const int p = k0 + j;
        ok[i] = p < kend && ch < KT * K::C;
        if (ok[i]) {
          const int64_t row = pi.row_of(bt, p, a.nkv, kvh);
          const int64_t off = row * HD + c * 8;
          if constexpr (F8) {
            kp[i] = *reinterpret_cast<const uint2*>(a.k_fp8 + off);
            vp[i] = *reinterpret_cast<const uint2*>(a.v_fp8 + off);
            ksc[i] = a.k_scale[row];
            vsc[i] = a.v_scale[row];
          } else {
            kp[i] = ld8(a.k_cache + off);
            vp[i] = ld8(a.v_cache + off);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < K::KCH; ++i) {
        const int ch = tid + i * kThreads;
        if ((KT * K::C) % kThreads != 0 && ch >= KT * K::C) break;
        const int j = ch / K::C, c = ch % K::C;
        float fk[8], fv[8];
        if (ok[i]) {
          if constexpr (F8) {
            e4m3x8_to_f32(kp[i], fk);
            e4m3x8_to_f32(vp[i], fv);
#pragma unroll
            for (int k = 0; k < 8; ++k) {
              fk[k] *= ksc[i];
              fv[k] *= vsc[i];
            }
          } else {
            unpack8(kp[i], fk);
            unpack8(vp[i], fv);
          }
        } else {
#pragma unroll
          for (int k = 0; k < 8; ++k) fk[k] = fv[k] = 0.f;
        }
        st_shared8(sK + j * LD + c * 8, fk);
        st_shared8(sV + j * LD + c * 8, fv);
      }
    }
    __syncthreads();  // (A) sK, sV (and on the first tile sQ, s_pos, s_m, s_l) visible

    // ---- scores of queries {qi, qi+8} x keys {kj, kj+16}
    {
      float s00 = 0.f, s01 = 0.f, s10 = 0.f, s11 = 0.f;  // s[query][key]
      const float* q0 = sQ + qi * LD;
      const float* q1 = sQ + (qi + 8) * LD;
      const float* ka = sK + kj * LD;
      const float* kb = sK + (kj + 16) * LD;
#pragma unroll 8
      for (int d = 0; d < HD; d += 4) {
        const float4 x0 = *reinterpret_cast<const float4*>(q0 + d);
        const float4 x1 = *reinterpret_cast<const float4*>(q1 + d);
        const float4 y0 = *reinterpret_cast<const float4*>(ka + d);
        const float4 y1 = *reinterpret_cast<const float4*>(kb + d);
        s00 = fmaf(x0.x, y0.x, s00); s00 = fmaf(x0.y, y0.y, s00); s00 = fmaf(x0.z, y0.z, s00); s00 = fmaf(x0.w, y0.w, s00);
        s01 = fmaf(x0.x, y1.x, s01); s01 = fmaf(x0.y, y1.y, s01); s01 = fmaf(x0.z, y1.z, s01); s01 = fmaf(x0.w, y1.w, s01);
        s10 = fmaf(x1.x, y0.x, s10); s10 = fmaf(x1.y, y0.y, s10); s10 = fmaf(x1.z, y0.z, s10); s10 = fmaf(x1.w, y0.w, s10);
        s11 = fmaf(x1.x, y1.x, s11); s11 = fmaf(x1.y, y1.y, s11); s11 = fmaf(x1.z, y1.z, s11); s11 = fmaf(x1.w, y1.w, s11);
      }
      const int pa = k0 + kj, pb = k0 + kj + 16;
      const int p0 = s_pos[qi], p1 = s_pos[qi + 8];
      sP[qi * (KT + 1) + kj] = pa <= p0 ? s00 : -INFINITY;
      sP[qi * (KT + 1) + kj + 16] = pb <= p0 ? s01 : -INFINITY;
      sP[(qi + 8) * (KT + 1) + kj] = pa <= p1 ? s10 : -INFINITY;
      sP[(qi + 8) * (KT + 1) + kj + 16] = pb <= p1 ? s11 : -INFINITY;
    }
    __syncthreads();  // (B) scores visible

    // ---- online softmax, one warp per query row, one lane per key. Key 0 is in the first tile and every
    // query's position is >= 0, so m is finite from the first tile on (alpha = e^-inf = 0 there).
    for (int r = warp; r < QT; r += kThreads / 32) {
      const float sv = sP[r * (KT + 1) + lane];
      const float m_old = s_m[r];
      const float m_new = fmaxf(m_old, warp_max(sv));
      const float p = __expf(sv - m_new);  // 0 for masked keys
      const float sum = warp_sum(p);
      sP[r * (KT + 1) + lane] = p;
      if (lane == 0) {
        const float alpha = __expf(m_old - m_new);
        s_alpha[r] = alpha;
        s_l[r] = s_l[r] * alpha + sum;
        s_m[r] = m_new;
      }
    }
    __syncthreads();  // (C) P, alpha visible

    // ---- values
    {
      const float a0 = s_alpha[qi], a1 = s_alpha[qi + 8];
#pragma unroll
      for (int i = 0; i < K::NV; ++i)
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          acc[0][i][k] *= a0;
          acc[1][i][k] *= a1;
        }
      const int jn = min(KT, kend - k0);  // rows past kend have P = 0 (and V = 0): skip them
      const float* P0 = sP + qi * (KT + 1);
      const float* P1 = sP + (qi + 8) * (KT + 1);
#pragma unroll 4
      for (int j = 0; j < jn; ++j) {
        const float w0 = P0[j], w1 = P1[j];
#pragma unroll
        for (int i = 0; i < K::NV; ++i) {
          if (!K::col_ok(i, dc)) continue;
          const float4 v = *reinterpret_cast<const float4*>(sV + j * LD + (i * 16 + dc) * 4);
          acc[0][i][0] = fmaf(w0, v.x, acc[0][i][0]);
          acc[0][i][1] = fmaf(w0, v.y, acc[0][i][1]);
          acc[0][i][2] = fmaf(w0, v.z, acc[0][i][2]);
          acc[0][i][3] = fmaf(w0, v.w, acc[0][i][3]);
          acc[1][i][0] = fmaf(w1, v.x, acc[1][i][0]);
          acc[1][i][1] = fmaf(w1, v.y, acc[1][i][1]);
          acc[1][i][2] = fmaf(w1, v.z, acc[1][i][2]);
          acc[1][i][3] = fmaf(w1, v.w, acc[1][i][3]);
        }
      }
    }
    __syncthreads();  // (D) sK, sV, sP, s_alpha are rewritten by the next tile
  }

  // ---- output rows qi and qi + 8 (those < n). s_l was last written before (C), read after (D).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = qi + 8 * r;
    if (row >= n) continue;
    const float inv = 1.f / s_l[row];
    E* o = a.out + static_cast<int64_t>(t0 + row) * a.nh * HD + h * HD;
#pragma unroll
    for (int i = 0; i < K::NV; ++i) {
      if (!K::col_ok(i, dc)) continue;
#pragma unroll
      for (int k = 0; k < 4; ++k) o[(i * 16 + dc) * 4 + k] = from_f32<E>(acc[r][i][k] * inv);
    }
  }
}

template <typename E, int HD>
void launch(const AttentionArgs<E>& a, const int32_t* tiles, int n_tiles, cudaStream_t s) {
  const dim3 grid(a.nh, n_tiles);
  if (a.k_fp8) {
    if constexpr (std::is_same_v<E, bf16>) prefill_attention_kernel<E, HD, true><<<grid, kThreads, 0, s>>>(a, tiles);
  } else {
    prefill_attention_kernel<E, HD, false><<<grid, kThreads, 0, s>>>(a, tiles);
  }
  LLM_CUDA_LAUNCHED(prefill_attention_kernel);
}

}  // namespace

bool prefill_attention_supports_head_dim(int hd) {
  switch (hd) {
    case 8: case 16: case 24: case 32: case 48: case 64: case 80: case 96: case 112: case 128:
      return true;
    default:
      return false;  // 256 would not fit 48 KB of static shared memory: the paged kernel takes it
  }
}

template <typename E>
void paged_attention_prefill(const AttentionArgs<E>& a, const int32_t* tiles, int n_tiles, cudaStream_t s) {
  if (n_tiles == 0) return;
  if constexpr (std::is_same_v<E, bf16>) {
    if (prefill_mma_used(a.prefill_mma_warps, true, a.hd)) {
      paged_attention_prefill_mma(a, tiles, n_tiles, a.prefill_mma_warps, s);
      return;
    }
  }
  if (a.k_fp8 && (!std::is_same_v<E, bf16> || !a.v_fp8 || !a.k_scale || !a.v_scale))
    throw std::invalid_argument("paged_attention_prefill: an fp8 KV cache needs bf16 activations, v_fp8 and both scales");
  switch (a.hd) {
    case 8: launch<E, 8>(a, tiles, n_tiles, s); break;
    case 16: launch<E, 16>(a, tiles, n_tiles, s); break;
    case 24: launch<E, 24>(a, tiles, n_tiles, s); break;
    case 32: launch<E, 32>(a, tiles, n_tiles, s); break;
    case 48: launch<E, 48>(a, tiles, n_tiles, s); break;
    case 64: launch<E, 64>(a, tiles, n_tiles, s); break;
    case 80: launch<E, 80>(a, tiles, n_tiles, s); break;
    case 96: launch<E, 96>(a, tiles, n_tiles, s); break;
    case 112: launch<E, 112>(a, tiles, n_tiles, s); break;
    case 128: launch<E, 128>(a, tiles, n_tiles, s); break;
    default:
      throw std::invalid_argument("paged_attention_prefill: head_dim " + std::to_string(a.hd) +
                                  " has no kernel (multiples of 8 up to 128)");
  }
}

template void paged_attention_prefill<bf16>(const AttentionArgs<bf16>&, const int32_t*, int, cudaStream_t);
template void paged_attention_prefill<float>(const AttentionArgs<float>&, const int32_t*, int, cudaStream_t);

}  // namespace engine::cuda
