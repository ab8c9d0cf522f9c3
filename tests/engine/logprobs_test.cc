// test-deps: engine
// engine::token_logprobs against a plain float64 reference (exp of every logit, a full sort) on random rows,
// including a scale where float32 exp would overflow, ties, and k past the vocabulary.
#include "engine/logprobs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace {

// The textbook definition, with no max subtraction beyond what long double needs to stay finite.
std::vector<long double> reference_log_softmax(const std::vector<float>& x) {
  long double m = *std::max_element(x.begin(), x.end());
  long double s = 0;
  for (float v : x) s += std::exp(static_cast<long double>(v) - m);
  std::vector<long double> out;
  for (float v : x) out.push_back(static_cast<long double>(v) - m - std::log(s));
  return out;
}

TEST(TokenLogprobs, MatchesAFloat64ReferenceOnRandomRows) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int vocab = 1 + static_cast<int>(rng() % 3000);
    const float scale = trial % 3 == 0 ? 200.0f : trial % 3 == 1 ? 5.0f : 0.01f;  // exp(200) overflows float32
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> x(vocab);
    for (float& v : x) v = d(rng);
    if (vocab > 4 && trial % 5 == 0) x[1] = x[3] = *std::max_element(x.begin(), x.end());  // a tie at the top
    const int k = trial % 7 == 0 ? vocab + 5 : 1 + static_cast<int>(rng() % 20);
    const int32_t token = static_cast<int32_t>(rng() % vocab);

    const engine::TokenLogprobs got = engine::token_logprobs(x, token, k);
    const std::vector<long double> ref = reference_log_softmax(x);
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });

    EXPECT_NEAR(got.logprob, static_cast<double>(ref[token]), 1e-9 * (1 + std::fabs(static_cast<double>(ref[token]))));
    EXPECT_EQ(got.rank, 1 + std::count_if(x.begin(), x.end(), [&](float v) { return v > x[token]; }));
    ASSERT_EQ(got.top.size(), static_cast<size_t>(std::min(k, vocab)));
    for (size_t i = 0; i < got.top.size(); ++i) {
      EXPECT_EQ(got.top[i].id, order[i]) << "trial " << trial << " rank " << i;
      EXPECT_NEAR(got.top[i].logprob, static_cast<double>(ref[order[i]]), 1e-9 * (1 + std::fabs(static_cast<double>(ref[order[i]]))));
    }
    long double total = 0;
    for (long double v : ref) total += std::exp(v);
    EXPECT_NEAR(static_cast<double>(total), 1.0, 1e-12);
  }
}

TEST(TokenLogprobs, NoTopKWhenKIsZeroAndNaNIsNotHidden) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f};
  EXPECT_TRUE(engine::token_logprobs(x, 2, 0).top.empty());
  EXPECT_NEAR(engine::token_logprobs(x, 2, 0).logprob, 3.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-12);
  x[0] = std::nanf("");
  EXPECT_TRUE(std::isnan(engine::token_logprobs(x, 2, 1).logprob));
}

}  // namespace
