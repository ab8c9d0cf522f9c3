// Hand-made results (a fully populated Summary, request rows that exercise every field and every quoting
// case) and field-by-field comparisons, shared by the tests of the results/ codecs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "results/request_row.h"
#include "results/summary.h"

namespace results_test {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Distinct values per metric (base, base + 1, ...), so a swapped key shows.
inline results::Distribution distribution(double base, int64_t count) {
  results::Distribution d;
  d.count = count;
  d.mean = base + 0.125;
  d.median = base + 1.25;
  d.std = base + 2.5;
  d.p90 = base + 3.0625;
  d.p95 = base + 4.5;
  d.p99 = base + 5.875;
  d.max = base + 6.0;
  return d;
}

/// Every field set to a value that differs from its default.
inline results::Summary full_summary() {
  results::Summary s;
  s.date = "20250102-030405";
  s.backend = "llm-serve";
  s.label = "cpu \"fast\", bs=8";
  s.model_id = "tiny-llama";
  s.tokenizer_id = "tiny-tok";
  s.request_rate = 4.5;
  s.burstiness = 0.75;
  s.max_concurrency = 16;
  s.num_prompts = 100;
  s.completed = 90;
  s.failed = 7;
  s.rejected = 3;
  s.total_input_tokens = 12345;
  s.total_output_tokens = 6789;
  s.duration = 25.125;
  s.request_throughput = 3.582089552238806;
  s.input_throughput = 491.34328358208955;
  s.output_throughput = 270.2089552238806;
  s.total_token_throughput = 761.5522388059702;
  s.slo = results::Slo{200.0, 50.5};
  s.prefix_cache = results::PrefixCacheSummary{9216, 8192, 576, 512};
  s.good_requests = 80;
  s.request_goodput = 3.1840796019900495;
  s.ttft = distribution(100, 90);
  s.tpot = distribution(20, 90);
  s.itl = distribution(10, 1000);
  s.e2el = distribution(1000, 90);
  s.failures_as_inf = true;
  s.send_lag_p50_ms = 0.25;
  s.send_lag_p99_ms = 1.5;
  s.send_lag_max_ms = 7.75;
  s.achieved_request_rate = 4.4375;
  s.scheduled_request_rate = 4.46875;
  s.last_arrival_s = 22.0625;
  s.drain_s = 3.0625;
  s.e2el_trend = 1.3125;
  s.kept_up = false;
  s.drained = true;
  s.accounted = true;
  s.kept_up_notes = {"7 failed and 3 rejected requests", "latency grew: \"backlog\", 1.31x"};
  s.failures_by_reason = {{"HTTP 503", 3}, {"timeout", 4}, {"connection reset, by peer", 1}};
  s.output_token_source = "engine+usage";
  s.engine = {{"model", "tiny-llama"}, {"backend", "cpu"}, {"dtype", "f32"}, {"batch_size", 8},
              {"max_num_batched_tokens", 2048}, {"block_size", 16}, {"num_kv_blocks", 512}, {"max_model_len", 1024}};
  s.settings = {{"rate", "4.5"}, {"seed", 7}, {"nested", {{"a", {1, 2, 3}}, {"b", nullptr}}}};
  s.workload = {{"dataset", "sharegpt.json"}, {"records", 1000}, {"bad_records_skipped", 2},
                {"warmup", {{"requests", 4}, {"ok", 4}, {"seconds", 1.5}, {"first_failure", ""}}}};
  return s;
}

/// Equal, or both NaN.
inline void expect_same_double(double expected, double actual, const std::string& what) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": " << actual;
  } else {
    EXPECT_EQ(expected, actual) << what;
  }
}

inline void expect_same_distribution(const results::Distribution& e, const results::Distribution& a,
                                     const std::string& what) {
  expect_same_double(e.mean, a.mean, what + ".mean");
  expect_same_double(e.median, a.median, what + ".median");
  expect_same_double(e.std, a.std, what + ".std");
  expect_same_double(e.p90, a.p90, what + ".p90");
  expect_same_double(e.p95, a.p95, what + ".p95");
  expect_same_double(e.p99, a.p99, what + ".p99");
  expect_same_double(e.max, a.max, what + ".max");
}

/// Every field that summary.json holds (a Distribution's count is not among them).
inline void expect_same_summary(const results::Summary& e, const results::Summary& a) {
  EXPECT_EQ(e.date, a.date);
  EXPECT_EQ(e.backend, a.backend);
  EXPECT_EQ(e.label, a.label);
  EXPECT_EQ(e.model_id, a.model_id);
  EXPECT_EQ(e.tokenizer_id, a.tokenizer_id);
  expect_same_double(e.request_rate, a.request_rate, "request_rate");
  expect_same_double(e.burstiness, a.burstiness, "burstiness");
  EXPECT_EQ(e.max_concurrency, a.max_concurrency);
  EXPECT_EQ(e.num_prompts, a.num_prompts);
  EXPECT_EQ(e.completed, a.completed);
  EXPECT_EQ(e.failed, a.failed);
  EXPECT_EQ(e.rejected, a.rejected);
  EXPECT_EQ(e.total_input_tokens, a.total_input_tokens);
  EXPECT_EQ(e.total_output_tokens, a.total_output_tokens);
  expect_same_double(e.duration, a.duration, "duration");
  expect_same_double(e.request_throughput, a.request_throughput, "request_throughput");
  expect_same_double(e.input_throughput, a.input_throughput, "input_throughput");
  expect_same_double(e.output_throughput, a.output_throughput, "output_throughput");
  expect_same_double(e.total_token_throughput, a.total_token_throughput, "total_token_throughput");
  ASSERT_EQ(e.slo.has_value(), a.slo.has_value());
  if (e.slo) {
    EXPECT_EQ(e.slo->ttft_ms, a.slo->ttft_ms);
    EXPECT_EQ(e.slo->tpot_ms, a.slo->tpot_ms);
    EXPECT_EQ(e.good_requests, a.good_requests);
  }
  ASSERT_EQ(e.prefix_cache.has_value(), a.prefix_cache.has_value());
  if (e.prefix_cache) {
    EXPECT_EQ(e.prefix_cache->queries, a.prefix_cache->queries);
    EXPECT_EQ(e.prefix_cache->hits, a.prefix_cache->hits);
    EXPECT_EQ(e.prefix_cache->block_queries, a.prefix_cache->block_queries);
    EXPECT_EQ(e.prefix_cache->block_hits, a.prefix_cache->block_hits);
  }
  ASSERT_EQ(e.request_goodput.has_value(), a.request_goodput.has_value());
  if (e.request_goodput) expect_same_double(*e.request_goodput, *a.request_goodput, "request_goodput");
  expect_same_distribution(e.ttft, a.ttft, "ttft");
  expect_same_distribution(e.tpot, a.tpot, "tpot");
  expect_same_distribution(e.itl, a.itl, "itl");
  expect_same_distribution(e.e2el, a.e2el, "e2el");
  EXPECT_EQ(e.failures_as_inf, a.failures_as_inf);
  expect_same_double(e.send_lag_p50_ms, a.send_lag_p50_ms, "send_lag_p50_ms");
  expect_same_double(e.send_lag_p99_ms, a.send_lag_p99_ms, "send_lag_p99_ms");
  expect_same_double(e.send_lag_max_ms, a.send_lag_max_ms, "send_lag_max_ms");
  expect_same_double(e.achieved_request_rate, a.achieved_request_rate, "achieved_request_rate");
  expect_same_double(e.scheduled_request_rate, a.scheduled_request_rate, "scheduled_request_rate");
  expect_same_double(e.last_arrival_s, a.last_arrival_s, "last_arrival_s");
  expect_same_double(e.drain_s, a.drain_s, "drain_s");
  expect_same_double(e.e2el_trend, a.e2el_trend, "e2el_trend");
  EXPECT_EQ(e.kept_up, a.kept_up);
  EXPECT_EQ(e.drained, a.drained);
  EXPECT_EQ(e.accounted, a.accounted);
  EXPECT_EQ(e.kept_up_notes, a.kept_up_notes);
  EXPECT_EQ(e.failures_by_reason, a.failures_by_reason);
  EXPECT_EQ(e.output_token_source, a.output_token_source);
  EXPECT_EQ(e.engine, a.engine);
  EXPECT_EQ(e.settings, a.settings);
  EXPECT_EQ(e.workload, a.workload);
}

/// An ok request with every field and chunks; a failed one whose error needs CSV quoting (comma, quotes, a
/// line break) and with most optionals empty; a rejected one with no times at all; an ok one with a CRLF in its
/// error and a single chunk.
inline std::vector<results::RequestRow> sample_rows() {
  std::vector<results::RequestRow> rows(4);
  auto& ok = rows[0];
  ok.index = 0;
  ok.sample_id = 17;
  ok.status = results::Status::kOk;
  ok.scheduled_s = 0.25;
  ok.send_s = 0.250125;
  ok.first_token_s = 0.375;
  ok.end_s = 1.5;
  ok.prompt_tokens = 42;
  ok.output_tokens = 6;
  ok.ttft_ms = 125.0;
  ok.tpot_ms = 225.0;
  ok.e2el_ms = 1250.0;
  ok.chunk_times_s = {0.375, 0.875, 1.5};
  ok.chunk_tokens = {1, 2, 3};
  ok.itl_ms = {250.0, 250.0, 208.333333, 208.333333, 208.333334};

  auto& failed = rows[1];
  failed.index = 1;
  failed.sample_id = 3;
  failed.status = results::Status::kFailed;
  failed.error = "HTTP 503: {\"error\": \"busy, try later\"}\nsecond line";
  failed.scheduled_s = 0.5;
  failed.send_s = 0.500062;
  failed.end_s = 0.6;
  failed.prompt_tokens = 30;

  auto& rejected = rows[2];
  rejected.index = 2;
  rejected.sample_id = -1;
  rejected.status = results::Status::kRejected;
  rejected.error = "queue full";
  rejected.scheduled_s = 0.75;

  auto& crlf = rows[3];
  crlf.index = 3;
  crlf.sample_id = 199;
  crlf.status = results::Status::kOk;
  crlf.error = "warning: \"\"odd\"\",\r\nline";
  crlf.scheduled_s = 1.0;
  crlf.send_s = 1.000001;
  crlf.first_token_s = 1.25;
  crlf.end_s = 1.25;
  crlf.prompt_tokens = 0;
  crlf.output_tokens = 1;
  crlf.ttft_ms = 250.0;
  crlf.e2el_ms = 250.0;
  crlf.chunk_times_s = {1.25};
  crlf.chunk_tokens = {1};
  return rows;
}

inline void expect_same_optional(const std::optional<double>& e, const std::optional<double>& a, double tol,
                                 const std::string& what) {
  ASSERT_EQ(e.has_value(), a.has_value()) << what;
  if (e) {
    EXPECT_NEAR(*e, *a, tol) << what;
  }
}

/// The fields both files hold; `tol` 0 for requests.jsonl (exact), 1e-6 for requests.csv (%.6f).
inline void expect_same_row(const results::RequestRow& e, const results::RequestRow& a, double tol) {
  const std::string at = "row " + std::to_string(e.index);
  EXPECT_EQ(e.index, a.index) << at;
  EXPECT_EQ(e.sample_id, a.sample_id) << at;
  EXPECT_EQ(e.status, a.status) << at;
  EXPECT_EQ(e.error, a.error) << at;
  EXPECT_NEAR(e.scheduled_s, a.scheduled_s, tol) << at;
  expect_same_optional(e.send_s, a.send_s, tol, at + " send_s");
  expect_same_optional(e.first_token_s, a.first_token_s, tol, at + " first_token_s");
  expect_same_optional(e.end_s, a.end_s, tol, at + " end_s");
  EXPECT_EQ(e.prompt_tokens, a.prompt_tokens) << at;
  EXPECT_EQ(e.output_tokens, a.output_tokens) << at;
  expect_same_optional(e.ttft_ms, a.ttft_ms, tol, at + " ttft_ms");
  expect_same_optional(e.tpot_ms, a.tpot_ms, tol, at + " tpot_ms");
  expect_same_optional(e.e2el_ms, a.e2el_ms, tol, at + " e2el_ms");
}

/// The message of the std::runtime_error `f` throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace results_test
