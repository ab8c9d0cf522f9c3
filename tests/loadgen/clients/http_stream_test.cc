// test-deps: loadgen_lib
// What loadgen's HTTP client does with bytes, without a socket: the SSE parser under any fragmentation, the
// API dialects' request bodies and events, and HttpResponse turning a body into chunks and an outcome.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "bench/completion_stream.h"
#include "support/http_test_util.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_response.h"
#include "loadgen/clients/sse_parser.h"

using namespace loadgen;
using namespace http_test;
using nlohmann::json;

// ================================================================ SSE parser

TEST(SseParser, EventsSplitAtEveryByteGiveTheSameEvents) {
  const std::string stream =
      ": keep-alive comment\r\n\r\n"
      "data: {\"a\":1}\r\n\r\n"
      "event: message\ndata:{\"b\":2}\n\n"
      "data: line1\ndata: line2\r\r"
      "data: [DONE]\n\n";
  std::vector<std::pair<std::string, std::string>> whole, split;
  SseParser p1;
  p1.feed(stream, [&](std::string_view t, std::string_view d) { whole.emplace_back(t, d); });
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0].second, "{\"a\":1}");
  EXPECT_EQ(whole[1].first, "message");
  EXPECT_EQ(whole[1].second, "{\"b\":2}");
  EXPECT_EQ(whole[2].second, "line1\nline2");
  EXPECT_EQ(whole[3].second, "[DONE]");
  // Every split point, including between CR and LF.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    split.clear();
    SseParser p;
    auto fn = [&](std::string_view t, std::string_view d) { split.emplace_back(t, d); };
    p.feed(std::string_view(stream).substr(0, cut), fn);
    p.feed(std::string_view(stream).substr(cut), fn);
    EXPECT_EQ(split, whole) << "split at " << cut;
  }
}

TEST(SseParser, RandomFragmentationAndByteAtATime) {
  std::string stream;
  for (int i = 0; i < 200; ++i) stream += (i % 3 == 0 ? "data: " : "data:") + std::to_string(i) + (i % 2 ? "\r\n\r\n" : "\n\n");
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    SseParser p;
    std::vector<std::string> got;
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::min(stream.size() - pos, size_t(rng() % 9));
      p.feed(std::string_view(stream).substr(pos, n), [&](std::string_view, std::string_view d) { got.emplace_back(d); });
      pos += n;
    }
    ASSERT_EQ(got.size(), 200u);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(got[i], std::to_string(i));
  }
}

namespace {

// The WHATWG event-stream rules written the plain way, on a whole stream: split into lines at CRLF, LF or CR,
// then fields; a blank line dispatches. The reference the incremental parser is checked against.
std::vector<std::pair<std::string, std::string>> reference_events(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string type, data;
  bool have = false;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] != '\r' && s[j] != '\n') ++j;
    if (j == s.size()) break;  // an unfinished line: not dispatched by feed()
    const std::string line = s.substr(i, j - i);
    i = (s[j] == '\r' && j + 1 < s.size() && s[j + 1] == '\n') ? j + 2 : j + 1;
    if (line.empty()) {
      if (have) out.emplace_back(type, data.substr(0, data.size() - 1));
      type.clear(), data.clear(), have = false;
      continue;
    }
    if (line[0] == ':') continue;
    const size_t c = line.find(':');
    std::string field = line.substr(0, c), value = c == std::string::npos ? "" : line.substr(c + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (field == "data") data += value + "\n", have = true;
    else if (field == "event") type = value;
  }
  return out;
}

}  // namespace

TEST(SseParser, MatchesThePlainRulesOnRandomStreamsInRandomPieces) {
  std::mt19937 rng(11);
  const char* ends[] = {"\n", "\r\n", "\r"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    const int lines = 1 + static_cast<int>(rng() % 40);
    for (int l = 0; l < lines; ++l) {
      switch (rng() % 7) {
        case 0: s += ": keep-alive"; break;
        case 1: s += "event: e" + std::to_string(rng() % 3); break;
        case 2: s += ""; break;  // blank: dispatch
        case 3: s += "id: 4"; break;
        default: {
          s += (rng() % 2) ? "data: " : "data:";
          const int len = static_cast<int>(rng() % 300);
          for (int k = 0; k < len; ++k) s += static_cast<char>('a' + rng() % 26);
          if (rng() % 5 == 0) s += ":x";  // a colon inside the value
        }
      }
      s += ends[rng() % 3];
    }
    const auto want = reference_events(s);
    std::vector<std::pair<std::string, std::string>> got;
    SseParser p;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t n = std::min(s.size() - pos, size_t(rng() % 64));
      p.feed(std::string_view(s).substr(pos, n), [&](std::string_view t, std::string_view d) { got.emplace_back(t, d); });
      pos += n;
    }
    ASSERT_EQ(got, want) << "trial " << trial;
  }
}

TEST(SseParser, FinalEventWithoutBlankLineIsDispatchedAtEnd) {
  SseParser p;
  std::vector<std::string> got;
  auto fn = [&](std::string_view, std::string_view d) { got.emplace_back(d); };
  p.feed("data: a\n\ndata: b", fn);
  EXPECT_EQ(got.size(), 1u);
  p.finish(fn);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], "b");
}

TEST(SseParser, OversizedEventStopsParsing) {
  SseParser p(64);
  int n = 0;
  EXPECT_FALSE(p.feed("data: " + std::string(100, 'x') + "\n\n", [&](auto, auto) { ++n; }));
  EXPECT_TRUE(p.overflowed());
  EXPECT_EQ(n, 0);
}

// ================================================================ API dialects

TEST(HttpApi, ParsesNamesAndRejectsUnknown) {
  // (An unknown --api is refused by the resolver: tests/loadgen/cli/resolve_test.cc.)
  EXPECT_EQ(kHttpApiNames.find("openai"), HttpApi::kOpenAI);
  EXPECT_EQ(kHttpApiNames.find("tgi"), HttpApi::kTgi);
  EXPECT_EQ(kHttpApiNames.find("llm-serving"), HttpApi::kLlmServing);
  EXPECT_FALSE(kHttpApiNames.find("vllm").has_value());
  EXPECT_EQ(request_path(HttpApi::kLlmServing, "llama2"), "/models/llama2/generate");
  EXPECT_EQ(request_path(HttpApi::kTgi, "x"), "/generate_stream");
}

TEST(HttpApi, RequestBodies) {
  WorkItem w = item(0, 77);
  w.seed = 5;
  json o = json::parse(request_body(HttpApi::kOpenAI, "m", w));
  EXPECT_EQ(o["prompt"], "Say something");
  EXPECT_EQ(o["max_tokens"], 77);
  EXPECT_EQ(o["stream"], true);
  EXPECT_EQ(o["ignore_eos"], true);
  EXPECT_EQ(o["seed"], 5);
  EXPECT_EQ(o["model"], "m");
  json t = json::parse(request_body(HttpApi::kLlmServing, "llama2", w));
  EXPECT_EQ(t["inputs"], "Say something");
  EXPECT_EQ(t["stream"], true);
  EXPECT_EQ(t["parameters"]["max_new_tokens"], 77);
  EXPECT_EQ(t["parameters"]["do_sample"], false);
  EXPECT_FALSE(t["parameters"].contains("temperature"));  // TGI refuses temperature 0
  w.temperature = 0.7f;
  w.top_p = 0.9f;
  t = json::parse(request_body(HttpApi::kTgi, "x", w));
  EXPECT_EQ(t["parameters"]["do_sample"], true);
  EXPECT_NEAR(t["parameters"]["temperature"].get<double>(), 0.7, 1e-6);
}

TEST(HttpApi, DecodesOpenAIAndTgiEvents) {
  ApiEvent e = decode_api_event(R"({"choices":[{"index":0,"text":"Hi","finish_reason":null}]})");
  EXPECT_TRUE(e.is_token);
  EXPECT_EQ(e.text, "Hi");
  e = decode_api_event(R"({"choices":[{"text":"","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":9}})");
  EXPECT_FALSE(e.is_token);
  EXPECT_EQ(e.finish_reason, "length");
  EXPECT_EQ(e.completion_tokens, 9);
  EXPECT_EQ(e.prompt_tokens, 3);
  e = decode_api_event(R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})");  // vLLM's usage chunk
  EXPECT_FALSE(e.is_token);
  EXPECT_EQ(e.completion_tokens, 4);
  EXPECT_TRUE(decode_api_event("[DONE]").done);
  e = decode_api_event(R"({"token":{"id":5,"text":" a","logprob":-0.1,"special":false},"generated_text":null,"details":null})");
  EXPECT_TRUE(e.is_token);
  EXPECT_EQ(e.text, " a");
  EXPECT_FALSE(e.done);
  e = decode_api_event(R"({"token":{"id":2,"text":"</s>","special":true},"generated_text":"x a","details":{"finish_reason":"eos_token","generated_tokens":2}})");
  EXPECT_TRUE(e.is_token);
  EXPECT_EQ(e.text, "");  // special tokens carry no text
  EXPECT_TRUE(e.done);
  EXPECT_EQ(e.full_text, "x a");
  EXPECT_EQ(e.finish_reason, "eos");
  EXPECT_EQ(e.completion_tokens, 2);
  EXPECT_EQ(decode_api_event(R"({"error":"boom","error_type":"generation"})").error, "boom");
  EXPECT_EQ(decode_api_event(R"({"error":{"message":"bad"}})").error, "bad");
  EXPECT_FALSE(decode_api_event("{not json").error.empty());
  EXPECT_TRUE(decode_api_event(R"({"token":{"special":"yes"}})").is_token);  // wrong types do not throw
}

// ================================================================ HttpResponse on raw bytes

// A token whose text is empty (half of a UTF-8 character, or no text at all) is still a chunk at its time.
TEST(HttpResponse, EveryTokenIsAChunkEvenWithEmptyText) {
  Collector c;
  HttpResponse r(3, &c, nullptr);
  r.on_headers(200, "text/event-stream");
  const auto t0 = Clock::now();
  r.on_body(openai_chunk("") + openai_chunk("\xC3\xA9") + openai_chunk("x"), t0);
  r.on_body("data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}\n\n", t0);
  r.on_body("data: [DONE]\n\n", t0);
  Outcome o = r.finish(Clock::now());
  Rec rec = c.get(3);
  ASSERT_EQ(rec.chunk_tokens, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(rec.chunk_text[0], "");
  EXPECT_EQ(rec.chunk_text[1], "\xC3\xA9");
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.output_tokens, 3);
  EXPECT_EQ(o.prompt_tokens, 4);
  EXPECT_EQ(o.count_source, TokenCountSource::kUsage);
  EXPECT_EQ(o.finish_reason, "length");
  EXPECT_EQ(o.text, "\xC3\xA9x");
}

// A server that sends top-K logprobs nobody asked for (bench::completion_stream's K = 20 chunks): the stream
// reads exactly as the same stream without them.
TEST(HttpResponse, LogprobsNotAskedForAreDropped) {
  auto read = [](const std::string& body) {
    Collector c;
    HttpResponse r(0, &c, nullptr);
    r.on_headers(200, "text/event-stream");
    r.on_body(body, Clock::now());
    const Outcome o = r.finish(Clock::now());
    return std::make_pair(o, c.get(0));
  };
  const auto [plain, plain_rec] = read(bench::completion_stream(-1, 5));
  const auto [with, with_rec] = read(bench::completion_stream(20, 5));
  ASSERT_EQ(plain.status, Status::kOk) << plain.reason;
  ASSERT_EQ(with.status, Status::kOk) << with.reason;
  EXPECT_EQ(with.output_tokens, 5);
  EXPECT_EQ(with.text, plain.text);
  EXPECT_EQ(with.finish_reason, plain.finish_reason);
  EXPECT_EQ(with_rec.chunk_tokens, plain_rec.chunk_tokens);
  EXPECT_EQ(with_rec.chunk_text, plain_rec.chunk_text);
}

TEST(HttpResponse, HttpErrorKeepsBodyInReason) {
  Collector c;
  HttpResponse r(0, &c, nullptr);
  r.on_headers(503, "application/json");
  r.on_body("{\"error\":\"queue full\"}", Clock::now());
  Outcome o = r.finish(Clock::now());
  EXPECT_EQ(o.status, Status::kFailed);
  EXPECT_EQ(o.reason, "HTTP 503: {\"error\":\"queue full\"}");
}

TEST(HttpResponse, StreamErrorEventFailsTheRequest) {
  Collector c;
  HttpResponse r(0, &c, nullptr);
  r.on_headers(200, "text/event-stream");
  r.on_body(openai_chunk("a") + "data: {\"error\":{\"message\":\"aborted\"}}\n\ndata: [DONE]\n\n", Clock::now());
  Outcome o = r.finish(Clock::now());
  EXPECT_EQ(o.status, Status::kFailed);
  EXPECT_EQ(o.reason, "server error: aborted");
}

TEST(HttpResponse, NonStreamedJsonAnswerIsUnderstood) {
  Collector c;
  HttpResponse r(0, &c, nullptr);
  r.on_headers(200, "application/json");
  r.on_body(R"({"generated_text":"hello there","details":{"finish_reason":"length","generated_tokens":2}})", Clock::now());
  Outcome o = r.finish(Clock::now());
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.text, "hello there");
  EXPECT_EQ(o.output_tokens, 2);
  EXPECT_EQ(c.get(0).chunk_tokens, std::vector<int>{2});
}

TEST(HttpResponse, EmptyStreamFails) {
  Collector c;
  HttpResponse r(0, &c, nullptr);
  r.on_headers(200, "text/event-stream");
  r.on_body(": ping\n\n", Clock::now());
  EXPECT_EQ(r.finish(Clock::now()).status, Status::kFailed);
}
