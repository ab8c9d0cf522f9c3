// test-deps: engine llm_server_lib
// llm-serve's /v1/chat/completions (parsing, streamed and whole answers equal to the engine's own output on
// the templated prompt), the competition's "True"/"False" booleans on /models/<name>/generate, and vLLM's
// POST /reset_prefix_cache. The server runs in-process on dummy:tiny, driven with cpp-httplib's client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "chat_template.h"
#include "http_server.h"
#include "request_parser.h"

using namespace server;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

ParseLimits limits() {
  ParseLimits l;
  l.max_new_tokens = 2048;
  l.vocab_size = 512;
  return l;
}

std::string chat_bad_field(const std::string& body) {
  try {
    parse_openai_chat(body, limits());
    return "";
  } catch (const BadRequest& e) {
    return e.field;
  }
}

std::string contest_refusal(const std::string& body) {
  try {
    parse_tgi_generate(body, false, true, limits(), /*string_booleans=*/true);
    return "";
  } catch (const BadRequest& e) {
    return e.what();
  }
}

}  // namespace

// ================================================================ parsing

TEST(ChatRequest, Fields) {
  ParsedRequest p = parse_openai_chat(
      R"({"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
          "max_completion_tokens":12,"max_tokens":99,"temperature":0,"seed":4,"ignore_eos":true,"stream":true,
          "stream_options":{"include_usage":true}})",
      limits());
  EXPECT_EQ(p.api, Api::kOpenAIChat);
  EXPECT_EQ(p.model, "m");
  ASSERT_EQ(p.messages.size(), 2u);
  EXPECT_EQ(p.messages[0].role, "system");
  EXPECT_EQ(p.messages[1].content, "ab");
  EXPECT_EQ(p.request.sampling.max_new_tokens, 12);  // max_completion_tokens wins over max_tokens
  EXPECT_TRUE(p.max_tokens_given);
  EXPECT_EQ(p.request.sampling.seed, 4u);
  EXPECT_TRUE(p.request.sampling.ignore_eos);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  p = parse_openai_chat(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":7})", limits());
  EXPECT_EQ(p.request.sampling.max_new_tokens, 7);
  EXPECT_FALSE(p.include_usage);
  EXPECT_FALSE(p.stream);
  p = parse_openai_chat(R"({"messages":[{"role":"user","content":"x"}]})", limits());
  EXPECT_FALSE(p.max_tokens_given);  // the server fills in what the context leaves
}

TEST(ChatRequest, ErrorsNameTheField) {
  EXPECT_EQ(chat_bad_field(R"({"prompt":"x"})"), "messages");
  EXPECT_EQ(chat_bad_field(R"({"messages":"x"})"), "messages");
  EXPECT_EQ(chat_bad_field(R"({"messages":[]})"), "messages");
  EXPECT_EQ(chat_bad_field(R"({"messages":[5]})"), "messages[0]");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":7}]})"), "messages[0].content");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":0})"),
            "max_completion_tokens");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"3"})"), "max_tokens");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}})"),
            "stream_options.include_usage");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":"x"}],"n":3})"), "n");
  EXPECT_EQ(chat_bad_field(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})"), "tools");
}

// The competition's warm-up request writes its booleans as strings.
TEST(ContestBooleans, TrueAndFalseStringsInAnyCaseOnTheCompetitionRoute) {
  const std::string warmup =
      R"({"inputs":" I love Beijing, because","parameters":{"max_new_tokens":10, "do_sample":"True", "return_full_text":"True"}, "stream":"True"})";
  const ParsedRequest p = parse_tgi_generate(warmup, false, true, limits(), true);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.return_full_text);
  EXPECT_EQ(p.request.sampling.temperature, 1.0f);  // do_sample without a temperature
  EXPECT_EQ(p.request.sampling.max_new_tokens, 10);
  const ParsedRequest q =
      parse_tgi_generate(R"({"inputs":"x","parameters":{"do_sample":"FALSE","details":"false"},"stream":"tRuE"})", false,
                         true, limits(), true);
  EXPECT_TRUE(q.stream);
  EXPECT_FALSE(q.details);
  EXPECT_EQ(q.request.sampling.temperature, 0.0f);
  // Any other string is still refused, naming the field.
  EXPECT_NE(contest_refusal(R"({"inputs":"x","parameters":{"do_sample":"yes"}})").find("parameters.do_sample"),
            std::string::npos);
  EXPECT_NE(contest_refusal(R"({"inputs":"x","stream":"1"})").find("stream: must be a boolean"), std::string::npos);
  // Elsewhere (TGI's own routes) a string is not a boolean.
  EXPECT_THROW(parse_tgi_generate(warmup, false, true, limits(), false), BadRequest);
}

// ================================================================ the server

namespace {

class ChatServer : public ::testing::Test {
 protected:
  void start(ChatTemplate t, bool prefix_caching = false, int max_model_len = 0) {
    engine::EngineConfig cfg;
    cfg.model = "dummy:tiny";
    cfg.max_model_len = max_model_len;
    cfg.kv_memory_bytes = 32 << 20;
    cfg.enable_prefix_caching = prefix_caching;
    engine_ = std::make_unique<engine::Engine>(cfg);
    ServerOptions o;
    o.port = 0;
    o.http_threads = 16;
    o.chat_template = t;
    template_ = t;
    server_ = std::make_unique<HttpServer>(*engine_, o);
    const int port = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    cli_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    engine_.reset();
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return cli_->Post(path.c_str(), body, "application/json");
  }
  static std::vector<std::string> events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    for (size_t end; (end = body.find("\n\n", pos)) != std::string::npos; pos = end + 2) {
      std::string ev = body.substr(pos, end - pos);
      if (ev.rfind("data:", 0) != 0) continue;  // comments
      ev.erase(0, ev.size() > 5 && ev[5] == ' ' ? 6 : 5);     // TGI writes "data:" with no space
      out.push_back(ev);
    }
    return out;
  }
  // The templated prompt's tokens, and what the engine generates from them (greedy, ignore_eos).
  std::vector<int32_t> prompt_tokens(const std::vector<ChatMessage>& m) {
    return chat_tokens(render_chat(template_, m), [this](const std::string& s) { return engine_->tokenize(s, false); },
                       engine_->info().bos_id, engine_->info().eos_id);
  }
  std::string engine_text(const std::vector<int32_t>& tokens, int n) {
    struct Sink : engine::RequestSink {
      std::string text;
      std::atomic<bool> done{false};
      void on_token(const engine::TokenEvent& e) override { text += e.text; }
      void on_finish(const engine::FinishEvent&) override { done = true; }
    };
    auto sink = std::make_shared<Sink>();
    engine::Request r;
    r.prompt_tokens = tokens;
    r.sampling.max_new_tokens = n;
    r.sampling.ignore_eos = true;
    r.sampling.temperature = 0;
    engine_->submit(r, sink);
    for (int i = 0; i < 3000 && !sink->done; ++i) std::this_thread::sleep_for(5ms);
    return sink->text;
  }

  ChatTemplate template_ = ChatTemplate::kLlama2;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> cli_;
  std::thread thread_;
};

const char* kConversation =
    R"({"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
    R"({"role":"assistant","content":"Hello!"},{"role":"user","content":"Tell me a story."}],)"
    R"("max_completion_tokens":8,"temperature":0,"ignore_eos":true)";

}  // namespace

TEST_F(ChatServer, Llama2TemplateWholeAndStreamedEqualTheEngine) {
  start(ChatTemplate::kLlama2);
  const std::vector<int32_t> tokens = prompt_tokens(
      {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Tell me a story."}});
  const std::string want = engine_text(tokens, 8);

  auto r = post("/v1/chat/completions", std::string(kConversation) + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "chat");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], want);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int>(tokens.size()));
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);

  r = post("/v1/chat/completions", std::string(kConversation) + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const auto ev = events(r->body);
  ASSERT_GE(ev.size(), 4u);
  // vLLM's shape: a role-only frame, content frames, a closing frame, the usage-only chunk, [DONE].
  json first = json::parse(ev[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  std::string text;
  for (size_t i = 1; i + 3 < ev.size(); ++i) {
    json c = json::parse(ev[i]);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null()) << ev[i];
    EXPECT_FALSE(c["choices"][0]["delta"]["content"].get<std::string>().empty());
    text += c["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, want);
  json close = json::parse(ev[ev.size() - 3]);
  EXPECT_EQ(close["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(close["choices"][0]["delta"], json::object());
  json usage = json::parse(ev[ev.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 8);
  EXPECT_EQ(usage["usage"]["prompt_tokens"], static_cast<int>(tokens.size()));
  EXPECT_EQ(ev.back(), "[DONE]");

  // Without include_usage there is no usage-only chunk.
  r = post("/v1/chat/completions", std::string(kConversation) + R"(,"stream":true})");
  ASSERT_TRUE(r);
  const auto ev2 = events(r->body);
  ASSERT_GE(ev2.size(), 2u);
  EXPECT_FALSE(json::parse(ev2[ev2.size() - 2]).contains("usage"));
}

TEST_F(ChatServer, PlainTemplateAndDefaultMaxTokens) {
  start(ChatTemplate::kPlain, false, /*max_model_len=*/64);  // "up to the context" stays short
  const std::vector<int32_t> tokens = prompt_tokens({{"user", "Hi there"}});
  const std::string want = engine_text(tokens, 5);
  auto r = post("/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"Hi there"}],"max_tokens":5,"temperature":0,"ignore_eos":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], want);
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int>(tokens.size()));
  EXPECT_EQ(j["model"], "dummy:tiny");  // no model in the body: the served name
  // No max_tokens: up to the context (OpenAI's default), not an error for a prompt that fits.
  r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"temperature":0,"ignore_eos":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>(),
            engine_->info().max_model_len);
}

TEST_F(ChatServer, BadConversationsAre400NamingTheMessage) {
  start(ChatTemplate::kLlama2);
  auto r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  const json e = json::parse(r->body)["error"];
  EXPECT_EQ(e["param"], "messages");
  EXPECT_NE(e["message"].get<std::string>().find("messages[1].role"), std::string::npos) << e.dump();
  r = post("/v1/chat/completions", R"({"messages":[]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "messages");
}

TEST_F(ChatServer, TheContestWarmupCurlGets200AndAStream) {
  start(ChatTemplate::kLlama2);
  auto r = post("/models/llama2/generate",
                R"({"inputs":" I love Beijing, because","parameters":{"max_new_tokens":10, "do_sample":"True", "return_full_text":"True"}, "stream":"True"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const auto ev = events(r->body);
  ASSERT_FALSE(ev.empty());
  const json last = json::parse(ev.back());
  EXPECT_EQ(last["generated_text"].get<std::string>().rfind(" I love Beijing, because", 0), 0u);  // full text
  r = post("/models/llama2/generate", R"({"inputs":"x","parameters":{"do_sample":"maybe"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["field"], "parameters.do_sample");
}

TEST_F(ChatServer, ResetPrefixCacheRouteDropsTheCachedBlocks) {
  start(ChatTemplate::kLlama2, /*prefix_caching=*/true);
  // dummy:tiny tokenizes bytes: a 200-byte prompt fills 12 blocks of 16.
  const std::string prompt(200, 'a');
  const std::string body = R"({"prompt":")" + prompt + R"(","max_tokens":2,"temperature":0})";
  ASSERT_EQ(post("/v1/completions", body)->status, 200);
  const int64_t hits0 = engine_->stats().prefix_cache_hits;
  ASSERT_EQ(post("/v1/completions", body)->status, 200);
  const int64_t hits1 = engine_->stats().prefix_cache_hits;
  EXPECT_GT(hits1, hits0);  // the second run of the same prompt hit the cache
  auto r = post("/reset_prefix_cache", "");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_GT(json::parse(r->body)["blocks_dropped"].get<int64_t>(), 0);
  ASSERT_EQ(post("/v1/completions", body)->status, 200);
  EXPECT_EQ(engine_->stats().prefix_cache_hits, hits1);  // after the reset: no hit
  ASSERT_EQ(post("/v1/completions", body)->status, 200);
  EXPECT_GT(engine_->stats().prefix_cache_hits, hits1);  // and the cache fills again
}

// Chat logprobs (OpenAI's logprobs: true, top_logprobs: K) whole and streamed: one entry per generated token,
// the same numbers the completions route gives for the same prompt tokens on the same engine (tokens named
// "token_id:<id>": dummy:tiny's byte pieces share texts, which a {text: logprob} map would merge).
TEST_F(ChatServer, LogprobsWholeAndStreamedEqualTheCompletionsRoute) {
  start(ChatTemplate::kPlain);
  const std::vector<int32_t> tokens = prompt_tokens({{"user", "Hi there"}});
  const int n = 6, k = 3;
  auto r = post("/v1/completions", json({{"prompt", tokens}, {"max_tokens", n}, {"temperature", 0}, {"ignore_eos", true},
                                         {"logprobs", k}, {"return_tokens_as_token_ids", true}}).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json want = json::parse(r->body)["choices"][0]["logprobs"];
  ASSERT_EQ(want["token_logprobs"].size(), static_cast<size_t>(n)) << want.dump();

  auto check = [&](const json& content, const std::string& what) {
    ASSERT_EQ(content.size(), static_cast<size_t>(n)) << what << ": " << content.dump();
    for (int i = 0; i < n; ++i) {
      const json& c = content[i];
      EXPECT_EQ(c["token"], want["tokens"][i]) << what << " step " << i;
      EXPECT_DOUBLE_EQ(c["logprob"].get<double>(), want["token_logprobs"][i].get<double>()) << what << " step " << i;
      ASSERT_EQ(c["top_logprobs"].size(), static_cast<size_t>(k)) << what << " step " << i;
      for (const json& t : c["top_logprobs"]) {
        ASSERT_TRUE(want["top_logprobs"][i].contains(t["token"].get<std::string>())) << what << " step " << i;
        EXPECT_DOUBLE_EQ(t["logprob"].get<double>(), want["top_logprobs"][i][t["token"].get<std::string>()].get<double>());
        EXPECT_TRUE(t["bytes"].is_array());
      }
    }
  };
  const std::string body = R"({"messages":[{"role":"user","content":"Hi there"}],"max_tokens":6,"temperature":0,)"
                           R"("ignore_eos":true,"logprobs":true,"top_logprobs":3,"return_tokens_as_token_ids":true)";
  r = post("/v1/chat/completions", body + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  check(json::parse(r->body)["choices"][0]["logprobs"]["content"], "whole");

  r = post("/v1/chat/completions", body + R"(,"stream":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json streamed = json::array();
  for (const std::string& ev : events(r->body)) {
    if (ev == "[DONE]") continue;
    const json c = json::parse(ev);
    const json& lp = c["choices"][0]["logprobs"];
    if (lp.is_null()) continue;  // the role frame
    for (const json& e : lp["content"]) streamed.push_back(e);
  }
  check(streamed, "streamed");

  // top_logprobs needs logprobs: true, and K is bounded: 400s naming the field.
  r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"top_logprobs":2})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("top_logprobs"), std::string::npos) << r->body;
  r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":-1})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("top_logprobs"), std::string::npos) << r->body;
}
