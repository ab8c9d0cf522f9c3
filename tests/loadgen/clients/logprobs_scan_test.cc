// test-deps: loadgen_lib
// The DOM-free logprobs scanner against the DOM parsers it replaces on the hot path (http_logprobs.h through
// decode_api_event, the reference): the same ApiEvent, bit for bit, on the dialects' fixtures, on the bench's
// K = 20 chunk, and on random bodies (escaped strings and \u escapes with surrogate pairs, raw UTF-8, random
// whitespace and key order, duplicate keys, nulls, missing fields, non-object entries, integer and float
// spellings, ties and NaNs among the alternatives), and the same error on broken ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_logprobs.h"
#include "loadgen/clients/logprobs_deferred.h"
#include "loadgen/clients/logprobs_scan.h"
#include "support/api_event_compare.h"

using namespace loadgen;
using nlohmann::json;
using namespace api_event_compare;

namespace {

void expect_same(const std::string& body) {
  const ApiEvent dom = decode_api_event(body);
  const ApiEvent scanned = decode_api_event_scanned(body);
  EXPECT_TRUE(same_event(scanned, dom)) << body;
}

// The bench's chunk (bench/logprobs_capture_bench.cc) and what each dialect's server sends.
const std::vector<std::string> kFixtures = {
    R"({"choices":[{"finish_reason":null,"index":0,"logprobs":{"text_offset":[0],"token_logprobs":[-0.1],"tokens":["token_id:100"],"top_logprobs":[{"token_id:100":-0.1,"token_id:101":-0.47,"token_id:102":-0.84,"token_id:103":-1.21}]},"text":" ab"}],"created":1,"id":"cmpl-1","model":"m","object":"text_completion"})",
    R"({"choices":[{"index":0,"text":"a","logprobs":{"tokens":["token_id:100"],
        "token_logprobs":[-0.5],"top_logprobs":[{"token_id:7":-1.5,"token_id:100":-0.5}],"text_offset":[0]},
        "finish_reason":null}]})",
    R"({"choices":[{"index":0,"text":" the","logprobs":{"tokens":[" the"],"token_logprobs":[-0.25],"top_logprobs":[{" the":-0.25," a":-2.0}]}}]})",
    R"({"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[
        {"id":15,"token":"Hi","logprob":-0.1,"bytes":[72,105],"top_logprobs":[{"id":15,"token":"Hi","logprob":-0.1},
        {"id":9,"token":"Hello","logprob":-2.5}]}]},"finish_reason":null}]})",
    R"({"choices":[{"index":0,"text":"Hi","logprobs":{"content":[{"id":15,"token":"Hi","logprob":-0.1,"top_logprobs":[]}]}}]})",
    R"({"token":{"id":5,"text":"x","logprob":-0.75,"special":false},
        "top_tokens":[{"id":5,"text":"x","logprob":-0.75,"special":false},{"id":6,"text":"y","logprob":-1.0,"special":false}],
        "generated_text":null,"details":null})",
    R"({"token":{"id":5,"text":"x","logprob":null,"special":false}})",
    R"({"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},"top_tokens":[],"generated_text":"x y",
        "details":{"finish_reason":"eos_token","generated_tokens":2,"prompt_tokens":4}})",
    R"({"generated_text":"x","details":{"finish_reason":"length","generated_tokens":1,
        "tokens":[{"id":5,"text":"x","logprob":-0.75,"special":false}],"top_tokens":[[{"id":5,"text":"x","logprob":-0.75}]],
        "prefill":[{"id":1,"text":"<s>","logprob":null},{"id":9,"text":"a","logprob":-3.0,"top_tokens":[{"id":8,"text":"b","logprob":-0.5}]}]}})",
    R"({"choices":[{"text":"x","finish_reason":null,"prompt_logprobs":[null,{"42":{"logprob":-4.0,"rank":9,"decoded_token":"q"}}],
        "logprobs":{"tokens":["token_id:1","token_id:42"],"token_logprobs":[null,-4.0],"top_logprobs":[null,{"token_id:42":-4.0}]}}]})",
    R"({"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":16,"total_tokens":24}})",
    R"({"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":16}})",
    R"({"error":{"message":"boom","type":"server_error"},"choices":[{"logprobs":{"tokens":["a"],"token_logprobs":[-1]}}]})",
    R"([{"generated_text":"x"}])",
    "[DONE]",
    R"({"choices":[{"logprobs":{"tokens":["a"],"token_logprobs":[-1],}}]})",        // trailing comma
    R"({"choices":[{"logprobs":{"tokens":["a"],"token_logprobs":[1e400]}}]})",      // overflow: nlohmann refuses it
    R"({"choices":[{"logprobs":{"tokens":["a"],"token_logprobs":[1e-400]}}]})",     // underflow: nlohmann reads 0
    R"({"choices":[{"logprobs":{"tokens":["\ud800"],"token_logprobs":[-1]}}]})",    // a lone surrogate
    R"({"choices":[{"logprobs":{"tokens":["a"],"token_logprobs":[-1]}}]} x)",       // text after the value
};

TEST(LogprobsScan, SameEventsAsTheDomOnTheFixtures) {
  for (const std::string& body : kFixtures) expect_same(body);
}

TEST(LogprobsScan, ReadsTheBenchChunkItself) {
  // Not a fallback: the scanner's own reading of the value gives the DOM's steps.
  const json lp = json::parse(kFixtures[0])["choices"][0]["logprobs"];
  const auto scanned = scan_completion_logprobs(lp.dump());
  ASSERT_TRUE(scanned.has_value());
  EXPECT_TRUE(same_steps(*scanned, parse_completion_logprobs(lp)));
  ASSERT_EQ(scanned->size(), 1u);
  EXPECT_EQ((*scanned)[0].top.size(), 4u);
  EXPECT_EQ((*scanned)[0].top[3].id, 103);
}

TEST(LogprobsScan, MalformedBodiesGiveTheDomsError) {
  const std::string broken = R"({"choices":[{"index":0,"text":"a","logprobs":{"tokens":["token_id:1"],"token_logprobs":[-0.5],)"
                             R"("top_logprobs":[{"token_id:1":-0.5,}]}}]})";
  const ApiEvent ev = decode_api_event_scanned(broken);
  EXPECT_EQ(ev.error, decode_api_event(broken).error);
  EXPECT_NE(ev.error.find("malformed event"), std::string::npos) << ev.error;
  EXPECT_FALSE(scan_completion_logprobs(R"({"tokens":["a"],"token_logprobs":[-0.5e]})").has_value());
  EXPECT_FALSE(scan_chat_logprobs(R"({"content":[{"token":"\x"}]})").has_value());
  EXPECT_FALSE(scan_tgi_top_tokens("[{\"text\":\"\xC0\xAF\"}]").has_value());  // an overlong UTF-8 form
}

// Strings as nlohmann's lexer takes them: UTF-8 per RFC 3629 (no overlong forms, no encoded surrogates, nothing
// past U+10FFFF), no raw control characters, \u escapes with their surrogates paired.
TEST(LogprobsScan, StringsAreCheckedAsNlohmannChecksThem) {
  const std::vector<std::string> texts = {
      "\x7f", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
      "\xF4\x8F\xBF\xBF", "\\ud83d\\ude00", "\\u0000", "\\u00e9\\/",                     // accepted
      "\xC0\xAF", "\xC1\xBF", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
      "\x80", "\xE6\x97", "\x01", "\x1f", "\\ud800", "\\udc00", "\\ud800\\u0041", "\\u12", "\\x41"};  // refused
  for (const std::string& t : texts) {
    const std::string value = "[{\"id\":1,\"text\":\"" + t + "\",\"logprob\":-1}]";
    SCOPED_TRACE(value);
    const bool dom_accepts = json::accept(value);
    const auto scanned = scan_tgi_top_tokens(value);
    EXPECT_EQ(scanned.has_value(), dom_accepts);
    if (scanned && dom_accepts) {
      EXPECT_EQ((*scanned)[0].text, json::parse(value)[0]["text"].get<std::string>());
    }
    const std::string body = "{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"" + t +
                             "\"],\"token_logprobs\":[-1]}}]}";
    expect_same(body);
  }
}

// The same texts at every offset from a word boundary, with plain bytes before and after: the scanner steps
// over plain ASCII eight bytes at a time, and no byte it must check may fall inside a step.
TEST(LogprobsScan, StringsAreCheckedAtEveryOffset) {
  const std::vector<std::string> texts = {"\\\"", "\\\\", "\\n", "\\u00e9", "\x7f", "\xC2\x80", "\xF0\x90\x80\x80",  // accepted
                                          "\x01", "\x1f", "\x80", "\xC0\xAF", "\\x41", "\"\""};           // refused
  for (const std::string& t : texts) {
    for (int before = 0; before <= 17; ++before) {
      for (int after : {0, 1, 7, 8, 9}) {
        const std::string text = std::string(before, 'a') + t + std::string(after, 'z');
        const std::string value = "[{\"id\":1,\"text\":\"" + text + "\",\"logprob\":-1}]";
        SCOPED_TRACE(value);
        const bool dom_accepts = json::accept(value);
        const auto scanned = scan_tgi_top_tokens(value);
        ASSERT_EQ(scanned.has_value(), dom_accepts);
        if (scanned) {
          ASSERT_EQ((*scanned)[0].text, json::parse(value)[0]["text"].get<std::string>());
        }
      }
    }
  }
}

// Numbers: the short plain decimals read by the scanner's own fast path and the rest by from_chars, each the
// double strtod gives (what nlohmann keeps), bit for bit; integers as nlohmann's int64/uint64 made double.
TEST(LogprobsScan, NumbersAreTheDoublesStrtodGives) {
  std::mt19937_64 rng(5);
  std::vector<std::string> texts = {"-0.0", "0.0", "-0.1", "0.30000000000000004", "-123456789012345.6", "-1.234567890123456",
                                    "-0", "9007199254740993", "-9223372036854775809", "18446744073709551616", "1E2",
                                    "-2.5e-3", "0.000000000000001", "-99999999999999.9", "4e-320"};
  for (int i = 0; i < 20000; ++i) {
    const double v = -std::exp(std::uniform_real_distribution<double>(-30, 5)(rng));
    char buf[64];
    const int digits = 1 + static_cast<int>(rng() % 17);
    std::snprintf(buf, sizeof buf, i % 2 ? "%.*f" : "%.*g", digits, v);
    texts.push_back(buf);
  }
  for (const std::string& t : texts) {
    SCOPED_TRACE(t);
    const auto top = scan_tgi_top_tokens("[{\"logprob\":" + t + "}]");
    ASSERT_TRUE(top.has_value());
    ASSERT_EQ(top->size(), 1u);
    const double want = json::parse(t).get<double>();
    EXPECT_EQ(std::bit_cast<uint64_t>((*top)[0].logprob), std::bit_cast<uint64_t>(want));
    if (t.find_first_of(".eE") != std::string::npos)
      EXPECT_EQ(std::bit_cast<uint64_t>(want), std::bit_cast<uint64_t>(std::strtod(t.c_str(), nullptr)));
  }
}

// ------------------------------------------------------------------------------------------ random bodies

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  bool underflow = false;  ///< a number nlohmann reads as 0 and from_chars refuses (the scanner hands it over)

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string ws() {
    static const char* kWs[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    return kWs[pick(7)];
  }

  // A JSON string holding `s` (UTF-8), each character spelled raw or escaped at random.
  std::string str(const std::string& s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
      for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      const std::string raw = s.substr(i, n);
      i += n;
      if (c == '"' || c == '\\' || c < 0x20 || chance(0.15)) {
        if (c == '\n' && chance(0.5)) { out += "\\n"; continue; }
        if (c == '/' && chance(0.5)) { out += "\\/"; continue; }
        if (c == '"' && chance(0.5)) { out += "\\\""; continue; }
        if (c == '\\' && chance(0.5)) { out += "\\\\"; continue; }
        char buf[16];
        if (cp >= 0x10000) {
          const uint32_t v = cp - 0x10000;
          std::snprintf(buf, sizeof buf, chance(0.5) ? "\\u%04x\\u%04x" : "\\u%04X\\u%04X", 0xD800 + (v >> 10),
                        0xDC00 + (v & 0x3FF));
        } else {
          std::snprintf(buf, sizeof buf, chance(0.5) ? "\\u%04x" : "\\u%04X", cp);
        }
        out += buf;
      } else {
        out += raw;
      }
    }
    return out + "\"";
  }

  std::string token_text() {
    static const std::vector<std::string> kTexts = {
        "token_id:100", "token_id:7", "token_id:0", "token_id:31999", "token_id:-5", "token_id:", "token_id:12a",
        "token_id:99999999999", " the", "a", "", "é", "日本", "😀", "a\"b", "line\nbreak", "bytes:\\xe6", "tab\t/x",
        std::string("nul\0x", 5), "token_id:100"};
    return kTexts[pick(static_cast<int>(kTexts.size()))];
  }

  std::string number() {
    switch (pick(12)) {
      case 0: return "0";
      case 1: return "-0";
      case 2: return "-3";
      case 3: return "12";
      case 4: return "-0.0";
      case 5: return "1e-3";
      case 6: return "-2.5E+1";
      case 7: return "123456789012345678901";
      case 8:
        underflow = true;
        return "-1e-400";
      case 9: return "-4e-320";
      default: {
        char buf[40];
        const double v = -std::uniform_real_distribution<double>(0, 20)(rng_);
        std::snprintf(buf, sizeof buf, chance(0.5) ? "%.17g" : "%.4f", v);
        return buf;
      }
    }
  }

  // A logprob: mostly a number, sometimes null or another kind (the DOM reads NaN).
  std::string logprob() {
    const int r = pick(20);
    if (r == 0) return "null";
    if (r == 1) return "\"-1.0\"";
    if (r == 2) return "[]";
    return number();
  }

  std::string id() {
    switch (pick(8)) {
      case 0: return "5.0";
      case 1: return "\"7\"";
      case 2: return "null";
      case 3: return "-1";
      case 4: return "4294967296";
      default: return std::to_string(pick(32000));
    }
  }

  std::string junk(int depth = 0) {
    switch (depth > 2 ? pick(4) : pick(6)) {
      case 0: return "null";
      case 1: return chance(0.5) ? "true" : "false";
      case 2: return number();
      case 3: return str(token_text());
      case 4: {
        std::string a = "[";
        for (int i = 0, n = pick(3); i < n; ++i) a += (i ? "," : "") + ws() + junk(depth + 1);
        return a + "]";
      }
      default: {
        std::vector<std::pair<std::string, std::string>> m;
        for (int i = 0, n = pick(3); i < n; ++i) m.emplace_back("k" + std::to_string(i), junk(depth + 1));
        return object(m, false);
      }
    }
  }

  // An object of these members, often in random order, sometimes with an unknown key or a duplicate key.
  std::string object(std::vector<std::pair<std::string, std::string>> members, bool extras = true) {
    if (extras && chance(0.2)) members.emplace_back("extra", junk());
    if (extras && !members.empty() && chance(0.1)) {
      const auto& m = members[pick(static_cast<int>(members.size()))];
      members.insert(members.begin(), {m.first, junk()});  // the earlier of the two: overridden
    }
    if (chance(0.7)) std::shuffle(members.begin(), members.end(), rng_);
    std::string out = "{" + ws();
    for (size_t i = 0; i < members.size(); ++i)
      out += (i ? "," + ws() : "") + str(members[i].first) + ws() + ":" + ws() + members[i].second + ws();
    return out + "}";
  }

  std::string array(const std::vector<std::string>& elems) {
    std::string out = "[" + ws();
    for (size_t i = 0; i < elems.size(); ++i) out += (i ? "," + ws() : "") + elems[i];
    return out + ws() + "]";
  }

  // A legacy top_logprobs row: {text: lp}, with ties, NaNs and duplicate keys now and then.
  std::string top_row() {
    std::vector<std::pair<std::string, std::string>> m;
    const std::string tie = number();
    for (int i = 0, n = pick(6); i < n; ++i) m.emplace_back(token_text(), chance(0.2) ? tie : logprob());
    return object(m, false);
  }

  std::string legacy() {
    const int n = pick(4);
    std::vector<std::string> tokens, lps, tops, offsets;
    for (int i = 0; i < n; ++i) {
      tokens.push_back(chance(0.9) ? str(token_text()) : junk());
      lps.push_back(logprob());
      tops.push_back(chance(0.85) ? top_row() : chance(0.5) ? "null" : junk());
      offsets.push_back(std::to_string(i * 3));
    }
    if (chance(0.1) && !lps.empty()) lps.pop_back();
    if (chance(0.1)) tops.push_back(top_row());
    std::vector<std::pair<std::string, std::string>> m;
    if (chance(0.95)) m.emplace_back("tokens", chance(0.95) ? array(tokens) : junk());
    if (chance(0.95)) m.emplace_back("token_logprobs", chance(0.95) ? array(lps) : junk());
    if (chance(0.9)) m.emplace_back("top_logprobs", chance(0.95) ? array(tops) : junk());
    if (chance(0.7)) m.emplace_back("text_offset", array(offsets));
    if (chance(0.05)) m.emplace_back("content", content());
    return object(m);
  }

  std::string entry(bool with_top) {
    std::vector<std::pair<std::string, std::string>> m;
    if (chance(0.95)) m.emplace_back("token", chance(0.9) ? str(token_text()) : junk());
    if (chance(0.95)) m.emplace_back("logprob", logprob());
    if (chance(0.5)) m.emplace_back("id", id());
    if (chance(0.5)) m.emplace_back("bytes", array({"72", "105"}));
    if (with_top && chance(0.9)) {
      std::vector<std::string> top;
      for (int i = 0, n = pick(5); i < n; ++i) top.push_back(chance(0.9) ? entry(false) : junk());
      m.emplace_back("top_logprobs", chance(0.9) ? array(top) : junk());
    } else if (!with_top && chance(0.1)) {
      m.emplace_back("top_logprobs", array({entry(false)}));  // not read below the first level
    }
    return object(m);
  }

  std::string content() {
    std::vector<std::string> e;
    for (int i = 0, n = pick(4); i < n; ++i) e.push_back(chance(0.9) ? entry(true) : junk());
    return chance(0.95) ? array(e) : junk();
  }

  std::string logprobs_value(bool chat) {
    const int r = pick(20);
    if (r == 0) return "null";
    if (r == 1) return junk();
    if (chat || r < 6) {
      std::vector<std::pair<std::string, std::string>> m;
      if (chance(0.95)) m.emplace_back("content", content());
      if (chance(0.1)) m.emplace_back("refusal", "null");
      return object(m);
    }
    return legacy();
  }

  std::string tgi_entry() {
    std::vector<std::pair<std::string, std::string>> m;
    if (chance(0.95)) m.emplace_back("id", id());
    if (chance(0.95)) m.emplace_back("text", chance(0.9) ? str(token_text()) : junk());
    if (chance(0.95)) m.emplace_back("logprob", logprob());
    if (chance(0.7)) m.emplace_back("special", chance(0.9) ? "false" : "true");
    return object(m);
  }

  std::string chunk() {
    switch (pick(3)) {
      case 0: {  // completions
        std::vector<std::pair<std::string, std::string>> c = {{"index", "0"}, {"text", str(token_text())},
                                                              {"logprobs", logprobs_value(false)},
                                                              {"finish_reason", chance(0.8) ? "null" : "\"length\""}};
        std::vector<std::pair<std::string, std::string>> top = {
            {"id", "\"cmpl-1\""}, {"object", "\"text_completion\""}, {"choices", array({object(c)})}};
        if (chance(0.1)) top.emplace_back("usage", R"({"prompt_tokens":8,"completion_tokens":16})");
        return ws() + object(top) + ws();
      }
      case 1: {  // chat
        std::vector<std::pair<std::string, std::string>> c = {
            {"index", "0"}, {chance(0.9) ? "delta" : "message", object({{"content", str(token_text())}})},
            {"logprobs", logprobs_value(true)}, {"finish_reason", "null"}};
        return object({{"id", "\"chat-1\""}, {"choices", array({object(c)})}});
      }
      default: {  // TGI
        std::vector<std::string> top;
        for (int i = 0, n = pick(5); i < n; ++i) top.push_back(chance(0.9) ? tgi_entry() : junk());
        std::vector<std::pair<std::string, std::string>> m;
        if (chance(0.9)) m.emplace_back("token", chance(0.9) ? tgi_entry() : junk());
        if (chance(0.9)) m.emplace_back("top_tokens", chance(0.9) ? array(top) : junk());
        m.emplace_back("generated_text", "null");
        m.emplace_back("details", "null");
        return object(m);
      }
    }
  }

  // One byte deleted, replaced or inserted.
  std::string corrupt(std::string s) {
    if (s.empty()) return s;
    const size_t at = static_cast<size_t>(pick(static_cast<int>(s.size())));
    static const char kBytes[] = {'"', ',', '}', ']', '\\', ':', '0', 'e', '-', ' ', '\x01', '\xC3', 'u'};
    switch (pick(3)) {
      case 0: s.erase(at, 1); break;
      case 1: s[at] = kBytes[pick(sizeof kBytes)]; break;
      default: s.insert(s.begin() + static_cast<long>(at), kBytes[pick(sizeof kBytes)]); break;
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

TEST(LogprobsScan, SameEventsAsTheDomOnRandomBodies) {
  Gen g(20261202);
  int with_steps = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string body = g.chunk();
    SCOPED_TRACE(body);
    ASSERT_TRUE(json::accept(body)) << "the generator wrote invalid JSON";
    const ApiEvent dom = decode_api_event(body);
    ASSERT_TRUE(same_event(decode_api_event_scanned(body), dom));
    with_steps += !dom.logprobs.empty();
  }
  EXPECT_GT(with_steps, 1500);  // most bodies carry steps: the comparison is not of empty results
}

TEST(LogprobsScan, SameErrorsAsTheDomOnBrokenBodies) {
  Gen g(7);
  int malformed = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string body = g.corrupt(g.chunk());
    SCOPED_TRACE(body);
    const ApiEvent dom = decode_api_event(body);
    ASSERT_TRUE(same_event(decode_api_event_scanned(body), dom));
    malformed += !dom.error.empty();
  }
  EXPECT_GT(malformed, 1000);
}

// The scanner's own reading of a value (no DOM behind it): every value nlohmann accepts, it accepts too (but
// an underflowing number, which it hands to the DOM), with the same steps; every value nlohmann refuses, it
// refuses.
TEST(LogprobsScan, TheScannerAloneAcceptsWhatTheDomAcceptsAndReadsItTheSame) {
  Gen g(99);
  int accepted = 0;
  for (int i = 0; i < 6000; ++i) {
    g.underflow = false;
    const int kind = i % 3;
    std::string value = kind == 0 ? g.logprobs_value(false) : kind == 1 ? g.logprobs_value(true) : [&] {
      std::vector<std::string> top;
      for (int t = 0, n = g.pick(5); t < n; ++t) top.push_back(g.chance(0.9) ? g.tgi_entry() : g.junk());
      return g.array(top);
    }();
    if (i % 4 == 3) value = g.corrupt(value);
    SCOPED_TRACE(value);
    const json j = json::parse(value, nullptr, /*allow_exceptions=*/false);
    std::optional<std::vector<StepLogprobs>> scanned;
    std::vector<StepLogprobs> dom;
    if (kind == 2) {
      const auto top = scan_tgi_top_tokens(value);
      if (top) scanned = std::vector<StepLogprobs>{StepLogprobs{TokenLogprob{}, *top}};
      if (!j.is_discarded()) {
        const json ev = {{"token", {{"id", 1}, {"logprob", -1.0}}}, {"top_tokens", j}};
        dom = {*parse_tgi_token_logprobs(ev)};
        dom[0].token = TokenLogprob{};
      }
    } else {
      scanned = kind == 0 ? scan_completion_logprobs(value) : scan_chat_logprobs(value);
      if (!j.is_discarded()) dom = kind == 0 ? parse_completion_logprobs(j) : parse_chat_logprobs(j);
    }
    if (j.is_discarded()) {
      EXPECT_FALSE(scanned.has_value());
      continue;
    }
    if (g.underflow && !scanned) continue;
    ASSERT_TRUE(scanned.has_value());
    ASSERT_TRUE(same_steps(*scanned, dom));
    ++accepted;
  }
  EXPECT_GT(accepted, 3000);
}

// --dump-logprobs' path: the client thread only finds where choices[0].logprobs ends; the dump's writer
// reads that text later. Together they give the DOM's event on every well-formed body.
ApiEvent deferred_then_read(const std::string& body, bool& deferred, std::string& read_error) {
  LogprobsJson lj;
  ApiEvent ev = decode_api_event_deferring(body, lj);
  deferred = lj.present;
  read_error.clear();
  if (lj.present) {
    EXPECT_TRUE(ev.logprobs.empty()) << "a deferred event's steps are the reader's";
    if (auto steps = read_logprobs_json(lj.layout, lj.json, read_error)) ev.logprobs = std::move(*steps);
  }
  return ev;
}

TEST(LogprobsScan, DeferredThenReadGivesTheDomsEventsOnRandomBodies) {
  Gen g(20261203);
  int deferred_count = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string body = g.chunk();
    SCOPED_TRACE(body);
    bool deferred;
    std::string read_error;
    const ApiEvent ev = deferred_then_read(body, deferred, read_error);
    ASSERT_EQ(read_error, "");
    ASSERT_TRUE(same_event(ev, decode_api_event(body)));
    deferred_count += deferred;
  }
  EXPECT_GT(deferred_count, 1000);  // most OpenAI bodies went the deferred way
}

// A broken body: the DOM's error as before, unless the break is inside the logprobs value and leaves its
// brackets whole: then the event itself decodes (its timing is recorded) and the reader names the value.
TEST(LogprobsScan, DeferredBrokenBodiesFailInTheEventOrInTheReader) {
  Gen g(8);
  int event_errors = 0, reader_errors = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string body = g.corrupt(g.chunk());
    SCOPED_TRACE(body);
    const ApiEvent dom = decode_api_event(body);
    bool deferred;
    std::string read_error;
    const ApiEvent ev = deferred_then_read(body, deferred, read_error);
    if (dom.error.empty()) {
      ASSERT_EQ(read_error, "");
      ASSERT_TRUE(same_event(ev, dom));
    } else if (!ev.error.empty()) {
      ASSERT_EQ(ev.error, dom.error);
      ++event_errors;
    } else {
      ASSERT_TRUE(deferred);
      ASSERT_EQ(read_error.rfind("malformed logprobs: ", 0), 0u) << read_error;
      ++reader_errors;
    }
  }
  EXPECT_GT(event_errors, 200);
  EXPECT_GT(reader_errors, 200);
}

TEST(LogprobsScan, DeferringPassesOverStringsWithEscapedQuotesAndBrackets) {
  const std::string body =
      R"({"choices":[{"index":0,"text":"a","logprobs":{"tokens":["\"}]\\"],"token_logprobs":[-0.5],)"
      R"("top_logprobs":[{"\"}]\\":-0.5,"[{":-1.25}]},"finish_reason":null}]})";
  LogprobsJson lj;
  const ApiEvent ev = decode_api_event_deferring(body, lj);
  ASSERT_TRUE(lj.present);
  EXPECT_EQ(ev.text, "a");
  EXPECT_EQ(lj.layout, LogprobsLayout::kCompletion);
  EXPECT_EQ(lj.json.front(), '{');
  EXPECT_EQ(lj.json.back(), '}');
  std::string error;
  const auto steps = read_logprobs_json(lj.layout, lj.json, error);
  ASSERT_TRUE(steps.has_value()) << error;
  EXPECT_TRUE(same_steps(*steps, decode_api_event(body).logprobs));
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].token.text, "\"}]\\");
  // A value cut off before its brackets close is the event's error, as the DOM says it.
  const std::string cut = R"({"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[-0.5])";
  EXPECT_EQ(decode_api_event_deferring(cut, lj).error, decode_api_event(cut).error);
  EXPECT_FALSE(lj.present);
}

}  // namespace
