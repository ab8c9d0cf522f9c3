// test-deps: engine_internals
// append_token: the one decision of whether a generated token ends its sequence, and the text it releases,
// on the byte tokenizer (token = byte + 3, eos = 2), as a table. eos (unless ignore_eos) and stop token ids
// end a sequence with no text of their own; a stop string ends it with the text cut at the match, even on
// the last allowed token (stop, not length); max_new_tokens ends it with what was held back released.
#include "scheduler/token_outcome.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace engine {

// Failures print reasons by name (found by ADL, so in engine itself).
void PrintTo(FinishReason r, std::ostream* os) { *os << to_string(r); }

namespace {

constexpr int32_t kEos = 2;

std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c + 3);
  return ids;
}

std::vector<int32_t> operator+(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Case {
  const char* what;
  SamplingParams sampling;
  std::vector<int32_t> tokens;          ///< fed in order; only the last may end the sequence
  std::optional<FinishReason> finish;   ///< the last token's decision
  std::string text;                     ///< all text released
};

SamplingParams params(int max_new, std::vector<std::string> stop = {}, std::vector<int32_t> stop_ids = {},
                      bool ignore_eos = false) {
  SamplingParams p;
  p.max_new_tokens = max_new;
  p.stop = std::move(stop);
  p.stop_token_ids = std::move(stop_ids);
  p.ignore_eos = ignore_eos;
  return p;
}

const Case kCases[] = {
    {"short of every limit", params(10), bytes("ab"), std::nullopt, "ab"},
    {"length", params(3), bytes("abc"), FinishReason::kLength, "abc"},
    {"length releases a held-back prefix of a stop string", params(2, {"END"}), bytes("aE"), FinishReason::kLength, "aE"},
    {"length releases an incomplete character as U+FFFD", params(2), bytes("a\xC3"), FinishReason::kLength, "a\xEF\xBF\xBD"},
    {"eos adds no text but releases what was held", params(10, {"XY"}), bytes("aX") + std::vector{kEos},
     FinishReason::kEos, "aX"},
    {"eos on the last allowed token is eos", params(2), bytes("a") + std::vector{kEos}, FinishReason::kEos, "a"},
    {"ignore_eos: eos is a token", params(2, {}, {}, true), std::vector{kEos} + bytes("a"), FinishReason::kLength, "a"},
    {"a stop token id adds no text", params(10, {}, bytes("!")), bytes("hi!"), FinishReason::kStop, "hi"},
    {"eos as a stop token id while eos is ignored", params(10, {}, {kEos}, true), std::vector{kEos},
     FinishReason::kStop, ""},
    {"a stop string cuts the text at the match", params(10, {"END"}), bytes("ab\nEND"), FinishReason::kStop, "ab\n"},
    {"a stop string on the last allowed token is stop, not length", params(4, {"END"}), bytes("aEND"),
     FinishReason::kStop, "a"},
};

TEST(TokenOutcome, DecisionTable) {
  const std::unique_ptr<Tokenizer> tok = load_tokenizer("");  // bytes
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.what);
    Sequence seq;
    seq.sampling = c.sampling;
    seq.stop_matcher = StopMatcher(seq.sampling.stop);
    seq.decoder = std::make_unique<StreamDecoder>(*tok);
    std::string text;
    std::optional<FinishReason> finish;
    for (int32_t t : c.tokens) {
      ASSERT_FALSE(finish) << "finished before the last token";
      TokenOutcome o = append_token(seq, t, kEos);
      text += o.text;
      finish = o.finish;
    }
    EXPECT_EQ(finish, c.finish);
    EXPECT_EQ(text, c.text);
    EXPECT_EQ(seq.output_tokens, c.tokens);
  }
}

TEST(TokenOutcome, WithoutADecoderOnlyTokensDecide) {
  Sequence s;  // as in the scheduler's own tests: no tokenizer, so no text and no stop strings
  s.sampling.max_new_tokens = 2;
  TokenOutcome first = append_token(s, bytes("a")[0], kEos);
  EXPECT_EQ(first.finish, std::nullopt);
  EXPECT_EQ(first.text, "");
  EXPECT_EQ(append_token(s, bytes("b")[0], kEos).finish, FinishReason::kLength);
}

}  // namespace
}  // namespace engine
