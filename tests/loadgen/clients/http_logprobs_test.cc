// test-deps: loadgen_lib
// The logprob fields of each dialect, read from the bodies real servers send (vLLM/OpenAI completions, OpenAI
// chat, TGI streams and details, vLLM prompt_logprobs, TGI prefill, llama.cpp's content entries with ids), what
// loadgen asks for, and HttpResponse's prompt scoring (the last positions of what was sent).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_logprobs.h"
#include "loadgen/clients/http_response.h"
#include "support/http_test_util.h"

using namespace loadgen;
using nlohmann::json;

namespace {

TEST(HttpLogprobs, OpenAICompletionWithTokenIdNames) {
  const ApiEvent ev = decode_api_event(R"({"choices":[{"index":0,"text":"a","logprobs":{"tokens":["token_id:100"],
      "token_logprobs":[-0.5],"top_logprobs":[{"token_id:7":-1.5,"token_id:100":-0.5}],"text_offset":[0]},
      "finish_reason":null}]})");
  ASSERT_EQ(ev.logprobs.size(), 1u);
  EXPECT_EQ(ev.logprobs[0].token.id, 100);
  EXPECT_DOUBLE_EQ(ev.logprobs[0].token.logprob, -0.5);
  ASSERT_EQ(ev.logprobs[0].top.size(), 2u);
  EXPECT_EQ(ev.logprobs[0].top[0].id, 100);  // the object's keys come back most likely first
  EXPECT_EQ(ev.logprobs[0].top[1].id, 7);
}

TEST(HttpLogprobs, OpenAICompletionWithTextNamesKeepsTheText) {
  const auto steps = parse_completion_logprobs(json::parse(
      R"({"tokens":[" the"],"token_logprobs":[-0.25],"top_logprobs":[{" the":-0.25," a":-2.0}]})"));
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].token.id, -1);
  EXPECT_EQ(steps[0].token.text, " the");
  EXPECT_EQ(steps[0].top[1].text, " a");
}

TEST(HttpLogprobs, ChatContentAndLlamaCppIds) {
  const ApiEvent ev = decode_api_event(R"({"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[
      {"id":15,"token":"Hi","logprob":-0.1,"bytes":[72,105],"top_logprobs":[{"id":15,"token":"Hi","logprob":-0.1},
      {"id":9,"token":"Hello","logprob":-2.5}]}]},"finish_reason":null}]})");
  ASSERT_EQ(ev.logprobs.size(), 1u);
  EXPECT_EQ(ev.logprobs[0].token.id, 15);
  ASSERT_EQ(ev.logprobs[0].top.size(), 2u);
  EXPECT_EQ(ev.logprobs[0].top[1].id, 9);
  EXPECT_DOUBLE_EQ(ev.logprobs[0].top[1].logprob, -2.5);
}

TEST(HttpLogprobs, TgiStreamTokenAndTopTokens) {
  const ApiEvent ev = decode_api_event(R"({"token":{"id":5,"text":"x","logprob":-0.75,"special":false},
      "top_tokens":[{"id":5,"text":"x","logprob":-0.75,"special":false},{"id":6,"text":"y","logprob":-1.0,"special":false}],
      "generated_text":null,"details":null})");
  ASSERT_EQ(ev.logprobs.size(), 1u);
  EXPECT_EQ(ev.logprobs[0].token.id, 5);
  EXPECT_EQ(ev.logprobs[0].top.size(), 2u);
  // A token without a logprob (details not asked) carries none.
  EXPECT_TRUE(decode_api_event(R"({"token":{"id":5,"text":"x","logprob":null,"special":false}})").logprobs.empty());
}

TEST(HttpLogprobs, TgiDetailsAndPrefill) {
  const ApiEvent ev = decode_api_event(R"({"generated_text":"x","details":{"finish_reason":"length","generated_tokens":1,
      "tokens":[{"id":5,"text":"x","logprob":-0.75,"special":false}],"top_tokens":[[{"id":5,"text":"x","logprob":-0.75}]],
      "prefill":[{"id":1,"text":"<s>","logprob":null},{"id":9,"text":"a","logprob":-3.0,"top_tokens":[{"id":8,"text":"b","logprob":-0.5}]}]}})");
  ASSERT_EQ(ev.logprobs.size(), 1u);
  EXPECT_EQ(ev.logprobs[0].top.size(), 1u);
  ASSERT_EQ(ev.prompt_logprobs.size(), 2u);
  EXPECT_FALSE(ev.prompt_logprobs[0].has_value());
  EXPECT_EQ(ev.prompt_logprobs[1]->token.id, 9);
  EXPECT_EQ(ev.prompt_logprobs[1]->top[0].id, 8);
}

TEST(HttpLogprobs, VllmPromptLogprobsNameTheSentToken) {
  const auto pl = parse_vllm_prompt_logprobs(json::parse(R"([null,
      {"42":{"logprob":-4.0,"rank":9,"decoded_token":"q"},"7":{"logprob":-0.5,"rank":1,"decoded_token":"a"},
       "8":{"logprob":-1.5,"rank":2,"decoded_token":"b"}}])"), {1, 42});
  ASSERT_EQ(pl.size(), 2u);
  EXPECT_FALSE(pl[0].has_value());
  EXPECT_EQ(pl[1]->token.id, 42);
  EXPECT_DOUBLE_EQ(pl[1]->token.logprob, -4.0);
  ASSERT_EQ(pl[1]->top.size(), 3u);
  EXPECT_EQ(pl[1]->top[0].id, 7);
  EXPECT_EQ(pl[1]->top[2].id, 42);
}

TEST(HttpLogprobs, RequestBodiesAskInEachDialect) {
  WorkItem item = http_test::item(0);
  item.top_logprobs = 20;
  json o = json::parse(request_body(HttpApi::kOpenAI, "m", item));
  EXPECT_EQ(o["logprobs"], 20);
  EXPECT_EQ(o["return_tokens_as_token_ids"], true);
  json t = json::parse(request_body(HttpApi::kTgi, "m", item));
  EXPECT_EQ(t["parameters"]["top_n_tokens"], 20);
  EXPECT_EQ(t["parameters"]["details"], true);
  json c;
  add_chat_logprobs_request(5, c);
  EXPECT_EQ(c["logprobs"], true);
  EXPECT_EQ(c["top_logprobs"], 5);

  item.prompt_tokens = {1, 2, 3, 4};
  item.score_steps = 2;
  o = json::parse(request_body(HttpApi::kOpenAI, "m", item));
  EXPECT_EQ(o["prompt"], json({1, 2, 3, 4}));
  EXPECT_EQ(o["prompt_logprobs"], 20);
  EXPECT_EQ(o["echo"], true);
  EXPECT_EQ(o["max_tokens"], 1);
  t = json::parse(request_body(HttpApi::kTgi, "m", item));
  EXPECT_EQ(t["parameters"]["decoder_input_details"], true);
  EXPECT_EQ(request_path(HttpApi::kTgi, "m", item), "/generate");  // TGI scores only without streaming
}

// Prompt scoring: the steps reported are the last score_steps positions of what was sent, from the echoed
// logprobs when the server has no prompt_logprobs; a server without either fails the request, saying so.
TEST(HttpLogprobs, ScoringReportsTheLastPositionsOrSaysWhyNot) {
  struct Steps : http_test::Collector {
    std::vector<std::pair<int, StepLogprobs>> got;
    void on_logprobs(uint64_t, int step, const StepLogprobs& lp) override { got.emplace_back(step, lp); }
  };
  WorkItem item = http_test::item(0);
  item.prompt_tokens = {1, 10, 11};
  item.score_steps = 2;
  item.top_logprobs = 1;
  const auto now = Clock::now();
  {
    Steps cb;
    HttpResponse r(0, &cb, nullptr);
    r.expect(item);
    r.on_headers(200, "text/event-stream");
    r.on_body("data: " + json({{"choices", {{{"text", "x"}, {"finish_reason", nullptr}, {"logprobs",
        {{"tokens", {"token_id:1", "token_id:10", "token_id:11", "token_id:5"}}, {"token_logprobs", {nullptr, -1.0, -2.0, -0.5}},
         {"top_logprobs", {nullptr, {{"token_id:10", -1.0}}, {{"token_id:3", -0.1}}, {{"token_id:5", -0.5}}}}}}}}}}).dump() +
              "\n\ndata: [DONE]\n\n", now);
    const Outcome out = r.finish(now);
    EXPECT_EQ(out.status, Status::kOk) << out.reason;
    ASSERT_EQ(cb.got.size(), 2u);
    EXPECT_EQ(cb.got[0].first, 0);
    EXPECT_EQ(cb.got[0].second.token.id, 10);
    EXPECT_DOUBLE_EQ(cb.got[1].second.token.logprob, -2.0);
    EXPECT_EQ(cb.got[1].second.top[0].id, 3);
  }
  {
    Steps cb;
    HttpResponse r(0, &cb, nullptr);
    r.expect(item);
    r.on_headers(200, "text/event-stream");
    r.on_body(http_test::openai_chunk("x") + "data: [DONE]\n\n", now);
    const Outcome out = r.finish(now);
    EXPECT_EQ(out.status, Status::kFailed);
    EXPECT_NE(out.reason.find("no prompt scores"), std::string::npos) << out.reason;
  }
}

}  // namespace
