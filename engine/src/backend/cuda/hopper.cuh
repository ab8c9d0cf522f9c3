// Device helpers for Hopper's asynchronous units (sm_90a): mbarriers, TMA tile loads into shared memory and
// warpgroup MMAs (wgmma) reading both operands from shared memory laid out with the 128-byte swizzle. Used by
// gemm_tma.cu. Everything here compiles to nothing (or a trap) outside sm_90a, so the file builds for every
// architecture; the host checks the device before launching a kernel that uses it.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace engine::cuda::hopper {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LLM_HOPPER_ASYNC 1
#else
#define LLM_HOPPER_ASYNC 0
#endif

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
#if LLM_HOPPER_ASYNC
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
#endif
}

/// Makes the barriers' initialisation visible to the async proxy (the TMA unit) before any copy uses them.
__device__ __forceinline__ void fence_barrier_init() {
#if LLM_HOPPER_ASYNC
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

/// One arrival that also says `bytes` more are to land on the barrier's current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if LLM_HOPPER_ASYNC
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
#endif
}

/// One arrival on the barrier from the threads where `pred` holds, as one predicated instruction: no branch, so a warpgroup
/// with wgmmas in flight does not diverge (ptxas serializes wgmmas around divergent code).
__device__ __forceinline__ void mbar_arrive_if(uint64_t* bar, bool pred) {
#if LLM_HOPPER_ASYNC
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %1, 0;\n@p mbarrier.arrive.shared::cta.b64 _, [%0];\n}\n" ::"r"(
                   smem_addr(bar)),
               "r"(static_cast<int>(pred))
               : "memory");
#endif
}

/// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#if LLM_HOPPER_ASYNC
  // The retry loop inside the asm: one instruction stream for the compiler, no C++ branch around it.
  asm volatile(
      "{\n.reg .pred p;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT;\n}\n" ::"r"(
          smem_addr(bar)),
      "r"(parity)
      : "memory");
#endif
}

/// `bytes` (a multiple of 16) contiguous bytes from global memory into shared memory by the bulk-copy unit,
/// completing them on `bar`; both addresses 16-byte aligned.
__device__ __forceinline__ void bulk_load(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#if LLM_HOPPER_ASYNC
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
#endif
}

/// A 2-D tile of the tensor map into shared memory, completing `bytes` on `bar` (coordinates: c0 the inner
/// dimension's element, c1 the row). Rows or columns past the tensor's edge arrive as zeros.
__device__ __forceinline__ void tma_load_2d(void* dst, const void* map, uint64_t* bar, int c0, int c1) {
#if LLM_HOPPER_ASYNC
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c0), "r"(c1)
      : "memory");
#endif
}

/// The same with an L2 hint that the lines are read once (the weights: evict them first).
__device__ __forceinline__ void tma_load_2d_stream(void* dst, const void* map, uint64_t* bar, int c0, int c1,
                                                   uint64_t policy) {
#if LLM_HOPPER_ASYNC
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%3, %4}], [%2], %5;\n" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c0), "r"(c1), "l"(policy)
      : "memory");
#endif
}

/// Asks for a tensor map's descriptor ahead of the first copy that uses it (a kernel's parameter, by address).
__device__ __forceinline__ void prefetch_tensormap(const void* map) {
#if LLM_HOPPER_ASYNC
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

/// The device's nanosecond clock (%globaltimer: one clock for every SM, in coarse ticks), for measurements.
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t p = 0;
#if LLM_HOPPER_ASYNC
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
#endif
  return p;
}

/// The shared-memory matrix descriptor of a K-major operand tile written by TMA with the 128-byte swizzle:
/// rows of 64 bf16 (128 bytes), 8-row groups 1,024 bytes apart; the tile must start 1,024-byte aligned. The
/// k16 slices of a 64-wide tile are the same descriptor 32 bytes on (desc + 2 * slice: the address is in
/// 16-byte units).
__device__ __forceinline__ uint64_t sw128_desc(const void* tile) {
  const uint32_t a = smem_addr(tile);
  return uint64_t((a & 0x3FFFF) >> 4) | (uint64_t(16 >> 4) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() {
#if LLM_HOPPER_ASYNC
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if LLM_HOPPER_ASYNC
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if LLM_HOPPER_ASYNC
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

/// Pins an accumulator register in place for the compiler (CUTLASS's warpgroup_fence_operand): reads and
/// writes of it are not moved across this point, so none lands between a wgmma and the wait for it.
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }

/// d[64 x n] (+)= a[64 x 16] * b[16 x n]^T for one warpgroup, a and b K-major in shared memory (descriptors
/// above), f32 accumulators in the wgmma fragment layout (thread t of the warpgroup: rows 16 (t / 32) + (t % 32)
/// / 4 and + 8, columns 8 j + 2 (t % 4) + {0, 1}; d[4 j + 2 h + c] is row + 8 h, column 8 j + 2 (t % 4) + c).
/// accumulate = 0 ignores d's old values.
template <int N>
__device__ __forceinline__ void wgmma_bf16(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate);

#if LLM_HOPPER_ASYNC
template <>
__device__ __forceinline__ void wgmma_bf16<8>(float (&d)[4], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_bf16<16>(float (&d)[8], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 0, "
      "0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_bf16<32>(float (&d)[16], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, "
      "%12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_bf16<64>(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, "
      "%12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, "
      "%33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(accumulate));
}
#else
template <int N>
__device__ __forceinline__ void wgmma_bf16(float (&)[N / 2], uint64_t, uint64_t, int) {
  __trap();
}
#endif

/// bar.sync on a named barrier for `threads` threads (a multiple of 32), barrier id 1..15.
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace engine::cuda::hopper
