// test-deps: loadgen_lib
// decode_openai_chunk (one pass, no DOM) against decode_api_event, the reference: wherever it takes a chunk
// the ApiEvent is the same field by field, and with logprobs deferred the deferred text read on its own gives
// the DOM's logprobs. On random chunks of every shape the decoder meets (completions and chat, vLLM's and
// llm-serve's fields, reasoning deltas, usage-only and closing chunks, escapes, odd types, duplicate keys,
// error events, TGI events, junk members) and on the same chunks broken (cut short, a byte changed): a broken
// chunk is never taken where the DOM refuses it. It must also take the common chunks (else it does nothing).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/completion_stream.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/logprobs_deferred.h"
#include "loadgen/clients/openai_event.h"
#include "support/api_event_compare.h"

using namespace loadgen;
using namespace api_event_compare;
using nlohmann::json;

namespace {

class ChunkGen {
 public:
  explicit ChunkGen(uint64_t seed) : rng_(seed) {}
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string ws() {
    static const char* kWs[] = {"", "", "", " ", "\n", "\t", "\r\n "};
    return kWs[pick(7)];
  }
  // A JSON string, sometimes with escapes (\n, \", \\, \u00e9, a surrogate pair) and raw UTF-8.
  std::string str() {
    static const char* kTexts[] = {"\" ab\"",     "\"\"",           "\"x\"",         "\"line\\nbreak\"",
                                   "\"q\\\"uote\"", "\"back\\\\slash\"", "\"\\u00e9t\\u00E9\"", "\"\\ud83d\\ude00\"",
                                   "\"日本\"",     "\"eos_token\"",   "\"stop_sequence\"", "\"length\"",
                                   "\"stop\"",     "\"a}]b\""};
    return kTexts[pick(14)];
  }
  std::string scalar() {
    static const char* kScalars[] = {"null", "true", "false", "0", "-1", "12", "3.5", "-2e3", "4294967296",
                                     "18446744073709551616", "1e400", "2147483647", "2147483648"};
    if (chance(0.3)) return str();
    return kScalars[pick(13)];
  }
  std::string junk(int depth = 0) {
    const int r = depth > 2 ? pick(2) : pick(4);
    if (r == 0) return scalar();
    if (r == 1) return str();
    if (r == 2) {
      std::string a = "[";
      for (int i = 0, n = pick(3); i < n; ++i) a += (i ? "," : "") + ws() + junk(depth + 1);
      return a + "]";
    }
    std::vector<std::pair<std::string, std::string>> m;
    for (int i = 0, n = pick(3); i < n; ++i) m.emplace_back("k" + std::to_string(i), junk(depth + 1));
    return object(m);
  }
  std::string object(std::vector<std::pair<std::string, std::string>> members) {
    if (chance(0.6)) std::shuffle(members.begin(), members.end(), rng_);
    std::string out = "{" + ws();
    for (size_t i = 0; i < members.size(); ++i)
      out += (i ? "," + ws() : "") + "\"" + members[i].first + "\"" + ws() + ":" + ws() + members[i].second + ws();
    return out + "}";
  }
  // A value of the expected kind most of the time, another kind now and then.
  std::string maybe(const std::string& usual) { return chance(0.85) ? usual : junk(); }

  std::string logprobs() {
    switch (pick(6)) {
      case 0: case 1: return "null";
      case 2: return R"({"tokens":["token_id:5"],"token_logprobs":[-0.25],"top_logprobs":[{"token_id:5":-0.25,"a}\"":-1.5}],"text_offset":[0]})";
      case 3: return R"({"content":[{"token":"x","logprob":-0.5,"bytes":[120],"top_logprobs":[{"token":"x","logprob":-0.5,"bytes":null}]}]})";
      case 4: return "[]";
      default: return junk();
    }
  }
  std::string delta() {
    std::vector<std::pair<std::string, std::string>> m;
    if (chance(0.5)) m.emplace_back("role", "\"assistant\"");
    if (chance(0.7)) m.emplace_back("content", maybe(str()));
    if (chance(0.2)) m.emplace_back("reasoning_content", maybe(str()));
    if (chance(0.15)) m.emplace_back("reasoning", maybe(str()));
    if (chance(0.1)) m.emplace_back("content", str());  // a duplicate
    return object(m);
  }
  std::string choice(bool chat) {
    std::vector<std::pair<std::string, std::string>> m;
    m.emplace_back("index", "0");
    if (chat) m.emplace_back(chance(0.8) ? "delta" : "message", maybe(delta()));
    else if (chance(0.95)) m.emplace_back("text", maybe(str()));
    if (chance(0.8)) m.emplace_back("finish_reason", chance(0.6) ? "null" : maybe(str()));
    if (chance(0.8)) m.emplace_back("logprobs", logprobs());
    if (chance(0.05)) m.emplace_back("prompt_logprobs", chance(0.5) ? "null" : "[null,{\"5\":{\"logprob\":-1}}]");
    if (chance(0.1)) m.emplace_back("stop_reason", junk());
    if (chance(0.05)) m.emplace_back("finish_reason", "\"length\"");  // a duplicate
    return object(m);
  }
  std::string usage() {
    std::vector<std::pair<std::string, std::string>> m;
    if (chance(0.9)) m.emplace_back("prompt_tokens", maybe(std::to_string(pick(5000))));
    if (chance(0.9)) m.emplace_back("completion_tokens", maybe(std::to_string(pick(5000))));
    if (chance(0.5)) m.emplace_back("total_tokens", std::to_string(pick(9000)));
    if (chance(0.1)) m.emplace_back(chance(0.5) ? "prompt_tokens" : "completion_tokens", std::to_string(pick(50)));
    return object(m);
  }
  std::string chunk() {
    const bool chat = chance(0.5);
    std::vector<std::pair<std::string, std::string>> m;
    m.emplace_back("id", "\"cmpl-42\"");
    m.emplace_back("object", chat ? "\"chat.completion.chunk\"" : "\"text_completion\"");
    m.emplace_back("created", "1733000000");
    m.emplace_back("model", "\"m\"");
    if (chance(0.9)) {
      std::string choices = "[";
      const int n = chance(0.1) ? 0 : chance(0.9) ? 1 : 2;
      for (int i = 0; i < n; ++i) choices += (i ? "," : "") + (chance(0.95) ? choice(chat) : junk());
      m.emplace_back("choices", maybe(choices + "]"));
    }
    if (chance(0.3)) m.emplace_back("usage", chance(0.3) ? "null" : maybe(usage()));
    if (chance(0.05)) m.emplace_back("error", chance(0.5) ? "null" : "{\"message\":\"boom\"}");
    if (chance(0.05)) m.emplace_back("token", "{\"id\":1,\"text\":\"x\",\"special\":false}");  // TGI's
    if (chance(0.05)) m.emplace_back("usage", usage());                                     // a duplicate
    if (chance(0.1)) m.emplace_back("system_fingerprint", junk());
    return ws() + object(m) + ws();
  }
  std::string broken(std::string s) {
    if (s.empty()) return s;
    if (chance(0.5)) return s.substr(0, static_cast<size_t>(pick(static_cast<int>(s.size()))));
    static const char kBytes[] = {'"', '}', ']', ',', ':', '\\', 'x', '\x01', '\xff', ' '};
    s[static_cast<size_t>(pick(static_cast<int>(s.size())))] = kBytes[pick(10)];
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

// The deferred logprobs read as the dump's writer reads them, put back into the event.
ApiEvent with_deferred(ApiEvent ev, const LogprobsJson& d, bool& malformed) {
  malformed = false;
  if (!d.present) return ev;
  std::string error;
  auto steps = read_logprobs_json(d.layout, d.json, error);
  if (!steps) {
    malformed = true;
    return ev;
  }
  ev.logprobs = std::move(*steps);
  return ev;
}

TEST(OpenAIChunk, TakesTheCommonChunksAndDecodesThemAsTheDomDoes) {
  const std::vector<std::string> chunks = {
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" ab","logprobs":null,"finish_reason":null}]})",
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})",
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]})",
      R"({"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"think"},"finish_reason":null}]})",
      R"({"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"eos_token"}]})",
      R"({"id":"c","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}})",
      R"({"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":16}})",
  };
  for (const std::string& c : chunks) {
    SCOPED_TRACE(c);
    const auto fast = decode_openai_chunk(c, nullptr);
    ASSERT_TRUE(fast.has_value());
    EXPECT_TRUE(same_event(*fast, decode_api_event(c)));
  }
  // The bench's chunks, with their logprobs deferred at K = 0 and 20.
  for (int k : {0, 20}) {
    const std::string body = bench::completion_stream(k, 1);
    const std::string data = body.substr(6, body.find("\n\n") - 6);
    LogprobsJson d;
    const auto fast = decode_openai_chunk(data, &d);
    ASSERT_TRUE(fast.has_value()) << k;
    ASSERT_TRUE(d.present);
    bool malformed;
    EXPECT_TRUE(same_event(with_deferred(*fast, d, malformed), decode_api_event(data))) << k;
    EXPECT_FALSE(decode_openai_chunk(data, nullptr).has_value()) << "logprobs to read here are not its job";
  }
  // Not OpenAI chunks, or an error event: left to the DOM.
  for (const char* c : {"[DONE]", R"({"token":{"id":1,"text":"x","special":false},"generated_text":null})",
                        R"({"error":"boom"})", R"([{"generated_text":"x"}])", "{}", "not json"})
    EXPECT_FALSE(decode_openai_chunk(c, nullptr).has_value()) << c;
}

TEST(OpenAIChunk, SameEventsAsTheDomOnRandomAndBrokenChunks) {
  ChunkGen g(20261203);
  int taken = 0, taken_broken = 0, deferred = 0;
  for (int i = 0; i < 6000; ++i) {
    const std::string good = g.chunk();
    for (const std::string& c : {good, g.broken(good)}) {
      SCOPED_TRACE(c);
      const ApiEvent dom = decode_api_event(c);
      if (const auto fast = decode_openai_chunk(c, nullptr)) {
        ASSERT_TRUE(same_event(*fast, dom));
        (c == good ? taken : taken_broken)++;
      }
      LogprobsJson d;
      if (const auto fast = decode_openai_chunk(c, &d)) {
        bool malformed;
        const ApiEvent ev = with_deferred(*fast, d, malformed);
        // A logprobs value that is not JSON: the event is the DOM's but for it (the dump counts it apart), and
        // the DOM refuses the whole chunk.
        if (malformed) {
          EXPECT_FALSE(dom.error.empty());
          continue;
        }
        ASSERT_TRUE(same_event(ev, dom));
        deferred += d.present;
      }
    }
  }
  EXPECT_GT(taken, 2000);     // the decoder takes most well-formed chunks
  EXPECT_GT(deferred, 1000);  // and defers their logprobs
  std::printf("[ info ] taken %d of 6000 random chunks, %d broken ones (each the DOM's event), %d deferred\n", taken,
              taken_broken, deferred);
}

}  // namespace
