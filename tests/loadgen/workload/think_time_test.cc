// test-deps: loadgen_lib
// --think-time: its forms parse (and print back), bad ones name the option, draws are seeded and in range.
#include <gtest/gtest.h>

#include <numeric>

#include "loadgen/workload/think_time.h"

namespace loadgen {
namespace {

TEST(ThinkTime, FormsParseAndPrintBack) {
  EXPECT_DOUBLE_EQ(parse_think_time("2").a, 2.0);
  EXPECT_DOUBLE_EQ(parse_think_time("2s").a, 2.0);
  EXPECT_DOUBLE_EQ(parse_think_time("250ms").a, 0.25);
  const ThinkTime e = parse_think_time("exp:1.5");
  EXPECT_EQ(e.kind, ThinkKind::kExponential);
  EXPECT_EQ(to_string(e), "exp:1.5");
  const ThinkTime u = parse_think_time("uniform:1,3");
  EXPECT_EQ(u.kind, ThinkKind::kUniform);
  EXPECT_EQ(to_string(u), "uniform:1,3");
  for (const char* bad : {"", "-1", "soon", "exp:0", "exp:", "uniform:3,1", "uniform:2", "gauss:1"}) {
    try {
      parse_think_time(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& ex) {
      EXPECT_EQ(std::string(ex.what()).rfind("--think-time: ", 0), 0u) << ex.what();
    }
  }
}

TEST(ThinkTime, DrawsAreSeededAndInRange) {
  const ThinkTime u = parse_think_time("uniform:1,3"), e = parse_think_time("exp:2");
  const std::vector<double> a = think_times(5000, u, 1), b = think_times(5000, u, 1);
  EXPECT_EQ(a, b);
  for (double v : a) {
    EXPECT_GE(v, 1.0);
    EXPECT_LE(v, 3.0);
  }
  const std::vector<double> x = think_times(20000, e, 2);
  EXPECT_NEAR(std::accumulate(x.begin(), x.end(), 0.0) / x.size(), 2.0, 0.1);
  for (double v : think_times(4, parse_think_time("0.5"), 9)) EXPECT_DOUBLE_EQ(v, 0.5);
}

}  // namespace
}  // namespace loadgen
