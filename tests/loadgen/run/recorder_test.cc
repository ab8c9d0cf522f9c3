// test-deps: loadgen_lib
// The recorder under concurrent callbacks: every request ends in exactly one record, token totals add up,
// duplicates are ignored and counted, unfinished requests come out failed with the reason.
#include <gtest/gtest.h>

#include <thread>

#include <algorithm>
#include <limits>

#include "loadgen/workload/arrival.h"
#include "loadgen/run/metrics.h"
#include "loadgen/run/run.h"
#include "loadgen/run/recorder.h"
#include "support/serial_client.h"

namespace loadgen {
namespace {

TEST(RecorderTest, ConcurrentCallbacksEndInExactlyOneRecordEach) {
  const int n = 4000, threads = 4;
  std::vector<int64_t> ids(n);
  std::vector<double> sched(n);
  std::vector<int> plen(n, 3), expect(n);
  for (int i = 0; i < n; ++i) {
    ids[i] = 1000 + i;
    sched[i] = i * 0.001;
    expect[i] = 1 + i % 7;
  }
  const auto t0 = Clock::now();
  Recorder rec(t0, ids, sched, plen, expect);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        rec.on_sent(i, Clock::now());
        for (int k = 0; k < expect[i]; ++k) rec.on_chunk(i, 1, "x", Clock::now());
        Outcome o;
        if (i % 10 == 9) {
          o.status = Status::kRejected;
          o.reason = "queue full";
        } else {
          o.output_tokens = expect[i];
        }
        rec.on_done(i, o, Clock::now());
        if (i % 100 == 0) rec.on_done(i, o, Clock::now());  // a misbehaving client: second done ignored
      }
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(rec.done(), n);
  EXPECT_EQ(rec.sent(), n);
  EXPECT_EQ(rec.duplicate_done(), n / 100);
  int64_t chunk_tokens = 0;
  for (int i = 0; i < n; ++i) chunk_tokens += expect[i];
  EXPECT_EQ(rec.tokens(), chunk_tokens);

  auto records = rec.records("unfinished");
  ASSERT_EQ(records.size(), static_cast<size_t>(n));
  int64_t out_ok = 0;
  for (int i = 0; i < n; ++i) {
    const auto& r = records[i];
    EXPECT_EQ(r.index, static_cast<uint64_t>(i));
    EXPECT_EQ(r.sample_id, 1000 + i);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.chunk_times_s.size(), static_cast<size_t>(expect[i]));
    if (r.status == Status::kOk) out_ok += r.output_tokens;
  }
  results::Summary s = summarize(records, MetricsOptions{});
  EXPECT_EQ(s.completed + s.failed + s.rejected, n);
  EXPECT_EQ(s.rejected, n / 10);
  EXPECT_TRUE(s.accounted);
  EXPECT_EQ(s.total_output_tokens, out_ok);
  EXPECT_EQ(s.total_input_tokens, 3 * s.completed);
}

TEST(RecorderTest, UnfinishedRequestsBecomeFailedWithTheReason) {
  const auto t0 = Clock::now();
  Recorder rec(t0, {7, 8, 9}, {0, 0.1, 0.2}, {1, 1, 1}, {2, 2, 2});
  rec.on_sent(0, t0);
  rec.on_chunk(0, 2, "ab", t0 + std::chrono::milliseconds(5));
  Outcome o;  // output_tokens unknown (-1): counted from the chunks
  rec.on_done(0, o, t0 + std::chrono::milliseconds(6));
  rec.fail(1, "client.send threw: boom", t0);
  auto r = rec.records("not finished within the timeout");
  EXPECT_EQ(r[0].status, Status::kOk);
  EXPECT_EQ(r[0].output_tokens, 2);
  EXPECT_EQ(r[0].count_source, TokenCountSource::kChunks);
  EXPECT_EQ(r[1].status, Status::kFailed);
  EXPECT_EQ(r[1].reason, "client.send threw: boom");
  EXPECT_FALSE(r[2].done);
  EXPECT_EQ(r[2].status, Status::kFailed);
  EXPECT_EQ(r[2].reason, "not finished within the timeout");
  results::Summary s = summarize(r, MetricsOptions{});
  EXPECT_FALSE(s.drained);
  EXPECT_TRUE(s.accounted);
  EXPECT_EQ(s.failed, 2);
}

TEST(RecorderTest, WaitDoneAtLeastWakesOnCompletion) {
  const auto t0 = Clock::now();
  Recorder rec(t0, {0, 1}, {0, 0}, {1, 1}, {1, 1});
  EXPECT_FALSE(rec.wait_done_at_least(1, Clock::now() + std::chrono::milliseconds(10)));
  std::thread th([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rec.on_done(1, Outcome{}, Clock::now());
  });
  EXPECT_TRUE(rec.wait_done_at_least(1, Clock::now() + std::chrono::seconds(10)));
  th.join();
}

TEST(DispatchTest, MaxConcurrencyCapsInFlightAndLatencyStillCountsFromTheSchedule) {
  const int n = 12;
  testing_support::SerialClient client(std::chrono::milliseconds(30), 2);  // batch size 1, 30 ms each
  std::vector<WorkItem> items(n);
  for (int i = 0; i < n; ++i) {
    items[i].index = i;
    items[i].sample_id = i;
    items[i].max_new_tokens = 2;
  }
  ArrivalOptions a;
  a.rate = std::numeric_limits<double>::infinity();  // all due at t = 0
  RunPlan plan;
  plan.max_concurrency = 2;
  plan.drain_timeout_s = 60;
  plan.metrics.target_rate = a.rate;
  RunResult r = run_schedule(client, items, std::vector<int>(n, 4), arrival_times(n, a), plan, nullptr);
  EXPECT_LE(client.max_in_flight(), 2);
  EXPECT_EQ(r.summary.completed, n);
  EXPECT_TRUE(r.summary.accounted);
  // Request i waits for about i - 1 earlier ones: its send lag and its E2E (from t = 0) grow with i.
  ASSERT_TRUE(r.rows[n - 1].e2el_ms && r.rows[n - 1].send_s);
  EXPECT_GT(*r.rows[n - 1].e2el_ms, (n - 1) * 30.0 * 0.9);
  EXPECT_GT(*r.rows[n - 1].send_s * 1000, (n - 3) * 30.0 * 0.9);
  EXPECT_GT(r.summary.send_lag_max_ms, (n - 3) * 30.0 * 0.9);
}

TEST(DispatchTest, OpenLoopSendsOnScheduleAndCountsQueueingAsLatency) {
  // Arrivals every 10 ms, service 30 ms each: the queue grows; latency must show it, send lag must not.
  const int n = 10;
  testing_support::SerialClient client(std::chrono::milliseconds(30), 2);  // batch size 1, 30 ms each
  std::vector<WorkItem> items(n);
  for (int i = 0; i < n; ++i) items[i].index = i;
  ArrivalOptions a;
  a.rate = 100;
  a.kind = ArrivalKind::kConstant;
  RunPlan plan;
  plan.metrics.target_rate = 100;
  RunResult r = run_schedule(client, items, std::vector<int>(n, 4), arrival_times(n, a), plan, nullptr);
  EXPECT_EQ(r.summary.completed, n);
  EXPECT_LT(r.summary.send_lag_p50_ms, 5.0);
  EXPECT_GT(*r.rows[n - 1].ttft_ms, (n * 30 - (n - 1) * 10) * 0.9);  // waited behind the others
  EXPECT_FALSE(r.summary.kept_up);
}

// Warm-up: 6 requests served (30 ms each) before the schedule, then forgotten. The schedule's clock starts
// after them, so the first timed request (30 ms of service) is not charged their 180 ms, and only the run's
// own requests are recorded.
TEST(DispatchTest, WarmupRunsFirstAndIsNotRecorded) {
  const int n = 4;
  testing_support::SerialClient client(std::chrono::milliseconds(30), 2);
  std::vector<WorkItem> items(n);
  for (int i = 0; i < n; ++i) items[i].index = i;
  ArrivalOptions a;
  a.rate = 2;  // 0.5 s apart: each timed request finds the client idle
  a.kind = ArrivalKind::kConstant;
  RunPlan plan;
  plan.warmup = 6;
  plan.metrics.target_rate = a.rate;
  RunResult r = run_schedule(client, items, std::vector<int>(n, 4), arrival_times(n, a), plan, nullptr);
  EXPECT_EQ(r.warmup.requests, 6);
  EXPECT_EQ(r.warmup.ok, 6);
  EXPECT_GT(r.warmup.seconds, 6 * 30e-3 * 0.9);
  ASSERT_EQ(r.records.size(), size_t(n));
  EXPECT_EQ(r.summary.completed, n);
  EXPECT_EQ(r.summary.total_output_tokens, 2 * n);
  ASSERT_TRUE(r.rows[0].ttft_ms);
  EXPECT_LT(*r.rows[0].ttft_ms, 150.0) << "the first timed request waited for the warm-up";
}

// Warm-up requests that do not finish within the drain timeout stop the run before it starts.
TEST(DispatchTest, WarmupThatDoesNotFinishStopsTheRun) {
  testing_support::SerialClient client(std::chrono::milliseconds(300), 1);
  std::vector<WorkItem> items(2);
  items[1].index = 1;
  RunPlan plan;
  plan.warmup = 2;
  plan.drain_timeout_s = 0.1;
  ArrivalOptions a;
  a.rate = 10;
  try {
    run_schedule(client, items, {4, 4}, arrival_times(2, a), plan, nullptr);
    FAIL() << "expected the warm-up to fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--warmup: 2 of 2 warm-up requests did not finish"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace loadgen
