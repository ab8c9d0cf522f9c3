// RoPE on q and k, fused with the write of k and v into the paged KV cache: one pass over the step's f32
// qkv rows (the QKV GEMM's output). Reading f32 and rounding to the storage type E only after the rotation
// means each stored q/k/v value is rounded once (rounding before RoPE as well cost accuracy for nothing).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <stdexcept>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

// One block per (token, head): blockIdx.y < nh rotates q head y into q_out[t, y*hd ...]; otherwise kv head
// y - nh: rotated k and plain v go to cache[(block, kv_head, offset, :)]. Pairs (i, i + hd/2) rotate by
// rope[pos, i]:
//   out[i] = a*cos - b*sin,  out[i + hd/2] = b*cos + a*sin   (a = x[i], b = x[i + hd/2])
// A block per head (not per token) keeps small decode batches from running on a handful of SMs.
//   qkv: f32 [T, (nh + 2*nkv)*hd];  q_out: E [T, nh*hd];  caches: E [num_blocks, nkv, block_size, hd]
template <typename E>
__global__ void rope_kv_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ positions,
                               const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                               E* __restrict__ q_out, E* __restrict__ k_cache, E* __restrict__ v_cache, int nh,
                               int nkv, int hd, int block_size) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x, head = blockIdx.y;
  const int half = hd / 2;
  const float* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
  const float2* cs = rope + static_cast<int64_t>(positions[t]) * half;
  if (head < nh) {
    const float* x = row + head * hd;
    E* y = q_out + (static_cast<int64_t>(t) * nh + head) * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      const float a = x[i], b = x[i + half];
      const float2 c = cs[i];
      y[i] = from_f32<E>(a * c.x - b * c.y);
      y[i + half] = from_f32<E>(b * c.x + a * c.y);
    }
    return;
  }
  const int slot = slots[t];
  if (slot < 0) return;  // padding row
  const int h = head - nh;
  const float* k = row + static_cast<int64_t>(nh + h) * hd;
  const float* v = row + static_cast<int64_t>(nh + nkv + h) * hd;
  const int64_t at = ((static_cast<int64_t>(slot / block_size) * nkv + h) * block_size + slot % block_size) * hd;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float a = k[i], b = k[i + half];
    const float2 c = cs[i];
    k_cache[at + i] = from_f32<E>(a * c.x - b * c.y);
    k_cache[at + i + half] = from_f32<E>(b * c.x + a * c.y);
    v_cache[at + i] = from_f32<E>(v[i]);
    v_cache[at + i + half] = from_f32<E>(v[i + half]);
  }
}

// The fp8 cache: the same rotation, then each (token, kv head) row of k and of v is scaled by its own
// max|x| / 448 (e4m3's largest finite value) and rounded once to e4m3. One thread per pair (i, i + hd/2): the
// row's max is a block reduction (threads = hd/2, at most 128: four warps).
__device__ float block_max(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < (blockDim.x + 31) / 32; ++w) r = fmaxf(r, red[w]);
  return r;
}

__global__ void rope_kv_fp8_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ positions,
                                   const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                                   bf16* __restrict__ q_out, uint8_t* __restrict__ k_cache, uint8_t* __restrict__ v_cache,
                                   float* __restrict__ k_scale, float* __restrict__ v_scale, int nh, int nkv, int hd,
                                   int block_size) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float red[2][4];
  const int t = blockIdx.x, head = blockIdx.y;
  const int half = hd / 2, i = threadIdx.x;
  const float* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
  const float2* cs = rope + static_cast<int64_t>(positions[t]) * half;
  if (head < nh) {
    const float* x = row + head * hd;
    bf16* y = q_out + (static_cast<int64_t>(t) * nh + head) * hd;
    if (i < half) {
      const float a = x[i], b = x[i + half];
      const float2 c = cs[i];
      y[i] = __float2bfloat16(a * c.x - b * c.y);
      y[i + half] = __float2bfloat16(b * c.x + a * c.y);
    }
    return;
  }
  const int slot = slots[t];
  if (slot < 0) return;  // padding row (the whole block returns: the reductions below are not reached)
  const int h = head - nh;
  const float* k = row + static_cast<int64_t>(nh + h) * hd;
  const float* v = row + static_cast<int64_t>(nh + nkv + h) * hd;
  float k0 = 0.f, k1 = 0.f, v0 = 0.f, v1 = 0.f;
  if (i < half) {
    const float a = k[i], b = k[i + half];
    const float2 c = cs[i];
    k0 = a * c.x - b * c.y;
    k1 = b * c.x + a * c.y;
    v0 = v[i];
    v1 = v[i + half];
  }
  const float kmax = block_max(fmaxf(fabsf(k0), fabsf(k1)), red[0]);
  const float vmax = block_max(fmaxf(fabsf(v0), fabsf(v1)), red[1]);
  const float ks = kmax > 0.f ? kmax / 448.f : 1.f, vs = vmax > 0.f ? vmax / 448.f : 1.f;
  const int64_t row_at = (static_cast<int64_t>(slot / block_size) * nkv + h) * block_size + slot % block_size;
  if (i < half) {
    const int64_t at = row_at * hd;
    k_cache[at + i] = __nv_cvt_float_to_fp8(k0 / ks, __NV_SATFINITE, __NV_E4M3);
    k_cache[at + i + half] = __nv_cvt_float_to_fp8(k1 / ks, __NV_SATFINITE, __NV_E4M3);
    v_cache[at + i] = __nv_cvt_float_to_fp8(v0 / vs, __NV_SATFINITE, __NV_E4M3);
    v_cache[at + i + half] = __nv_cvt_float_to_fp8(v1 / vs, __NV_SATFINITE, __NV_E4M3);
  }
  if (i == 0) {
    k_scale[row_at] = ks;
    v_scale[row_at] = vs;
  }
}

}  // namespace

void rope_kv_write_fp8(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                       bf16* q_out, uint8_t* k_cache, uint8_t* v_cache, float* k_scale, float* v_scale, int T, int nh,
                       int nkv, int hd, int block_size, cudaStream_t s) {
  if (T == 0) return;
  if (hd / 2 > 128) throw std::invalid_argument("rope_kv_write_fp8: head_dim above 256");
  const int threads = (hd / 2 + 31) / 32 * 32;
  launch_pdl(rope_kv_fp8_kernel, dim3(T, nh + nkv), threads, 0, s, qkv, positions, slots, rope, q_out, k_cache,
             v_cache, k_scale, v_scale, nh, nkv, hd, block_size);
}

template <typename E>
void rope_kv_write(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope, E* q_out,
                   E* k_cache, E* v_cache, int T, int nh, int nkv, int hd, int block_size, cudaStream_t s) {
  if (T == 0) return;
  const int threads = std::min(128, (hd / 2 + 31) / 32 * 32);
  launch_pdl(rope_kv_kernel<E>, dim3(T, nh + nkv), threads, 0, s, qkv, positions, slots, rope, q_out, k_cache,
             v_cache, nh, nkv, hd, block_size);
}

template void rope_kv_write<bf16>(const float*, const int32_t*, const int32_t*, const float2*, bf16*, bf16*, bf16*,
                                  int, int, int, int, int, cudaStream_t);
template void rope_kv_write<float>(const float*, const int32_t*, const int32_t*, const float2*, float*, float*,
                                   float*, int, int, int, int, int, cudaStream_t);

}  // namespace engine::cuda
