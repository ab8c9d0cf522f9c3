// test-deps: engine_internals accuracy
// Must-show 1: in teacher-forcing mode the engine reproduces transformers' logits (the shared reference
// files) within rtol 1e-4 / atol 1e-4 (numpy allclose: |a - b| <= atol + rtol * |b|) at every step of every
// request: one request at a time, all 8 at once in several orders with max_num_seqs 1, 3 and 8, with
// prompts chunked over steps, and with a KV pool so small that requests are preempted and recomputed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "accuracy/logits_file.h"
#include "engine/engine.h"
#include "support/test_paths.h"

namespace engine {
namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-4;

// Keeps the captured logits rows [n_steps, vocab] and the emitted tokens of one request.
struct CaptureSink : RequestSink {
  int vocab;
  std::vector<float> logits;
  std::vector<int> steps_seen;
  std::vector<int32_t> tokens;
  std::optional<FinishEvent> finish;
  int num_finish = 0;
  CaptureSink(int vocab, int n_steps) : vocab(vocab), logits(static_cast<size_t>(vocab) * n_steps, NAN) {}
  void on_token(const TokenEvent& ev) override {
    tokens.push_back(ev.token);
    if (ev.logits.empty()) return;
    const int step = ev.index;
    steps_seen.push_back(step);
    if (static_cast<int>(ev.logits.size()) != vocab || (step + 1) * static_cast<size_t>(vocab) > logits.size()) return;
    std::copy(ev.logits.begin(), ev.logits.end(), logits.begin() + static_cast<size_t>(step) * vocab);
  }
  void on_finish(const FinishEvent& ev) override {
    finish = ev;
    num_finish++;
  }
};

struct Reference {
  std::string model, tokenizer;
  int vocab = 0;
  std::vector<accuracy::RequestLogits> requests;
};

Reference load_reference(const std::string& h5, const std::string& model, const std::string& tokenizer) {
  Reference ref;
  ref.model = testing_paths::shared(model).string();
  ref.tokenizer = tokenizer.empty() ? "" : testing_paths::shared(tokenizer).string();
  accuracy::LogitsReader reader(testing_paths::shared(h5).string());
  ref.vocab = reader.info().vocab_size;
  for (const auto& id : reader.ids()) ref.requests.push_back(reader.read(id));
  return ref;
}

struct RunResult {
  int64_t preemptions = 0;
};

// Submits the reference requests in `order` (all at once, or each after the previous finished) and
// checks every captured step against the reference.
RunResult run_and_compare(const Reference& ref, EngineConfig cfg, const std::vector<int>& order, bool one_at_a_time,
                          const std::string& label) {
  cfg.model = ref.model;
  cfg.tokenizer = ref.tokenizer;
  cfg.background_thread = false;
  Engine eng(cfg);
  EXPECT_EQ(eng.info().vocab_size, ref.vocab) << label;
  std::map<int, std::shared_ptr<CaptureSink>> sinks;
  for (int i : order) {
    const auto& r = ref.requests[i];
    Request req;
    req.prompt_tokens = r.prompt_tokens;
    req.forced_tokens = r.tokens;
    req.capture_logits_steps = r.n_steps();
    req.sampling.max_new_tokens = r.n_steps();
    req.sampling.ignore_eos = true;
    req.tag = r.id;
    sinks[i] = std::make_shared<CaptureSink>(ref.vocab, r.n_steps());
    eng.submit(req, sinks[i]);
    if (one_at_a_time) eng.run_until_idle();
  }
  eng.run_until_idle();
  EXPECT_EQ(eng.stats().kv_blocks_used, 0) << label;

  RunResult res;
  for (int i : order) {
    const auto& r = ref.requests[i];
    const CaptureSink& s = *sinks[i];
    const std::string where = label + ", request " + r.id;
    EXPECT_EQ(s.num_finish, 1) << where;
    if (s.num_finish != 1) continue;
    EXPECT_EQ(s.finish->reason, FinishReason::kLength) << where << ": " << s.finish->message;
    EXPECT_EQ(s.tokens, r.tokens) << where;
    std::vector<int> want_steps(r.n_steps());
    std::iota(want_steps.begin(), want_steps.end(), 0);
    EXPECT_EQ(s.steps_seen, want_steps) << where << ": each step's logits exactly once, in order";
    res.preemptions += s.finish->num_preemptions;
    int64_t bad = 0;
    double worst = 0;
    int worst_step = -1, worst_tok = -1;
    for (int step = 0; step < r.n_steps(); ++step)
      for (int v = 0; v < ref.vocab; ++v) {
        size_t k = static_cast<size_t>(step) * ref.vocab + v;
        double a = s.logits[k], b = r.logits[k];
        double excess = std::fabs(a - b) - (kAtol + kRtol * std::fabs(b));
        if (!(excess <= 0)) {
          bad++;
          if (!(excess <= worst)) worst = excess, worst_step = step, worst_tok = v;
        }
      }
    EXPECT_EQ(bad, 0) << where << ": " << bad << " logits outside tolerance; worst at step " << worst_step
                      << " token " << worst_tok << " (engine "
                      << (worst_step >= 0 ? s.logits[static_cast<size_t>(worst_step) * ref.vocab + worst_tok] : 0)
                      << ", reference "
                      << (worst_step >= 0 ? r.logits[static_cast<size_t>(worst_step) * ref.vocab + worst_tok] : 0)
                      << ")";
  }
  return res;
}

void check_reference(const std::string& h5, const std::string& model, const std::string& tokenizer) {
  Reference ref = load_reference(h5, model, tokenizer);
  ASSERT_EQ(ref.requests.size(), 8u);
  std::vector<int> forward(8), reversed, shuffled;
  std::iota(forward.begin(), forward.end(), 0);
  reversed.assign(forward.rbegin(), forward.rend());
  shuffled = forward;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(20261125));

  EngineConfig base;
  base.max_num_seqs = 8;
  run_and_compare(ref, base, forward, /*one_at_a_time=*/true, "one at a time");
  for (int max_seqs : {1, 3, 8})
    for (const auto& [name, order] : {std::pair{"forward", forward}, {"reversed", reversed}, {"shuffled", shuffled}}) {
      EngineConfig cfg = base;
      cfg.max_num_seqs = max_seqs;
      run_and_compare(ref, cfg, order, false, std::string(name) + " order, max_num_seqs " + std::to_string(max_seqs));
    }

  EngineConfig chunked = base;  // prompts split into 7-token chunks, mixed with the others' decodes
  chunked.max_num_batched_tokens = 7 + 8;
  run_and_compare(ref, chunked, shuffled, false, "chunked prefill");

  // A pool that holds the longest request alone, a little more, but far from all 8 at once.
  size_t longest = 0;
  for (const auto& r : ref.requests) longest = std::max(longest, r.prompt_tokens.size() + r.tokens.size());
  EngineConfig tight = base;
  tight.block_size = 4;
  tight.num_kv_blocks = static_cast<int64_t>((longest + 3) / 4) + 6;
  RunResult res = run_and_compare(ref, tight, shuffled, false, "KV pool of " + std::to_string(tight.num_kv_blocks) + " blocks");
  EXPECT_GT(res.preemptions, 0) << "the small KV pool did not force any preemption";
}

TEST(EngineReference, Stories260K) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  check_reference("references/stories260K_visible.h5", "models/stories260K/stories260K.bin", "");
}

TEST(EngineReference, TinyLlama) {
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  REQUIRE_SHARED("models/tiny-llama/config.json");
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  check_reference("references/tiny-llama_visible.h5", "models/tiny-llama", "models/llama2-tokenizer/tokenizer.model");
}

}  // namespace
}  // namespace engine
