// RoPE on q and k, fused with the write of k and v into the paged KV cache: one pass over the step's f32
// qkv rows (the QKV GEMM's output). Reading f32 and rounding to the storage type E only after the rotation
// means each stored q/k/v value is rounded once (rounding before RoPE as well cost accuracy for nothing).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <stdexcept>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/paged_index.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"

namespace engine::cuda {
namespace {

// Four consecutive pairs per thread: work item w = (token t, head, quad q) with q fastest, so a warp's loads of
// one head row are consecutive 16-byte pieces. Heads 0 .. nh-1 are q heads: rotated into q_out[t, head*hd ...];
// heads nh .. nh+nkv-1 are kv heads (their k sits at the same place in the qkv row): rotated k and plain v go
// to cache[(block, kv_head, offset, :)]. Pairs (i, i + hd/2) rotate by rope[pos, i]:
//   out[i] = a*cos - b*sin,  out[i + hd/2] = b*cos + a*sin   (a = x[i], b = x[i + hd/2])
// The first version (a block of hd/2 threads per (token, head), one 4-byte load per value) ran at ~1 TB/s: at
// 2,012 tokens it launched 193k blocks of 64 threads (docs/cuda-notes.md, v17). head_dim is a multiple of 8
// (every attention kernel needs it; cuda_weights.cc refuses others), so hd/2 is a multiple of 4 and each
// quad's loads and stores are aligned.
//   qkv: f32 [T, (nh + 2*nkv)*hd];  q_out: E [T, nh*hd];  caches: E [num_blocks, nkv, block_size, hd]
struct Quad {
  float a[4], b[4];
};

__device__ __forceinline__ void load4(const float* p, float* f) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
}
// x[i..i+3] and x[i+half..i+half+3] rotated by rope[pos, i..i+3] (two float4 = four (cos, sin) pairs).
__device__ __forceinline__ Quad rotate4(const float* x, const float2* cs, int half) {
  float a[4], b[4];
  load4(x, a);
  load4(x + half, b);
  const float4 c01 = *reinterpret_cast<const float4*>(cs), c23 = *reinterpret_cast<const float4*>(cs + 2);
  const float c[4] = {c01.x, c01.z, c23.x, c23.z}, sn[4] = {c01.y, c01.w, c23.y, c23.w};
  Quad r;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    r.a[j] = rope_lo(a[j], b[j], c[j], sn[j]);
    r.b[j] = rope_hi(a[j], b[j], c[j], sn[j]);
  }
  return r;
}
__device__ __forceinline__ void store4(bf16* p, const float* f) {
  uint2 o;
  __nv_bfloat162* op = reinterpret_cast<__nv_bfloat162*>(&o);
  op[0] = __floats2bfloat162_rn(f[0], f[1]);
  op[1] = __floats2bfloat162_rn(f[2], f[3]);
  *reinterpret_cast<uint2*>(p) = o;
}
__device__ __forceinline__ void store4(float* p, const float* f) {
  *reinterpret_cast<float4*>(p) = make_float4(f[0], f[1], f[2], f[3]);
}

template <typename E>
__global__ void rope_kv_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ positions,
                               const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                               E* __restrict__ q_out, E* __restrict__ k_cache, E* __restrict__ v_cache, int nh,
                               int nkv, int hd, int block_size, int64_t total) {
  pdl_launch_dependents();
  pdl_wait();
  const int half = hd / 2, quads = half / 4, per_token = (nh + nkv) * quads;
  const PagedIndex pi(block_size);
  for (int64_t w = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; w < total; w += int64_t{gridDim.x} * blockDim.x) {
    const int t = static_cast<int>(w / per_token), r = static_cast<int>(w - int64_t{t} * per_token);
    const int head = r / quads, i = (r - head * quads) * 4;
    const float* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
    const Quad y = rotate4(row + head * hd + i, rope + static_cast<int64_t>(positions[t]) * half + i, half);
    if (head < nh) {
      E* q = q_out + (static_cast<int64_t>(t) * nh + head) * hd + i;
      store4(q, y.a);
      store4(q + half, y.b);
      continue;
    }
    const int slot = slots[t];
    if (slot < 0) continue;  // padding row
    const int h = head - nh;
    const int64_t at = pi.row(pi.block(slot), nkv, h, pi.offset(slot)) * hd + i;
    store4(k_cache + at, y.a);
    store4(k_cache + at + half, y.b);
    const float* v = row + static_cast<int64_t>(nh + nkv + h) * hd + i;
    float va[4], vb[4];
    load4(v, va);
    load4(v + half, vb);
    store4(v_cache + at, va);
    store4(v_cache + at + half, vb);
  }
}

// The fp8 cache: the same rotation, then each (token, kv head) row of k and of v is scaled by its own
// max|x| / 448 (e4m3's largest finite value) and rounded once to e4m3. The items of one head row are a group
// of g = the power of two >= hd/8 lanes (at most 32: head_dim <= 256), lanes past hd/8 idle, so the row's max is
// a shuffle reduction inside the group; the loop runs whole warps (a lane past the end computes on item 0 and
// stores nothing) so that every shuffle has all 32 lanes.
__device__ __forceinline__ uint32_t e4m3x4(const float* f, float scale) {
  uint32_t o = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j)
    o |= uint32_t(__nv_cvt_float_to_fp8(f[j] / scale, __NV_SATFINITE, __NV_E4M3)) << (8 * j);
  return o;
}
__device__ __forceinline__ float group_max(float v, int g) {
  for (int o = g / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__global__ void rope_kv_fp8_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ positions,
                                   const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                                   bf16* __restrict__ q_out, uint8_t* __restrict__ k_cache, uint8_t* __restrict__ v_cache,
                                   float* __restrict__ k_scale, float* __restrict__ v_scale, int nh, int nkv, int hd,
                                   int block_size, int g, int64_t total) {
  pdl_launch_dependents();
  pdl_wait();
  const int half = hd / 2, quads = half / 4, per_token = (nh + nkv) * g;
  const PagedIndex pi(block_size);
  const int lane = threadIdx.x % 32;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t base = int64_t{blockIdx.x} * blockDim.x + threadIdx.x - lane; base < total; base += stride) {
    const int64_t w = base + lane < total ? base + lane : 0;
    const int t = static_cast<int>(w / per_token), r = static_cast<int>(w - int64_t{t} * per_token);
    const int head = r / g, q = r - head * g;
    const bool live = base + lane < total && q < quads;
    const int i = (live ? q : 0) * 4;
    const float* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
    const Quad y = rotate4(row + head * hd + i, rope + static_cast<int64_t>(positions[t]) * half + i, half);
    const bool kv = head >= nh;
    const int h = head - nh;
    float va[4] = {0.f, 0.f, 0.f, 0.f}, vb[4] = {0.f, 0.f, 0.f, 0.f};
    float km = 0.f, vm = 0.f;
    if (live && kv) {
      const float* v = row + static_cast<int64_t>(nh + nkv + h) * hd + i;
      load4(v, va);
      load4(v + half, vb);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        km = fmaxf(km, fmaxf(fabsf(y.a[j]), fabsf(y.b[j])));
        vm = fmaxf(vm, fmaxf(fabsf(va[j]), fabsf(vb[j])));
      }
    }
    km = group_max(km, g);
    vm = group_max(vm, g);
    if (!live) continue;
    if (!kv) {
      bf16* o = q_out + (static_cast<int64_t>(t) * nh + head) * hd + i;
      store4(o, y.a);
      store4(o + half, y.b);
      continue;
    }
    const int slot = slots[t];
    if (slot < 0) continue;  // padding row
    const float ks = km > 0.f ? km / 448.f : 1.f, vs = vm > 0.f ? vm / 448.f : 1.f;
    const int64_t row_at = pi.row(pi.block(slot), nkv, h, pi.offset(slot));
    const int64_t at = row_at * hd + i;
    *reinterpret_cast<uint32_t*>(k_cache + at) = e4m3x4(y.a, ks);
    *reinterpret_cast<uint32_t*>(k_cache + at + half) = e4m3x4(y.b, ks);
    *reinterpret_cast<uint32_t*>(v_cache + at) = e4m3x4(va, vs);
    *reinterpret_cast<uint32_t*>(v_cache + at + half) = e4m3x4(vb, vs);
    if (q == 0) {
      k_scale[row_at] = ks;
      v_scale[row_at] = vs;
    }
  }
}

// Blocks of 128 threads, at most 16 per SM (the loops stride over the rest).
int rope_grid(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + 127) / 128, int64_t{device_sm_count()} * 16));
}

}  // namespace

void rope_kv_write_fp8(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                       bf16* q_out, uint8_t* k_cache, uint8_t* v_cache, float* k_scale, float* v_scale, int T, int nh,
                       int nkv, int hd, int block_size, cudaStream_t s) {
  if (T == 0) return;
  if (hd % 8 != 0 || hd > 256) throw std::invalid_argument("rope_kv_write_fp8: head_dim a multiple of 8, at most 256");
  int g = 1;
  while (g < hd / 8) g *= 2;
  const int64_t total = int64_t{T} * (nh + nkv) * g;
  launch_pdl(rope_kv_fp8_kernel, dim3(rope_grid(total)), 128, 0, s, qkv, positions, slots, rope, q_out, k_cache,
             v_cache, k_scale, v_scale, nh, nkv, hd, block_size, g, total);
}

template <typename E>
void rope_kv_write(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope, E* q_out,
                   E* k_cache, E* v_cache, int T, int nh, int nkv, int hd, int block_size, cudaStream_t s) {
  if (T == 0) return;
  if (hd % 8 != 0) throw std::invalid_argument("rope_kv_write: head_dim a multiple of 8");
  const int64_t total = int64_t{T} * (nh + nkv) * (hd / 8);
  launch_pdl(rope_kv_kernel<E>, dim3(rope_grid(total)), 128, 0, s, qkv, positions, slots, rope, q_out, k_cache,
             v_cache, nh, nkv, hd, block_size, total);
}

template void rope_kv_write<bf16>(const float*, const int32_t*, const int32_t*, const float2*, bf16*, bf16*, bf16*,
                                  int, int, int, int, int, cudaStream_t);
template void rope_kv_write<float>(const float*, const int32_t*, const int32_t*, const float2*, float*, float*,
                                   float*, int, int, int, int, int, cudaStream_t);

}  // namespace engine::cuda
