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
// Loads (AttentionArgs::ring_stages). 0: step 1 loads into registers, so a lane has one iteration's kR tokens in
// flight and none while it computes. n = 2..4: each lane copies its slices of K and V (and, fp8, lane 0 of a
// group the token's scales) by cp.async into its own slots of a ring of n stages in shared memory, n - 1
// iterations ahead of the one it computes; tokens past the split's end are zero-filled instead of read. The
// tokens, their order and the arithmetic are the register path's, so the bits are too (for finite caches).
// AttentionArgs::kv_before_wait (decode rows): the kernel starts on its first iterations' K/V before it waits on
// the kernel before it (the ring: their copies, n - 1 stages; registers: prefetches into L2 of two), except the
// iteration that holds the row's new token, which that kernel writes; q is read after the wait.
//
// Cache types (bf16 / float as the activations, fp8 e4m3 with per-(token, kv head) scales): attention_cache.cuh.
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "backend/cuda/attention_cache.cuh"
#include "backend/cuda/attention_splits.cuh"
#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/paged_index.h"
#include "backend/cuda/l2_prefetch.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

using attn::CacheTraits;
using attn::Fp8;
using attn::Fp8Narrow;
using attn::kHasRing;
using attn::ring_bytes;
using attn::ring_slices_bytes;

// W: warps per block (AttentionArgs::warps); kR: tokens in flight per lane group (AttentionArgs::tokens_in_flight);
// kD: the ring's stages (AttentionArgs::ring_stages; 0: loads into registers).
template <typename E, typename C, int HD, int W, int kR, int kD>
__global__ void __launch_bounds__(W * 32) decode_attention_kernel(const AttentionArgs<E> a) {
  pdl_launch_dependents();
  // Without kv_before_wait everything below follows the wait; with it, the indices and the K/V loads of the
  // iterations before the one that holds the row's new token come first (see `early`).
  if (!a.kv_before_wait) pdl_wait();
  using CT = CacheTraits<E, C>;
  constexpr int EPL = CT::EPL;
  constexpr int LPT = HD / EPL;    // lanes per token
  constexpr int TPW = 32 / LPT;    // token groups per warp
  constexpr int G = W * TPW;       // token groups per block
  static_assert(HD % EPL == 0 && 32 % LPT == 0, "head_dim must split into a power-of-two number of lanes");
  __shared__ float s_m[G], s_l[G];
  extern __shared__ __align__(16) uint4 ring_smem[];
  float* s_acc;  // [G][HD]: the groups' acc for the merge; with a ring, on the ring once it is drained
  if constexpr (kD > 0) {
    static_assert(kHasRing<E, C>, "the ring moves 16-byte lane slices");
    static_assert(size_t(G) * HD * sizeof(float) <= ring_slices_bytes<W, kR, kD>(), "s_acc fits the ring");
    s_acc = reinterpret_cast<float*>(ring_smem);
  } else {
    __shared__ float s_acc_own[G * HD];
    s_acc = s_acc_own;
  }

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

  // The loop runs the same number of times in every lane of a warp (its bound depends on the warp only), so
  // the score shuffles always see the whole warp; a group's own tokens are base + lane / LPT + r * G.
  constexpr int kStep = G * kR;
  const int base0 = tok0 + warp * TPW;
  const int n_it = base0 < tok1 ? (tok1 - base0 + kStep - 1) / kStep : 0;
  // kv_before_wait: the iterations whose tokens were all written by earlier steps, loaded before the wait. Only
  // a split that ends at the row's length holds its new token (position len - 1), and only in this warp's last
  // iteration (the warp's tokens below base0 + (n_it - 1) * kStep are its earlier iterations'). The rows an
  // early iteration reads in place of tokens past the split's end (tok0) are old too: tok0 == len - 1 leaves
  // only a last iteration.
  const int early = !a.kv_before_wait ? 0 : tok1 == len ? n_it - 1 : n_it;

  // Register path: loads into registers before the wait would hold them across it (measured in ptxas: bf16
  // 64 -> 80 registers, fp8 96 -> 119), so its early iterations (at most kEarlyRegs) are prefetched into L2
  // instead, by one lane per 128-byte line, and loaded after the wait as before.
  constexpr int kEarlyRegs = 2;
  auto prefetch_l2 = [&](int it) {
    const int b = base0 + it * kStep;
    constexpr int kLaneBytes = int(sizeof(typename CT::Raw));  // a lane's slice of a row
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int tok = b + lane / LPT + r * G;
      if (tok >= tok1) continue;
      const int64_t slot = pi.row_of(bt, tok, a.nkv, kvh);
      if ((part * kLaneBytes) % 128 == 0) {
        l2_prefetch_line(CT::addr(kc, slot * HD + part * EPL));
        l2_prefetch_line(CT::addr(vc, slot * HD + part * EPL));
      }
      if constexpr (CT::kScaled) {
        if (part == 0) {
          l2_prefetch_line(a.k_scale + slot);
          l2_prefetch_line(a.v_scale + slot);
        }
      }
    }
  };
  // Ring path: [kD][kR][K, V][lane] 16-byte slices, then (fp8) [kD][kR][K, V][group] scales, written by each
  // group's lane 0. A lane reads back its own slices (visible after its wait) and its group's scales (after the
  // warp's __syncwarp as well). Iteration it uses stage it % kD; the stage refilled in an iteration is the one
  // the warp finished in the one before. The first kD - 1 stages are copied ahead of the loop, the early ones
  // before the wait; one commit group per stage, in stage order, either way.
  constexpr int kLanes = W * 32;
  float* const ring_sc = reinterpret_cast<float*>(reinterpret_cast<char*>(ring_smem) + ring_slices_bytes<W, kR, kD>());
  auto issue = [&](int it, int st) {
    const int b = base0 + it * kStep;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int tok = b + lane / LPT + r * G;
      const bool in = tok < tok1;
      const int64_t slot = pi.row_of(bt, in ? tok : tok0, a.nkv, kvh);
      uint4* dst = ring_smem + size_t((st * kR + r) * 2) * kLanes + threadIdx.x;
      cp_async16_or_zero(dst, CT::addr(kc, slot * HD + part * EPL), in);
      cp_async16_or_zero(dst + kLanes, CT::addr(vc, slot * HD + part * EPL), in);
      if constexpr (CT::kScaled) {
        if (part == 0) {
          float* sc = ring_sc + (st * kR + r) * 2 * G + grp;
          cp_async4_or_zero(sc, a.k_scale + slot, in);
          cp_async4_or_zero(sc + G, a.v_scale + slot, in);
        }
      }
    }
  };
  int issued = 0;  // ring stages copied ahead of the loop so far
  if constexpr (kD == 0) {
    for (int it = 0; it < kEarlyRegs && it < early; ++it) prefetch_l2(it);
  } else {
    for (; issued < kD - 1 && issued < early; ++issued) {
      issue(issued, issued);
      cp_async_commit();
    }
  }
  if (a.kv_before_wait) pdl_wait();
  l2_prefetch_share(a.l2_prefetch, a.l2_prefetch_bytes);

  float q[EPL];
  if (!CT::kScaled && a.qkv) {  // an fp8 cache with qkv is refused on the host (decode_attention)
    // Fused RoPE (AttentionArgs::qkv): this lane's EPL elements of a head of the f32 row, rotated as rope_kv.cu
    // rotates them (they sit in one half of the head: EPL divides hd / 2).
    constexpr int kHalf = HD / 2;
    static_assert(kHalf % EPL == 0, "a lane's elements lie in one half of the head");
    const float* row = a.qkv + static_cast<int64_t>(t) * a.q_stride;
    const float2* cs = a.rope + static_cast<int64_t>(len - 1) * kHalf;
    auto rotate = [&](const float* head, int e0, float* out) {
      const bool second = e0 >= kHalf;
      const int j0 = second ? e0 - kHalf : e0;
      float lo[EPL], hi[EPL];
#pragma unroll
      for (int i = 0; i < EPL; i += 8) {
        load8(head + j0 + i, lo + i);
        load8(head + j0 + kHalf + i, hi + i);
      }
#pragma unroll
      for (int k = 0; k < EPL; ++k) {
        const float2 r = cs[j0 + k];
        out[k] = second ? rope_hi(lo[k], hi[k], r.x, r.y) : rope_lo(lo[k], hi[k], r.x, r.y);
      }
    };
    rotate(row + h * HD, part * EPL, q);
#pragma unroll
    for (int k = 0; k < EPL; ++k) q[k] = to_f32(from_f32<E>(q[k]));  // as rope_kv_write stores q
    const int slot = a.slots[t];
    if (tok0 < tok1 && tok1 == len && slot >= 0) {  // block-uniform: this split holds the row's new token
      if (threadIdx.x < LPT) {       // lane group 0 of warp 0 writes its row
        float kr[EPL], vr[EPL];
        rotate(row + (a.nh + kvh) * HD, part * EPL, kr);
        const float* v = row + (a.nh + a.nkv + kvh) * HD + part * EPL;
#pragma unroll
        for (int i = 0; i < EPL; i += 8) load8(v + i, vr + i);
        const int64_t at = pi.row(pi.block(slot), a.nkv, kvh, pi.offset(slot)) * HD + part * EPL;
        E* kd = const_cast<E*>(a.k_cache) + at;
        E* vd = const_cast<E*>(a.v_cache) + at;
#pragma unroll
        for (int i = 0; i < EPL; i += 8) {
          store8(kd + i, kr + i);
          store8(vd + i, vr + i);
        }
      }
      __syncthreads();  // the row is in the cache (global writes are visible to the block after the barrier)
    }
  } else {
    const E* qrow = a.q + static_cast<int64_t>(t) * a.q_stride + h * HD + part * EPL;
#pragma unroll
    for (int i = 0; i < EPL; i += 8) load8(qrow + i, q + i);
  }
#pragma unroll
  for (int k = 0; k < EPL; ++k) q[k] *= a.scale;

  float acc[EPL];
#pragma unroll
  for (int k = 0; k < EPL; ++k) acc[k] = 0.f;
  float m = -INFINITY, l = 0.f;

  // One iteration's update from its kR tokens (starting at base): K and V slices, and their scales (fp8), from
  // the accessors of either load path.
  auto consume = [&](int base, auto&& k_raw, auto&& v_raw, auto&& k_sc, auto&& v_sc) {
    float s[kR];
    float m_new = m;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const bool ok = base + lane / LPT + r * G < tok1;
      float kf[EPL];
      CT::unpack(k_raw(r), kf);
      float dot = 0.f;
#pragma unroll
      for (int k = 0; k < EPL; ++k) dot = fmaf(q[k], kf[k], dot);
#pragma unroll
      for (int o = LPT / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if constexpr (CT::kScaled) dot *= k_sc(r);
      s[r] = ok ? dot : -INFINITY;
      m_new = fmaxf(m_new, s[r]);
    }
    if (m_new == -INFINITY) return;  // none of this group's tokens yet (no shuffle follows in this iteration)
    const float corr = __expf(m - m_new);  // 0 while m = -inf
    l *= corr;
#pragma unroll
    for (int k = 0; k < EPL; ++k) acc[k] *= corr;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const float p = __expf(s[r] - m_new);  // 0 for a token out of range
      l += p;
      float vf[EPL];
      CT::unpack(v_raw(r), vf);
      float pv = p;
      if constexpr (CT::kScaled) pv *= v_sc(r);
#pragma unroll
      for (int k = 0; k < EPL; ++k) acc[k] = fmaf(pv, vf[k], acc[k]);
    }
    m = m_new;
  };

  if constexpr (kD == 0) {
    for (int base = base0; base < tok1; base += kStep) {
      typename CT::Raw kr[kR], vr[kR];
      float ks[kR] = {}, vs[kR] = {};  // fp8 only
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        const int tok = base + lane / LPT + r * G;
        const int tk = tok < tok1 ? tok : tok0;  // an in-range row (tok0 < tok1 inside the loop), loaded and ignored
        const int64_t slot = pi.row_of(bt, tk, a.nkv, kvh);
        kr[r] = CT::load(kc, slot * HD + part * EPL);
        vr[r] = CT::load(vc, slot * HD + part * EPL);
        if constexpr (CT::kScaled) {
          ks[r] = a.k_scale[slot];
          vs[r] = a.v_scale[slot];
        }
      }
      consume(base, [&](int r) { return kr[r]; }, [&](int r) { return vr[r]; }, [&](int r) { return ks[r]; },
              [&](int r) { return vs[r]; });
    }
  } else {
    for (; issued < kD - 1; ++issued) {
      if (issued < n_it) issue(issued, issued);
      cp_async_commit();
    }
    int st = 0;
    for (int it = 0; it < n_it; ++it) {
      cp_async_wait<kD - 2>();  // this lane's copies of stage st have landed
      __syncwarp();             // and its group's scales; every lane is past its reads of the stage refilled next
      if (it + kD - 1 < n_it) issue(it + kD - 1, st == 0 ? kD - 1 : st - 1);
      cp_async_commit();
      const uint4* sl = ring_smem + size_t(st * kR * 2) * kLanes + threadIdx.x;
      const float* sc = ring_sc + st * kR * 2 * G + grp;
      using Raw = typename CT::Raw;
      consume(
          base0 + it * kStep, [&](int r) { return *reinterpret_cast<const Raw*>(sl + (2 * r) * kLanes); },
          [&](int r) { return *reinterpret_cast<const Raw*>(sl + (2 * r + 1) * kLanes); },
          [&](int r) { return sc[(2 * r) * G]; }, [&](int r) { return sc[(2 * r + 1) * G]; });
      st = st + 1 == kD ? 0 : st + 1;
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp is done with the ring before s_acc, on it, is written
  }

  // Merge the groups: M = max m_g; sum = sum_g e^(m_g - M) acc_g; L = sum_g e^(m_g - M) l_g.
#pragma unroll
  for (int k = 0; k < EPL; ++k) s_acc[grp * HD + part * EPL + k] = acc[k];
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
        sum = fmaf(w, s_acc[g * HD + d], sum);
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

// One instantiation's launch; a ring sets its dynamic shared memory size once per instantiation (graph capture
// allows it: no stream work): past 48 KB with the static part (s_m, s_l) a launch needs that opt-in, and a bf16
// ring of 3 stages at 4 warps is 48 KB alone (the first version asked only above 48 KB of ring and failed there
// with an invalid argument). One past what a block may have is an error naming the arguments.
template <typename E, typename C, int HD, int W, int R, int D>
void launch_one(const AttentionArgs<E>& a, dim3 grid, cudaStream_t s) {
  auto* kernel = decode_attention_kernel<E, C, HD, W, R, D>;
  constexpr size_t smem = ring_bytes<E, C, HD, W, R, D>();
  if constexpr (smem > 0) {
    static const bool fits = [&] {
      cudaFuncAttributes fa{};
      LLM_CUDA_CHECK(cudaFuncGetAttributes(&fa, kernel));
      if (smem + fa.sharedSizeBytes > size_t(device_smem_optin())) return false;
      LLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      return true;
    }();
    if (!fits)
      throw std::invalid_argument("decode_attention: a ring of " + std::to_string(D) + " stages at " +
                                  std::to_string(W) + " warps and " + std::to_string(R) + " tokens in flight needs " +
                                  std::to_string(smem) + " bytes of shared memory a block, more than the device has");
  }
  launch_pdl(kernel, grid, W * 32, smem, s, a);
}

template <typename E, typename C, int HD, int R, int D>
void launch_w(const AttentionArgs<E>& a, cudaStream_t s) {
  const dim3 grid(a.nh, a.T, a.num_splits);
  switch (a.warps) {
    case 4: launch_one<E, C, HD, 4, R, D>(a, grid, s); break;
    case 8: launch_one<E, C, HD, 8, R, D>(a, grid, s); break;
    case 16: launch_one<E, C, HD, 16, R, D>(a, grid, s); break;
    default: throw std::invalid_argument("decode_attention: warps = " + std::to_string(a.warps) + " (4, 8 or 16)");
  }
}

template <typename E, typename C, int HD, int R>
void launch_r(const AttentionArgs<E>& a, cudaStream_t s) {
  if (a.ring_stages == 0) return launch_w<E, C, HD, R, 0>(a, s);
  if constexpr (kHasRing<E, C>) {
    switch (a.ring_stages) {
      case 2: return launch_w<E, C, HD, R, 2>(a, s);
      case 3: return launch_w<E, C, HD, R, 3>(a, s);
      case 4: return launch_w<E, C, HD, R, 4>(a, s);
      default: break;
    }
    throw std::invalid_argument("decode_attention: ring_stages = " + std::to_string(a.ring_stages) + " (0, 2, 3 or 4)");
  }
  throw std::invalid_argument("decode_attention: ring_stages = " + std::to_string(a.ring_stages) +
                              " needs 16-byte lane loads (a bf16 cache, or fp8 at 16 bytes a lane); this cache has none");
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
bool decode_attention_has_ring(const AttentionArgs<E>& a) {
  if constexpr (std::is_same_v<E, bf16>) {
    if (a.k_fp8) return a.fp8_lane_bytes == 16 ? kHasRing<bf16, Fp8> : kHasRing<bf16, Fp8Narrow>;
  }
  return kHasRing<E, E>;
}
template bool decode_attention_has_ring<bf16>(const AttentionArgs<bf16>&);
template bool decode_attention_has_ring<float>(const AttentionArgs<float>&);

template <typename E>
void decode_attention(const AttentionArgs<E>& a, cudaStream_t s) {
  if (a.T == 0) return;
  if (a.num_splits < 1 || (a.num_splits > 1 && a.part == nullptr))
    throw std::invalid_argument("decode_attention: num_splits > 1 needs a partials buffer");
  if (a.qkv && (a.k_fp8 || !a.rope || !a.slots || a.q_stride != (a.nh + 2 * a.nkv) * a.hd))
    throw std::invalid_argument(
        "decode_attention: the fused RoPE (qkv) needs a bf16 or float cache, the rope table, the slots and "
        "q_stride = (nh + 2 nkv) hd");
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
