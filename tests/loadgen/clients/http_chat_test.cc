// test-deps: loadgen_lib
// --api openai-chat on raw bytes: the request body built from a list of messages, and which stream frames
// are first tokens. TTFT is the time of the first frame with content (or a reasoning_content delta): not a
// role-only first frame, not an empty delta, not a usage-only chunk, and a final usage chunk never moves it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_response.h"
#include "loadgen/run/metrics.h"
#include "loadgen/run/recorder.h"
#include "support/http_test_util.h"

using namespace loadgen;
using namespace http_test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string frame(const json& delta, const json& finish = nullptr) {
  json chunk = {{"id", "chatcmpl-1"}, {"object", "chat.completion.chunk"}, {"model", "m"},
                {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
  return "data: " + chunk.dump() + "\n\n";
}
const std::string kRoleOnly = frame({{"role", "assistant"}, {"content", ""}});
const std::string kRoleNullContent = frame({{"role", "assistant"}, {"content", nullptr}});  // llama.cpp's
const std::string kEmptyDelta = frame(json::object());
std::string content(const std::string& text) { return frame({{"content", text}}); }
std::string reasoning(const std::string& text) { return frame({{"reasoning_content", text}}); }
const std::string kFinish = frame(json::object(), "length");
std::string usage_only(int prompt, int completion) {
  return "data: " + json({{"object", "chat.completion.chunk"}, {"choices", json::array()},
                          {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}}}}).dump() + "\n\n";
}
const std::string kDone = "data: [DONE]\n\n";

// Feeds each piece at its own time t0 + i ms and returns the outcome; the collector keeps the chunks.
Outcome play(Collector& c, const std::vector<std::string>& pieces, Clock::time_point t0) {
  HttpResponse r(0, &c, nullptr);
  r.on_headers(200, "text/event-stream; charset=utf-8");
  for (size_t i = 0; i < pieces.size(); ++i) r.on_body(pieces[i], t0 + std::chrono::milliseconds(i));
  return r.finish(t0 + std::chrono::milliseconds(pieces.size()));
}

}  // namespace

TEST(ChatApi, NameAndPath) {
  EXPECT_EQ(kHttpApiNames.find("openai-chat"), HttpApi::kOpenAIChat);
  EXPECT_EQ(request_path(HttpApi::kOpenAIChat, "m"), "/v1/chat/completions");
}

TEST(ChatApi, AnAlpacaPromptIsOneUserMessage) {
  WorkItem w = item(0, 33);
  w.prompt = "Give three tips.\n\nAbout sleep.";
  w.seed = 9;
  const json b = json::parse(request_body(HttpApi::kOpenAIChat, "llama", w));
  EXPECT_EQ(b["model"], "llama");
  ASSERT_EQ(b["messages"].size(), 1u);
  EXPECT_EQ(b["messages"][0], json({{"role", "user"}, {"content", "Give three tips.\n\nAbout sleep."}}));
  EXPECT_EQ(b["max_completion_tokens"], 33);
  EXPECT_EQ(b["max_tokens"], 33);
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["stream_options"]["include_usage"], true);
  EXPECT_EQ(b["ignore_eos"], true);
  EXPECT_EQ(b["seed"], 9);
  EXPECT_FALSE(b.contains("prompt"));
  w.ignore_eos = false;
  EXPECT_FALSE(json::parse(request_body(HttpApi::kOpenAIChat, "llama", w)).contains("ignore_eos"));
}

TEST(ChatApi, AConversationIsSentAsItsMessagesInOrder) {
  WorkItem w = item(0, 8);
  w.messages = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "And now?"}};
  const json b = json::parse(request_body(HttpApi::kOpenAIChat, "m", w));
  ASSERT_EQ(b["messages"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b["messages"][i]["role"], w.messages[i].role);
    EXPECT_EQ(b["messages"][i]["content"], w.messages[i].content);
  }
  EXPECT_EQ(chat_messages(w), w.messages);
}

TEST(ChatApi, FramesThatAreNotTokens) {
  for (const std::string& f : {kRoleOnly, kRoleNullContent, kEmptyDelta, kFinish, usage_only(3, 4)}) {
    const std::string data = f.substr(6, f.size() - 8);  // without "data: " and the blank line
    EXPECT_FALSE(decode_api_event(data).is_token) << data;
  }
  const ApiEvent u = decode_api_event(usage_only(3, 4).substr(6));
  EXPECT_EQ(u.completion_tokens, 4);
  EXPECT_EQ(u.prompt_tokens, 3);
  const ApiEvent c = decode_api_event(content(" hi").substr(6));
  EXPECT_TRUE(c.is_token);
  EXPECT_FALSE(c.reasoning);
  EXPECT_EQ(c.text, " hi");
  const ApiEvent r = decode_api_event(reasoning("hmm").substr(6));
  EXPECT_TRUE(r.is_token);
  EXPECT_TRUE(r.reasoning);
  const ApiEvent r2 = decode_api_event(frame({{"reasoning", "so"}}).substr(6));  // vLLM's newer spelling
  EXPECT_TRUE(r2.is_token);
  EXPECT_TRUE(r2.reasoning);
}

// vLLM's stream: a role-only frame first, then content deltas, a finish frame, and the usage-only chunk.
TEST(ChatApi, RoleOnlyFirstFrameAndEmptyDeltaDoNotStartTheClock) {
  Collector c;
  const auto t0 = Clock::now();
  const Outcome o = play(c, {kRoleOnly, kEmptyDelta, content("Hel"), content("lo"), kFinish, usage_only(7, 2), kDone}, t0);
  const Rec rec = c.get(0);
  ASSERT_EQ(rec.chunk_times.size(), 2u);
  EXPECT_EQ(rec.chunk_times[0], t0 + 2ms);  // the first content, not the role frame at t0 or the empty delta
  EXPECT_EQ(rec.chunk_times[1], t0 + 3ms);
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.first_token, FirstToken::kContent);
  EXPECT_EQ(o.output_tokens, 2);
  EXPECT_EQ(o.prompt_tokens, 7);
  EXPECT_EQ(o.count_source, TokenCountSource::kUsage);
  EXPECT_EQ(o.finish_reason, "length");
  EXPECT_EQ(o.text, "Hello");
}

TEST(ChatApi, AFinalUsageChunkNeverMovesTheFirstTokenTime) {
  // The same stream in one read and with the usage chunk long after: the chunk times are the content's.
  Collector a, b;
  const auto t0 = Clock::now();
  play(a, {kRoleOnly + content("x") + content("y") + kFinish + usage_only(1, 2) + kDone}, t0);
  play(b, {kRoleOnly, content("x"), content("y"), kFinish, "", "", "", usage_only(1, 2), kDone}, t0);
  ASSERT_EQ(a.get(0).chunk_times.size(), 2u);
  EXPECT_EQ(a.get(0).chunk_times[0], t0);
  ASSERT_EQ(b.get(0).chunk_times.size(), 2u);
  EXPECT_EQ(b.get(0).chunk_times[0], t0 + 1ms);
  EXPECT_EQ(b.get(0).chunk_times[1], t0 + 2ms);
  // A stream of only a role frame and usage has no first token at all.
  Collector e;
  const Outcome o = play(e, {kRoleOnly, kFinish, usage_only(1, 0), kDone}, t0);
  EXPECT_TRUE(e.get(0).chunk_times.empty());
  EXPECT_EQ(o.first_token, FirstToken::kNone);
}

TEST(ChatApi, AReasoningDeltaIsTheFirstToken) {
  Collector c;
  const auto t0 = Clock::now();
  const Outcome o = play(c, {kRoleOnly, reasoning("Let me"), reasoning(" think"), content("42"), kFinish,
                             usage_only(5, 3), kDone}, t0);
  const Rec rec = c.get(0);
  ASSERT_EQ(rec.chunk_times.size(), 3u);
  EXPECT_EQ(rec.chunk_times[0], t0 + 1ms);
  EXPECT_EQ(o.first_token, FirstToken::kReasoning);
  EXPECT_EQ(o.output_tokens, 3);
}

TEST(ChatApi, UsageInEveryChunkStillCountsOnlyContentFrames) {
  // vLLM's continuous_usage_stats: usage rides on every chunk, including the role-only one.
  auto with_usage = [](std::string f, int n) {
    json j = json::parse(f.substr(6));
    j["usage"] = {{"prompt_tokens", 4}, {"completion_tokens", n}};
    return "data: " + j.dump() + "\n\n";
  };
  Collector c;
  const auto t0 = Clock::now();
  const Outcome o = play(c, {with_usage(kRoleOnly, 0), with_usage(content("a"), 1), with_usage(content("b"), 2),
                             with_usage(kFinish, 2), kDone}, t0);
  ASSERT_EQ(c.get(0).chunk_times.size(), 2u);
  EXPECT_EQ(c.get(0).chunk_times[0], t0 + 1ms);
  EXPECT_EQ(o.output_tokens, 2);
}

TEST(ChatApi, NonStreamedChatAnswer) {
  Collector c;
  HttpResponse r(0, &c, nullptr);
  r.on_headers(200, "application/json");
  r.on_body(R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"All done"},)"
            R"("finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2}})",
            Clock::now());
  const Outcome o = r.finish(Clock::now());
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.text, "All done");
  EXPECT_EQ(o.output_tokens, 2);
  EXPECT_EQ(o.first_token, FirstToken::kContent);
  EXPECT_EQ(o.finish_reason, "stop");
}

// The summary says which kind of token TTFT counted.
TEST(ChatApi, SummarySaysWhichFirstTokensCounted) {
  const auto t0 = Clock::now();
  Recorder rec(t0, {0, 1}, {0.0, 0.0}, {4, 4}, {8, 8});
  for (uint64_t i = 0; i < 2; ++i) {
    rec.on_sent(i, t0);
    HttpResponse r(i, &rec, nullptr);
    r.on_headers(200, "text/event-stream");
    r.on_body(kRoleOnly + (i == 0 ? reasoning("r") : content("c")) + content("d") + kFinish + usage_only(4, 2) + kDone,
              t0 + 1ms);
    rec.on_done(i, r.finish(t0 + 2ms), t0 + 2ms);
  }
  const results::Summary s = summarize(rec.records("unfinished"), MetricsOptions{});
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.first_token_source, "content+reasoning");
}
