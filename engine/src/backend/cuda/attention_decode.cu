// Paged attention for decode rows, version 2: the same result as attention.cu's kernel (one thread block per
// (query head, query token, context split), flash-decoding partials merged by its combine kernel), but each
// group of lanes walks its own share of the context with its own online softmax, so a tile needs no block-wide
// barrier and a lane's K and V loads for several tokens are in flight at once.
//
// Lanes. A key/value row of HD elements is read by LPT = HD / EPL lanes, each taking EPL consecutive elements
// in one 16-byte load (bf16: 8 elements; float: 8 elements in two 16-byte loads; fp8: 16 elements). A warp
// holds 32 / LPT such groups; the block's G groups take the context's tokens in turn (group i: tokens i,
// i + G, ...), kR at a time:
//   1. load K and V of kR tokens (2 kR loads per lane in flight), and each token's scale (fp8)
//   2. score s_r = q . k_r: EPL multiply-adds per lane, a shuffle reduction over the LPT lanes (fp8: times the
//      token's K scale)
//   3. online softmax: m' = max(m, s_r), acc = acc e^(m - m') + sum_r e^(s_r - m') v_r, l likewise (fp8: each
//      weight times the token's V scale in acc, not in l)
// At the end the G groups' (m, l, acc) merge through shared memory into the output row (one split) or into
// the split's partial (acc, m, l) that attention.cu's combine kernel merges (num_splits > 1).
//
// Cache types: E (bf16 or float) as the activations, or fp8 e4m3 with one float scale per (token, kv head)
// of each of K and V (AttentionArgs::k_fp8 ...): a value is fp8 * scale.
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

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

struct Fp8 {};        // tag: the cache holds e4m3 bytes plus per-(token, head) scales; 16 per lane
struct Fp8Narrow {};  // the same cache, 8 bytes per lane (AttentionArgs::fp8_lane_bytes = 8)

template <typename E, typename C>
struct CacheTraits;
template <typename E>
struct CacheTraits<E, E> {  // bf16 or float, as the activations
  static constexpr int EPL = 8;
  static constexpr bool kScaled = false;
  using Raw = Pack8<E>;
  static __device__ __forceinline__ Raw load(const void* base, int64_t elem) {
    return ld8(static_cast<const E*>(base) + elem);
  }
  static __device__ __forceinline__ void unpack(const Raw& r, float* f) { unpack8(r, f); }
};
template <>
struct CacheTraits<bf16, Fp8> {
  static constexpr int EPL = 16;
  static constexpr bool kScaled = true;  // per-(token, kv head) scales of K and V
  using Raw = uint4;
  static __device__ __forceinline__ Raw load(const void* base, int64_t elem) {
    return *reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(base) + elem);
  }
  // Unscaled: the kernel multiplies a token's score by its K scale and its softmax weight by its V scale (two
  // multiplies per token instead of one per element).
  static __device__ __forceinline__ void unpack(const Raw& r, float* f) {
    e4m3x8_to_f32(make_uint2(r.x, r.y), f);
    e4m3x8_to_f32(make_uint2(r.z, r.w), f + 8);
  }
};

// The fp8 cache read 8 elements (8 bytes) per lane, as many lanes per token as bf16 takes: half of Fp8's q, acc and
// load registers. ptxas, head dim 128, 4 warps, 4 tokens in flight: 72 registers against Fp8's 96 (bf16: 64), so 7
// blocks an SM instead of 5 (bf16: 8), with 8-byte loads. Capping it at 64 registers spilled (24-60 bytes).
template <>
struct CacheTraits<bf16, Fp8Narrow> {
  static constexpr int EPL = 8;
  static constexpr bool kScaled = true;
  using Raw = uint2;
  static __device__ __forceinline__ Raw load(const void* base, int64_t elem) {
    return *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(base) + elem);
  }
  static __device__ __forceinline__ void unpack(const Raw& r, float* f) { e4m3x8_to_f32(r, f); }
};

// W: warps per block (AttentionArgs::warps); kR: tokens in flight per lane group (AttentionArgs::tokens_in_flight).
template <typename E, typename C, int HD, int W, int kR>
__global__ void __launch_bounds__(W * 32) decode_attention_kernel(const AttentionArgs<E> a) {
  pdl_launch_dependents();
  pdl_wait();
  l2_prefetch_share(a.l2_prefetch, a.l2_prefetch_bytes);
  using CT = CacheTraits<E, C>;
  constexpr int EPL = CT::EPL;
  constexpr int LPT = HD / EPL;    // lanes per token
  constexpr int TPW = 32 / LPT;    // token groups per warp
  constexpr int G = W * TPW;       // token groups per block
  static_assert(HD % EPL == 0 && 32 % LPT == 0, "head_dim must split into a power-of-two number of lanes");
  __shared__ float s_m[G], s_l[G];
  __shared__ float s_acc[G][HD];

  const int h = blockIdx.x, i_tok = blockIdx.y, split = blockIdx.z;
  const int t = a.tokens ? a.tokens[i_tok] : i_tok;
  const int kvh = h / (a.nh / a.nkv);
  const int bs = a.block_size;
  const int len = a.positions[t] + 1;
  const int nblk = (len + bs - 1) / bs;
  const int bps = (nblk + a.num_splits - 1) / a.num_splits;
  const int tok0 = min(len, split * bps * bs);
  const int tok1 = min(len, (split + 1) * bps * bs);
  const int32_t* __restrict__ bt = a.block_tables + a.bt_start[t];
  const PagedIndex pi(bs);

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int grp = warp * TPW + lane / LPT;                 // this lane's token group
  const int part = lane % LPT;                             // its slice: elements part*EPL ..
  const void* kc = a.k_fp8 ? static_cast<const void*>(a.k_fp8) : static_cast<const void*>(a.k_cache);
  const void* vc = a.v_fp8 ? static_cast<const void*>(a.v_fp8) : static_cast<const void*>(a.v_cache);

  float q[EPL];
  const E* qrow = a.q + static_cast<int64_t>(t) * a.q_stride + h * HD + part * EPL;
#pragma unroll
  for (int i = 0; i < EPL; i += 8) load8(qrow + i, q + i);
#pragma unroll
  for (int k = 0; k < EPL; ++k) q[k] *= a.scale;

  float acc[EPL];
#pragma unroll
  for (int k = 0; k < EPL; ++k) acc[k] = 0.f;
  float m = -INFINITY, l = 0.f;

  // The loop runs the same number of times in every lane of a warp (its bound depends on the warp only), so
  // the score shuffles always see the whole warp; a group's own tokens are base + lane / LPT + r * G.
  for (int base = tok0 + warp * TPW; base < tok1; base += G * kR) {
    typename CT::Raw kr[kR], vr[kR];
    float ks[kR], vs[kR];
    bool ok[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int tok = base + lane / LPT + r * G;
      ok[r] = tok < tok1;
      const int tk = ok[r] ? tok : tok0;  // an in-range row (tok0 < tok1 inside the loop), loaded and ignored
      const int64_t slot = pi.row_of(bt, tk, a.nkv, kvh);
      kr[r] = CT::load(kc, slot * HD + part * EPL);
      vr[r] = CT::load(vc, slot * HD + part * EPL);
      if constexpr (CT::kScaled) {
        ks[r] = a.k_scale[slot];
        vs[r] = a.v_scale[slot];
      }
    }
    float s[kR];
    float m_new = m;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      float kf[EPL];
      CT::unpack(kr[r], kf);
      float dot = 0.f;
#pragma unroll
      for (int k = 0; k < EPL; ++k) dot = fmaf(q[k], kf[k], dot);
#pragma unroll
      for (int o = LPT / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if constexpr (CT::kScaled) dot *= ks[r];
      s[r] = ok[r] ? dot : -INFINITY;
      m_new = fmaxf(m_new, s[r]);
    }
    if (m_new == -INFINITY) continue;  // none of this group's tokens yet (no shuffle follows in this iteration)
    const float corr = __expf(m - m_new);  // 0 while m = -inf
    l *= corr;
#pragma unroll
    for (int k = 0; k < EPL; ++k) acc[k] *= corr;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const float p = __expf(s[r] - m_new);  // 0 for a token out of range
      l += p;
      float vf[EPL];
      CT::unpack(vr[r], vf);
      float pv = p;
      if constexpr (CT::kScaled) pv *= vs[r];
#pragma unroll
      for (int k = 0; k < EPL; ++k) acc[k] = fmaf(pv, vf[k], acc[k]);
    }
    m = m_new;
  }

  // Merge the groups: M = max m_g; sum = sum_g e^(m_g - M) acc_g; L = sum_g e^(m_g - M) l_g.
#pragma unroll
  for (int k = 0; k < EPL; ++k) s_acc[grp][part * EPL + k] = acc[k];
  if (part == 0) {
    s_m[grp] = m;
    s_l[grp] = l;
  }
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int g = 0; g < G; ++g) M = fmaxf(M, s_m[g]);
  for (int d = threadIdx.x; d < HD; d += W * 32) {
    float sum = 0.f, L = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float w = __expf(s_m[g] - M);  // 0 for a group that saw no token
        sum = fmaf(w, s_acc[g][d], sum);
        L = fmaf(w, s_l[g], L);
      }
    }
    if (a.num_splits == 1) {
      a.out[static_cast<int64_t>(t) * a.nh * HD + h * HD + d] = from_f32<E>(sum / L);
    } else {
      float* p = a.part + ((static_cast<int64_t>(i_tok) * a.nh + h) * a.num_splits + split) * (HD + 2);
      p[d] = sum;
      if (d == 0) {
        p[HD] = M;
        p[HD + 1] = L;  // 0 for an empty split: the merge skips it
      }
    }
  }
  if (a.num_splits > 1 && a.split_count) {
    const int64_t entry = static_cast<int64_t>(i_tok) * a.nh + h;
    merge_if_last_split(a.split_count, entry, a.part + entry * a.num_splits * (HD + 2), a.num_splits, HD,
                        a.out + static_cast<int64_t>(t) * a.nh * HD + h * HD);
  }
}

template <typename E, typename C, int HD, int R>
void launch_r(const AttentionArgs<E>& a, cudaStream_t s) {
  const dim3 grid(a.nh, a.T, a.num_splits);
  switch (a.warps) {
    case 4: launch_pdl(decode_attention_kernel<E, C, HD, 4, R>, grid, 4 * 32, 0, s, a); break;
    case 8: launch_pdl(decode_attention_kernel<E, C, HD, 8, R>, grid, 8 * 32, 0, s, a); break;
    case 16: launch_pdl(decode_attention_kernel<E, C, HD, 16, R>, grid, 16 * 32, 0, s, a); break;
    default: throw std::invalid_argument("decode_attention: warps = " + std::to_string(a.warps) + " (4, 8 or 16)");
  }
}

template <typename E, typename C, int HD>
void launch(const AttentionArgs<E>& a, cudaStream_t s) {
  switch (a.tokens_in_flight) {
    case 4: launch_r<E, C, HD, 4>(a, s); break;
    case 8: launch_r<E, C, HD, 8>(a, s); break;
    default:
      throw std::invalid_argument("decode_attention: tokens_in_flight = " + std::to_string(a.tokens_in_flight) +
                                  " (4 or 8)");
  }
}

template <typename E, typename C>
void launch_hd(const AttentionArgs<E>& a, cudaStream_t s) {
  switch (a.hd) {
    case 64: launch<E, C, 64>(a, s); break;
    case 128: launch<E, C, 128>(a, s); break;
    default:
      throw std::invalid_argument("decode_attention: head_dim " + std::to_string(a.hd) + " has no kernel (64, 128)");
  }
}

}  // namespace

bool decode_attention_supports_head_dim(int hd) { return hd == 64 || hd == 128; }

template <typename E>
void decode_attention(const AttentionArgs<E>& a, cudaStream_t s) {
  if (a.T == 0) return;
  if (a.num_splits < 1 || (a.num_splits > 1 && a.part == nullptr))
    throw std::invalid_argument("decode_attention: num_splits > 1 needs a partials buffer");
  if (a.k_fp8) {
    if constexpr (std::is_same_v<E, bf16>) {
      if (a.fp8_lane_bytes == 8) launch_hd<bf16, Fp8Narrow>(a, s);
      else if (a.fp8_lane_bytes == 16) launch_hd<bf16, Fp8>(a, s);
      else throw std::invalid_argument("decode_attention: fp8_lane_bytes = " + std::to_string(a.fp8_lane_bytes) + " (8 or 16)");
    }
    else throw std::invalid_argument("decode_attention: an fp8 KV cache needs bf16 activations");
  } else {
    launch_hd<E, E>(a, s);
  }
  if (a.num_splits > 1 && !a.split_count) combine_attention_splits(a, s);
}

template void decode_attention<bf16>(const AttentionArgs<bf16>&, cudaStream_t);
template void decode_attention<float>(const AttentionArgs<float>&, cudaStream_t);

}  // namespace engine::cuda
