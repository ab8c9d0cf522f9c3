// test-deps: engine_internals accuracy
// The CPU backend against transformers' logits (../shared/references/*_visible.h5), driven directly (no
// scheduler): KV blocks are handed out by hand in a scattered order, prompts run as one prefill or in
// chunks, then the reference's tokens are fed back one decode step at a time (teacher forcing).
// Step 0's logits are those after the whole prompt; step i's after prompt + tokens[0..i-1].
// Tolerance: numpy allclose, |ours - ref| <= atol + rtol * |ref| with rtol = atol = 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "accuracy/logits_file.h"
#include "backend/backend.h"
#include "backend/llama_f64.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace {

using engine::Backend;
using engine::SeqSlice;
using engine::StepBatch;

constexpr double kRtol = 1e-4, kAtol = 1e-4;

struct Case {
  const char* name;
  const char* model;      // relative to the shared dir
  const char* reference;  // relative to the shared dir
};
const Case kStories = {"stories260K", "models/stories260K/stories260K.bin", "references/stories260K_visible.h5"};
const Case kTinyLlama = {"tiny_llama", "models/tiny-llama", "references/tiny-llama_visible.h5"};

/// How the requests are fed: which of them share a step, how long a prefill chunk is, when each starts.
struct Schedule {
  const char* name;
  bool all_at_once;  // false: one request at a time
  int chunk;         // prefill tokens per step (a huge value: the whole prompt at once)
  int start_gap;     // request i joins at step i * start_gap (mixes prefill chunks with decodes)
  int block_size;
};

/// One request being replayed: stream = prompt + tokens[0 .. n_steps-2].
struct Replay {
  accuracy::RequestLogits ref;
  std::vector<int32_t> stream;
  std::vector<int32_t> blocks;
  int fed = 0;        // stream tokens already in the KV cache
  int start_step = 0;
  int n_prompt() const { return int(ref.prompt_tokens.size()); }
  bool done() const { return fed >= int(stream.size()); }
};

struct Mismatch {
  int count = 0, checked = 0;
  double worst_excess = 0;  // max of |a-b| - (atol + rtol*|b|)
  std::string worst_where;
};

void compare_row(const float* ours, const Replay& r, int step, int vocab, Mismatch& m) {
  const float* ref = r.ref.logits.data() + size_t(step) * vocab;
  for (int j = 0; j < vocab; ++j) {
    const double d = std::fabs(double(ours[j]) - ref[j]), lim = kAtol + kRtol * std::fabs(double(ref[j]));
    ++m.checked;
    if (!(d <= lim)) {
      ++m.count;
      if (d - lim > m.worst_excess || !std::isfinite(d)) {
        m.worst_excess = d - lim;
        m.worst_where = "request " + r.ref.id + " step " + std::to_string(step) + " token " + std::to_string(j) +
                        ": ours " + std::to_string(ours[j]) + " ref " + std::to_string(ref[j]);
      }
    }
  }
}

/// Replays every request of `c` under `sched` and returns the mismatch summary.
Mismatch run_case(const Case& c, const Schedule& sched) {
  const engine::ModelWeights w = engine::load_model(testing_paths::shared(c.model).string());
  engine::EngineConfig ec;
  ec.backend = engine::BackendKind::kCpu;
  std::unique_ptr<Backend> be = engine::make_backend(ec);
  be->load(w);
  const int vocab = w.config.vocab_size;
  EXPECT_EQ(be->vocab_size(), vocab);

  accuracy::LogitsReader reader(testing_paths::shared(c.reference).string());
  EXPECT_EQ(reader.info().vocab_size, vocab);
  std::vector<Replay> reqs;
  for (const auto& id : reader.ids()) {
    Replay r;
    r.ref = reader.read(id);
    r.stream = r.ref.prompt_tokens;
    r.stream.insert(r.stream.end(), r.ref.tokens.begin(), r.ref.tokens.end() - 1);
    reqs.push_back(std::move(r));
  }
  EXPECT_EQ(reqs.size(), 8u);

  // Hand out blocks from a shuffled pool, so every sequence's blocks are scattered and non-contiguous.
  const int bs = sched.block_size;
  int total_blocks = 0;
  for (const auto& r : reqs) total_blocks += (int(r.stream.size()) + bs - 1) / bs;
  std::vector<int32_t> pool(total_blocks + 3);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937(7));
  be->allocate_kv_cache(int64_t(pool.size()), bs);
  size_t next_block = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto& r = reqs[i];
    for (int b = 0; b < (int(r.stream.size()) + bs - 1) / bs; ++b) r.blocks.push_back(pool[next_block++]);
    r.start_step = sched.all_at_once ? int(i) * sched.start_gap : 0;
  }

  Mismatch m;
  std::vector<float> logits;
  auto run_steps = [&](std::vector<Replay*> active) {
    for (int step = 0;; ++step) {
      StepBatch b;
      std::vector<Replay*> rows;
      for (Replay* r : active) {
        if (r->done() || step < r->start_step) continue;
        const bool prefill = r->fed < r->n_prompt();
        const int n = prefill ? std::min(sched.chunk, r->n_prompt() - r->fed) : 1;
        SeqSlice s;
        s.query_start = b.num_tokens();
        s.query_len = n;
        s.context_len = r->fed + n;
        s.block_table_start = int(b.block_tables.size());
        s.num_blocks = (s.context_len + bs - 1) / bs;
        s.want_logits = s.context_len >= r->n_prompt();  // a prompt's inner chunks produce no logits
        for (int j = 0; j < n; ++j) {
          b.tokens.push_back(r->stream[r->fed + j]);
          b.positions.push_back(r->fed + j);
        }
        b.block_tables.insert(b.block_tables.end(), r->blocks.begin(), r->blocks.begin() + s.num_blocks);
        b.seqs.push_back(s);
        if (s.want_logits) rows.push_back(r);
        r->fed += n;
      }
      if (b.seqs.empty()) {
        if (std::all_of(active.begin(), active.end(), [](Replay* r) { return r->done(); })) return;
        continue;  // someone has not started yet
      }
      logits.assign(size_t(rows.size()) * vocab, NAN);
      be->forward(b, logits.data());
      for (size_t i = 0; i < rows.size(); ++i)
        compare_row(logits.data() + i * vocab, *rows[i], rows[i]->fed - rows[i]->n_prompt(), vocab, m);
    }
  };
  if (sched.all_at_once) {
    std::vector<Replay*> all;
    for (auto& r : reqs) all.push_back(&r);
    run_steps(all);
  } else {
    for (auto& r : reqs) run_steps({&r});
  }
  int expected_rows = 0;
  for (const auto& r : reqs) expected_rows += r.ref.n_steps();
  EXPECT_EQ(m.checked, int64_t(expected_rows) * vocab) << "every step of every request must be compared";
  return m;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }
void PrintTo(const Schedule& s, std::ostream* os) { *os << s.name; }

class CpuReference : public ::testing::TestWithParam<std::tuple<Case, Schedule>> {};

TEST_P(CpuReference, MatchesTransformersLogits) {
  const auto& [c, sched] = GetParam();
  REQUIRE_SHARED(c.model);
  REQUIRE_SHARED(c.reference);
  const Mismatch m = run_case(c, sched);
  EXPECT_EQ(m.count, 0) << m.count << " of " << m.checked << " logits outside rtol/atol 1e-4; worst: "
                        << m.worst_where;
}

const Schedule kSchedules[] = {
    {"one_by_one_whole_prompt", false, 1 << 30, 0, 16},
    {"one_by_one_chunks_of_7_block_5", false, 7, 0, 5},
    {"all_8_in_one_batch", true, 1 << 30, 0, 16},
    {"staggered_chunks_of_5_mixed_with_decodes", true, 5, 2, 16},
};

INSTANTIATE_TEST_SUITE_P(Models, CpuReference,
                         ::testing::Combine(::testing::Values(kStories, kTinyLlama), ::testing::ValuesIn(kSchedules)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param).name;
                         });

// ---------------------------------------------------------------- against a plain float64 Llama
// Independent of the reference files: the same weights through engine::reference::llama_f64_logits, a direct
// float64 transcription of transformers' LlamaForCausalLM (one sequence, no cache), compared after the
// prompt and after each decode.

/// Prompt as one prefill, then `decodes` single-token steps; each step's logits against the float64 Llama.
void check_against_f64(const std::string& source, const std::vector<int32_t>& prompt, const std::vector<int32_t>& next) {
  const engine::ModelWeights w = engine::load_model(source, 5);
  std::unique_ptr<Backend> be = engine::make_backend(engine::EngineConfig{});
  be->load(w);
  be->allocate_kv_cache(16, 8);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), next.begin(), next.end());
  const auto ref = engine::reference::llama_f64_logits(w, all, int(prompt.size()) - 1);
  const std::vector<int32_t> table = {9, 3, 14, 0, 7, 12, 1, 5, 2, 11};  // scattered block ids
  std::vector<float> lg(w.config.vocab_size);
  int fed = 0;
  for (size_t step = 0; step <= next.size(); ++step) {
    StepBatch b;
    const int n = step == 0 ? int(prompt.size()) : 1;
    for (int j = 0; j < n; ++j) b.tokens.push_back(all[fed + j]), b.positions.push_back(fed + j);
    fed += n;
    b.block_tables = table;
    b.seqs = {SeqSlice{0, n, fed, 0, (fed + 7) / 8, true}};
    be->forward(b, lg.data());
    for (int j = 0; j < w.config.vocab_size; ++j)
      ASSERT_LE(std::fabs(lg[j] - ref[step][j]), kAtol + kRtol * std::fabs(ref[step][j]))
          << source << " step " << step << " logit " << j << ": ours " << lg[j] << " f64 " << ref[step][j];
  }
}

TEST(CpuBackendFloat64, TinyLlamaBf16Weights) {
  REQUIRE_SHARED(kTinyLlama.model);
  // Request 100's prompt (Alpaca template, Llama 2 tokenizer) and its first reference tokens.
  const std::vector<int32_t> prompt = {1, 13866, 338, 385, 15278, 393, 16612, 263, 3414, 29889, 14350, 263, 2933,
                                       393, 7128, 2486, 1614, 2167, 278, 2009, 29889, 13, 13, 2277, 29937, 2799,
                                       4080, 29901, 13, 4002, 647, 263, 2566, 304, 2407, 19001, 4497, 4314, 29889,
                                       13, 13, 2277, 29937, 13291, 29901, 13};
  check_against_f64(testing_paths::shared(kTinyLlama.model).string(), prompt, {20650, 31627, 20470});
}

TEST(CpuBackendFloat64, Stories260K) {
  REQUIRE_SHARED(kStories.model);
  check_against_f64(testing_paths::shared(kStories.model).string(), {1, 75, 104, 3, 300, 511, 42, 260, 87}, {5, 6});
}

TEST(CpuBackendFloat64, DummyTiny) {
  check_against_f64("dummy:tiny", {1, 75, 104, 3, 300, 511, 42, 260, 87, 100, 101, 102, 7}, {5, 6, 400});
}

}  // namespace
