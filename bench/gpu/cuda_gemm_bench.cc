// The decode GEMMs alone, side by side in one process: cuBLAS (the backend's path at M >= 3 by default),
// gemm_tma (TMA + wgmma, gemm_tma.h) and gemv_mma (v13), for Llama-2-7B's four weight shapes at M rows,
// weights cycled through copies that together exceed L2 (so every call streams them from memory). Reports
// ms per call and the weights' GB/s next to the device copy bandwidth (bytes read + written per second).
// LLM_CUDA_GEMM_TMA_PIPE=0 times gemm_tma's first (unpipelined) consumer, LLM_CUDA_GEMM_TMA_HINT=0 its loads
// without the L2 evict-first hint, LLM_CUDA_GEMM_TMA_ACC=1 with one accumulator set,
// LLM_CUDA_GEMM_TMA_ORDER=0 with each block's units in order, LLM_CUDA_GEMM_TMA_STAGES=n with a ring of n stages.
//   BM_Gemm/<path 0 cuBLAS, 1 gemm_tma, 2 gemv_mma>/<shape 0 QKV, 1 O, 2 gate/up, 3 down>/<M>
//   BM_GemmTmaPhases/<shape>/<M>: where a gemm_tma call's time goes (per-block timestamps; see below)
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/cuda_options.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_tma.h"
#include "backend/cuda/kernels.h"

namespace {

namespace ec = engine::cuda;
using bf16 = __nv_bfloat16;

struct Shape { int N, K; };
constexpr Shape kShapes[] = {{12288, 4096}, {4096, 4096}, {22016, 4096}, {4096, 11008}};
constexpr int kMaxM = 256;  // the largest M Args() asks for (batch 256's decode step)

// Weight copies of a shape that together pass 512 MB (so every call streams them from memory, not L2).
int copies_of(const Shape& sh) {
  const size_t wn = size_t(sh.N) * sh.K;
  return std::max<int>(2, static_cast<int>((size_t(512) << 20) / (wn * sizeof(bf16))) + 1);
}

struct Fixture {
  cudaStream_t s = nullptr;
  std::unique_ptr<ec::Gemm> cublas;
  std::unique_ptr<ec::TmaScratch> tma;
  double copy_gbps = 0;
  // One pool for every shape's weight copies, x and y, allocated and filled once, not per benchmark (with ~600
  // MB allocated and filled per benchmark, 36 of them ran past tma_ab.sh's 150 s limit on an H100; which part
  // was slow was not measured).
  bf16 *w = nullptr, *x = nullptr, *y = nullptr;
  Fixture() {
    cudaStreamCreate(&s);
    ec::CudaOptions o;
    o.gemv = false;  // cuBLAS at every M
    cublas = std::make_unique<ec::Gemm>(s, o);
    tma = std::make_unique<ec::TmaScratch>();
    // gemm_tma's variants from the backend's own switches (LLM_CUDA_GEMM_TMA_PIPE, _ACC, _ORDER, _HINT, _STAGES).
    ec::set_gemm_tma_tuning(ec::read_cuda_options(engine::EngineConfig{}).gemm_tma_tuning);
    size_t wmax = 0, xmax = 0, ymax = 0;
    for (const Shape& sh : kShapes) {
      wmax = std::max(wmax, size_t(sh.N) * sh.K * copies_of(sh));
      xmax = std::max(xmax, size_t(kMaxM) * sh.K);
      ymax = std::max(ymax, size_t(kMaxM) * sh.N);
    }
    cudaMalloc(reinterpret_cast<void**>(&w), wmax * sizeof(bf16));
    cudaMalloc(reinterpret_cast<void**>(&x), xmax * sizeof(bf16));
    cudaMalloc(reinterpret_cast<void**>(&y), ymax * sizeof(bf16));
    ec::fill_random_bf16(w, wmax, 1, 0.05f, s);
    ec::fill_random_bf16(x, xmax, 2, 1.f, s);
    cudaStreamSynchronize(s);
    const size_t bytes = size_t(1) << 30;
    void *a = nullptr, *b = nullptr;
    cudaMalloc(&a, bytes);
    cudaMalloc(&b, bytes);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0);
    for (int i = 0; i < 10; ++i) cudaMemcpy(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    copy_gbps = 2.0 * bytes * 10 / (ms * 1e-3) / 1e9;
    cudaFree(a);
    cudaFree(b);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Times `one(i)` (the i-th call, i cycling the weight copies): 8 calls to warm up, then per iteration 64 calls
// back to back on `s` between two events, reported per call.
template <typename Call>
void time_calls(benchmark::State& state, cudaStream_t s, Call one) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  constexpr int kCalls = 64;
  for (int i = 0; i < 8; ++i) one(i);
  for (auto _ : state) {
    cudaEventRecord(e0, s);
    for (int i = 0; i < kCalls; ++i) one(i);
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    state.SetIterationTime(ms * 1e-3 / kCalls);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

void BM_Gemm(benchmark::State& state) {
  Fixture& f = fixture();
  const int path = static_cast<int>(state.range(0)), M = static_cast<int>(state.range(2));
  const Shape sh = kShapes[state.range(1)];
  const size_t wn = size_t(sh.N) * sh.K;
  const int copies = copies_of(sh);
  bf16 *w = f.w, *x = f.x, *y = f.y;
  if (path == 2 && !ec::gemv_mma_x_in_shared(M, sh.N, sh.K)) {
    state.SkipWithError("gemv_mma: x does not fit in shared memory");
  } else {
    auto one = [&](int i) {
      const bf16* wi = w + (i % copies) * wn;
      if (path == 0) f.cublas->run(x, wi, y, false, M, sh.N, sh.K);
      else if (path == 1) ec::gemm_tma(x, wi, y, false, M, sh.N, sh.K, *f.tma, f.s);
      else ec::gemv_mma(x, wi, y, false, M, sh.N, sh.K, f.s);
    };
    time_calls(state, f.s, one);
    if (cudaGetLastError() != cudaSuccess) state.SkipWithError("CUDA error");
    state.counters["weight_GBps"] = benchmark::Counter(double(wn * sizeof(bf16)), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["copy_GBps"] = f.copy_gbps;
    state.counters["TFLOPs"] = benchmark::Counter(2.0 * M * double(wn) * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  }
}

// Where a gemm_tma call's time goes, from the per-block timestamps of the last of 64 back-to-back calls
// (TmaScratch::record_phases; gemm_tma.h lists the slots). Counters in us: spread of the blocks' entries and
// exits (%globaltimer), the call's span (first entry to last exit), and per block (clock64 at the device's
// clock rate, mean and max over blocks): entry to first loads issued (after the PDL wait), to the first stage
// landed, to the last load issued, to the consumers' end.
//   BM_GemmTmaPhases/<shape>/<M>
void BM_GemmTmaPhases(benchmark::State& state) {
  Fixture& f = fixture();
  const Shape sh = kShapes[state.range(0)];
  const int M = static_cast<int>(state.range(1));
  const size_t wn = size_t(sh.N) * sh.K;
  const int copies = copies_of(sh);
  int dev = 0, khz = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
  const size_t slots = size_t(ec::device_sm_count()) * ec::kTmaPhaseSlots;
  unsigned long long* d = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&d), slots * sizeof(unsigned long long));
  cudaMemset(d, 0, slots * sizeof(unsigned long long));
  f.tma->record_phases(d);
  time_calls(state, f.s, [&](int i) { ec::gemm_tma(f.x, f.w + (i % copies) * wn, f.y, false, M, sh.N, sh.K, *f.tma, f.s); });
  f.tma->record_phases(nullptr);
  std::vector<unsigned long long> h(slots);
  cudaMemcpy(h.data(), d, slots * sizeof(unsigned long long), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (cudaGetLastError() != cudaSuccess) {
    state.SkipWithError("CUDA error");
    return;
  }
  // The blocks of the last call: those that wrote an entry (the buffer starts at zero; every call of a shape
  // runs the same blocks).
  int G = 0;
  while (G < static_cast<int>(slots / ec::kTmaPhaseSlots) && h[size_t(G) * ec::kTmaPhaseSlots] != 0) ++G;
  unsigned long long in0 = ~0ull, in1 = 0, out0 = ~0ull, out1 = 0;
  double sum[4] = {0, 0, 0, 0}, mx[4] = {0, 0, 0, 0};
  const double us_per_cycle = 1e3 / khz;
  for (int b = 0; b < G; ++b) {
    const unsigned long long* p = h.data() + size_t(b) * ec::kTmaPhaseSlots;
    in0 = std::min(in0, p[0]);
    in1 = std::max(in1, p[0]);
    out0 = std::min(out0, p[6]);
    out1 = std::max(out1, p[6]);
    const double v[4] = {(p[2] - p[1]) * us_per_cycle, (p[3] - p[1]) * us_per_cycle, (p[4] - p[1]) * us_per_cycle,
                         (p[5] - p[1]) * us_per_cycle};
    for (int k = 0; k < 4; ++k) {
      sum[k] += v[k];
      mx[k] = std::max(mx[k], v[k]);
    }
  }
  state.counters["entry_spread_us"] = (in1 - in0) * 1e-3;
  state.counters["exit_spread_us"] = (out1 - out0) * 1e-3;
  state.counters["span_us"] = (out1 - in0) * 1e-3;
  const char* names[4] = {"issued", "first_landed", "last_issued", "done"};
  for (int k = 0; k < 4; ++k) {
    state.counters[std::string(names[k]) + "_us"] = sum[k] / G;
    state.counters[std::string(names[k]) + "_max_us"] = mx[k];
  }
}

void Args(benchmark::internal::Benchmark* b) {
  for (int shape = 0; shape < 4; ++shape)
    for (int M : {2, 4, 8, 16, 32, 64, 128, 256})
      for (int path = 0; path < 3; ++path) {
        if (path == 1 && M > ec::kTmaMaxM) continue;
        if (path == 2 && M > ec::kMmaMaxM) continue;
        b->Args({path, shape, M});
      }
}
BENCHMARK(BM_Gemm)->Apply(Args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmTmaPhases)
    ->ArgsProduct({{0, 1, 2, 3}, {4, 16, 64}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
