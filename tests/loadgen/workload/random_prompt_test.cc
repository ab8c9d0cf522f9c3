// test-deps: loadgen_lib
// --dataset random and --dataset prefix: prompts that tokenize back to exactly the drawn length, with the byte
// tokenizer and with Llama 2's SentencePiece one (from ../shared), shared prefixes that are a true prefix in
// tokens and in text, lengths within the range ratio, a seed that reproduces the data, and bad options named.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "engine/tokenizer.h"
#include "loadgen/workload/random_prompt.h"
#include "loadgen/workload/synthetic.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

const char* kLlama2Tokenizer = "models/llama2-tokenizer/tokenizer.model";

/// Random lengths 1..700 (and a few long ones): every prompt encodes back to exactly its length.
void expect_exact_lengths(const engine::Tokenizer& tok) {
  const RandomPromptGenerator gen(tok);
  std::mt19937_64 rng(7);
  std::mt19937_64 lens(11);
  std::vector<int> ns = {1, 2, 3, 4096};
  for (int i = 0; i < 200; ++i) ns.push_back(1 + static_cast<int>(lens() % 700));
  for (int n : ns) {
    const std::string text = gen.prompt(n, rng);
    EXPECT_EQ(tok.encode(text, false).size(), static_cast<size_t>(n)) << tok.describe() << ": " << text.substr(0, 80);
    EXPECT_EQ(tok.encode(text, true).size(), static_cast<size_t>(n) + 1) << "bos + the prompt";
  }
}

TEST(RandomPromptTest, ExactLengthWithTheByteTokenizer) {
  const auto tok = engine::load_tokenizer("");
  const RandomPromptGenerator gen(*tok);
  EXPECT_FALSE(gen.word_pieces());
  EXPECT_EQ(gen.num_pieces(), 53u);  // a-z, A-Z and the space
  expect_exact_lengths(*tok);
}

TEST(RandomPromptTest, ExactLengthWithLlama2SentencePiece) {
  REQUIRE_SHARED(kLlama2Tokenizer);
  const auto tok = engine::load_tokenizer(testing_paths::shared(kLlama2Tokenizer).string());
  const RandomPromptGenerator gen(*tok);
  EXPECT_TRUE(gen.word_pieces());
  EXPECT_GT(gen.num_pieces(), 5000u);  // the ordinary words of a 32,000-piece vocabulary
  expect_exact_lengths(*tok);
}

TEST(RandomPromptTest, DrawsSpreadOverThePieces) {
  const auto tok = engine::load_tokenizer("");
  const RandomPromptGenerator gen(*tok);
  std::mt19937_64 rng(3);
  const std::vector<int32_t> ids = gen.draw(5000, rng);
  EXPECT_EQ(std::set<int32_t>(ids.begin(), ids.end()).size(), gen.num_pieces());
}

SyntheticOptions prefix_options() {
  SyntheticOptions o;
  o.kind = SyntheticKind::kPrefix;
  o.input_len = 300;
  o.prefix_len = 200;
  o.num_prefixes = 3;
  o.output_len = 20;
  return o;
}

void expect_shared_prefixes(const engine::Tokenizer& tok) {
  const SyntheticOptions o = prefix_options();
  const Dataset ds = make_synthetic_dataset(o, 12, 5, tok);
  ASSERT_EQ(ds.samples.size(), 12u);
  EXPECT_EQ(ds.format, "prefix");
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const std::string& text = ds.samples[i].turns[0].user;
    const std::vector<int32_t> ids = tok.encode(text, false);
    EXPECT_EQ(ids.size(), 300u) << tok.describe();
    EXPECT_EQ(ds.samples[i].turns[0].output_len, 20);
    // Same group (i % 3): the same first 200 tokens and the same text up to them; another group differs.
    const std::string& same = ds.samples[(i + 3) % 12].turns[0].user;
    const std::string& other = ds.samples[(i + 1) % 12].turns[0].user;
    const std::vector<int32_t> same_ids = tok.encode(same, false), other_ids = tok.encode(other, false);
    EXPECT_TRUE(std::equal(ids.begin(), ids.begin() + 200, same_ids.begin())) << i;
    EXPECT_FALSE(std::equal(ids.begin(), ids.begin() + 200, other_ids.begin())) << i;
    EXPECT_NE(ids, same_ids) << "each prompt has a suffix of its own";
    const size_t common = static_cast<size_t>(std::mismatch(text.begin(), text.end(), same.begin(), same.end()).first - text.begin());
    EXPECT_GE(tok.encode(text.substr(0, common), false).size(), 200u) << "the text shares the prefix too";
  }
}

TEST(SyntheticTest, PrefixGroupsShareTheirPrefixByteTokenizer) { expect_shared_prefixes(*engine::load_tokenizer("")); }

TEST(SyntheticTest, PrefixGroupsShareTheirPrefixLlama2) {
  REQUIRE_SHARED(kLlama2Tokenizer);
  expect_shared_prefixes(*engine::load_tokenizer(testing_paths::shared(kLlama2Tokenizer).string()));
}

TEST(SyntheticTest, RandomLengthsWithinTheRangeRatioAndReproducible) {
  const auto tok = engine::load_tokenizer("");
  SyntheticOptions o;
  o.input_len = 100;
  o.output_len = 40;
  o.range_ratio = 0.5;
  o.turns = 3;
  const Dataset a = make_synthetic_dataset(o, 50, 9, *tok), b = make_synthetic_dataset(o, 50, 9, *tok);
  const Dataset c = make_synthetic_dataset(o, 50, 10, *tok);
  std::set<size_t> in_lens;
  for (size_t i = 0; i < a.samples.size(); ++i) {
    ASSERT_EQ(a.samples[i].turns.size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
      const Turn& t = a.samples[i].turns[k];
      const size_t n = tok->encode(t.user, false).size();
      EXPECT_GE(n, 50u);
      EXPECT_LE(n, 150u);
      EXPECT_GE(t.output_len, 20);
      EXPECT_LE(t.output_len, 60);
      in_lens.insert(n);
      EXPECT_EQ(t.user, b.samples[i].turns[k].user) << "same seed, same data";
    }
  }
  EXPECT_GT(in_lens.size(), 20u) << "lengths are drawn, not fixed";
  EXPECT_NE(a.samples[0].turns[0].user, c.samples[0].turns[0].user);
}

// Must show 5 (random/prefix): each bad option is a clear error naming it.
TEST(SyntheticTest, BadOptionsNameTheOption) {
  struct Case { SyntheticOptions o; std::string expect; };
  SyntheticOptions zero_in, zero_out, ratio, long_prefix, no_prefix, groups, turns;
  zero_in.input_len = 0;
  zero_out.output_len = -3;
  ratio.range_ratio = 1.0;
  long_prefix = prefix_options();
  long_prefix.prefix_len = 300;
  no_prefix = prefix_options();
  no_prefix.prefix_len = 0;
  groups = prefix_options();
  groups.num_prefixes = 0;
  turns.turns = 0;
  const Case cases[] = {{zero_in, "--input-len must be > 0, got 0"},
                        {zero_out, "--output-len must be > 0 for --dataset random, got -3"},
                        {ratio, "--range-ratio must be in [0, 1)"},
                        {long_prefix, "--prefix-len (300) must be less than --input-len (300)"},
                        {no_prefix, "--prefix-len must be > 0 for --dataset prefix"},
                        {groups, "--num-prefixes must be >= 1, got 0"},
                        {turns, "--turns must be >= 1, got 0"}};
  const auto tok = engine::load_tokenizer("");
  for (const Case& c : cases) {
    try {
      make_synthetic_dataset(c.o, 4, 1, *tok);
      ADD_FAILURE() << "expected: " << c.expect;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace loadgen
