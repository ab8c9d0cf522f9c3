// Device helpers shared by the .cu files: moving 8 consecutive elements of the storage type E (bf16 or
// float) with 16-byte memory operations, and converting single elements to and from float.
//   bf16:  8 elements = 16 bytes = one uint4
//   float: 8 elements = 32 bytes = two float4
// The pointer must be 16-byte aligned: every caller indexes rows whose lengths are multiples of 8 elements.
// Pack8 lets a kernel issue all its loads before converting any of them (the load / unpack split keeps the
// bf16 kernels' instruction order what it was before they were templated).
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/kernels.h"

namespace engine::cuda {

template <typename E>
struct Pack8;
template <>
struct Pack8<bf16> {
  uint4 v;
};
template <>
struct Pack8<float> {
  float4 a, b;
};

__device__ __forceinline__ Pack8<bf16> ld8(const bf16* p) { return {*reinterpret_cast<const uint4*>(p)}; }
__device__ __forceinline__ Pack8<float> ld8(const float* p) {
  const float4* q = reinterpret_cast<const float4*>(p);
  return {q[0], q[1]};
}

/// 8 bf16 held in (or read through a reference to) a uint4 -> 8 floats.
__device__ __forceinline__ void bf16x8_to_f32(const uint4& v, float* f) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 x = __bfloat1622float2(p[k]);
    f[2 * k] = x.x;
    f[2 * k + 1] = x.y;
  }
}
// 8 bf16 -> 8 floats with integer operations: a bf16 is the top half of the float with the same bits, so the
// low element of each 32-bit pair is the word shifted left 16 and the high one the word with its low half
// cleared. Exact, the same values as bf16x8_to_f32 (vec8.cuh), whose cvt.f32.bf16 limited these kernels at
// M >= 2 (v12: M = 2 / 4 / 8 took ~1.2 / 2.1 / 4.2x the M = 1 GEMV time with it, ~1.0 / 1.2 / 2.1x with this;
// M = 1 unchanged). gemv.cu and gemv_preload.cu.
__device__ __forceinline__ void bf16x8_to_f32_int(const uint4& v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    f[2 * k] = __uint_as_float(w[k] << 16);
    f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
  }
}
__device__ __forceinline__ void unpack8(const Pack8<bf16>& v, float* f) { bf16x8_to_f32(v.v, f); }
__device__ __forceinline__ void unpack8(const Pack8<float>& v, float* f) {
  f[0] = v.a.x; f[1] = v.a.y; f[2] = v.a.z; f[3] = v.a.w;
  f[4] = v.b.x; f[5] = v.b.y; f[6] = v.b.z; f[7] = v.b.w;
}

/// f[0..7] = float(p[0..7]). The bf16 version converts through a reference to global memory, as the bf16
/// kernels did before they were templated (the compiler may then split the load; measured no slower).
__device__ __forceinline__ void load8(const bf16* p, float* f) { bf16x8_to_f32(*reinterpret_cast<const uint4*>(p), f); }
__device__ __forceinline__ void load8(const float* p, float* f) { unpack8(ld8(p), f); }

/// p[0..7] = E(f[0..7]) (round to nearest even for bf16)
__device__ __forceinline__ void store8(bf16* p, const float* f) {
  uint4 o;
  __nv_bfloat162* op = reinterpret_cast<__nv_bfloat162*>(&o);
#pragma unroll
  for (int k = 0; k < 4; ++k) op[k] = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
  *reinterpret_cast<uint4*>(p) = o;
}
__device__ __forceinline__ void store8(float* p, const float* f) {
  float4* q = reinterpret_cast<float4*>(p);
  q[0] = make_float4(f[0], f[1], f[2], f[3]);
  q[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float to_f32(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(float v) { return v; }

template <typename E>
__device__ __forceinline__ E from_f32(float v);
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }

}  // namespace engine::cuda
