// test-deps: loadgen_lib
// LogprobsDump: the steps a request's callbacks hand over become its rows in the top-K file as they arrive
// (ids kept, short rows padded with kNoToken / -inf, token strings mapped on the writer thread — with no
// tokenizer every string is kUnmapped and counted), steps out of order are ignored, and a failed request or
// one without steps is not written.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <filesystem>
#include <limits>

#include "accuracy/logits_file.h"
#include "loadgen/run/logprobs_dump.h"
#include "loadgen/workload/workload.h"
#include "support/test_paths.h"

using namespace loadgen;

namespace {

TokenLogprob by_id(int32_t id, double lp) { return TokenLogprob{id, "", lp}; }
TokenLogprob by_text(std::string text, double lp) { return TokenLogprob{-1, std::move(text), lp}; }

/// A top-K file of a 100-token vocabulary.
accuracy::FileInfo top_k_file(int k) {
  accuracy::FileInfo info;
  info.vocab_size = 100;
  info.top_k = k;
  return info;
}

TEST(LogprobsDump, StepsBecomeRowsPaddedAndMappedAndOnlyOkRequestsAreWritten) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_dump_");
  const std::string path = (dir / "lp.h5").string();
  std::vector<WorkItem> items(3);
  for (int i = 0; i < 3; ++i) {
    items[i].index = i;
    items[i].sample_id = 10 + i;
    items[i].prompt = "p" + std::to_string(i);
    items[i].prompt_tokens = {1, 2, 3};
    items[i].max_new_tokens = 2;  // fewer than what request 0 sends: the rows grow past it
    items[i].top_logprobs = 3;
  }
  const accuracy::FileInfo info = top_k_file(3);
  {
    LogprobsDump dump(path, info, items, TokenIdMap(), nullptr);
    dump.on_logprobs(0, 0, StepLogprobs{by_id(5, -0.25), {by_id(5, -0.25), by_id(7, -1.5)}});
    dump.on_logprobs(0, 1, StepLogprobs{by_text("x", -0.5), {by_text("x", -0.5), by_id(9, -2.0), by_id(4, -3.0), by_id(8, -4.0)}});
    dump.on_logprobs(0, 5, StepLogprobs{by_id(1, -9.0), {}});  // out of order: ignored
    dump.on_logprobs(0, 2, StepLogprobs{by_id(6, std::numeric_limits<double>::quiet_NaN()), {by_text("y", -0.125)}});
    dump.on_logprobs(1, 0, StepLogprobs{by_id(5, -0.25), {}});
    Outcome ok, failed;
    failed.status = Status::kFailed;
    dump.on_done(0, ok);
    dump.on_done(1, failed);
    dump.on_done(2, ok);  // no steps
    dump.close();
    EXPECT_EQ(dump.written(), 1);
    EXPECT_EQ(dump.unmapped(), 3);
  }
  accuracy::LogitsReader rd(path);
  EXPECT_EQ(rd.ids(), (std::vector<std::string>{"10"}));
  const accuracy::RequestLogits r = rd.read("10");
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.prompt_text, "p0");
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, accuracy::kUnmapped, 6}));
  ASSERT_EQ(r.token_logprobs.size(), 3u);
  EXPECT_EQ(r.token_logprobs[0], -0.25f);
  EXPECT_EQ(r.token_logprobs[1], -0.5f);
  EXPECT_TRUE(std::isnan(r.token_logprobs[2]));
  EXPECT_EQ(r.top_ids, (std::vector<int32_t>{5, 7, accuracy::kNoToken, accuracy::kUnmapped, 9, 4, accuracy::kUnmapped,
                                             accuracy::kNoToken, accuracy::kNoToken}));
  EXPECT_EQ(r.top_logprobs, (std::vector<float>{-0.25f, -1.5f, -inf, -0.5f, -2.0f, -3.0f, -0.125f, -inf, -inf}));
  EXPECT_EQ(r.unmapped, 3);
  std::filesystem::remove_all(dir);
}

// The client's path under --dump-logprobs: each event's choices[0].logprobs as text, spooled and read in
// close(), with steps the client read itself after it kept in line; a request whose text is not JSON is not
// written, counted and named; one whose logprobs hold no step is not written either. No spool file is left
// behind.
TEST(LogprobsDump, JsonFromTheClientIsReadInCloseInOrder) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_dump_json_");
  const std::string path = (dir / "lp.h5").string();
  std::vector<WorkItem> items(4);
  for (int i = 0; i < 4; ++i) {
    items[i].index = i;
    items[i].sample_id = 20 + i;
    items[i].prompt_tokens = {1, 2};
    items[i].max_new_tokens = 3;
    items[i].top_logprobs = 2;
  }
  const accuracy::FileInfo info = top_k_file(2);
  {
    LogprobsDump dump(path, info, items, TokenIdMap(), nullptr);
    ASSERT_TRUE(dump.takes_logprobs_json(0));
    dump.on_logprobs_json(0, LogprobsLayout::kCompletion,
                          R"({"tokens":["token_id:5"],"token_logprobs":[-0.25],"top_logprobs":[{"token_id:5":-0.25,"token_id:7":-1.5}]})");
    dump.on_logprobs(0, 0, StepLogprobs{by_id(9, -0.5), {by_id(9, -0.5)}});  // read by the client, after the JSON
    dump.on_logprobs_json(0, LogprobsLayout::kChat,
                          R"( {"content":[{"token":"token_id:3","logprob":-2.0,"top_logprobs":[{"token":"token_id:3","logprob":-2.0}]}]})");
    dump.on_logprobs_json(1, LogprobsLayout::kCompletion, R"({"tokens":["a"],"token_logprobs":[-0.5e]})");
    dump.on_logprobs_json(2, LogprobsLayout::kCompletion, R"({"tokens":[],"token_logprobs":[]})");
    dump.on_logprobs_json(3, LogprobsLayout::kChat,
                          R"({"content":[{"token":"token_id:8","logprob":-1.0,"top_logprobs":[{"token":"token_id:8","logprob":-1.0},{"token":"zz","logprob":-3.0}]}]})");
    dump.on_logprobs_json(3, LogprobsLayout::kCompletion, R"({"tokens":["token_id:4"],"token_logprobs":[-0.75]})");
    Outcome ok;
    for (uint64_t i = 0; i < 4; ++i) dump.on_done(i, ok);
    dump.close();
    EXPECT_FALSE(std::filesystem::exists(path + ".spool.tmp"));
    EXPECT_EQ(dump.written(), 2);
    EXPECT_EQ(dump.unmapped(), 1);
    EXPECT_EQ(dump.malformed(), 1);
    EXPECT_EQ(dump.first_malformed(), R"(request 21: malformed logprobs: {"tokens":["a"],"token_logprobs":[-0.5e]})");
  }
  accuracy::LogitsReader rd(path);
  EXPECT_EQ(rd.ids(), (std::vector<std::string>{"20", "23"}));  // in the order they ended
  const accuracy::RequestLogits r = rd.read("20");
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, 9, 3}));
  EXPECT_EQ(r.token_logprobs, (std::vector<float>{-0.25f, -0.5f, -2.0f}));
  EXPECT_EQ(r.top_ids, (std::vector<int32_t>{5, 7, 9, accuracy::kNoToken, 3, accuracy::kNoToken}));
  EXPECT_EQ(r.top_logprobs, (std::vector<float>{-0.25f, -1.5f, -0.5f, -inf, -2.0f, -inf}));
  const accuracy::RequestLogits spooled = rd.read("23");
  EXPECT_EQ(spooled.tokens, (std::vector<int32_t>{8, 4}));
  EXPECT_EQ(spooled.token_logprobs, (std::vector<float>{-1.0f, -0.75f}));
  EXPECT_EQ(spooled.top_ids, (std::vector<int32_t>{8, accuracy::kUnmapped, accuracy::kNoToken, accuracy::kNoToken}));
  EXPECT_EQ(spooled.top_logprobs, (std::vector<float>{-1.0f, -3.0f, -inf, -inf}));
  EXPECT_EQ(spooled.unmapped, 1);
  std::filesystem::remove_all(dir);
}

// A dump destroyed without close() (the run failed) leaves neither the file nor its spool.
TEST(LogprobsDump, WithoutCloseNothingIsLeftBehind) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_dump_abandon_");
  const std::string path = (dir / "lp.h5").string();
  std::vector<WorkItem> items(1);
  items[0].prompt_tokens = {1};
  items[0].max_new_tokens = 1;
  items[0].top_logprobs = 1;
  const accuracy::FileInfo info = top_k_file(1);
  {
    LogprobsDump dump(path, info, items, TokenIdMap(), nullptr);
    dump.on_logprobs_json(0, LogprobsLayout::kCompletion, R"({"tokens":["token_id:4"],"token_logprobs":[-0.75]})");
    dump.on_done(0, Outcome{});
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  std::filesystem::remove_all(dir);
}

// The same record sent twice (-n past the dataset): both requests are written, under their logits ids.
TEST(LogprobsDump, ARepeatedRecordIsWrittenUnderItsOwnId) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_dump_repeat_");
  const std::string path = (dir / "lp.h5").string();
  std::vector<WorkItem> items(2);
  for (int i = 0; i < 2; ++i) {
    items[i].index = i;
    items[i].sample_id = 7;
    items[i].prompt_tokens = {1, 2};
    items[i].max_new_tokens = 1;
    items[i].top_logprobs = 1;
  }
  assign_logits_ids(items);
  const accuracy::FileInfo info = top_k_file(1);
  {
    LogprobsDump dump(path, info, items, TokenIdMap(), nullptr);
    for (uint64_t i = 0; i < 2; ++i) {
      dump.on_logprobs(i, 0, StepLogprobs{by_id(5, -0.5), {by_id(5, -0.5)}});
      dump.on_done(i, Outcome{});
    }
    dump.close();
    EXPECT_EQ(dump.written(), 2);
  }
  accuracy::LogitsReader rd(path);
  std::vector<std::string> ids = rd.ids();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"7", "7.r1"}));
  std::filesystem::remove_all(dir);
}

}  // namespace
