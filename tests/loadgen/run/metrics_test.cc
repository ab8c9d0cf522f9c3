// test-deps: loadgen_lib
// Metric definitions on hand-made records: numpy-style percentiles, TTFT/TPOT/E2E from the scheduled
// arrival, ITL with multi-token chunks, goodput, failures (+inf option), and the kept-up verdict.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "loadgen/run/metrics.h"

namespace loadgen {
namespace {

RequestRecord ok_record(uint64_t index, double sched, double send, std::vector<double> chunks,
                        std::vector<int> tokens, double end, int prompt = 10) {
  RequestRecord r;
  r.index = index;
  r.sample_id = static_cast<int64_t>(index) + 100;
  r.scheduled_s = sched;
  r.send_s = send;
  r.chunk_times_s = std::move(chunks);
  r.chunk_tokens = std::move(tokens);
  r.end_s = end;
  r.done = true;
  r.status = Status::kOk;
  r.prompt_tokens = prompt;
  r.output_tokens = 0;
  for (int k : r.chunk_tokens) r.output_tokens += k;
  r.count_source = TokenCountSource::kEngine;
  return r;
}

TEST(MetricsTest, PercentilesInterpolateLikeNumpy) {
  std::vector<double> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  // numpy.percentile(range(1, 11), [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 5.5);
  EXPECT_NEAR(percentile_sorted(v, 90), 9.1, 1e-12);
  EXPECT_NEAR(percentile_sorted(v, 95), 9.55, 1e-12);
  EXPECT_NEAR(percentile_sorted(v, 99), 9.91, 1e-12);
  results::Distribution d = distribution({10, 1, 9, 2, 8, 3, 7, 4, 6, 5});
  EXPECT_EQ(d.count, 10);
  EXPECT_DOUBLE_EQ(d.mean, 5.5);
  EXPECT_NEAR(d.std, std::sqrt(8.25), 1e-12);  // population std, numpy's default
  EXPECT_DOUBLE_EQ(d.max, 10);
  EXPECT_DOUBLE_EQ(distribution({42}).p99, 42);
  EXPECT_EQ(distribution({}).count, 0);
}

TEST(MetricsTest, PerRequestLatenciesCountFromTheScheduledArrival) {
  // Scheduled at 1.0, sent late at 1.5: TTFT includes the lag (no coordinated omission).
  RequestRecord r = ok_record(0, 1.0, 1.5, {1.6, 1.7, 1.9}, {1, 1, 2}, 2.0);
  results::RequestRow row = request_row(r);
  ASSERT_TRUE(row.ttft_ms && row.e2el_ms && row.tpot_ms);
  EXPECT_NEAR(*row.ttft_ms, 600, 1e-9);
  EXPECT_NEAR(*row.e2el_ms, 1000, 1e-9);
  EXPECT_NEAR(*row.tpot_ms, (1000 - 600) / 3.0, 1e-9);  // 4 tokens: (E2E - TTFT) / 3
  // ITL: 100 ms, then a 2-token chunk after 200 ms counts as two 100 ms gaps.
  ASSERT_EQ(row.itl_ms.size(), 3u);
  for (double g : row.itl_ms) EXPECT_NEAR(g, 100, 1e-9);
  EXPECT_EQ(*row.output_tokens, 4);
  EXPECT_NEAR(*row.first_token_s, 1.6, 1e-12);

  RequestRecord one = ok_record(1, 0, 0, {0.5}, {1}, 0.5);
  EXPECT_FALSE(request_row(one).tpot_ms.has_value()) << "TPOT needs at least two tokens";
}

TEST(MetricsTest, SummaryCountsRatesAndGoodput) {
  std::vector<RequestRecord> recs;
  recs.push_back(ok_record(0, 0.0, 0.0, {0.1, 0.2}, {1, 1}, 0.2, 5));     // ttft 100, tpot 100
  recs.push_back(ok_record(1, 1.0, 1.0, {1.3, 1.35}, {1, 1}, 1.35, 7));   // ttft 300, tpot 50
  recs.push_back(ok_record(2, 2.0, 2.0, {2.05, 2.1, 2.15}, {1, 1, 1}, 3.0, 9));  // ttft 50, tpot 475
  RequestRecord rej;
  rej.index = 3;
  rej.scheduled_s = 3.0;
  rej.send_s = 3.0;
  rej.done = true;
  rej.end_s = 3.0;
  rej.status = Status::kRejected;
  rej.reason = "queue full";
  recs.push_back(rej);
  MetricsOptions o;
  o.target_rate = 1.0;
  o.slo = results::Slo{200, 200};
  results::Summary s = summarize(recs, o);
  EXPECT_EQ(s.num_prompts, 4);
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.rejected, 1);
  EXPECT_EQ(s.failed, 0);
  EXPECT_TRUE(s.accounted);
  EXPECT_TRUE(s.drained);
  EXPECT_DOUBLE_EQ(s.duration, 3.0);  // first arrival 0 -> last completion 3.0
  EXPECT_EQ(s.total_input_tokens, 21);
  EXPECT_EQ(s.total_output_tokens, 7);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 7.0 / 3.0);
  EXPECT_EQ(s.good_requests, 1);  // only request 0 meets TTFT <= 200 and TPOT <= 200
  EXPECT_DOUBLE_EQ(*s.request_goodput, 1.0 / 3.0);
  EXPECT_NEAR(s.ttft.median, 100, 1e-9);
  EXPECT_NEAR(s.ttft.max, 300, 1e-9);
  EXPECT_EQ(s.failures_by_reason.at("queue full"), 1);
  EXPECT_FALSE(s.kept_up) << "a rejected request means the run did not keep up";
  EXPECT_EQ(s.output_token_source, "engine");

  o.failures_as_inf = true;
  results::Summary inf = summarize(recs, o);
  EXPECT_EQ(inf.e2el.count, 4);
  EXPECT_TRUE(std::isinf(inf.e2el.max));
  EXPECT_TRUE(std::isinf(inf.e2el.p99));
  EXPECT_FALSE(std::isinf(inf.e2el.median));
}

TEST(MetricsTest, KeptUpNeedsRateLagDrainAndNoGrowingBacklog) {
  std::vector<RequestRecord> steady;
  for (int i = 0; i < 40; ++i)
    steady.push_back(ok_record(i, i * 0.2, i * 0.2 + 0.001, {i * 0.2 + 0.05, i * 0.2 + 0.1}, {1, 1}, i * 0.2 + 0.1));
  MetricsOptions o;
  o.target_rate = 5;
  results::Summary s = summarize(steady, o);
  EXPECT_TRUE(s.kept_up) << (s.kept_up_notes.empty() ? "" : s.kept_up_notes[0]);
  EXPECT_NEAR(s.achieved_request_rate, 5.0, 1e-9);
  EXPECT_NEAR(s.send_lag_p99_ms, 1.0, 1e-6);

  // Same arrivals, but each request waits behind the previous ones: latency grows linearly.
  std::vector<RequestRecord> behind;
  for (int i = 0; i < 40; ++i) {
    double end = 0.5 * (i + 1);
    behind.push_back(ok_record(i, i * 0.2, i * 0.2, {end - 0.05, end}, {1, 1}, end));
  }
  results::Summary b = summarize(behind, o);
  EXPECT_FALSE(b.kept_up);
  EXPECT_GT(b.e2el_trend, 2.0);

  // A request that never finished: not drained, and it is counted as failed with the reason.
  auto unfinished = steady;
  unfinished[5].done = false;
  unfinished[5].status = Status::kFailed;
  unfinished[5].reason = "not finished";
  results::Summary u = summarize(unfinished, o);
  EXPECT_FALSE(u.drained);
  EXPECT_FALSE(u.kept_up);
  EXPECT_EQ(u.failed, 1);
  EXPECT_TRUE(u.accounted);

  // Scheduled at 10/s but sent at 5/s (the client fell behind its own schedule).
  std::vector<RequestRecord> late;
  for (int i = 0; i < 40; ++i)
    late.push_back(ok_record(i, i * 0.1, i * 0.2, {i * 0.2 + 0.05, i * 0.2 + 0.1}, {1, 1}, i * 0.2 + 0.1));
  MetricsOptions fast = o;
  fast.target_rate = 10;
  results::Summary l = summarize(late, fast);
  EXPECT_NEAR(l.scheduled_request_rate, 10.0, 1e-9);
  EXPECT_NEAR(l.achieved_request_rate, 5.0, 1e-9);
  EXPECT_FALSE(l.kept_up);
  ASSERT_FALSE(l.kept_up_notes.empty());
  EXPECT_NE(l.kept_up_notes[0].find("below the schedule's 10.00/s"), std::string::npos) << l.kept_up_notes[0];
}

}  // namespace
}  // namespace loadgen
