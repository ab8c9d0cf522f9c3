// Paged attention: each query token attends to its sequence's cached K/V (positions 0 .. its own),
// read through the block table. One thread block per (query head, query token, context split).
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

namespace engine::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 256;

template <int HD>
struct Cfg {
  static_assert(HD % 8 == 0, "head_dim must be a multiple of 8 (16-byte rows)");
  static constexpr int C = HD / 8;  // 16-byte chunks per K/V row
  // Threads per key token in the score phase: a power of two dividing C, at most 8.
  static constexpr int TG = (C % 8 == 0 && C >= 32) ? 8 : (C % 4 == 0) ? 4 : (C % 2 == 0) ? 2 : 1;
  static constexpr int CPT = C / TG;         // chunks per thread in the score phase
  static constexpr int TL = kThreads / C;    // value rows processed at once in the value phase
};

__device__ __forceinline__ void bf16x8_to_f32(const uint4& v, float* f) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 x = __bfloat1622float2(p[k]);
    f[2 * k] = x.x;
    f[2 * k + 1] = x.y;
  }
}

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

template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 128 ? 8 : 4) attention_kernel(const AttentionArgs a) {
  using K = Cfg<HD>;
  __shared__ float s_p[kTile];
  __shared__ float s_red[kThreads / 32];
  __shared__ float s_acc[K::TL * HD];

  const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const int kvh = h / (a.nh / a.nkv);
  const int bs = a.block_size;
  const int len = a.positions[t] + 1;
  const int nblk = (len + bs - 1) / bs;
  const int bps = (nblk + a.num_splits - 1) / a.num_splits;  // blocks per split
  const int tok0 = min(len, split * bps * bs);
  const int tok1 = min(len, (split + 1) * bps * bs);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t];
  const int64_t tile_stride = static_cast<int64_t>(bs) * HD;  // one (block, kv head) tile
  const bf16* __restrict__ kc = a.k_cache;
  const bf16* __restrict__ vc = a.v_cache;
  auto row = [&](const bf16* cache, int tok) {
    const int64_t blk = bt[tok / bs];
    return cache + (blk * a.nkv + kvh) * tile_stride + static_cast<int64_t>(tok % bs) * HD;
  };

  // Score phase: thread g of a token group holds q chunks g, g + TG, ... (pre-scaled).
  const int g = threadIdx.x % K::TG, tlane = threadIdx.x / K::TG;
  float q[K::CPT][8];
  const bf16* qrow = a.q + static_cast<int64_t>(t) * a.q_stride + h * HD;
#pragma unroll
  for (int i = 0; i < K::CPT; ++i) {
    bf16x8_to_f32(*reinterpret_cast<const uint4*>(qrow + (i * K::TG + g) * 8), q[i]);
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
        const bf16* kp = row(kc, base + j);
        uint4 kv[K::CPT];
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) kv[i] = *reinterpret_cast<const uint4*>(kp + (i * K::TG + g) * 8);
#pragma unroll
        for (int i = 0; i < K::CPT; ++i) {
          float kf[8];
          bf16x8_to_f32(kv[i], kf);
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
        const uint4 v0 = *reinterpret_cast<const uint4*>(row(vc, base + j) + c * 8);
        const uint4 v1 = *reinterpret_cast<const uint4*>(row(vc, base + j + K::TL) + c * 8);
        const float p0 = s_p[j], p1 = s_p[j + K::TL];
        float f0[8], f1[8];
        bf16x8_to_f32(v0, f0);
        bf16x8_to_f32(v1, f1);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[k] = fmaf(p1, f1[k], fmaf(p0, f0[k], acc[k]));
      }
      if (j < n) {
        const uint4 v0 = *reinterpret_cast<const uint4*>(row(vc, base + j) + c * 8);
        float f0[8];
        bf16x8_to_f32(v0, f0);
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
      a.out[static_cast<int64_t>(t) * a.nh * HD + h * HD + d] = __float2bfloat16(sum / l);
    } else {
      float* p = a.part + ((static_cast<int64_t>(t) * a.nh + h) * a.num_splits + split) * (HD + 2);
      p[d] = sum;
      if (d == 0) {
        p[HD] = m;
        p[HD + 1] = l;
      }
    }
  }
}

// Merges the splits of one (head, token): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
__global__ void combine_splits_kernel(const float* __restrict__ part, bf16* __restrict__ out, int nh, int hd,
                                      int num_splits) {
  const int h = blockIdx.x, t = blockIdx.y;
  const float* base = part + (static_cast<int64_t>(t) * nh + h) * num_splits * (hd + 2);
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
    out[static_cast<int64_t>(t) * nh * hd + h * hd + d] = __float2bfloat16(num / den);
  }
}

template <int HD>
void launch(const AttentionArgs& a, cudaStream_t s) {
  const dim3 grid(a.nh, a.T, a.num_splits);
  attention_kernel<HD><<<grid, kThreads, 0, s>>>(a);
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

void paged_attention(const AttentionArgs& a, cudaStream_t s) {
  if (a.T == 0) return;
  if (a.num_splits < 1 || (a.num_splits > 1 && a.part == nullptr))
    throw std::invalid_argument("paged_attention: num_splits > 1 needs a partials buffer");
  switch (a.hd) {
    case 8: launch<8>(a, s); break;
    case 16: launch<16>(a, s); break;
    case 24: launch<24>(a, s); break;
    case 32: launch<32>(a, s); break;
    case 48: launch<48>(a, s); break;
    case 64: launch<64>(a, s); break;
    case 80: launch<80>(a, s); break;
    case 96: launch<96>(a, s); break;
    case 112: launch<112>(a, s); break;
    case 128: launch<128>(a, s); break;
    case 256: launch<256>(a, s); break;
    default:
      throw std::invalid_argument("paged_attention: head_dim " + std::to_string(a.hd) +
                                  " has no kernel (multiples of 8: 8..128 listed, 256)");
  }
  if (a.num_splits > 1) {
    combine_splits_kernel<<<dim3(a.nh, a.T), 128, 0, s>>>(a.part, a.out, a.nh, a.hd, a.num_splits);
    LLM_CUDA_LAUNCHED(combine_splits_kernel);
  }
}

}  // namespace engine::cuda
