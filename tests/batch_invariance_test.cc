// test-deps: engine
// EngineConfig::deterministic: a request's logits are bit-identical whatever shares its steps — alone at
// batch size 1, or among 7 others at batch size 8 with prefill chunks mixed into decodes, in either order.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "batch_invariance_util.h"

namespace {

using namespace batch_invariance;

constexpr int kSteps = 24;

Logs run(int max_num_seqs, int max_batched_tokens, const std::vector<int>& order) {
  engine::EngineConfig cfg;
  cfg.model = "dummy:tiny";
  cfg.deterministic = true;
  cfg.kv_memory_bytes = 16 << 20;
  return batch_invariance::run(cfg, max_num_seqs, max_batched_tokens, order, kSteps);
}

TEST(BatchInvariance, DeterministicLogitsDoNotDependOnBatchSizeOrOrder) {
  const auto alone = [] {
    Logs out;
    for (size_t i = 0; i < kPrompts.size(); ++i) out.push_back(run(1, 2048, {int(i)})[i]);
    return out;
  }();
  const auto batched = run(8, 16, {0, 1, 2, 3, 4, 5, 6, 7});  // 16-token budget: chunked prefill amid decodes
  const auto reversed = run(8, 64, {7, 6, 5, 4, 3, 2, 1, 0});
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    ASSERT_EQ(alone[i]->steps.size(), size_t(kSteps)) << i;
    for (const auto* other : {&batched, &reversed}) {
      ASSERT_EQ((*other)[i]->steps.size(), size_t(kSteps)) << i;
      EXPECT_EQ((*other)[i]->tokens, alone[i]->tokens) << "request " << i;
      for (int s = 0; s < kSteps; ++s) {
        const auto& a = alone[i]->steps[s];
        const auto& b = (*other)[i]->steps[s];
        ASSERT_EQ(a.size(), b.size());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
            << "request " << i << " step " << s << ": logits differ bitwise from the batch-size-1 run";
      }
    }
  }
}

}  // namespace
