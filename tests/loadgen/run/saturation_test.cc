// test-deps: loadgen_lib
// The over-saturation rule on sampled series: a backlog and TTFT that keep growing fire it (after the minimum
// time, not before); a steady noisy run, a growing backlog with a flat TTFT, and a growing but short TTFT do not.
// And the slope's standard error against a hand computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "loadgen/run/saturation.h"

namespace loadgen {
namespace {

TEST(SaturationTest, SlopeAndItsStandardErrorByHand) {
  // y = 1, 1, 5, 5 at x = 0..3: means 1.5 and 3; Sxy = (-1.5)(-2) + (-0.5)(-2) + (0.5)(2) + (1.5)(2) = 8, Sxx = 5:
  // slope 1.6; fitted 0.6, 2.2, 3.8, 5.4; residuals 0.4, -1.2, 1.2, -0.4: RSS 3.2; SE = sqrt(3.2 / 2 / 5).
  std::deque<std::pair<double, double>> xy = {{0, 1}, {1, 1}, {2, 5}, {3, 5}};
  double slope = 0, se = 0;
  ASSERT_TRUE(slope_with_error(xy, &slope, &se));
  EXPECT_NEAR(slope, 1.6, 1e-12);
  EXPECT_NEAR(se, std::sqrt(0.32), 1e-12);
}

TEST(SaturationTest, GrowingBacklogAndTtftFireAfterTheMinimumTime) {
  SaturationDetector d;
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0, 1);
  int fired_at = -1;
  for (int t = 1; t <= 90; ++t) {
    d.add(t, 2.0 * t + noise(rng), 0.1 * t + 0.05 * noise(rng));
    if (d.saturated() && fired_at < 0) fired_at = t;
  }
  ASSERT_TRUE(d.saturated());
  EXPECT_GE(fired_at, 30);  // the minimum time, and TTFT above 2.5 s (t >= 25)
  EXPECT_NE(d.why().find("backlog +"), std::string::npos);
}

TEST(SaturationTest, SteadyOrPartlyGrowingRunsDoNotFire) {
  std::mt19937 rng(2);
  std::normal_distribution<double> noise(0, 1);
  SaturationDetector steady, flat_ttft, short_ttft;
  for (int t = 1; t <= 1500; ++t) {
    steady.add(t, 20 + 3 * noise(rng), 3.0 + 0.3 * noise(rng));
    flat_ttft.add(t, 2.0 * t, 3.0 + 0.3 * noise(rng));
    short_ttft.add(t, 2.0 * t, 0.1 + 0.001 * t);  // grows, but stays below 2.5 s
  }
  EXPECT_FALSE(steady.saturated()) << steady.why();
  EXPECT_FALSE(flat_ttft.saturated()) << flat_ttft.why();
  EXPECT_FALSE(short_ttft.saturated()) << short_ttft.why();
}

}  // namespace
}  // namespace loadgen
