// The unit of the unit-layout GEMVs (gemv.cu's gemv_units and fused forms, gemv_preload.cu): kUnitValues
// consecutive values of one weight row, read as kUnitSlices 16-byte slices a lane of a warp (slice q of lane l:
// values q * 256 + l * 8 .. + 7 of the unit), values past K read as zeros.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {

constexpr int kUnitSlices = 4;
constexpr int kUnitValues = kUnitSlices * 32 * 8;

/// Units a row of K values holds (its last one shorter when K % kUnitValues != 0).
__host__ __device__ inline int unit_count(int K) { return (K + kUnitValues - 1) / kUnitValues; }

/// Rows a block of a unit-layout GEMV owns: one block per SM (host side).
inline int unit_rows_per_block(int N) { return (N + device_sm_count() - 1) / device_sm_count(); }

/// Lane `lane`'s slices of unit `seg` of `row` (K values; global or shared memory) into wv.
__device__ __forceinline__ void load_unit(uint4 (&wv)[kUnitSlices], const __nv_bfloat16* row, int seg, int lane,
                                          int K) {
  const int k0 = seg * kUnitValues + lane * 8;
#pragma unroll
  for (int q = 0; q < kUnitSlices; ++q) {
    const int k = k0 + q * 256;
    wv[q] = k < K ? *reinterpret_cast<const uint4*>(row + k) : make_uint4(0, 0, 0, 0);
  }
}

/// 8 bf16 -> 8 floats: with integer operations (IntCvt, the default since v12) or cvt.f32.bf16; the same values.
template <bool IntCvt>
__device__ __forceinline__ void cvt8(const uint4& v, float* f) {
  if constexpr (IntCvt) bf16x8_to_f32_int(v, f);
  else bf16x8_to_f32(v, f);
}

/// One unit's sums for M rows of x (xs: M rows of K bf16 in shared memory), its slices wv already loaded: one
/// fmaf chain a row in slice then element order, then the warp's shuffle sum; every lane holds the sums. The one
/// copy of the arithmetic, so every unit-layout GEMV gives the same bits for the same unit.
template <int M, bool IntCvt>
__device__ __forceinline__ void unit_dot(const uint4 (&wv)[kUnitSlices], const __nv_bfloat16* xs, int seg, int lane,
                                         int K, float (&acc)[M]) {
  const int k0 = seg * kUnitValues + lane * 8;
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
#pragma unroll
  for (int q = 0; q < kUnitSlices; ++q) {
    const int k = k0 + q * 256;
    if (k >= K) break;
    float wf[8];
    cvt8<IntCvt>(wv[q], wf);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float xf[8];
      cvt8<IntCvt>(*reinterpret_cast<const uint4*>(xs + m * K + k), xf);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[m] = fmaf(wf[j], xf[j], acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
  }
}

}  // namespace engine::cuda
