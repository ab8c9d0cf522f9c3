// gemm_tma's work split (gemm_tma.cu): units (64-row tile, 64-k chunk) tile-major, block b of G taking
// [b U / G, (b + 1) U / G), and the order a block walks its range in. A host-side model of this order (every
// unit covered once, segments within one tile, contributors and slots as the tile counters expect) was checked
// over 309 (tiles, chunks, blocks) cases when it was written (docs/cuda-notes.md, v19).
#pragma once

namespace engine::cuda {

/// The first unit of block b.
__device__ __forceinline__ long long unit_begin(long long b, long long U, int G) { return b * U / G; }
/// The block whose range holds unit u.
__device__ __forceinline__ int block_of_unit(long long u, long long U, int G) {
  return static_cast<int>(((u + 1) * G - 1) / U);
}

// The order a block takes its units in. Its range [u0, u1) touches tiles t0..tl; with partials_first, the
// pieces of t0 and tl (shared with the neighbouring blocks) come first and the whole tiles after them, so the
// sums of a cut tile meet while the blocks still have work, not in the kernel's tail.
struct UnitOrder {
  long long u0, u1, tl_begin, len0, lenl;
  bool two;  // the range touches more than one tile and partials come first
  __device__ UnitOrder(long long b0, long long b1, int C, bool partials_first) : u0(b0), u1(b1) {
    const long long t0 = b0 / C, tl = (b1 - 1) / C;
    tl_begin = tl * C;
    len0 = (t0 + 1) * C < b1 ? (t0 + 1) * C - b0 : b1 - b0;
    lenl = b1 - tl_begin;
    two = partials_first && tl != t0;
  }
  /// The block's i-th unit.
  __device__ long long unit(long long i) const {
    if (!two || i < len0) return u0 + i;
    if (i < len0 + lenl) return tl_begin + (i - len0);
    return u0 + (i - lenl);
  }
};

}  // namespace engine::cuda
