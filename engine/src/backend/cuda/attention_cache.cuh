// The decode attention's cache types and its ring's size (attention_decode.cu): E (bf16 or float) as the
// activations, or fp8 e4m3 with one float scale per (token, kv head) of each of K and V (AttentionArgs::k_fp8 ...):
// a value is fp8 * scale. CacheTraits<E, C>: how a lane loads, addresses and unpacks its slice of a key or value
// row (EPL elements); kScaled: the per-token scales apply.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/fp8.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda::attn {

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
  static __device__ __forceinline__ const void* addr(const void* base, int64_t elem) {
    return static_cast<const E*>(base) + elem;
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
  static __device__ __forceinline__ const void* addr(const void* base, int64_t elem) {
    return static_cast<const uint8_t*>(base) + elem;
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
  static __device__ __forceinline__ const void* addr(const void* base, int64_t elem) {
    return static_cast<const uint8_t*>(base) + elem;
  }
  static __device__ __forceinline__ void unpack(const Raw& r, float* f) { e4m3x8_to_f32(r, f); }
};

// The ring exists for the caches a lane reads in 16-byte slices (bf16, fp8 at 16 bytes a lane).
template <typename E, typename C>
constexpr bool kHasRing = sizeof(typename CacheTraits<E, C>::Raw) == sizeof(uint4);

// The ring of kD stages in dynamic shared memory: per stage, kR tokens' K and V slices of every lane (16 bytes
// each), then (fp8) the K and V scales of each group's kR tokens. ring_slices_bytes: the slices' part;
// ring_bytes: the whole (0 without a ring).
template <int W, int kR, int kD>
constexpr size_t ring_slices_bytes() {
  return size_t(kD) * kR * 2 * (W * 32) * sizeof(uint4);
}
template <typename E, typename C, int HD, int W, int kR, int kD>
constexpr size_t ring_bytes() {
  if constexpr (kD == 0) {
    return 0;
  } else {
    using CT = CacheTraits<E, C>;
    constexpr int G = W * (32 / (HD / CT::EPL));
    return ring_slices_bytes<W, kR, kD>() + (CT::kScaled ? size_t(kD) * kR * 2 * G * sizeof(float) : 0);
  }
}

}  // namespace engine::cuda::attn
