// test-deps: engine_internals
// NcclGroup (backend/cuda/nccl_group.h), one thread per GPU as tensor parallelism runs it: each rank's
// thread fills its buffer with values of its own, all-reduces and all-gathers on its stream, eagerly and
// from a captured CUDA graph replayed twice, and every rank must hold the exact sums (small integers: exact
// in f32). Runs for every N from 1 to the visible devices (N = 1 on one GPU goes through the same path);
// the N >= 2 test skips below 2 devices, and everything skips in builds without CUDA or NCCL.
#include <gtest/gtest.h>

#if defined(LLM_HAVE_CUDA) && defined(LLM_HAVE_NCCL)
#include <cuda_runtime_api.h>

#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/nccl_group.h"

namespace {

int visible_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

/// What rank r's thread found, or the first thing that went wrong there.
struct RankResult {
  std::string error;
  std::vector<float> reduced, gathered, replayed;
};

#define OK(call)                                                            \
  do {                                                                      \
    if (cudaError_t e = (call); e != cudaSuccess) {                         \
      out.error = std::string(#call) + ": " + cudaGetErrorString(e);        \
      return;                                                               \
    }                                                                       \
  } while (0)

void run_rank(const engine::cuda::NcclGroup& g, int r, size_t count, RankResult& out) {
  try {
    OK(cudaSetDevice(r));
    cudaStream_t s = nullptr;
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    const int n = g.size();
    float *buf = nullptr, *all = nullptr;
    OK(cudaMalloc(&buf, count * sizeof(float)));
    OK(cudaMalloc(&all, n * count * sizeof(float)));
    std::vector<float> mine(count);
    for (size_t i = 0; i < count; ++i) mine[i] = float((r + 1) * (1 + int(i % 7)));
    OK(cudaMemcpyAsync(buf, mine.data(), count * sizeof(float), cudaMemcpyHostToDevice, s));
    g.all_gather(r, buf, all, count, s);
    g.all_reduce_sum(r, buf, count, s);
    out.reduced.resize(count);
    out.gathered.resize(n * count);
    OK(cudaMemcpyAsync(out.reduced.data(), buf, count * sizeof(float), cudaMemcpyDeviceToHost, s));
    OK(cudaMemcpyAsync(out.gathered.data(), all, n * count * sizeof(float), cudaMemcpyDeviceToHost, s));
    OK(cudaStreamSynchronize(s));
    // The all-reduce captured into a graph (as the decode graphs will hold it), replayed twice in place.
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    g.all_reduce_sum(r, buf, count, s);
    OK(cudaStreamEndCapture(s, &graph));
    OK(cudaGraphInstantiate(&exec, graph, 0));
    OK(cudaGraphLaunch(exec, s));
    OK(cudaGraphLaunch(exec, s));
    out.replayed.resize(count);
    OK(cudaMemcpyAsync(out.replayed.data(), buf, count * sizeof(float), cudaMemcpyDeviceToHost, s));
    OK(cudaStreamSynchronize(s));
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFree(all);
    cudaFree(buf);
    cudaStreamDestroy(s);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
}

void check_group(int n) {
  const size_t count = 4099;  // not a multiple of anything NCCL might chunk by
  engine::cuda::NcclGroup g(n);
  std::vector<RankResult> res(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(run_rank, std::cref(g), r, count, std::ref(res[r]));
  for (auto& t : threads) t.join();
  const float ranks_sum = float(n * (n + 1) / 2);
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(res[r].error, "") << "rank " << r << " of " << n;
    for (size_t i = 0; i < count; ++i) {
      const float k = float(1 + int(i % 7));
      ASSERT_EQ(res[r].reduced[i], ranks_sum * k) << "rank " << r << " element " << i;
      ASSERT_EQ(res[r].replayed[i], ranks_sum * k * float(n) * float(n)) << "rank " << r << " element " << i;
      for (int q = 0; q < n; ++q) ASSERT_EQ(res[r].gathered[q * count + i], float(q + 1) * k);
    }
  }
}

TEST(NcclGroup, OneRankThroughTheSamePath) {
  if (visible_devices() < 1) GTEST_SKIP() << "no CUDA device";
  check_group(1);
}

TEST(NcclGroup, EveryRankCountUpToTheVisibleGpus) {
  const int v = visible_devices();
  if (v < 2) GTEST_SKIP() << "needs 2 CUDA devices, " << v << " visible";
  for (int n = 2; n <= v; ++n) check_group(n);
}

TEST(NcclGroup, MoreRanksThanGpusIsRefused) {
  EXPECT_THROW(engine::cuda::NcclGroup(visible_devices() + 1), std::runtime_error);
}

}  // namespace
#else
TEST(NcclGroup, NeedsACudaBuildWithNccl) { GTEST_SKIP() << "built without CUDA or NCCL"; }
#endif
