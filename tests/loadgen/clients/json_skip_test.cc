// test-deps: loadgen_lib
// past_container (64 bytes a step) against the byte-at-a-time reference with the same rules, on random
// texts of the bytes that matter (quotes, backslashes, brackets) amid plain ones, at every length around
// the 64-byte blocks and from every start: the same end, or the same nullptr. And on the JSON it is for.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "loadgen/clients/json_skip.h"

using loadgen::past_container;
using loadgen::past_container_plain;

namespace {

// Offset of the end found, or -1 for nullptr.
long end_of(const char* (*f)(const char*, const char*), const std::string& s, size_t from) {
  const char* e = f(s.data() + from, s.data() + s.size());
  return e == nullptr ? -1 : e - s.data();
}

TEST(JsonSkip, SameEndAsTheReferenceOnRandomTexts) {
  std::mt19937_64 rng(20261203);
  // Weighted toward the bytes that matter, runs of backslashes included.
  const std::string alphabet = "\"\"\\\\\\{}[]{}[]ab ,:0";
  int found = 0, cut = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const size_t n = std::uniform_int_distribution<size_t>(0, 300)(rng);
    std::string s(n, ' ');
    const int heavy = std::uniform_int_distribution<int>(0, 3)(rng);  // 0: mostly plain bytes
    for (char& c : s) {
      if (heavy == 0 && std::uniform_int_distribution<int>(0, 7)(rng) != 0) c = 'x';
      else c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    }
    const size_t from = n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n)(rng);
    const long want = end_of(past_container_plain, s, from);
    ASSERT_EQ(end_of(past_container, s, from), want) << "text '" << s << "' from " << from;
    (want < 0 ? cut : found)++;
  }
  EXPECT_GT(found, 2000);  // both outcomes are exercised
  EXPECT_GT(cut, 2000);
}

TEST(JsonSkip, FindsTheCloseAtEveryOffsetAcrossBlocks) {
  // A string with escaped quotes and brackets, then nested containers, the close landing at every position
  // around the 64-byte steps; the text around it keeps going (another member after it).
  for (size_t pad = 0; pad < 200; ++pad) {
    const std::string inner = "{\"k\":[\"a\\\"]}\\\\\",[" + std::string(pad, '1') + "],{\"x\":\"}\"}]}";
    const std::string text = "{\"logprobs\":" + inner + ",\"text\":\"]\"}";
    const size_t at = text.find(inner);
    const char* e = past_container(text.data() + at + 1, text.data() + text.size());
    ASSERT_NE(e, nullptr) << pad;
    EXPECT_EQ(static_cast<size_t>(e - text.data()), at + inner.size()) << pad;
    // Cut one byte before its close: not found.
    EXPECT_EQ(past_container(text.data() + at + 1, text.data() + at + inner.size() - 1), nullptr) << pad;
  }
}

TEST(JsonSkip, BackslashRunsAcrossABlockBoundary) {
  // An odd or even run of backslashes ending right before a quote, placed so the run crosses byte 64.
  for (int run = 1; run <= 5; ++run) {
    for (size_t lead = 55; lead < 70; ++lead) {
      std::string s = "\"" + std::string(lead, 'y') + std::string(static_cast<size_t>(run), '\\') + "\"]\"]";
      const long want = end_of(past_container_plain, s, 0);
      EXPECT_EQ(end_of(past_container, s, 0), want) << "run " << run << " lead " << lead;
      // Even runs end the string at the first quote and the container at the first ']'; odd runs escape it.
      EXPECT_EQ(want, static_cast<long>(1 + lead + static_cast<size_t>(run) + (run % 2 == 0 ? 2 : 4)));
    }
  }
}

}  // namespace
