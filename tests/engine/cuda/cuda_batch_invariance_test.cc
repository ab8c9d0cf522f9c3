// test-deps: engine_internals
// EngineConfig::deterministic on the CUDA backend: a request's logits are bit-identical whatever shares its
// steps — alone at batch size 1 (GEMMs at one row, decode steps replayed from the batch-1 CUDA graph), or
// among 7 others at batch size 8 with prefill chunks mixed into decodes, in either order. Without the flag
// the same runs are only close (cuBLAS picks kernels by M, attention splits its context by batch size);
// that difference is printed, not asserted, since it depends on the GPU and the cuBLAS version.
// Skips without a device.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "support/cuda_test_util.h"
#include "support/batch_invariance_util.h"

namespace {

using namespace batch_invariance;

constexpr int kSteps = 20;

engine::EngineConfig config(const std::string& model, bool deterministic) {
  engine::EngineConfig cfg;
  cfg.model = model;
  cfg.backend = engine::BackendKind::kCuda;
  cfg.deterministic = deterministic;
  cfg.kv_memory_bytes = 256 << 20;
  return cfg;
}

struct Diff {
  int differing_steps = 0;  // (request, step) pairs whose logits are not bitwise equal
  double max_abs = 0;
};

Diff compare(const Logs& a, const Logs& b) {
  Diff d;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t s = 0; s < a[i]->steps.size() && s < b[i]->steps.size(); ++s) {
      const auto& x = a[i]->steps[s];
      const auto& y = b[i]->steps[s];
      if (x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) ++d.differing_steps;
      for (size_t j = 0; j < x.size() && j < y.size(); ++j) d.max_abs = std::max(d.max_abs, double(std::fabs(x[j] - y[j])));
    }
  return d;
}

class CudaBatchInvariance : public testing::TestWithParam<std::string> {};

TEST_P(CudaBatchInvariance, DeterministicLogitsDoNotDependOnBatchSizeOrOrder) {
  SKIP_WITHOUT_DEVICE();
  const std::string model = GetParam();
  const engine::EngineConfig det = config(model, true), fast = config(model, false);
  const Logs det_alone = run_alone(det, kSteps);
  const Logs det_batched = run(det, 8, 16, {0, 1, 2, 3, 4, 5, 6, 7}, kSteps);  // 16-token budget: chunked prefill
  const Logs det_reversed = run(det, 8, 64, {7, 6, 5, 4, 3, 2, 1, 0}, kSteps);
  ASSERT_NO_FATAL_FAILURE(
      expect_bitwise_equal(det_alone, det_batched, kSteps, model + ", batch size 8, chunked prefill"));
  ASSERT_NO_FATAL_FAILURE(
      expect_bitwise_equal(det_alone, det_reversed, kSteps, model + ", batch size 8, reversed order"));
  // The same comparison without the flag: how far apart the default (fastest) kernels put the runs.
  const Logs fast_alone = run_alone(fast, kSteps);
  const Logs fast_batched = run(fast, 8, 16, {0, 1, 2, 3, 4, 5, 6, 7}, kSteps);
  const Diff fd = compare(fast_alone, fast_batched), dd = compare(det_alone, det_batched);
  std::printf("%s: batch 1 vs batch 8 (chunked prefill): default kernels %d/%zu steps differ (max |diff| %.3g); "
              "deterministic %d differ\n", model.c_str(), fd.differing_steps, kPrompts.size() * kSteps, fd.max_abs,
              dd.differing_steps);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaBatchInvariance, testing::Values("dummy:tiny", "dummy:llama-100m"),
                         [](const testing::TestParamInfo<std::string>& p) {
                           return p.param == "dummy:tiny" ? std::string("DummyTiny") : std::string("DummyLlama100m");
                         });

}  // namespace

#else
TEST(CudaBatchInvariance, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
