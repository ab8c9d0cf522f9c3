// Shared by the batch-invariance tests (CPU: batch_invariance_test.cc; CUDA: cuda/cuda_batch_invariance_test.cc):
// eight prompts run through one Engine in a given order, every step's logits captured per prompt, and the
// bitwise comparison of two such runs.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace batch_invariance {

struct LogitsSink : engine::RequestSink {
  std::vector<std::vector<float>> steps;
  std::vector<int32_t> tokens;
  void on_token(const engine::TokenEvent& ev) override {
    tokens.push_back(ev.token);
    if (ev.logits.empty()) return;
    if (int(steps.size()) <= ev.index) steps.resize(ev.index + 1);
    steps[ev.index].assign(ev.logits.begin(), ev.logits.end());
  }
  void on_finish(const engine::FinishEvent& ev) override { message = ev.message; }
  std::string message;  ///< the engine's reason when the request ended in an error
};

inline const std::vector<std::string> kPrompts = {
    "Name three primary colors.", "Write a haiku about a quiet harbor at dawn.", "What is 17 times 23?",
    "Give two tips for learning to juggle.", "Summarize the plot of a heist story in one sentence.",
    "Translate 'good morning' into French and Spanish.", "List the planets closest to the sun.",
    "Explain in plain words why bread rises."};

using Logs = std::vector<std::shared_ptr<LogitsSink>>;

/// Submits `order` (indices into kPrompts; `steps` greedy tokens each, eos ignored, logits of every step
/// captured) to one engine built from `cfg` and runs it to idle. Result is indexed by prompt.
inline Logs run(engine::EngineConfig cfg, int max_num_seqs, int max_batched_tokens, const std::vector<int>& order,
                int steps) {
  cfg.background_thread = false;
  cfg.max_num_seqs = max_num_seqs;
  cfg.max_num_batched_tokens = max_batched_tokens;
  engine::Engine eng(cfg);
  Logs sinks(kPrompts.size());
  for (int i : order) {
    engine::Request r;
    r.prompt = kPrompts[i];
    r.sampling.max_new_tokens = steps;
    r.sampling.ignore_eos = true;
    r.capture_logits_steps = steps;
    sinks[i] = std::make_shared<LogitsSink>();
    eng.submit(std::move(r), sinks[i]);
  }
  eng.run_until_idle();
  return sinks;
}

/// Each prompt run alone, in an engine of batch size 1.
inline Logs run_alone(const engine::EngineConfig& cfg, int steps) {
  Logs out;
  for (size_t i = 0; i < kPrompts.size(); ++i) out.push_back(run(cfg, 1, 2048, {int(i)}, steps)[i]);
  return out;
}

/// Fails unless, for every prompt, `other` has the same tokens as `alone` and every one of its `steps`
/// steps has logits bitwise equal to `alone`'s. `label` names `other` in the messages.
inline void expect_bitwise_equal(const Logs& alone, const Logs& other, int steps, const std::string& label) {
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    ASSERT_EQ(alone[i]->steps.size(), size_t(steps)) << "alone: request " << i << " " << alone[i]->message;
    ASSERT_EQ(other[i]->steps.size(), size_t(steps)) << label << ": request " << i << " " << other[i]->message;
    EXPECT_EQ(other[i]->tokens, alone[i]->tokens) << label << ": request " << i;
    for (int s = 0; s < steps; ++s) {
      const auto& a = alone[i]->steps[s];
      const auto& b = other[i]->steps[s];
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
          << label << ": request " << i << " step " << s << ": logits differ bitwise from the batch-size-1 run";
    }
  }
}

}  // namespace batch_invariance
