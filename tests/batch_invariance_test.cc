// test-deps: engine
// EngineConfig::deterministic: a request's logits are bit-identical whatever shares its steps — alone at
// batch size 1, or among 7 others at batch size 8 with prefill chunks mixed into decodes, in either order.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace {

struct LogitsSink : engine::RequestSink {
  std::vector<std::vector<float>> steps;
  std::vector<int32_t> tokens;
  void on_token(const engine::TokenEvent& ev) override { tokens.push_back(ev.token); }
  void on_logits(int step, std::span<const float> logits) override {
    if (int(steps.size()) <= step) steps.resize(step + 1);
    steps[step].assign(logits.begin(), logits.end());
  }
  void on_finish(const engine::FinishEvent&) override {}
};

const std::vector<std::string> kPrompts = {
    "Name three primary colors.", "Write a haiku about a quiet harbor at dawn.", "What is 17 times 23?",
    "Give two tips for learning to juggle.", "Summarize the plot of a heist story in one sentence.",
    "Translate 'good morning' into French and Spanish.", "List the planets closest to the sun.",
    "Explain in plain words why bread rises."};
constexpr int kSteps = 24;

/// Runs `order` (indices into kPrompts) through one engine; returns each prompt's captured logits.
std::vector<std::shared_ptr<LogitsSink>> run(int max_num_seqs, int max_batched_tokens, const std::vector<int>& order) {
  engine::EngineConfig cfg;
  cfg.model = "dummy:tiny";
  cfg.deterministic = true;
  cfg.background_thread = false;
  cfg.max_num_seqs = max_num_seqs;
  cfg.max_num_batched_tokens = max_batched_tokens;
  cfg.kv_memory_bytes = 16 << 20;
  engine::Engine eng(cfg);
  std::vector<std::shared_ptr<LogitsSink>> sinks(kPrompts.size());
  for (int i : order) {
    engine::Request r;
    r.prompt = kPrompts[i];
    r.sampling.max_new_tokens = kSteps;
    r.sampling.ignore_eos = true;
    r.capture_logits_steps = kSteps;
    sinks[i] = std::make_shared<LogitsSink>();
    eng.submit(std::move(r), sinks[i]);
  }
  eng.run_until_idle();
  return sinks;
}

TEST(BatchInvariance, DeterministicLogitsDoNotDependOnBatchSizeOrOrder) {
  const auto alone = [] {
    std::vector<std::shared_ptr<LogitsSink>> out;
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
