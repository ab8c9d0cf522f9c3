// test-deps: loadgen_lib
// The arrival schedule: Poisson gaps have mean 1/X and pass a Kolmogorov–Smirnov test against the
// exponential CDF; other shapes have the right mean; seeds reproduce; -X inf sends all at t = 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "loadgen/workload/arrival.h"

namespace loadgen {
namespace {

/// KS statistic D = sup |F_n(x) - F(x)| of the sample against Exp(rate).
double ks_exponential(std::vector<double> gaps, double rate) {
  std::sort(gaps.begin(), gaps.end());
  const double n = static_cast<double>(gaps.size());
  double d = 0;
  for (size_t i = 0; i < gaps.size(); ++i) {
    const double f = 1.0 - std::exp(-rate * gaps[i]);
    d = std::max({d, (i + 1) / n - f, f - i / n});
  }
  return d;
}

// Critical value of the one-sample KS test at alpha = 0.01 for large n: 1.628 / sqrt(n).
double ks_critical_1pct(size_t n) { return 1.628 / std::sqrt(static_cast<double>(n)); }

TEST(ArrivalTest, PoissonGapsHaveMeanOneOverRateAndExponentialShape) {
  for (double rate : {0.5, 5.0, 1000.0}) {
    for (uint64_t seed : {0ull, 1ull, 42ull}) {
      ArrivalOptions o;
      o.rate = rate;
      o.seed = seed;
      auto gaps = arrival_gaps(10000, o);
      ASSERT_EQ(gaps.size(), 10000u);
      const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
      EXPECT_NEAR(mean, 1.0 / rate, 0.05 / rate) << "rate " << rate << " seed " << seed;
      EXPECT_LT(ks_exponential(gaps, rate), ks_critical_1pct(gaps.size())) << "rate " << rate << " seed " << seed;
    }
  }
}

TEST(ArrivalTest, KolmogorovSmirnovRejectsNonExponentialGaps) {
  // The check has teeth: gamma gaps (shape 4) and constant gaps with the same mean fail it.
  ArrivalOptions g;
  g.rate = 5;
  g.kind = ArrivalKind::kGamma;
  g.burstiness = 4;
  EXPECT_GT(ks_exponential(arrival_gaps(10000, g), 5), ks_critical_1pct(10000));
  ArrivalOptions c = g;
  c.kind = ArrivalKind::kConstant;
  EXPECT_GT(ks_exponential(arrival_gaps(10000, c), 5), ks_critical_1pct(10000));
}

TEST(ArrivalTest, GammaAndConstantKeepTheMeanGap) {
  for (double k : {0.25, 1.0, 4.0}) {
    ArrivalOptions o;
    o.rate = 5;
    o.kind = ArrivalKind::kGamma;
    o.burstiness = k;
    o.seed = 7;
    auto gaps = arrival_gaps(20000, o);
    const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
    EXPECT_NEAR(mean, 0.2, 0.2 * 0.05) << "burstiness " << k;
    // Coefficient of variation of Gamma(k) is 1/sqrt(k).
    double var = 0;
    for (double x : gaps) var += (x - mean) * (x - mean);
    const double cv = std::sqrt(var / gaps.size()) / mean;
    EXPECT_NEAR(cv, 1.0 / std::sqrt(k), 0.1 / std::sqrt(k)) << "burstiness " << k;
  }
  ArrivalOptions c;
  c.rate = 4;
  c.kind = ArrivalKind::kConstant;
  auto t = arrival_times(5, c);
  EXPECT_EQ(t, (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0}));
}

TEST(ArrivalTest, TimesStartAtZeroAndAreSeeded) {
  ArrivalOptions o;
  o.rate = 5;
  o.seed = 123;
  auto a = arrival_times(300, o), b = arrival_times(300, o);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[0], 0.0);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  o.seed = 124;
  EXPECT_NE(arrival_times(300, o), a);
  // 300 requests at 5/s span about 60 s.
  EXPECT_NEAR(a.back(), 60.0, 60.0 * 0.2);
}

TEST(ArrivalTest, InfiniteRateSendsEverythingAtOnce) {
  ArrivalOptions o;
  o.rate = std::numeric_limits<double>::infinity();
  auto t = arrival_times(1500, o);
  ASSERT_EQ(t.size(), 1500u);
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](double x) { return x == 0.0; }));
}

TEST(ArrivalTest, BadOptionsNameTheArgument) {
  ArrivalOptions o;
  o.rate = 0;
  EXPECT_THROW(arrival_gaps(10, o), std::invalid_argument);
  EXPECT_FALSE(kArrivalKindNames.find("uniform").has_value());  // refused, naming the option: resolve_test.cc
}

}  // namespace
}  // namespace loadgen

namespace loadgen {
namespace {

// --ramp-up: constant gaps follow the ramp's rate exactly; Poisson gaps shrink from 1/start to 1/rate.
TEST(ArrivalRampUp, ConstantGapsFollowTheRamp) {
  ArrivalOptions o;
  o.kind = ArrivalKind::kConstant;
  o.rate = 10;
  o.ramp_start_rate = 1;
  o.ramp = RampUp::kLinear;
  const std::vector<double> lin = arrival_gaps(10, o);
  for (size_t i = 0; i < lin.size(); ++i) EXPECT_NEAR(lin[i], 1.0 / (1.0 + 9.0 * i / 9.0), 1e-12) << i;
  o.ramp = RampUp::kExponential;
  const std::vector<double> ex = arrival_gaps(10, o);
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_NEAR(ex[i], 1.0 / std::pow(10.0, i / 9.0), 1e-12) << i;
}

TEST(ArrivalRampUp, PoissonRampStartsSlowAndEndsAtTheRate) {
  ArrivalOptions o;
  o.rate = 20;
  o.ramp = RampUp::kLinear;
  o.ramp_start_rate = 2;
  o.seed = 3;
  const std::vector<double> g = arrival_gaps(20000, o);
  const double first = std::accumulate(g.begin(), g.begin() + 500, 0.0) / 500;
  const double last = std::accumulate(g.end() - 2000, g.end(), 0.0) / 2000;
  EXPECT_NEAR(first, 1.0 / 2.2, 0.1);    // rates 2 .. 2.4 over the first 500 gaps
  EXPECT_NEAR(last, 1.0 / 19.2, 0.004);  // rates 18.2 .. 20 over the last 2000
  // Without a ramp the schedule is the one it always was: one distribution, the same seed, the same gaps.
  ArrivalOptions flat;
  flat.rate = 20;
  flat.seed = 3;
  flat.kind = ArrivalKind::kGamma;
  flat.burstiness = 0.5;
  const std::vector<double> a = arrival_gaps(100, flat);
  std::mt19937_64 rng(3);
  std::gamma_distribution<double> d(0.5, 1.0 / (20 * 0.5));
  for (double v : a) EXPECT_DOUBLE_EQ(v, d(rng));
}

TEST(ArrivalRampUp, NeedsAFiniteRateAndAStart) {
  ArrivalOptions o;
  o.ramp = RampUp::kLinear;
  o.rate = std::numeric_limits<double>::infinity();
  EXPECT_THROW(arrival_gaps(3, o), std::invalid_argument);
  o.rate = 5;
  o.ramp_start_rate = 0;
  EXPECT_THROW(arrival_gaps(3, o), std::invalid_argument);
}

}  // namespace
}  // namespace loadgen
