// test-deps: offline_sim
// The offline simulator: the engine's scheduler driven by a step-time model, and the inputs it reads.
#include "bench/sim/offline_sim.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

namespace {

using bench::SimRequest;
using bench::StepModel;

StepModel flat(double ms) {  // every step ms, whatever its rows and contexts
  StepModel m;
  m.points = StepModel::parse_table("1:" + std::to_string(ms));
  m.bench_context = 0;
  m.kv_bytes_per_token = 0;
  m.row_seconds = 0;
  return m;
}

engine::SchedulerConfig config(int seqs) {
  engine::SchedulerConfig c;
  c.max_num_seqs = seqs;
  c.max_num_batched_tokens = 2048;
  c.num_kv_blocks = 1024;
  return c;
}

TEST(OfflineSim, AStepPerTokenWithTheFirstFromThePrefill) {
  const std::vector<SimRequest> reqs(3, SimRequest{4, 3});
  // One at a time: a prefill step (the first token) and two decode steps each.
  auto r = bench::simulate_offline(reqs, flat(10), config(1));
  EXPECT_EQ(r.steps, 9);
  EXPECT_EQ(r.output_tokens, 9);
  EXPECT_NEAR(r.seconds, 0.090, 1e-12);
  // All at once: one prefill step for the three, then two decode steps.
  r = bench::simulate_offline(reqs, flat(10), config(3));
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(r.output_tokens, 9);
  EXPECT_NEAR(r.output_tokens_per_second(), 300.0, 1e-9);
}

TEST(OfflineSim, ALongAnswerAdmittedLastIsTheTail) {
  // Four slots; the last request admitted has 40 tokens to make, the others 4: the run's last stretch
  // produces one token a step where its first produced four.
  std::vector<SimRequest> reqs(8, SimRequest{2, 4});
  reqs.push_back({2, 40});
  const auto r = bench::simulate_offline(reqs, flat(1), config(4));
  EXPECT_EQ(r.output_tokens, 8 * 4 + 40);
  const auto parts = r.throughput_by_part(4);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_GT(parts.front(), 2.5 * parts.back());
  EXPECT_NEAR(std::accumulate(parts.begin(), parts.end(), 0.0) * r.seconds / 4, double(r.output_tokens), 1e-6);
}

TEST(OfflineSim, StepModelInterpolatesAndAddsTheContextsRead) {
  StepModel m;
  m.points = StepModel::parse_table("3:4,1:2");  // sorted by rows
  m.bench_context = 0;
  m.kv_bytes_per_token = 1000;
  m.bandwidth = 1e6;  // 1 ms a token of context
  m.row_seconds = 1e-3;
  EXPECT_NEAR(m.step_seconds(1, 0), 2e-3, 1e-12);
  EXPECT_NEAR(m.step_seconds(2, 0), 3e-3, 1e-12);
  EXPECT_NEAR(m.step_seconds(5, 0), 6e-3, 1e-12);  // 4 ms + 2 rows past the table
  EXPECT_NEAR(m.step_seconds(1, 3), 5e-3, 1e-12);
  // The table's KV read at its context comes off the fixed part: 300 tokens at 1 ms each is 0.3 s.
  m.points = StepModel::parse_table("1:500");
  m.bench_context = 300;
  EXPECT_NEAR(m.step_seconds(1, 0), 0.2, 1e-12);
  m.scale = 0.5;
  EXPECT_NEAR(m.step_seconds(1, 300), 0.25, 1e-12);
}

TEST(OfflineSim, BadTablesAreNamed) {
  for (const std::string bad : {"", "16", "a:3", "1:x", "1:3ms", "0:3", "1:3,1:4", "1:-2"}) {
    try {
      StepModel::parse_table(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("step table"), std::string::npos) << e.what();
    }
  }
}

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(OfflineSim, ReadsLoadgenRequestsInSendOrderAndNamesBadRows) {
  const std::string header = "index,sample_id,status,error,prompt_tokens,output_tokens\n";
  const auto good = write_tmp("req_good.csv", header + "2,9,ok,,30,7\n0,4,ok,,10,5\n1,5,failed,\"boom, again\",20,0\n");
  const auto reqs = bench::read_requests_csv(good);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].prompt_tokens, 10);
  EXPECT_EQ(reqs[1].output_tokens, 7);

  const auto expect_error = [](const std::string& path, const std::string& what) {
    try {
      bench::read_requests_csv(path);
      ADD_FAILURE() << "read " << path;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error(write_tmp("req_bad.csv", header + "0,4,ok,,10,5\n1,5,ok,,12,x7\n"), "req_bad.csv record 3: field \"output_tokens\" is not a number");
  expect_error(write_tmp("req_nocol.csv", "index,status,prompt_tokens\n0,ok,3\n"), "no column 'output_tokens'");
  expect_error(write_tmp("req_zero.csv", header + "0,4,ok,,10,0\n"), "req_zero.csv: request 0: a request needs");
  expect_error(::testing::TempDir() + "no_such_requests.csv", "cannot open");
}

}  // namespace
