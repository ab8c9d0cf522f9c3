// test-deps: engine_internals
// EngineConfig::deterministic: a request's logits are bit-identical whatever shares its steps — alone at
// batch size 1, or among 7 others at batch size 8 with prefill chunks mixed into decodes, in either order.
#include <gtest/gtest.h>

#include <vector>

#include "support/batch_invariance_util.h"

namespace {

using namespace batch_invariance;

constexpr int kSteps = 24;

TEST(BatchInvariance, DeterministicLogitsDoNotDependOnBatchSizeOrOrder) {
  engine::EngineConfig cfg;
  cfg.model = "dummy:tiny";
  cfg.deterministic = true;
  cfg.kv_memory_bytes = 16 << 20;
  const Logs alone = run_alone(cfg, kSteps);
  // A 16-token budget: prefill chunks amid decodes.
  const Logs batched = run(cfg, 8, 16, {0, 1, 2, 3, 4, 5, 6, 7}, kSteps);
  const Logs reversed = run(cfg, 8, 64, {7, 6, 5, 4, 3, 2, 1, 0}, kSteps);
  ASSERT_NO_FATAL_FAILURE(expect_bitwise_equal(alone, batched, kSteps, "batch size 8, chunked prefill"));
  ASSERT_NO_FATAL_FAILURE(expect_bitwise_equal(alone, reversed, kSteps, "batch size 8, reversed order"));
}

}  // namespace
