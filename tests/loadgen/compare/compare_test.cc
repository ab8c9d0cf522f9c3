// test-deps: loadgen_lib
// `loadgen compare` as a property on synthetic records: two runs of one configuration (the same latency
// distributions, independent draws) say "no significant difference" for every metric in >= 95 % of 40 seeded
// repeats; a planted 10 % TPOT slowdown at n = 1,000 is found ("slower" on the TPOT median) every time; the
// bootstrap is seeded (same seed, same intervals); and workload differences are named.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "loadgen/compare/compare.h"

namespace loadgen {
namespace {

// A run of n ok requests: TTFT ~ lognormal(median 120 ms, sigma 0.5), TPOT ~ lognormal(median 20 ms x
// tpot_scale, sigma 0.3), 64 output tokens, so E2E = TTFT + 63 TPOT.
results::RunData synthetic_run(int n, uint64_t seed, double tpot_scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> ttft(std::log(120.0), 0.5), tpot(std::log(20.0), 0.3);
  results::RunData run;
  run.label = "synthetic " + std::to_string(seed);
  run.has_chunks = true;
  run.summary.num_prompts = n;
  run.summary.settings = {{"rate", 5.0}, {"seed", 0}, {"dataset", "synthetic"}};
  for (int i = 0; i < n; ++i) {
    results::RequestRow r;
    r.index = static_cast<uint64_t>(i);
    r.status = results::Status::kOk;
    r.scheduled_s = i / 5.0;
    r.ttft_ms = ttft(rng);
    r.tpot_ms = tpot(rng) * tpot_scale;
    r.e2el_ms = *r.ttft_ms + 63 * *r.tpot_ms;
    run.requests.push_back(r);
  }
  return run;
}

CompareOptions options(uint64_t seed) {
  CompareOptions o;
  o.resamples = 1000;
  o.seed = seed;
  return o;
}

TEST(CompareTest, SameConfigurationSaysNoDifferenceInAtLeast95PercentOfRepeats) {
  int all_same = 0;
  for (uint64_t rep = 0; rep < 40; ++rep) {
    const results::Comparison c =
        compare_runs(synthetic_run(1000, 2 * rep + 1), synthetic_run(1000, 2 * rep + 2), options(rep));
    ASSERT_EQ(c.metrics.size(), 6u);
    bool same = true;
    for (const results::MetricComparison& m : c.metrics) same = same && m.verdict == "no significant difference";
    all_same += same;
    EXPECT_TRUE(c.warnings.empty()) << c.warnings[0];
  }
  EXPECT_GE(all_same, 38) << all_same << " of 40 repeats said no significant difference for every metric";
}

TEST(CompareTest, PlantedTenPercentTpotSlowdownIsFoundEveryTime) {
  for (uint64_t rep = 0; rep < 40; ++rep) {
    const results::Comparison c =
        compare_runs(synthetic_run(1000, 1000 + 2 * rep), synthetic_run(1000, 1001 + 2 * rep, 1.10), options(rep));
    for (const results::MetricComparison& m : c.metrics) {
      if (m.metric == "tpot_median") {
        EXPECT_EQ(m.verdict, "slower") << "repeat " << rep;
        EXPECT_NEAR(m.ratio, 1.10, 0.05);
        EXPECT_GT(m.ratio_lo, 1.0);
      }
      if (m.metric.rfind("ttft", 0) == 0) EXPECT_NE(m.verdict, "faster") << m.metric;
    }
  }
}

TEST(CompareTest, IntervalsCoverTheEstimatesAndAreSeeded) {
  const results::RunData a = synthetic_run(500, 1), b = synthetic_run(500, 2);
  const results::Comparison c1 = compare_runs(a, b, options(9)), c2 = compare_runs(a, b, options(9));
  for (size_t i = 0; i < c1.metrics.size(); ++i) {
    const results::MetricComparison& m = c1.metrics[i];
    EXPECT_LE(m.a_lo, m.a);
    EXPECT_GE(m.a_hi, m.a);
    EXPECT_LE(m.ratio_lo, m.ratio_hi);
    EXPECT_EQ(m.ratio_lo, c2.metrics[i].ratio_lo);
    EXPECT_EQ(m.ratio_hi, c2.metrics[i].ratio_hi);
  }
  // Bonferroni: each of the 6 intervals at 1 - 0.05 / 6.
  EXPECT_NEAR(c1.per_metric_confidence, 1 - 0.05 / 6, 1e-12);
}

TEST(CompareTest, WorkloadDifferencesAreNamed) {
  results::RunData a = synthetic_run(100, 1), b = synthetic_run(120, 2);
  b.summary.settings["rate"] = 10.0;
  b.summary.settings["seed"] = 3;
  const std::vector<std::string> w = workload_differences(a, b);
  auto has = [&](const std::string& s) {
    for (const std::string& x : w)
      if (x.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("N differs: 100 vs 120"));
  EXPECT_TRUE(has("rate differs: 5.0 vs 10.0"));
  EXPECT_TRUE(has("seed differs: 0 vs 3"));
  EXPECT_THROW(check_metric_name("ttft_p42"), std::invalid_argument);
  EXPECT_THROW(compare_runs(a, b, [] { CompareOptions o; o.resamples = 10; return o; }()), std::invalid_argument);
}

}  // namespace
}  // namespace loadgen
