// TMA tensor maps (Hopper, sm_90+), made on the host through the driver's cuTensorMapEncodeTiled (found at run
// time, so nothing links against libcuda): what a kernel's cp.async.bulk.tensor copies read. Used by gemm_tma.
#pragma once

#include <cuda.h>

namespace engine::cuda {

/// A row-major bf16 [rows, cols] matrix as 2-D boxes of box_rows x box_cols, with the 128-byte swizzle (so
/// box_cols * 2 bytes must be 128 at most) and zeros past the matrix's edges. `what` names the caller in the
/// error thrown (std::runtime_error) when the driver has no encoder or refuses the map.
CUtensorMap bf16_tile_map(const void* base, int rows, int cols, int box_rows, int box_cols, const char* what);

}  // namespace engine::cuda
