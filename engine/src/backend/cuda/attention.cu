// Paged attention: each query token attends to its sequence's cached K/V (positions 0 .. its own),
// read through the block table. One thread block per (query head, query token, context split). With a
// token list (AttentionArgs::tokens) grid.y walks the list: the backend sends decode rows here and the
// prefill tiles to attention_prefill.cu.
// Templated on the storage type E of q, the cache and the output (bf16 or float, kernels.h); the math is
// f32 in both. A "chunk" is 8 elements: 16 bytes in bf16, 32 bytes (two float4) in float.
//
// Within a block the context is walked in tiles of kTile tokens with an online softmax:
//   scores:  s_j = (q . k_j) / sqrt(hd)            TG threads per key token, 16-byte loads, shuffles
//   softmax: running max m and sum l, rescaled per tile (exact, not approximate)
//   values:  acc += exp(s_j - m) * v_j             C = hd/8 threads per value row, TL rows at once
// With num_splits > 1 (few query tokens: decode at small batch) each block covers 1/num_splits of the
// blocks of the context and writes (acc, m, l); a second kernel merges the splits (flash-decoding).
// An fp8 cache (AttentionArgs::k_fp8, bf16 activations): a chunk is 8 bytes of e4m3, and each (token, kv
// head) row's scale multiplies its score (K) or its softmax weight (V), so the head dims without a version-2
// kernel (attention_decode.cu: 64 and 128 only) get an fp8 KV cache too.
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "backend/cuda/attention_splits.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/paged_index.h"
#include "backend/cuda/l2_prefetch.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 256;

template <int HD>
struct Cfg {
  static_assert(HD % 8 == 0, "head_dim must be a multiple of 8 (rows of whole 8-element chunks)");
  static constexpr int C = HD / 8;  // 8-element chunks per K/V row
  // Threads per key token in the score phase: a power of two dividing C, at most 8.
  static constexpr int TG = (C % 8 == 0 && C >= 32) ? 8 : (C % 4 == 0) ? 4 : (C % 2 == 0) ? 2 : 1;
  static constexpr int CPT = C / TG;         // chunks per thread in the score phase
  static constexpr int TL = kThreads / C;    // value rows processed at once in the value phase
};

__device__ float block_reduce(float v, float* red, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  __syncthreads();  // red may still be read by the previous reduction
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < kThreads / 32; ++w) r = is_max ? fmaxf(r, red[w]) : r + red[w];
  return r;
}

// Blocks per SM asked of the register allocator: bf16 needs at most 64 registers per thread at HD <= 128
// (8 blocks); float holds twice the bytes per chunk in flight, so it gets twice the registers (no spills).
template <typename E, int HD>
constexpr int min_blocks() {
  return (sizeof(E) == 2 ? 8 : 4) / (HD <= 128 ? 1 : 2);
}

// One 8-element chunk of the cache at element offset `at`: E as stored, or 8 e4m3 bytes (F8).
template <typename E, bool F8>
struct Chunk {
  Pack8<E> v;
  static __device__ __forceinline__ Chunk load(const AttentionArgs<E>& a, bool is_v, int64_t at) {
    return {ld8((is_v ? a.v_cache : a.k_cache) + at)};
  }
  __device__ __forceinline__ void unpack(float* f) const { unpack8(v, f); }
};
template <typename E>
struct Chunk<E, true> {
  uint2 v;
  static __device__ __forceinline__ Chunk load(const AttentionArgs<E>& a, bool is_v, int64_t at) {
    return {*reinterpret_cast<const uint2*>((is_v ? a.v_fp8 : a.k_fp8) + at)};
  }
  __device__ __forceinline__ void unpack(float* f) const { e4m3x8_to_f32(v, f); }
};

template <typename E, int HD, bool F8>
__global__ void __launch_bounds__(kThreads, min_blocks<E, HD>()) attention_kernel(const AttentionArgs<E> a) {
  pdl_launch_dependents();
  pdl_wait();
  l2_prefetch_share(a.l2_prefetch, a.l2_prefetch_bytes);
  using Ch = Chunk<E, F8>;
  using K = Cfg<HD>;
  __shared__ float s_p[kTile];
  __shared__ float s_red[kThreads / 32];
  __shared__ float s_acc[K::TL * HD];

  // i: this block's entry (grid.y); t: its token, through the optional token list.
  const int h = blockIdx.x, i_tok = blockIdx.y, split = blockIdx.z;
  const int t = a.tokens ? a.tokens[i_tok] : i_tok;
  const int kvh = h / (a.nh / a.nkv);
  const int bs = a.block_size;
  const int len = a.positions[t] + 1;
  const int nblk = (len + bs - 1) / bs;
  const int bps = (nblk + a.num_splits - 1) / a.num_splits;  // blocks per split
  const int tok0 = min(len, split * bps * bs);
  const int tok1 = min(len, (split + 1) * bps * bs);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t];
  // The (block, kv head, offset) row of a context token: its elements start at row * HD; an fp8 row's
  // scale is k_scale[row] / v_scale[row].
  const PagedIndex pi(bs);
  auto row_of = [&](int tok) -> int64_t {
    return pi.row_of(bt, tok, a.nkv, kvh);
  };
  auto scale_of = [&](const float* scales, int64_t r) -> float {
    if constexpr (F8) return scales[r];
    else return 1.f;
  };

  // Score phase: thread g of a token group holds q chunks g, g + TG, ... (pre-scaled).
  const int g = threadIdx.x % K::TG, tlane = threadIdx.x / K::TG;
  float q[K::CPT][8];
  const E* qrow = a.q + static_cast<int64_t>(t) * a.q_stride + h * HD;
#pragma unroll
  for (int i = 0; i < K::CPT; ++i) {
    load8(qrow + (i * K::TG + g) * 8, q[i]);
#pragma unroll
    for (int k = 0; k < 8; ++k) q[i][k] *= a.scale;
  }
  // Value phase: thread (vlane, c) accumulates dims c*8 .. c*8+7 over rows vlane, vlane + TL, ...
  const int c = threadIdx.x % K::C, vlane = threadIdx.x / K::C;
  const bool vactive = vlane < K::TL;
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  float m = -INFINITY, l = 0.f;

  for (int base = tok0; base < tok1; base += kTile) {
    const int n = min(kTile, tok1 - base);
    // Every lane runs the loop the same number of times, so the shuffles see full warps.
    for (int j0 = 0; j0 < n; j0 += kThreads / K::TG) {
      const int j = j0 + tlane;
      float dot = 0.f;
      if (j < n) {
        const int64_t r = row_of(base + j);
        Ch kv[K::CPT];
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) kv[i] = Ch::load(a, false, r * HD + (i * K::TG + g) * 8);
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) {
          float kf[8];
          kv[i].unpack(kf);
#pragma unroll
          for (int k = 0; k < 8; ++k) dot = fmaf(q[i][k], kf[k], dot);
        }
        dot *= scale_of(a.k_scale, r);  // the shuffles below add the group's partial dots: each was scaled
      }
#pragma unroll
      for (int o = K::TG / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if (j < n && g == 0) s_p[j] = dot;
    }
    __syncthreads();
    float tmax = -INFINITY;
    for (int j = threadIdx.x; j < n; j += kThreads) tmax = fmaxf(tmax, s_p[j]);
    const float m_new = fmaxf(m, block_reduce(tmax, s_red, true));
    float tsum = 0.f;
    for (int j = threadIdx.x; j < n; j += kThreads) {
      const float p = __expf(s_p[j] - m_new);
      s_p[j] = p;
      tsum += p;
    }
    tsum = block_reduce(tsum, s_red, false);  // its barriers also publish s_p
    const float alpha = __expf(m - m_new);     // 0 on the first tile (m = -inf)
    l = l * alpha + tsum;
    m = m_new;
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[k] *= alpha;
    if (vactive) {
      int j = vlane;
      // Two rows per iteration: both loads issue before either is used.
      for (; j + K::TL < n; j += 2 * K::TL) {
        const int64_t r0 = row_of(base + j), r1 = row_of(base + j + K::TL);
        const Ch v0 = Ch::load(a, true, r0 * HD + c * 8);
        const Ch v1 = Ch::load(a, true, r1 * HD + c * 8);
        const float p0 = s_p[j] * scale_of(a.v_scale, r0), p1 = s_p[j + K::TL] * scale_of(a.v_scale, r1);
        float f0[8], f1[8];
        v0.unpack(f0);
        v1.unpack(f1);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[k] = fmaf(p1, f1[k], fmaf(p0, f0[k], acc[k]));
      }
      if (j < n) {
        const int64_t r0 = row_of(base + j);
        const Ch v0 = Ch::load(a, true, r0 * HD + c * 8);
        const float p0 = s_p[j] * scale_of(a.v_scale, r0);
        float f0[8];
        v0.unpack(f0);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[k] = fmaf(p0, f0[k], acc[k]);
      }
    }
    __syncthreads();  // s_p is rewritten by the next tile
  }

  if (vactive) {
#pragma unroll
    for (int k = 0; k < 8; ++k) s_acc[vlane * HD + c * 8 + k] = acc[k];
  }
  __syncthreads();
  for (int d = threadIdx.x; d < HD; d += kThreads) {
    float sum = 0.f;
#pragma unroll 4
    for (int r = 0; r < K::TL; ++r) sum += s_acc[r * HD + d];
    if (a.num_splits == 1) {
      a.out[static_cast<int64_t>(t) * a.nh * HD + h * HD + d] = from_f32<E>(sum / l);
    } else {
      float* p = a.part + ((static_cast<int64_t>(i_tok) * a.nh + h) * a.num_splits + split) * (HD + 2);
      p[d] = sum;
      if (d == 0) {
        p[HD] = m;
        p[HD + 1] = l;
      }
    }
  }
  if (a.num_splits > 1 && a.split_count) {
    const int64_t entry = static_cast<int64_t>(i_tok) * a.nh + h;
    merge_if_last_split(a.split_count, entry, a.part + entry * a.num_splits * (HD + 2), a.num_splits, HD,
                        a.out + static_cast<int64_t>(t) * a.nh * HD + h * HD);
  }
}

template <typename E>
__global__ void combine_splits_kernel(const float* __restrict__ part, E* __restrict__ out, int nh, int hd,
                                      int num_splits, const int32_t* __restrict__ tokens) {
  pdl_launch_dependents();
  pdl_wait();
  const int h = blockIdx.x, i_tok = blockIdx.y;
  const int t = tokens ? tokens[i_tok] : i_tok;
  merge_split_partials(part + (static_cast<int64_t>(i_tok) * nh + h) * num_splits * (hd + 2), num_splits, hd,
                       out + static_cast<int64_t>(t) * nh * hd + h * hd, threadIdx.x, blockDim.x);
}

template <typename E, int HD>
void launch(const AttentionArgs<E>& a, cudaStream_t s) {
  const dim3 grid(a.nh, a.T, a.num_splits);
  if (a.k_fp8) {
    if constexpr (std::is_same_v<E, bf16>) launch_pdl(attention_kernel<E, HD, true>, grid, kThreads, 0, s, a);
    else throw std::invalid_argument("paged_attention: an fp8 KV cache needs bf16 activations");
  } else {
    launch_pdl(attention_kernel<E, HD, false>, grid, kThreads, 0, s, a);
  }
}

}  // namespace

bool attention_supports_head_dim(int hd) {
  switch (hd) {
    case 8: case 16: case 24: case 32: case 48: case 64: case 80: case 96: case 112: case 128: case 256:
      return true;
    default:
      return false;
  }
}

template <typename E>
void combine_attention_splits(const AttentionArgs<E>& a, cudaStream_t s) {
  launch_pdl(combine_splits_kernel<E>, dim3(a.nh, a.T), 128, 0, s, a.part, a.out, a.nh, a.hd, a.num_splits, a.tokens);
}

template <typename E>
void paged_attention(const AttentionArgs<E>& a, cudaStream_t s) {
  if (a.T == 0) return;
  if (a.k_fp8 && (!a.v_fp8 || !a.k_scale || !a.v_scale))
    throw std::invalid_argument("paged_attention: an fp8 cache needs v_fp8, k_scale and v_scale too");
  if (a.num_splits < 1 || (a.num_splits > 1 && a.part == nullptr))
    throw std::invalid_argument("paged_attention: num_splits > 1 needs a partials buffer");
  switch (a.hd) {
    case 8: launch<E, 8>(a, s); break;
    case 16: launch<E, 16>(a, s); break;
    case 24: launch<E, 24>(a, s); break;
    case 32: launch<E, 32>(a, s); break;
    case 48: launch<E, 48>(a, s); break;
    case 64: launch<E, 64>(a, s); break;
    case 80: launch<E, 80>(a, s); break;
    case 96: launch<E, 96>(a, s); break;
    case 112: launch<E, 112>(a, s); break;
    case 128: launch<E, 128>(a, s); break;
    case 256: launch<E, 256>(a, s); break;
    default:
      throw std::invalid_argument("paged_attention: head_dim " + std::to_string(a.hd) +
                                  " has no kernel (multiples of 8: 8..128 listed, 256)");
  }
  if (a.num_splits > 1 && !a.split_count) combine_attention_splits(a, s);
}

template void paged_attention<bf16>(const AttentionArgs<bf16>&, cudaStream_t);
template void paged_attention<float>(const AttentionArgs<float>&, cudaStream_t);
template void combine_attention_splits<bf16>(const AttentionArgs<bf16>&, cudaStream_t);
template void combine_attention_splits<float>(const AttentionArgs<float>&, cudaStream_t);

}  // namespace engine::cuda
