// test-deps: engine_internals
// Sampler: greedy ties, exact top-k / top-p masks on hand-made logits, temperature scaling against a plain
// float64 softmax, seeded determinism, and draws that follow the distribution.
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace engine {
namespace {

SamplingParams params(float temperature, int top_k = 0, float top_p = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

std::vector<double> softmax(const std::vector<float>& l, double t) {
  double m = -INFINITY, sum = 0;
  for (float v : l) m = std::max(m, v / t);
  std::vector<double> p;
  for (float v : l) sum += std::exp(v / t - m);
  for (float v : l) p.push_back(std::exp(v / t - m) / sum);
  return p;
}

std::vector<int> support(const std::vector<double>& p) {
  std::vector<int> s;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) s.push_back(static_cast<int>(i));
  return s;
}

TEST(Sampler, ArgmaxPicksTheLowestIndexAmongTies) {
  std::vector<float> l = {1, 7, 3, 7, -2};
  EXPECT_EQ(Sampler::argmax(l), 1);
  std::vector<float> n = {std::numeric_limits<float>::quiet_NaN(), 0.5f, 0.25f};
  EXPECT_EQ(Sampler::argmax(n), 1);
  std::vector<float> neg = {-5, -1, -1};
  EXPECT_EQ(Sampler::argmax(neg), 1);
}

TEST(Sampler, TemperatureZeroIsArgmaxWhateverTheRng) {
  std::vector<float> l = {0.1f, 2.5f, 2.4f, -1.0f};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    EXPECT_EQ(Sampler::sample(l, params(0.0f, 2, 0.5f), rng), 1);
  }
}

TEST(Sampler, NoTruncationIsTheTemperatureScaledSoftmax) {
  std::vector<float> l = {0.3f, -1.2f, 2.0f, 0.0f, 5.5f, -3.0f};
  for (float t : {0.25f, 1.0f, 1.7f}) {
    std::vector<double> got = Sampler::probabilities(l, params(t));
    std::vector<double> want = softmax(l, t);
    for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "t " << t << " i " << i;
  }
}

TEST(Sampler, TopKKeepsExactlyTheKLargest) {
  std::vector<float> l = {1, 5, 3, 4, 2};
  std::vector<double> p = Sampler::probabilities(l, params(1.0f, 2));
  EXPECT_EQ(support(p), (std::vector<int>{1, 3}));
  double z = std::exp(5.0) + std::exp(4.0);
  EXPECT_NEAR(p[1], std::exp(5.0) / z, 1e-12);
  EXPECT_NEAR(p[3], std::exp(4.0) / z, 1e-12);
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 3))), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 1))), (std::vector<int>{1}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 99))).size(), 5u);  // k past the vocab: off
  // a tie at the cut keeps the lower index
  std::vector<float> tie = {4, 4, 4, 1};
  EXPECT_EQ(support(Sampler::probabilities(tie, params(1.0f, 2))), (std::vector<int>{0, 1}));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // probabilities 0.05, 0.5, 0.1, 0.2, 0.15 in a shuffled order
  std::vector<float> l;
  for (double q : {0.05, 0.5, 0.1, 0.2, 0.15}) l.push_back(static_cast<float>(std::log(q)));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 0.45f))), (std::vector<int>{1}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 0.55f))), (std::vector<int>{1, 3}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 0.8f))), (std::vector<int>{1, 3, 4}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 0.9f))), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 0.96f))).size(), 5u);
  std::vector<double> p = Sampler::probabilities(l, params(1.0f, 0, 0.8f));
  EXPECT_NEAR(p[1], 0.5 / 0.85, 1e-6);
  EXPECT_NEAR(p[3], 0.2 / 0.85, 1e-6);
  EXPECT_NEAR(p[4], 0.15 / 0.85, 1e-6);
  // a tiny top_p still keeps the most likely token
  EXPECT_EQ(support(Sampler::probabilities(l, params(1.0f, 0, 1e-6f))), (std::vector<int>{1}));
}

TEST(Sampler, TopKThenTopPOnTheRenormalisedDistribution) {
  std::vector<float> l;
  for (double q : {0.05, 0.5, 0.1, 0.2, 0.15}) l.push_back(static_cast<float>(std::log(q)));
  // top-3 leaves {0.5, 0.2, 0.15} / 0.85 = {0.588, 0.235, 0.176}; top_p 0.8 then keeps the first two
  std::vector<double> p = Sampler::probabilities(l, params(1.0f, 3, 0.8f));
  EXPECT_EQ(support(p), (std::vector<int>{1, 3}));
  EXPECT_NEAR(p[1], 0.5 / 0.7, 1e-6);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> l(300);
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0, 2);
  for (float& v : l) v = nd(gen);
  SamplingParams sp = params(0.9f, 50, 0.95f);
  auto draw = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(Sampler::sample(l, sp, rng));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
  // interleaving another sequence's draws does not disturb this one's stream
  std::mt19937_64 a(42), b(9);
  std::vector<int32_t> mixed;
  for (int i = 0; i < 200; ++i) {
    mixed.push_back(Sampler::sample(l, sp, a));
    Sampler::sample(l, sp, b);
  }
  EXPECT_EQ(mixed, draw(42));
}

TEST(Sampler, DrawsFollowTheDistribution) {
  std::vector<float> l = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f};
  SamplingParams sp = params(1.3f, 4, 0.9f);
  std::vector<double> p = Sampler::probabilities(l, sp);
  std::mt19937_64 rng(5);
  std::vector<int> counts(l.size(), 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) counts[Sampler::sample(l, sp, rng)]++;
  for (size_t i = 0; i < l.size(); ++i) {
    double sd = std::sqrt(p[i] * (1 - p[i]) / n);
    EXPECT_NEAR(counts[i] / double(n), p[i], 5 * sd + 1e-12) << "token " << i;
    if (p[i] == 0) EXPECT_EQ(counts[i], 0) << "masked token " << i << " was drawn";
  }
}

TEST(Sampler, UniformIsInTheUnitInterval) {
  std::mt19937_64 rng(1);
  double lo = 1, hi = 0;
  for (int i = 0; i < 100000; ++i) {
    double u = Sampler::uniform(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_LT(lo, 1e-3);
  EXPECT_GT(hi, 1 - 1e-3);
}

}  // namespace
}  // namespace engine
