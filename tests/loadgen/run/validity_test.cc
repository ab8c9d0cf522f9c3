// test-deps: loadgen_lib
// The validity verdict: binomial upper-bound ranks computed by hand (and against a plain float64 sum of the
// binomial's terms on random n), the bound's value, and verdicts of synthetic runs: a long healthy one is VALID,
// one too short, one that falls behind, one sent late and one with failures are INVALID naming why; the SLO is
// judged on the bound.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "loadgen/run/metrics.h"
#include "loadgen/run/validity.h"

namespace loadgen {
namespace {

// The smallest k with P(Binomial(n, q) <= k - 1) >= c, from the binomial's terms by their plain recurrence in
// float64 (the reference): C(n, j) q^j (1 - q)^(n - j), from the top (j = n) down to stay in range for q near 1.
int64_t rank_plain(int64_t n, double q, double c) {
  std::vector<double> term(static_cast<size_t>(n) + 1);
  term[n] = std::pow(q, static_cast<double>(n));
  for (int64_t j = n; j > 0; --j) term[j - 1] = term[j] * static_cast<double>(j) / static_cast<double>(n - j + 1) * (1 - q) / q;
  double cdf = 0;
  for (int64_t k = 1; k <= n; ++k) {
    cdf += term[k - 1];
    if (cdf >= c) return k;
  }
  return 0;
}

TEST(ValidityTest, BinomialBoundRanksByHand) {
  // n = 600, p99, 99 %: Y = values above the p99 ~ Binomial(600, 0.01); P(Y = 0) = 0.99^600 = 0.0024 <= 0.01
  // but P(Y <= 1) = 0.0024 + 6 x 0.99^599 = 0.0170 > 0.01: only the largest value bounds it (rank 600).
  EXPECT_EQ(upper_bound_rank(600, 0.99, 0.99), 600);
  // n = 1000: P(Y <= 2) = 0.00268 <= 0.01 < P(Y <= 3) = 0.0101: rank 1000 - 2 = 998.
  EXPECT_EQ(upper_bound_rank(1000, 0.99, 0.99), 998);
  // The fewest values with a bound: 0.99^459 = 0.00992 <= 0.01 < 0.99^458 = 0.01002 (MLPerf's h_min = 459).
  EXPECT_EQ(min_values_for_bound(0.99, 0.99), 459);
  EXPECT_EQ(upper_bound_rank(458, 0.99, 0.99), 0);
  EXPECT_EQ(upper_bound_rank(459, 0.99, 0.99), 459);
  // The median at 95 % with n = 10: P(Binomial(10, 0.5) <= 7) = 0.9453 < 0.95 <= P(<= 8) = 0.9893: rank 9.
  EXPECT_EQ(upper_bound_rank(10, 0.5, 0.95), 9);
  EXPECT_EQ(min_values_for_bound(0.5, 0.95), 5);  // 0.5^5 = 0.031 <= 0.05 < 0.5^4
}

TEST(ValidityTest, BoundRanksMatchThePlainSumOnRandomSizes) {
  std::mt19937 rng(14);
  for (int t = 0; t < 60; ++t) {
    const int64_t n = 300 + static_cast<int64_t>(rng() % 3000);
    const double q = std::vector<double>{0.9, 0.95, 0.99}[rng() % 3];
    const double c = std::vector<double>{0.9, 0.95, 0.99}[rng() % 3];
    EXPECT_EQ(upper_bound_rank(n, q, c), rank_plain(n, q, c)) << "n " << n << " q " << q << " c " << c;
  }
}

TEST(ValidityTest, PercentileBoundTakesTheRankedValue) {
  std::vector<double> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = 1000 - i;  // 1 .. 1000, reversed
  const results::PercentileBound b = percentile_bound("ttft", v, 99, 0.99);
  EXPECT_EQ(b.n, 1000);
  EXPECT_EQ(b.rank, 998);
  ASSERT_TRUE(b.upper);
  EXPECT_DOUBLE_EQ(*b.upper, 998);
  EXPECT_NEAR(b.estimate, 990.01, 1e-9);  // numpy: 1 + 0.99 * 999
  EXPECT_GE(*b.upper, b.estimate);
  EXPECT_FALSE(percentile_bound("ttft", std::vector<double>(458, 1.0), 99, 0.99).upper);
}

// A synthetic open-loop run at `rate` for `seconds`: request i scheduled at i / rate, sent `lag_s` late, its
// first token `ttft_s(i)` after arrival and 8 more tokens 10 ms apart.
std::vector<RequestRecord> run_records(double rate, double seconds, double lag_s,
                                       const std::function<double(int)>& ttft_s) {
  const int n = static_cast<int>(rate * seconds);
  std::vector<RequestRecord> recs(n);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  for (int i = 0; i < n; ++i) {
    RequestRecord& r = recs[i];
    r.index = i;
    r.scheduled_s = i / rate;
    r.send_s = r.scheduled_s + lag_s;
    const double first = r.scheduled_s + ttft_s(i) * jitter(rng);
    for (int k = 0; k < 9; ++k) {
      r.chunk_times_s.push_back(first + 0.01 * k);
      r.chunk_tokens.push_back(1);
    }
    r.end_s = r.chunk_times_s.back();
    r.done = true;
    r.status = Status::kOk;
    r.prompt_tokens = 20;
    r.output_tokens = 9;
    r.count_source = TokenCountSource::kEngine;
  }
  return recs;
}

results::Validity verdict_of(const std::vector<RequestRecord>& recs, double rate, ValidityOptions o = {},
                             std::optional<results::Slo> slo = std::nullopt) {
  MetricsOptions m;
  m.target_rate = rate;
  m.slo = slo;
  const results::Summary s = summarize(recs, m);
  return judge_validity(s, request_rows(recs), o);
}

bool names(const results::Validity& v, const std::string& text) {
  for (const std::string& r : v.reasons)
    if (r.find(text) != std::string::npos) return true;
  return false;
}

TEST(ValidityTest, LongHealthyRunIsValid) {
  const auto v = verdict_of(run_records(5, 300, 0.001, [](int) { return 0.05; }), 5);
  EXPECT_TRUE(v.valid) << (v.reasons.empty() ? "" : v.reasons[0]);
  ASSERT_EQ(v.bounds.size(), 2u);
  EXPECT_TRUE(v.bounds[0].upper);
  EXPECT_TRUE(v.bounds[1].upper);
}

TEST(ValidityTest, TooShortRunIsInvalidNamingDurationRequestsAndBound) {
  const auto v = verdict_of(run_records(5, 15, 0.001, [](int) { return 0.05; }), 5);
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(names(v, "shorter than the minimum duration of 60 s")) << v.reasons[0];
  EXPECT_TRUE(names(v, "fewer than the minimum of 100"));
  EXPECT_TRUE(names(v, "fewer than the 459 needed"));
  // --mlperf-server asks for 600 s: a healthy 300 s run is too short for it.
  const auto m = verdict_of(run_records(5, 300, 0.001, [](int) { return 0.05; }), 5, mlperf_server_validity());
  EXPECT_FALSE(m.valid);
  EXPECT_TRUE(names(m, "minimum duration of 600 s"));
}

TEST(ValidityTest, RunThatFallsBehindIsInvalidNamingWhy) {
  // The backlog grows: each request waits 0.2 s more than the one before.
  const auto v = verdict_of(run_records(5, 300, 0.001, [](int i) { return 0.05 + 0.2 * i; }), 5);
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(names(v, "the drain after the last arrival took"));
  EXPECT_TRUE(names(v, "growing backlog"));
}

TEST(ValidityTest, LateSendsAndFailuresAreInvalid) {
  const auto late = verdict_of(run_records(5, 300, 0.2, [](int) { return 0.3; }), 5);
  EXPECT_FALSE(late.valid);
  EXPECT_TRUE(names(late, "send lag p99 200.0 ms > 50 ms"));
  auto recs = run_records(5, 300, 0.001, [](int) { return 0.05; });
  recs[7].status = Status::kFailed;
  recs[7].reason = "connection reset";
  const auto failed = verdict_of(recs, 5);
  EXPECT_FALSE(failed.valid);
  EXPECT_TRUE(names(failed, "1 failed and 0 rejected requests (most: \"connection reset\")"));
  // A schedule sent at half its rate (1,500 requests: the tolerance is 3 / sqrt(1500) = 7.7 %).
  const auto slow = verdict_of(run_records(5, 300, 0.001, [](int) { return 0.05; }), 10);
  EXPECT_FALSE(slow.valid);
  EXPECT_TRUE(names(slow, "not within 7.7 % of the target 10.000 req/s"));
}

TEST(ValidityTest, SloIsJudgedOnTheBound) {
  // TTFT ~ 50 ms +-10 %: the estimate and the bound are below 56 ms, above 44 ms.
  const auto recs = run_records(5, 300, 0.001, [](int) { return 0.05; });
  const auto met = verdict_of(recs, 5, {}, results::Slo{60, 0});
  ASSERT_TRUE(met.slo_met.has_value());
  EXPECT_TRUE(*met.slo_met);
  const auto not_met = verdict_of(recs, 5, {}, results::Slo{45, 0});
  ASSERT_TRUE(not_met.slo_met.has_value());
  EXPECT_FALSE(*not_met.slo_met);
  const auto unknown = verdict_of(run_records(5, 60, 0.001, [](int) { return 0.05; }), 5, {}, results::Slo{60, 0});
  EXPECT_FALSE(unknown.slo_met.has_value());  // 300 values: no p99 bound at 99 %
}

}  // namespace
}  // namespace loadgen
