// test-deps: reports
// The terminal summary table (reports/table_writer.h): the Requests line adds up to N (or says it does not),
// the target rate (inf for -X inf), the latency rows ("(no values)" for an empty metric), failures by reason,
// whether the run kept up (with each reason when not), and the goodput and prefix-cache lines only when measured.
#include "reports/table_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kInf = std::numeric_limits<double>::infinity();

results::Distribution dist(double base, int64_t count) {
  results::Distribution d;
  d.count = count;
  d.mean = base;
  d.median = base + 1;
  d.std = base + 2;
  d.p90 = base + 3;
  d.p95 = base + 4;
  d.p99 = base + 5;
  d.max = base + 6;
  return d;
}

// A finished, accounted run at 4 req/s.
results::Summary summary() {
  results::Summary s;
  s.label = "cpu-bs8";
  s.backend = "llm-serve";
  s.model_id = "tiny-llama";
  s.tokenizer_id = "tiny-tok";
  s.request_rate = 4;
  s.scheduled_request_rate = 3.9;
  s.num_prompts = 10;
  s.completed = 7;
  s.failed = 2;
  s.rejected = 1;
  s.accounted = true;
  s.achieved_request_rate = 3.85;
  s.duration = 2.75;
  s.request_throughput = 2.545;
  s.total_input_tokens = 500;
  s.total_output_tokens = 300;
  s.input_throughput = 181.8;
  s.output_throughput = 109.1;
  s.total_token_throughput = 290.9;
  s.output_token_source = "engine";
  s.ttft = dist(100, 7);
  s.tpot = dist(20, 7);
  s.itl = dist(10, 50);
  s.e2el = dist(1000, 7);
  s.kept_up = true;
  s.drained = true;
  return s;
}

std::string table(const results::Summary& s) {
  std::ostringstream o;
  reports::write_summary_table(o, s);
  return o.str();
}

// The line of the table that starts with `key`, or "".
std::string line_starting(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return line;
  return "";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST(SummaryTable, RequestsLineAddsUp) {
  const std::string line = line_starting(table(summary()), "Requests:");
  ASSERT_FALSE(line.empty());
  EXPECT_THAT(line, HasSubstr("10 scheduled = 7 completed + 2 failed + 1 rejected"));
  EXPECT_THAT(line, HasSubstr("(all accounted for)"));
  EXPECT_THAT(line, Not(HasSubstr("NOT")));
}

TEST(SummaryTable, RequestsLineSaysWhenNotAccountedFor) {
  results::Summary s = summary();
  s.completed = 6;
  s.accounted = false;
  const std::string line = line_starting(table(s), "Requests:");
  EXPECT_THAT(line, HasSubstr("10 scheduled = 6 completed + 2 failed + 1 rejected"));
  EXPECT_THAT(line, HasSubstr("NOT ACCOUNTED FOR"));
  EXPECT_THAT(line, Not(HasSubstr("all accounted for")));
}

TEST(SummaryTable, BenchmarkAndModelLines) {
  const std::string t = table(summary());
  EXPECT_THAT(line_starting(t, "Benchmark:"), HasSubstr("cpu-bs8"));
  EXPECT_THAT(line_starting(t, "Model:"), HasSubstr("tiny-llama"));
  EXPECT_THAT(line_starting(t, "Model:"), HasSubstr("tiny-tok"));
  results::Summary s = summary();
  s.label = "";
  EXPECT_THAT(line_starting(table(s), "Benchmark:"), HasSubstr("llm-serve"));
}

TEST(SummaryTable, FiniteTargetRateWithTheSchedulesOwn) {
  results::Summary s = summary();
  s.max_concurrency = 8;
  const std::string line = line_starting(table(s), "Target request rate:");
  EXPECT_THAT(line, HasSubstr("4.00 req/s"));
  EXPECT_THAT(line, HasSubstr("this schedule: 3.90 req/s"));
  EXPECT_THAT(line, HasSubstr("max concurrency 8"));
  EXPECT_THAT(line_starting(table(summary()), "Target request rate:"), Not(HasSubstr("concurrency")));
}

TEST(SummaryTable, InfiniteTargetRate) {
  results::Summary s = summary();
  s.request_rate = kInf;
  s.scheduled_request_rate = kInf;
  const std::string line = line_starting(table(s), "Target request rate:");
  EXPECT_THAT(line, HasSubstr("inf (all at t = 0)"));
  EXPECT_THAT(line, Not(HasSubstr("req/s")));
}

TEST(SummaryTable, ExecTimeAndThroughput) {
  const std::string t = table(summary());
  EXPECT_THAT(line_starting(t, "Exec Time (s):"), HasSubstr("2.750"));
  EXPECT_THAT(line_starting(t, "Request throughput:"), HasSubstr("2.545 req/s"));
  EXPECT_THAT(line_starting(t, "Input tokens:"), HasSubstr("500"));
  EXPECT_THAT(line_starting(t, "Output tokens:"), HasSubstr("300"));
  EXPECT_THAT(line_starting(t, "Output tokens:"), HasSubstr("counted by engine"));
}

TEST(SummaryTable, PrefixCacheLineOnlyWhenMeasured) {
  EXPECT_EQ(line_starting(table(summary()), "Prefix cache"), "");
  results::Summary s = summary();
  s.prefix_cache = results::PrefixCacheSummary{9216, 8192, 576, 512};
  EXPECT_THAT(line_starting(table(s), "Prefix cache hit rate:"),
              HasSubstr("88.9 % of 9216 prompt tokens (512 of 576 full blocks)"));
}

TEST(SummaryTable, LatencyRowsWithValuesAndCount) {
  const std::string t = table(summary());
  const std::string ttft = line_starting(t, "TTFT");
  EXPECT_THAT(ttft, HasSubstr("100.00"));
  EXPECT_THAT(ttft, HasSubstr("105.00"));  // p99
  EXPECT_THAT(ttft, HasSubstr("106.00"));  // max
  EXPECT_THAT(ttft, Not(HasSubstr("no values")));
  EXPECT_THAT(line_starting(t, "ITL"), HasSubstr("50"));
  EXPECT_THAT(line_starting(t, "E2E"), HasSubstr("1005.00"));
  EXPECT_FALSE(line_starting(t, "TPOT").empty());
}

TEST(SummaryTable, EmptyDistributionSaysNoValues) {
  results::Summary s = summary();
  s.tpot = results::Distribution{};
  s.itl = dist(5, 0);  // values but no count: still nothing measured
  const std::string t = table(s);
  EXPECT_THAT(line_starting(t, "TPOT"), HasSubstr("(no values)"));
  EXPECT_THAT(line_starting(t, "ITL"), HasSubstr("(no values)"));
  EXPECT_THAT(line_starting(t, "TTFT"), Not(HasSubstr("(no values)")));
  EXPECT_THAT(line_starting(t, "E2E"), Not(HasSubstr("(no values)")));
}

TEST(SummaryTable, InfiniteLatencies) {
  results::Summary s = summary();
  s.failures_as_inf = true;
  s.e2el.p99 = kInf;
  s.e2el.max = kInf;
  const std::string t = table(s);
  EXPECT_THAT(line_starting(t, "E2E"), HasSubstr("inf"));
  EXPECT_THAT(t, HasSubstr("failures counted as +inf"));
  EXPECT_THAT(table(summary()), HasSubstr("successful requests only"));
}

TEST(SummaryTable, FailuresByReasonListed) {
  results::Summary s = summary();
  s.failures_by_reason = {{"HTTP 503", 2}, {"timeout", 1}};
  const std::vector<std::string> lines = lines_of(table(s));
  size_t at = 0;
  while (at < lines.size() && lines[at] != "Failures by reason:") ++at;
  ASSERT_LT(at + 2, lines.size()) << table(s);
  EXPECT_THAT(lines[at + 1], HasSubstr("2"));
  EXPECT_THAT(lines[at + 1], HasSubstr("HTTP 503"));
  EXPECT_THAT(lines[at + 2], HasSubstr("1"));
  EXPECT_THAT(lines[at + 2], HasSubstr("timeout"));
  EXPECT_THAT(table(summary()), Not(HasSubstr("Failures by reason")));
}

TEST(SummaryTable, KeptUpNoWithEachNote) {
  results::Summary s = summary();
  s.kept_up = false;
  s.kept_up_notes = {"2 failed and 1 rejected requests", "requests went out at 2.00/s, below the schedule's 3.90/s"};
  const std::vector<std::string> lines = lines_of(table(s));
  size_t at = 0;
  while (at < lines.size() && lines[at].rfind("Kept up:", 0) != 0) ++at;
  ASSERT_LT(at + 2, lines.size());
  EXPECT_THAT(lines[at], HasSubstr("NO"));
  EXPECT_THAT(lines[at], Not(HasSubstr("yes")));
  EXPECT_THAT(lines[at + 1], HasSubstr("2 failed and 1 rejected requests"));
  EXPECT_THAT(lines[at + 2], HasSubstr("below the schedule's 3.90/s"));
}

TEST(SummaryTable, KeptUpYes) {
  EXPECT_THAT(line_starting(table(summary()), "Kept up:"), HasSubstr("yes"));
  results::Summary s = summary();
  s.request_rate = kInf;
  EXPECT_THAT(line_starting(table(s), "Kept up:"), HasSubstr("offline"));
}

TEST(SummaryTable, GoodputOnlyWithAnSlo) {
  EXPECT_EQ(line_starting(table(summary()), "Goodput:"), "");
  results::Summary s = summary();
  s.slo = results::Slo{200, 50};
  s.good_requests = 5;
  s.request_goodput = 1.818;
  const std::string line = line_starting(table(s), "Goodput:");
  EXPECT_THAT(line, HasSubstr("1.818 req/s"));
  EXPECT_THAT(line, HasSubstr("5 requests met"));
  EXPECT_THAT(line, HasSubstr("TTFT <= 200 ms"));
  EXPECT_THAT(line, HasSubstr("TPOT <= 50 ms"));
}

TEST(SummaryTable, GoodputWithOneLimitNamesOnlyIt) {
  results::Summary s = summary();
  s.slo = results::Slo{0, 40};
  s.good_requests = 3;
  s.request_goodput = 1.0;
  const std::string line = line_starting(table(s), "Goodput:");
  EXPECT_THAT(line, HasSubstr("TPOT <= 40 ms"));
  EXPECT_THAT(line, Not(HasSubstr("TTFT")));
}

TEST(SummaryTable, UnknownNumbersPrintAsDash) {
  results::Summary s = summary();
  s.duration = std::numeric_limits<double>::quiet_NaN();
  const std::string line = line_starting(table(s), "Exec Time (s):");
  ASSERT_GT(line.size(), 31u);
  EXPECT_EQ(line.substr(28, 3), "-  ") << line;  // the value column starts at 28
  EXPECT_THAT(line, Not(HasSubstr("nan")));
}

TEST(SummaryTable, FramedByRules) {
  const std::vector<std::string> lines = lines_of(table(summary()));
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.front(), std::string(86, '='));
  EXPECT_EQ(lines.back(), std::string(86, '='));
}
