// test-deps: engine
// The Engine end to end on dummy:tiny (seeded random weights, byte tokenizer, CPU backend): event order,
// finish reasons, validation messages, abort, seeded sampling, logits capture, and greedy outputs that do
// not depend on batch size, chunking or preemption.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "support/test_paths.h"

namespace engine {
namespace {

// Records one request's events and checks their order as they arrive.
struct Recorder : RequestSink {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<TokenEvent> tokens;
  std::vector<std::pair<int, std::vector<float>>> logits;
  std::optional<FinishEvent> finish;
  int num_finish = 0;
  std::vector<std::string> order_errors;

  void on_token(const TokenEvent& ev) override {
    std::lock_guard<std::mutex> lk(mu);
    if (num_finish) order_errors.push_back("token after finish");
    if (ev.index != static_cast<int>(tokens.size())) order_errors.push_back("index " + std::to_string(ev.index));
    if (!tokens.empty() && ev.time < tokens.back().time) order_errors.push_back("time went back");
    if (!ev.logits.empty()) logits.emplace_back(ev.index, std::vector<float>(ev.logits.begin(), ev.logits.end()));
    tokens.push_back(ev);
    tokens.back().logits = {};  // a view valid only during on_token
  }
  void on_finish(const FinishEvent& ev) override {
    std::lock_guard<std::mutex> lk(mu);
    num_finish++;
    finish = ev;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return num_finish > 0; });
  }
  std::vector<int32_t> ids() const {
    std::vector<int32_t> out;
    for (const auto& t : tokens) out.push_back(t.token);
    return out;
  }
  std::string text() const {
    std::string s;
    for (const auto& t : tokens) s += t.text;
    return s;
  }
};

EngineConfig tiny(bool background = false) {
  EngineConfig c;
  c.model = "dummy:tiny";
  c.dummy_seed = 3;
  c.background_thread = background;
  c.max_num_seqs = 8;
  return c;
}

Request greedy(std::vector<int32_t> prompt, int max_new) {
  Request r;
  r.prompt_tokens = std::move(prompt);
  r.sampling.max_new_tokens = max_new;
  r.sampling.ignore_eos = true;
  return r;
}

std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char ch : s) ids.push_back(ch + 3);
  return ids;
}

// Eight prompts of different lengths (1..90 tokens).
std::vector<std::vector<int32_t>> prompts() {
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> p = {1};
    for (int j = 0; j < 1 + i * 13; ++j) p.push_back(3 + (i * 37 + j * 11) % 256);
    out.push_back(p);
  }
  return out;
}

// Runs all prompts greedily through one engine and returns each one's tokens (and total preemptions).
std::vector<std::vector<int32_t>> run_all(EngineConfig cfg, int max_new, int64_t* preemptions = nullptr) {
  Engine eng(cfg);
  std::vector<std::shared_ptr<Recorder>> recs;
  for (const auto& p : prompts()) {
    recs.push_back(std::make_shared<Recorder>());
    eng.submit(greedy(p, max_new), recs.back());
  }
  eng.run_until_idle();
  std::vector<std::vector<int32_t>> out;
  int64_t pre = 0;
  for (auto& r : recs) {
    EXPECT_EQ(r->num_finish, 1);
    EXPECT_TRUE(r->order_errors.empty()) << r->order_errors.front();
    EXPECT_EQ(r->finish->reason, FinishReason::kLength);
    pre += r->finish->num_preemptions;
    out.push_back(r->ids());
  }
  EXPECT_EQ(eng.stats().kv_blocks_used, 0);
  if (preemptions) *preemptions = pre;
  return out;
}

TEST(Engine, StreamsTokensInOrderThenFinishesOnce) {
  Engine eng(tiny(/*background=*/true));
  EXPECT_EQ(eng.info().vocab_size, 512);
  EXPECT_EQ(eng.info().tokenizer, "bytes");
  auto rec = std::make_shared<Recorder>();
  Request r;
  r.prompt = "Once upon a time";
  r.sampling.max_new_tokens = 12;
  r.sampling.ignore_eos = true;
  uint64_t id = eng.submit(r, rec);
  EXPECT_GT(id, 0u);
  rec->wait();
  eng.run_until_idle();
  EXPECT_TRUE(rec->order_errors.empty()) << rec->order_errors.front();
  ASSERT_EQ(rec->tokens.size(), 12u);
  EXPECT_EQ(rec->num_finish, 1);
  EXPECT_EQ(rec->finish->reason, FinishReason::kLength);
  EXPECT_EQ(rec->finish->output_tokens, 12);
  EXPECT_EQ(rec->finish->prompt_tokens, static_cast<int>(eng.tokenize("Once upon a time", true).size()));
  std::vector<int32_t> ids = rec->ids();
  EXPECT_EQ(rec->text(), eng.detokenize(ids));  // deltas add up to the whole text
  EngineStats st = eng.stats();
  EXPECT_EQ(st.running + st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.generated_tokens_total, 12);
  EXPECT_GT(st.steps, 0);
  EXPECT_STREQ(to_string(FinishReason::kEos), "eos");
}

TEST(Engine, EosStopTokensAndStopStrings) {
  Engine eng(tiny());
  const int eos = eng.info().eos_id;
  auto run = [&](Request r) {
    auto rec = std::make_shared<Recorder>();
    eng.submit(std::move(r), rec);
    eng.run_until_idle();
    EXPECT_EQ(rec->num_finish, 1);
    return rec;
  };
  Request r = greedy({1, 50, 60}, 10);
  r.sampling.ignore_eos = false;
  r.forced_tokens = {70, 71, eos, 72};
  auto a = run(r);
  EXPECT_EQ(a->finish->reason, FinishReason::kEos);
  EXPECT_EQ(a->ids(), (std::vector<int32_t>{70, 71, eos}));
  EXPECT_EQ(a->tokens.back().text, "");

  r.sampling.ignore_eos = true;  // eos is just a token: run to max_new_tokens
  auto b = run(r);
  EXPECT_EQ(b->finish->reason, FinishReason::kLength);
  EXPECT_EQ(b->finish->output_tokens, 10);

  Request s = greedy({1, 50}, 10);
  s.forced_tokens = {80, 81, 82, 83};
  s.sampling.stop_token_ids = {82};
  auto c = run(s);
  EXPECT_EQ(c->finish->reason, FinishReason::kStop);
  EXPECT_EQ(c->ids(), (std::vector<int32_t>{80, 81, 82}));

  Request t = greedy({1, 50}, 20);
  t.forced_tokens = bytes("ab\nEND tail");
  t.sampling.stop = {"END"};
  auto d = run(t);
  EXPECT_EQ(d->finish->reason, FinishReason::kStop);
  EXPECT_EQ(d->text(), "ab\n");  // the match is not emitted
  EXPECT_EQ(d->tokens.size(), 6u);
}

// A stop string completed by the last allowed token: the sequence ended because of the string (its text
// is cut there), so the reason is stop, not length.
TEST(Engine, AStopStringOnTheLastAllowedTokenIsAStop) {
  Engine eng(tiny());
  auto rec = std::make_shared<Recorder>();
  Request r = greedy({1, 50}, 5);
  r.forced_tokens = bytes("abEND");
  r.sampling.stop = {"END"};
  eng.submit(r, rec);
  eng.run_until_idle();
  ASSERT_EQ(rec->num_finish, 1);
  EXPECT_EQ(rec->finish->reason, FinishReason::kStop);
  EXPECT_EQ(rec->text(), "ab");
  EXPECT_EQ(rec->finish->output_tokens, 5);
}

TEST(Engine, RejectsBadRequestsWithTheNumbers) {
  EngineConfig cfg = tiny();
  cfg.max_waiting = 2;
  Engine eng(cfg);
  auto rec = std::make_shared<Recorder>();
  Request long_prompt = greedy(std::vector<int32_t>(2000, 5), 100);
  try {
    eng.submit(long_prompt, rec);
    FAIL() << "a too-long request was accepted";
  } catch (const InvalidRequestError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("2000"), std::string::npos) << m;
    EXPECT_NE(m.find("2100"), std::string::npos) << m;
    EXPECT_NE(m.find("2048"), std::string::npos) << m;
  }
  Request empty;  // no tokens, and text that encodes to nothing
  empty.add_bos = false;
  EXPECT_THROW(eng.submit(empty, rec), InvalidRequestError);
  EXPECT_THROW(eng.submit(greedy({1, 512}, 5), rec), InvalidRequestError);
  EXPECT_THROW(eng.submit(greedy({1, -1}, 5), rec), InvalidRequestError);
  Request bad_p = greedy({1, 5}, 5);
  bad_p.sampling.top_p = 0;
  EXPECT_THROW(eng.submit(bad_p, rec), InvalidRequestError);
  EXPECT_THROW(eng.submit(greedy({1, 5}, 0), rec), InvalidRequestError);
  EXPECT_EQ(rec->num_finish, 0);  // a rejected request's sink is never called

  eng.submit(greedy({1, 5}, 2), std::make_shared<Recorder>());
  eng.submit(greedy({1, 5}, 2), std::make_shared<Recorder>());
  EXPECT_THROW(eng.submit(greedy({1, 5}, 2), std::make_shared<Recorder>()), QueueFullError);
  eng.run_until_idle();
  EXPECT_NO_THROW(eng.submit(greedy({1, 5}, 2), std::make_shared<Recorder>()));
}

TEST(Engine, RejectsBadSettings) {
  EngineConfig cfg = tiny();
  cfg.max_model_len = 4096;  // past dummy:tiny's 2048
  EXPECT_THROW(Engine{cfg}, std::invalid_argument);
  cfg = tiny();
  cfg.enable_chunked_prefill = false;
  cfg.max_num_batched_tokens = 512;  // a 2048-token prompt could never be prefilled
  EXPECT_THROW(Engine{cfg}, std::invalid_argument);
  cfg = tiny();
  cfg.num_kv_blocks = 4;  // 64 tokens of KV: a longer request is invalid, not stuck
  Engine eng(cfg);
  EXPECT_THROW(eng.submit(greedy(std::vector<int32_t>(60, 5), 10), std::make_shared<Recorder>()), InvalidRequestError);
  cfg = tiny();
  cfg.model = "dummy:no-such-preset";
  EXPECT_THROW(Engine{cfg}, ModelLoadError);
  cfg = tiny();
  cfg.max_model_len = 100;  // a shorter limit than the model's is honoured
  Engine short_eng(cfg);
  EXPECT_EQ(short_eng.info().max_model_len, 100);
  EXPECT_THROW(short_eng.submit(greedy(std::vector<int32_t>(90, 5), 11), std::make_shared<Recorder>()),
               InvalidRequestError);
  EXPECT_NO_THROW(short_eng.submit(greedy(std::vector<int32_t>(90, 5), 10), std::make_shared<Recorder>()));
}

TEST(Engine, RejectsATokenizerLargerThanTheModelVocabulary) {
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  EngineConfig cfg = tiny();  // 512 ids; the Llama 2 tokenizer needs 32000
  cfg.tokenizer = testing_paths::shared("models/llama2-tokenizer/tokenizer.model").string();
  try {
    Engine eng(cfg);
    FAIL() << "accepted a 32000-token tokenizer for a 512-token model";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("32000"), std::string::npos) << e.what();
  }
}

TEST(Engine, AbortFinishesTheRequestAndFreesItsBlocks) {
  Engine eng(tiny());
  auto b = std::make_shared<Recorder>();
  uint64_t ib = eng.submit(greedy(std::vector<int32_t>(40, 9), 300), b);  // runs beside the aborted one
  auto c = std::make_shared<Recorder>();
  uint64_t ic = eng.submit(greedy(std::vector<int32_t>(40, 7), 500), c);
  for (int i = 0; i < 4; ++i) eng.step();
  const int64_t used_both = eng.stats().kv_blocks_used;
  EXPECT_EQ(used_both, 2 * 3);  // 40 prompt + 4 generated tokens each: 3 blocks of 16
  EXPECT_EQ(c->num_finish, 0);
  eng.abort(ic);
  eng.abort(987654);  // unknown ids are ignored
  eng.step();
  EXPECT_EQ(c->num_finish, 1);
  EXPECT_EQ(c->finish->reason, FinishReason::kAborted);
  EXPECT_EQ(c->finish->output_tokens, static_cast<int>(c->tokens.size()));
  EXPECT_EQ(eng.stats().running, 1);
  EXPECT_EQ(eng.stats().kv_blocks_used, 3);  // only b's
  EXPECT_EQ(b->num_finish, 0);
  eng.abort(ib);
  eng.step();
  EXPECT_EQ(b->finish->reason, FinishReason::kAborted);
  EXPECT_EQ(eng.stats().kv_blocks_used, 0);
  EXPECT_EQ(eng.stats().running, 0);
  EXPECT_FALSE(eng.step());
}

TEST(Engine, AbortFromAnotherThreadAndShutdownInFlight) {
  auto a = std::make_shared<Recorder>(), b = std::make_shared<Recorder>();
  {
    Engine eng(tiny(/*background=*/true));
    uint64_t ia = eng.submit(greedy({1, 5, 6}, 1500), a);
    eng.submit(greedy({1, 5, 6}, 1500), b);
    while (eng.stats().generated_tokens_total < 4) std::this_thread::yield();
    eng.abort(ia);
    a->wait();
    EXPECT_EQ(a->finish->reason, FinishReason::kAborted);
  }  // the destructor aborts b
  EXPECT_EQ(b->num_finish, 1);
  EXPECT_EQ(b->finish->reason, FinishReason::kAborted);
  EXPECT_LT(b->finish->output_tokens, 1500);
}

// A sink that throws ends its own request with kError; the engine and the other requests go on.
struct ThrowingSink : Recorder {
  void on_token(const TokenEvent& ev) override {
    Recorder::on_token(ev);
    if (ev.index == 2) throw std::runtime_error("sink broke");
  }
};

TEST(Engine, AThrowingSinkEndsOnlyItsOwnRequest) {
  Engine eng(tiny(/*background=*/true));
  auto bad = std::make_shared<ThrowingSink>();
  auto good = std::make_shared<Recorder>();
  eng.submit(greedy({1, 10, 11}, 8), bad);
  eng.submit(greedy({1, 12, 13}, 8), good);
  eng.run_until_idle();
  ASSERT_EQ(bad->num_finish, 1);
  EXPECT_EQ(bad->finish->reason, FinishReason::kError);
  EXPECT_NE(bad->finish->message.find("sink broke"), std::string::npos) << bad->finish->message;
  EXPECT_EQ(bad->tokens.size(), 3u);
  ASSERT_EQ(good->num_finish, 1);
  EXPECT_EQ(good->finish->reason, FinishReason::kLength);
  EXPECT_EQ(good->tokens.size(), 8u);
  EXPECT_EQ(eng.stats().kv_blocks_used, 0);
}

TEST(Engine, SameSeedSameTokensWhateverTheBatch) {
  auto sampled = [](uint64_t seed) {
    Request r = greedy({1, 40, 41, 42}, 24);
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 40;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = seed;
    return r;
  };
  Engine eng(tiny());
  auto alone = std::make_shared<Recorder>();
  eng.submit(sampled(11), alone);
  eng.run_until_idle();
  std::vector<std::shared_ptr<Recorder>> crowd;
  for (int i = 0; i < 5; ++i) {
    crowd.push_back(std::make_shared<Recorder>());
    eng.submit(i == 2 ? sampled(11) : sampled(100 + i), crowd.back());
  }
  eng.run_until_idle();
  EXPECT_EQ(crowd[2]->ids(), alone->ids());
  EXPECT_NE(crowd[0]->ids(), alone->ids());
  EXPECT_NE(crowd[0]->ids(), crowd[1]->ids());
}

TEST(Engine, CapturedLogitsAreTheRawRowsOfEachStep) {
  Engine eng(tiny());
  auto rec = std::make_shared<Recorder>();
  Request r = greedy({1, 20, 30, 40}, 6);
  r.capture_logits_steps = 4;
  eng.submit(r, rec);
  eng.run_until_idle();
  EXPECT_TRUE(rec->order_errors.empty()) << rec->order_errors.front();
  ASSERT_EQ(rec->logits.size(), 4u);
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(rec->logits[s].first, s);
    ASSERT_EQ(rec->logits[s].second.size(), 512u);
    const auto& row = rec->logits[s].second;
    EXPECT_EQ(std::max_element(row.begin(), row.end()) - row.begin(), rec->tokens[s].token) << "step " << s;
  }
}

TEST(Engine, GreedyOutputIndependentOfBatchChunkingAndPreemption) {
  const int max_new = 24;
  EngineConfig one = tiny();
  one.max_num_seqs = 1;
  auto ref = run_all(one, max_new);

  EngineConfig eight = tiny();
  EXPECT_EQ(run_all(eight, max_new), ref) << "batch of 8";

  EngineConfig chunked = tiny();
  chunked.max_num_batched_tokens = 16;  // prompts split into chunks mixed with decodes
  EXPECT_EQ(run_all(chunked, max_new), ref) << "chunked prefill";

  EngineConfig whole = tiny();
  whole.enable_chunked_prefill = false;
  whole.max_model_len = 256;
  whole.max_num_batched_tokens = 256;
  EXPECT_EQ(run_all(whole, max_new), ref) << "no chunking";

  EngineConfig tight = tiny();
  tight.block_size = 4;
  tight.num_kv_blocks = 40;  // 160 tokens for 8 sequences of up to 115
  int64_t preemptions = 0;
  EXPECT_EQ(run_all(tight, max_new, &preemptions), ref) << "preemption";
  EXPECT_GT(preemptions, 0);
}

}  // namespace
}  // namespace engine
