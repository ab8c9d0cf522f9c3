// test-deps: engine_internals
// The float64 reference's rounding functions (backend/llama_f64.h), which price each storage format before a
// kernel is read (bench/bf16_error_budget): e4m3 as the fp8 KV cache stores it, against the format's own table
// of values built here from its bit layout, and the per-row scaling rope_kv.cu applies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/llama_f64.h"

namespace {

using engine::reference::e4m3_round;
using engine::reference::fp8_row_round;

/// Every finite non-negative e4m3 value in increasing order, from the encoding: sign, 4 exponent bits (bias 7),
/// 3 mantissa bits; exponent 0 is subnormal (m/8 * 2^-6); exponent 15 with mantissa 7 is NaN.
std::vector<double> e4m3_values() {
  std::vector<double> v;
  for (int e = 0; e < 16; ++e)
    for (int m = 0; m < 8; ++m) {
      if (e == 15 && m == 7) continue;
      v.push_back(e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7));
    }
  return v;  // 127 values, 0 .. 448
}

TEST(E4m3Round, EveryValueOfTheFormatIsKept) {
  const std::vector<double> v = e4m3_values();
  ASSERT_EQ(v.size(), 127u);
  EXPECT_EQ(v.back(), 448.0);
  for (double x : v) {
    EXPECT_EQ(e4m3_round(x), x) << x;
    EXPECT_EQ(e4m3_round(-x), -x) << -x;
  }
}

TEST(E4m3Round, RoundsToTheNearestValueAndTiesToTheEvenMantissa) {
  const std::vector<double> v = e4m3_values();
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    const double lo = v[i], hi = v[i + 1], mid = (lo + hi) / 2, gap = hi - lo;
    EXPECT_EQ(e4m3_round(lo + gap * 0.49), lo) << lo;
    EXPECT_EQ(e4m3_round(hi - gap * 0.49), hi) << hi;
    // The code of value i is i (the table is in encoding order), so an even i has the even mantissa.
    EXPECT_EQ(e4m3_round(mid), i % 2 == 0 ? lo : hi) << "tie between " << lo << " and " << hi;
    EXPECT_EQ(e4m3_round(-mid), -e4m3_round(mid));
  }
}

TEST(E4m3Round, SaturatesAtTheLargestFiniteValue) {
  EXPECT_EQ(e4m3_round(448.0 + 15.9), 448.0);
  EXPECT_EQ(e4m3_round(1e30), 448.0);
  EXPECT_EQ(e4m3_round(-1e30), -448.0);
  EXPECT_TRUE(std::isnan(e4m3_round(std::nan(""))));
}

TEST(Fp8RowRound, ScalesEachRowToItsMaxAndKeepsEveryElementWithinHalfAStep) {
  std::mt19937 rng(5);
  std::normal_distribution<double> nd(0.0, 3.0);
  std::vector<double> row(128);
  for (double& x : row) x = std::clamp(nd(rng), -9.0, 9.0);
  row[17] = -9.5;  // the row's largest magnitude
  const std::vector<double> orig = row;
  fp8_row_round(row.data(), int(row.size()));
  const double scale = double(float(9.5f / 448.f));
  EXPECT_NEAR(row[17], -9.5, 1e-5);  // the max maps to 448 and back
  for (size_t i = 0; i < row.size(); ++i) {
    const double y = orig[i] / scale, a = std::fabs(y);
    const double step = a < 0x1p-6 ? 0x1p-9 : std::ldexp(1.0, std::ilogb(a) - 3);
    EXPECT_LE(std::fabs(row[i] - orig[i]), 0.5 * step * scale * (1 + 1e-4)) << i;
    EXPECT_EQ(row[i] / scale, e4m3_round(row[i] / scale)) << "element " << i << " is not an e4m3 value times the scale";
  }
  std::vector<double> zero(8, 0.0);
  fp8_row_round(zero.data(), 8);
  for (double z : zero) EXPECT_EQ(z, 0.0);
}

}  // namespace
