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
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
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

template <typename E, int HD>
__global__ void __launch_bounds__(kThreads, min_blocks<E, HD>()) attention_kernel(const AttentionArgs<E> a) {
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
  const int64_t tile_stride = static_cast<int64_t>(bs) * HD;  // one (block, kv head) tile
  const E* __restrict__ kc = a.k_cache;
  const E* __restrict__ vc = a.v_cache;
  auto row = [&](const E* cache, int tok) {
    const int64_t blk = bt[tok / bs];
    return cache + (blk * a.nkv + kvh) * tile_stride + static_cast<int64_t>(tok % bs) * HD;
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
        const E* kp = row(kc, base + j);
        Pack8<E> kv[K::CPT];
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) kv[i] = ld8(kp + (i * K::TG + g) * 8);
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) {
          float kf[8];
          unpack8(kv[i], kf);
#pragma unroll
          for (int k = 0; k < 8; ++k) dot = fmaf(q[i][k], kf[k], dot);
        }
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
        const Pack8<E> v0 = ld8(row(vc, base + j) + c * 8);
        const Pack8<E> v1 = ld8(row(vc, base + j + K::TL) + c * 8);
        const float p0 = s_p[j], p1 = s_p[j + K::TL];
        float f0[8], f1[8];
        unpack8(v0, f0);
        unpack8(v1, f1);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[k] = fmaf(p1, f1[k], fmaf(p0, f0[k], acc[k]));
      }
      if (j < n) {
        const Pack8<E> v0 = ld8(row(vc, base + j) + c * 8);
        float f0[8];
        unpack8(v0, f0);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[k] = fmaf(s_p[j], f0[k], acc[k]);
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
}

// Merges the splits of one (head, token): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
template <typename E>
__global__ void combine_splits_kernel(const float* __restrict__ part, E* __restrict__ out, int nh, int hd,
                                      int num_splits, const int32_t* __restrict__ tokens) {
  const int h = blockIdx.x, i_tok = blockIdx.y;
  const int t = tokens ? tokens[i_tok] : i_tok;
  const float* base = part + (static_cast<int64_t>(i_tok) * nh + h) * num_splits * (hd + 2);
  float M = -INFINITY;
  for (int s = 0; s < num_splits; ++s)
    if (base[s * (hd + 2) + hd + 1] > 0.f) M = fmaxf(M, base[s * (hd + 2) + hd]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float num = 0.f, den = 0.f;
    for (int s = 0; s < num_splits; ++s) {
      const float* p = base + s * (hd + 2);
      if (p[hd + 1] > 0.f) {
        const float w = __expf(p[hd] - M);
        num += w * p[d];
        den += w * p[hd + 1];
      }
    }
    out[static_cast<int64_t>(t) * nh * hd + h * hd + d] = from_f32<E>(num / den);
  }
}

template <typename E, int HD>
void launch(const AttentionArgs<E>& a, cudaStream_t s) {
  const dim3 grid(a.nh, a.T, a.num_splits);
  attention_kernel<E, HD><<<grid, kThreads, 0, s>>>(a);
  LLM_CUDA_LAUNCHED(attention_kernel);
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
  combine_splits_kernel<E><<<dim3(a.nh, a.T), 128, 0, s>>>(a.part, a.out, a.nh, a.hd, a.num_splits, a.tokens);
  LLM_CUDA_LAUNCHED(combine_splits_kernel);
}

template <typename E>
void paged_attention(const AttentionArgs<E>& a, cudaStream_t s) {
  if (a.T == 0) return;
  if (a.k_fp8) throw std::invalid_argument("paged_attention: an fp8 KV cache is read by decode_attention only");
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
  if (a.num_splits > 1) combine_attention_splits(a, s);
}

template void paged_attention<bf16>(const AttentionArgs<bf16>&, cudaStream_t);
template void paged_attention<float>(const AttentionArgs<float>&, cudaStream_t);
template void combine_attention_splits<bf16>(const AttentionArgs<bf16>&, cudaStream_t);
template void combine_attention_splits<float>(const AttentionArgs<float>&, cudaStream_t);

}  // namespace engine::cuda
