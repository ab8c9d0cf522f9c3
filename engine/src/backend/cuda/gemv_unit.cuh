// The unit of the unit-layout GEMVs (gemv.cu's gemv_units and fused forms, gemv_preload.cu): kUnitValues
// consecutive values of one weight row, read as kUnitSlices 16-byte slices a lane of a warp (slice q of lane l:
// values q * 256 + l * 8 .. + 7 of the unit), values past K read as zeros.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_devices.h"

namespace engine::cuda {

constexpr int kUnitSlices = 4;
constexpr int kUnitValues = kUnitSlices * 32 * 8;

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

}  // namespace engine::cuda
