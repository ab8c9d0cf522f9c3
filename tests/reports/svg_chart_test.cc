// test-deps: reports
// The SVG chart writer: tick and scale arithmetic, number formatting, escaping, CDFs, and that what it draws is
// well-formed XML with finite coordinates whatever the data (NaN, zeros on a log axis, one point, a million).
#include "reports/svg_chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "support/xml_wellformed.h"

namespace svg = reports::svg;

namespace {

// True when step is 1, 2 or 5 times a power of ten.
bool is_nice_step(double step) {
  const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (std::fabs(mantissa - m) < 1e-6) return true;
  return false;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(NiceTicks, KnownRanges) {
  svg::Ticks t = svg::nice_ticks(0, 97, 5);
  EXPECT_DOUBLE_EQ(t.step, 20);
  EXPECT_DOUBLE_EQ(t.lo, 0);
  EXPECT_DOUBLE_EQ(t.hi, 100);
  ASSERT_EQ(t.values.size(), 6u);
  EXPECT_DOUBLE_EQ(t.values[3], 60);

  t = svg::nice_ticks(0.013, 0.047, 5);
  EXPECT_NEAR(t.step, 0.005, 1e-15);
  EXPECT_NEAR(t.lo, 0.01, 1e-15);
  EXPECT_NEAR(t.hi, 0.05, 1e-15);

  t = svg::nice_ticks(-3.2, 7.9, 5);
  EXPECT_DOUBLE_EQ(t.step, 2);
  EXPECT_DOUBLE_EQ(t.lo, -4);
  EXPECT_DOUBLE_EQ(t.hi, 8);
  EXPECT_EQ(t.values[2], 0.0);
  EXPECT_FALSE(std::signbit(t.values[2]));  // no "-0" label
}

TEST(NiceTicks, DegenerateAndBadRanges) {
  svg::Ticks t = svg::nice_ticks(5, 5, 5);
  EXPECT_LE(t.lo, 5);
  EXPECT_GE(t.hi, 5);
  EXPECT_LT(t.lo, t.hi);
  t = svg::nice_ticks(0, 0, 5);
  EXPECT_DOUBLE_EQ(t.lo, 0);
  EXPECT_GT(t.hi, 0);
  t = svg::nice_ticks(-2, -2, 5);
  EXPECT_LT(t.lo, -2);
  EXPECT_GT(t.hi, -2);
  t = svg::nice_ticks(std::nan(""), 3, 5);
  EXPECT_TRUE(std::isfinite(t.lo) && std::isfinite(t.hi));
  t = svg::nice_ticks(9, 1, 5);  // reversed bounds
  EXPECT_LE(t.lo, 1);
  EXPECT_GE(t.hi, 9);
}

TEST(NiceTicks, RandomRangesAreCoveredWithNiceSteps) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-6, 7), unit(-1, 1);
  for (int trial = 0; trial < 5000; ++trial) {
    const double scale = std::pow(10.0, exponent(rng));
    double lo = unit(rng) * scale, hi = unit(rng) * scale;
    if (lo > hi) std::swap(lo, hi);
    if (hi - lo < 1e-9 * scale) continue;
    const svg::Ticks t = svg::nice_ticks(lo, hi, 5);
    ASSERT_TRUE(is_nice_step(t.step)) << lo << " " << hi << " step " << t.step;
    ASSERT_LE(t.lo, lo + 1e-12 * scale);
    ASSERT_GE(t.hi, hi - 1e-12 * scale);
    ASSERT_GE(t.values.size(), 3u) << lo << " " << hi;
    ASSERT_LE(t.values.size(), 12u) << lo << " " << hi;
    for (size_t i = 1; i < t.values.size(); ++i) ASSERT_NEAR(t.values[i] - t.values[i - 1], t.step, 1e-9 * t.step);
    // Ticks are multiples of the step, so labels with the step's decimals are exact.
    for (double v : t.values) ASSERT_NEAR(v / t.step, std::round(v / t.step), 1e-6);
  }
}

TEST(LogTicks, SpansAndLabels) {
  svg::Ticks t = svg::log_ticks(3, 450);
  EXPECT_DOUBLE_EQ(t.lo, 2);
  EXPECT_DOUBLE_EQ(t.hi, 500);
  const std::vector<double> want = {2, 5, 10, 20, 50, 100, 200, 500};
  ASSERT_EQ(t.values.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(t.values[i], want[i], 1e-9 * want[i]);

  t = svg::log_ticks(0.5, 20000);  // > 3 decades: decades only
  EXPECT_DOUBLE_EQ(t.lo, 0.5);
  EXPECT_DOUBLE_EQ(t.hi, 20000);
  const std::vector<double> decades = {1, 10, 100, 1000, 10000};
  ASSERT_EQ(t.values.size(), decades.size());
  for (size_t i = 0; i < decades.size(); ++i) EXPECT_NEAR(t.values[i], decades[i], 1e-9 * decades[i]);

  t = svg::log_ticks(10, 10);  // a single value still gets a range
  EXPECT_LT(t.lo, t.hi);
  t = svg::log_ticks(0, 5);  // invalid for log: falls back, never NaN
  EXPECT_TRUE(t.lo > 0 && std::isfinite(t.hi));
}

TEST(Scale, LinearAndLog) {
  const svg::Scale lin(0, 10, 100, 200, false);
  EXPECT_DOUBLE_EQ(lin(0), 100);
  EXPECT_DOUBLE_EQ(lin(2.5), 125);
  EXPECT_DOUBLE_EQ(lin(10), 200);
  const svg::Scale flipped(0, 1, 300, 20, false);  // y axis: pixels grow downwards
  EXPECT_DOUBLE_EQ(flipped(1), 20);
  EXPECT_DOUBLE_EQ(flipped(0.5), 160);
  const svg::Scale log(1, 1000, 0, 300, true);
  EXPECT_NEAR(log(10), 100, 1e-9);
  EXPECT_NEAR(log(100), 200, 1e-9);
  EXPECT_TRUE(std::isnan(log(0)));
  EXPECT_TRUE(std::isnan(log(-5)));
  EXPECT_TRUE(std::isnan(lin(std::numeric_limits<double>::infinity())));
}

TEST(Format, TicksAndNumbers) {
  EXPECT_EQ(svg::format_tick(0.30000000000000004, 0.1), "0.3");
  EXPECT_EQ(svg::format_tick(40, 20), "40");
  EXPECT_EQ(svg::format_tick(0.015, 0.005), "0.015");
  EXPECT_EQ(svg::format_number(1234.5678), "1235");
  EXPECT_EQ(svg::format_number(12.5), "12.5");
  EXPECT_EQ(svg::format_number(0.0125), "0.0125");
  EXPECT_EQ(svg::format_number(3.0), "3");
  EXPECT_EQ(svg::format_number(-0.0), "0");
  EXPECT_EQ(svg::format_number(std::nan("")), "-");
  EXPECT_EQ(svg::format_number(2.5e-7), "2.5e-07");
}

TEST(EscapeXml, SpecialAndControlCharacters) {
  EXPECT_EQ(svg::escape_xml("a<b & \"c\" 'd'"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;");
  EXPECT_EQ(svg::escape_xml(std::string("x\x01y\tz", 5)), "x?y\tz");
  EXPECT_EQ(svg::escape_xml("caf\xC3\xA9"), "caf\xC3\xA9");  // UTF-8 passes through
}

TEST(CdfSeries, StepsAtDistinctValues) {
  const svg::Series s = svg::cdf_series("run", {3, 1, 2, 2, std::nan(""), INFINITY});
  EXPECT_EQ(s.style, svg::SeriesStyle::kStep);
  const std::vector<double> x = {1, 1, 2, 3}, y = {0, 0.25, 0.75, 1.0};
  EXPECT_EQ(s.x, x);
  EXPECT_EQ(s.y, y);
  EXPECT_TRUE(svg::cdf_series("empty", {}).x.empty());
}

TEST(Render, WellFormedWithAwkwardData) {
  svg::Chart c;
  c.title = "TTFT <p99> & \"friends\"";
  c.x_label = "ms";
  c.y_label = "fraction";
  c.log_x = true;
  c.y_max = 1;
  c.series.push_back(svg::cdf_series("bs<16>", {0, 0.5, 3, 40, 40, 900}));  // 0 cannot sit on a log axis
  svg::Series broken{"gaps", {1, 2, std::nan(""), 4, 5}, {0.1, 0.2, 0.3, std::nan(""), 0.9}, svg::SeriesStyle::kLine};
  c.series.push_back(broken);
  c.reference_lines.push_back({0.99, "p99"});
  const std::string out = svg::render(c);
  EXPECT_EQ(xml_check::check(out), "") << out;
  EXPECT_NE(out.find("TTFT &lt;p99&gt; &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_NE(out.find("bs&lt;16&gt;"), std::string::npos);
  EXPECT_EQ(count(out, "<path"), 3u);  // the CDF, and the broken series in two pieces
  EXPECT_EQ(out.find("nan"), std::string::npos);
  EXPECT_EQ(out.find("inf"), std::string::npos);
}

TEST(Render, EmptyAndSinglePointCharts) {
  svg::Chart empty;
  empty.title = "nothing";
  std::string out = svg::render(empty);
  EXPECT_EQ(xml_check::check(out), "") << out;
  EXPECT_NE(out.find("no data"), std::string::npos);

  svg::Chart one;
  one.title = "one";
  one.series.push_back({"only", {3}, {7}, svg::SeriesStyle::kMarkers});
  out = svg::render(one);
  EXPECT_EQ(xml_check::check(out), "") << out;
  EXPECT_EQ(count(out, "<circle"), 1u);
}

TEST(Render, LargeSeriesAreDecimatedButKeepTheirExtremes) {
  svg::Chart c;
  c.title = "tokens in flight";
  svg::Series s{"run", {}, {}, svg::SeriesStyle::kStep};
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 100);
  for (int i = 0; i < 200000; ++i) {
    s.x.push_back(i * 0.001);
    s.y.push_back(u(rng));
  }
  s.y[123456] = 1000;  // a one-sample spike must survive decimation
  c.series.push_back(s);
  const std::string out = svg::render(c);
  EXPECT_EQ(xml_check::check(out), "");
  EXPECT_LT(out.size(), 200000u);  // ~4 points per pixel column, not 400,000 vertices
  // The spike is the top of the y axis (1000 → the plot's top edge at y = 30).
  EXPECT_NE(out.find(" 30.0L"), std::string::npos);
}

TEST(Render, ManySeriesGetDistinctStylesAndAShortLegend) {
  svg::Chart c;
  c.title = "many";
  c.height = 200;  // room for about eight legend rows
  for (int i = 0; i < 30; ++i) c.series.push_back({"series " + std::to_string(i), {0, 1}, {0, double(i)}});
  const std::string out = svg::render(c);
  EXPECT_EQ(xml_check::check(out), "");
  EXPECT_NE(out.find("more</text>"), std::string::npos);
  EXPECT_NE(out.find("stroke-dasharray=\"5 3\""), std::string::npos);  // colours repeat with dashes
  // Charts with different titles get different clip-path ids (several charts share one page).
  svg::Chart d = c;
  d.title = "other";
  const std::string out2 = svg::render(d);
  const auto id_of = [](const std::string& s) {
    const size_t p = s.find("clipPath id=\"") + 13;
    return s.substr(p, s.find('"', p) - p);
  };
  EXPECT_NE(id_of(out), id_of(out2));
}

// The checker the render tests rely on must itself reject broken markup.
TEST(XmlCheck, CatchesBrokenMarkup) {
  EXPECT_EQ(xml_check::check("<svg><g x=\"1\"/></svg>"), "");
  EXPECT_NE(xml_check::check("<svg><g></svg>"), "");
  EXPECT_NE(xml_check::check("<svg><g x=1/></svg>"), "");
  EXPECT_NE(xml_check::check("<svg>a & b</svg>"), "");
  EXPECT_NE(xml_check::check("<svg><line x1=\"nan\"/></svg>"), "");
  EXPECT_NE(xml_check::check("<svg><path d=\"M1 2L-nan 3\"/></svg>"), "");
  EXPECT_NE(xml_check::check("<svg/><svg/>"), "");
}

TEST(Render, LogYDropsNonPositiveValuesAndLabelsDecades) {
  svg::Chart c;
  c.title = "p99 TTFT";
  c.log_y = true;
  c.series.push_back({"batch 1", {0.5, 3, 4}, {11000, 165000, 0}, svg::SeriesStyle::kMarkers});
  c.series.push_back({"batch 64", {0.5, 3, 4}, {800, 400, 450}, svg::SeriesStyle::kMarkers});
  c.reference_lines.push_back({2000, "SLO"});
  const std::string out = svg::render(c);
  EXPECT_EQ(xml_check::check(out), "") << out;
  EXPECT_EQ(count(out, "<circle"), 5u);  // the 0 cannot sit on a log axis
  EXPECT_NE(out.find(">1000</text>"), std::string::npos);
  EXPECT_NE(out.find(">100000</text>"), std::string::npos);
}
