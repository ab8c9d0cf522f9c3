// test-deps: results
// summary.json <-> results::Summary (docs/formats.md): every field survives the round trip, keys are vLLM's
// names, non-finite numbers are "inf" / null, a wrong type is an error naming where and which field, a missing
// field keeps its default, and the file readers name the file.
#include "results/summary_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "results/files.h"
#include "results_test_data.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using results::ClientCost;
using results::Summary;
using results::summary_from_json;
using results::summary_to_json;
using results_test::error_of;
using results_test::full_summary;
using results_test::kInf;
using results_test::kNaN;
using ::testing::HasSubstr;
using ::testing::StartsWith;

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

}  // namespace

TEST(SummaryJson, FullSummaryRoundTripsFieldByField) {
  const Summary s = full_summary();
  const Summary back = summary_from_json(summary_to_json(s), "test");
  results_test::expect_same_summary(s, back);
}

TEST(SummaryJson, RoundTripsThroughTheJsonText) {
  // What a file holds: the dumped text, parsed again.
  const Summary s = full_summary();
  const Summary back = summary_from_json(json::parse(summary_to_json(s).dump(2)), "test");
  results_test::expect_same_summary(s, back);
}

TEST(SummaryJson, DistributionCountIsNotStored) {
  const Summary back = summary_from_json(summary_to_json(full_summary()), "test");
  EXPECT_EQ(back.ttft.count, 0);
  EXPECT_EQ(back.itl.count, 0);
}

TEST(SummaryJson, KeysAreVllmNames) {
  const json j = summary_to_json(full_summary());
  for (const char* key : {"date", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
                          "burstiness", "max_concurrency", "duration", "completed", "failed", "total_input_tokens",
                          "total_output_tokens", "request_throughput", "request_goodput", "input_throughput",
                          "output_throughput", "total_token_throughput"})
    EXPECT_TRUE(j.contains(key)) << key;
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
    for (const char* stat : {"mean", "median", "std", "p90", "p95", "p99", "max"}) {
      const std::string key = std::string(stat) + "_" + metric + "_ms";
      EXPECT_TRUE(j.contains(key)) << key;
      EXPECT_TRUE(j[key].is_number()) << key;
    }
  EXPECT_EQ(j["num_prompts"], 100);
  EXPECT_EQ(j["completed"], 90);
  EXPECT_EQ(j["failed"], 7);
  EXPECT_EQ(j["rejected"], 3);
  EXPECT_EQ(j["request_throughput"], 3.582089552238806);
  EXPECT_EQ(j["request_rate"], 4.5);
  EXPECT_EQ(j["max_concurrency"], 16);
  EXPECT_EQ(j["duration"], 25.125);
  EXPECT_EQ(j["p99_ttft_ms"], 105.875);
  EXPECT_EQ(j["mean_tpot_ms"], 20.125);
  EXPECT_EQ(j["median_itl_ms"], 11.25);
  EXPECT_EQ(j["std_e2el_ms"], 1002.5);
  EXPECT_EQ(j["p90_ttft_ms"], 103.0625);
  EXPECT_EQ(j["p95_ttft_ms"], 104.5);
  EXPECT_EQ(j["max_e2el_ms"], 1006.0);
}

TEST(SummaryJson, OurKeysBesidesVllms) {
  const json j = summary_to_json(full_summary());
  EXPECT_EQ(j["send_lag_p50_ms"], 0.25);
  EXPECT_EQ(j["send_lag_p99_ms"], 1.5);
  EXPECT_EQ(j["send_lag_max_ms"], 7.75);
  EXPECT_EQ(j["achieved_request_rate"], 4.4375);
  EXPECT_EQ(j["kept_up"], false);
  EXPECT_EQ(j["drained"], true);
  EXPECT_EQ(j["accounted"], true);
  EXPECT_EQ(j["output_token_source"], "engine+usage");
  EXPECT_EQ(j["failures_by_reason"], (json{{"HTTP 503", 3}, {"timeout", 4}, {"connection reset, by peer", 1}}));
  EXPECT_EQ(j["slo"], (json{{"ttft_ms", 200.0}, {"tpot_ms", 50.5}}));
  EXPECT_EQ(j["engine"]["batch_size"], 8);
  EXPECT_EQ(j["engine"]["max_model_len"], 1024);
  EXPECT_EQ(j["workload"]["warmup"]["requests"], 4);
  EXPECT_EQ(j["settings"]["seed"], 7);
  ASSERT_TRUE(j["kept_up_notes"].is_array());
  EXPECT_EQ(j["kept_up_notes"].size(), 2u);
}

TEST(SummaryJson, ReadsAVllmShapedResult) {
  // A result file written by vLLM's benchmark_serving: only its own keys.
  const json j = json::parse(R"({
    "date": "20250101-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "tokenizer_id": "meta-llama/Llama-3.1-8B",
    "num_prompts": 200, "request_rate": 8.0, "burstiness": 1.0, "max_concurrency": null, "duration": 30.5,
    "completed": 198, "total_input_tokens": 40000, "total_output_tokens": 25000,
    "request_throughput": 6.49, "request_goodput": null, "output_throughput": 819.6, "total_token_throughput": 2131.1,
    "mean_ttft_ms": 45.5, "median_ttft_ms": 40.25, "std_ttft_ms": 10.5, "p99_ttft_ms": 98.75,
    "mean_tpot_ms": 12.5, "median_tpot_ms": 12.0, "std_tpot_ms": 1.5, "p99_tpot_ms": 17.25,
    "mean_itl_ms": 12.25, "median_itl_ms": 11.5, "std_itl_ms": 3.5, "p99_itl_ms": 30.0,
    "mean_e2el_ms": 1500.5, "median_e2el_ms": 1400.0, "std_e2el_ms": 300.0, "p99_e2el_ms": 2500.0,
    "input_lens": [1, 2], "output_lens": [3, 4], "ttfts": [0.1], "itls": [[0.01]], "generated_texts": ["x"], "errors": [""]
  })");
  const Summary s = summary_from_json(j, "vllm.json");
  EXPECT_EQ(s.backend, "vllm");
  EXPECT_EQ(s.model_id, "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(s.num_prompts, 200);
  EXPECT_EQ(s.request_rate, 8.0);
  EXPECT_EQ(s.max_concurrency, 0);
  EXPECT_EQ(s.duration, 30.5);
  EXPECT_EQ(s.completed, 198);
  EXPECT_EQ(s.total_input_tokens, 40000);
  EXPECT_EQ(s.request_throughput, 6.49);
  EXPECT_FALSE(s.request_goodput.has_value());
  EXPECT_EQ(s.output_throughput, 819.6);
  EXPECT_EQ(s.ttft.mean, 45.5);
  EXPECT_EQ(s.ttft.median, 40.25);
  EXPECT_EQ(s.ttft.p99, 98.75);
  EXPECT_EQ(s.tpot.p99, 17.25);
  EXPECT_EQ(s.itl.std, 3.5);
  EXPECT_EQ(s.e2el.mean, 1500.5);
  EXPECT_TRUE(std::isnan(s.ttft.p90)) << "a statistic the file lacks is unknown, not 0";
  EXPECT_TRUE(s.kept_up);
}

TEST(SummaryJson, InfiniteRequestRateIsTheStringInf) {
  Summary s = full_summary();
  s.request_rate = kInf;
  const json j = summary_to_json(s);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_EQ(j.dump().find("Infinity"), std::string::npos);
  const Summary back = summary_from_json(json::parse(j.dump()), "test");
  EXPECT_TRUE(std::isinf(back.request_rate));
  EXPECT_GT(back.request_rate, 0);
}

TEST(SummaryJson, InfiniteAchievedRateIsTheStringInf) {
  // All sent at once: (N-1) / 0.
  Summary s = full_summary();
  s.achieved_request_rate = kInf;
  s.scheduled_request_rate = kInf;
  const json j = summary_to_json(s);
  EXPECT_EQ(j["achieved_request_rate"], "inf");
  EXPECT_EQ(j["scheduled_request_rate"], "inf");
  const Summary back = summary_from_json(json::parse(j.dump()), "test");
  EXPECT_EQ(back.achieved_request_rate, kInf);
  EXPECT_EQ(back.scheduled_request_rate, kInf);
}

TEST(SummaryJson, InfiniteLatenciesUnderFailuresAsInf) {
  Summary s = full_summary();
  s.e2el.p99 = kInf;
  s.e2el.max = kInf;
  const json j = summary_to_json(s);
  EXPECT_EQ(j["p99_e2el_ms"], "inf");
  EXPECT_EQ(j["max_e2el_ms"], "inf");
  const Summary back = summary_from_json(json::parse(j.dump()), "test");
  EXPECT_EQ(back.e2el.p99, kInf);
  EXPECT_EQ(back.e2el.max, kInf);
  EXPECT_EQ(back.e2el.p95, s.e2el.p95);
}

TEST(SummaryJson, NaNIsNull) {
  Summary s = full_summary();
  s.request_rate = kNaN;
  s.ttft.p99 = kNaN;
  s.send_lag_p99_ms = kNaN;
  s.request_goodput = kNaN;
  const json j = summary_to_json(s);
  EXPECT_TRUE(j["request_rate"].is_null());
  EXPECT_TRUE(j["p99_ttft_ms"].is_null());
  EXPECT_TRUE(j["send_lag_p99_ms"].is_null());
  EXPECT_TRUE(j["request_goodput"].is_null());
  const Summary back = summary_from_json(json::parse(j.dump()), "test");
  EXPECT_TRUE(std::isnan(back.request_rate));
  EXPECT_TRUE(std::isnan(back.ttft.p99));
  EXPECT_TRUE(std::isnan(back.send_lag_p99_ms));
  EXPECT_EQ(back.ttft.p95, s.ttft.p95);
}

TEST(SummaryJson, ReadsTheNonFiniteStrings) {
  const Summary s = summary_from_json(json{{"request_rate", "inf"}, {"p99_ttft_ms", "nan"}, {"send_lag_max_ms", "-inf"}}, "t");
  EXPECT_EQ(s.request_rate, kInf);
  EXPECT_TRUE(std::isnan(s.ttft.p99));
  EXPECT_EQ(s.send_lag_max_ms, -kInf);
}

TEST(SummaryJson, NoSloMeansNoSloKeyAndNullGoodput) {
  Summary s = full_summary();
  s.slo.reset();
  s.request_goodput.reset();
  const json j = summary_to_json(s);
  EXPECT_FALSE(j.contains("slo"));
  EXPECT_TRUE(j["request_goodput"].is_null());
  EXPECT_TRUE(j["good_requests"].is_null());
  const Summary back = summary_from_json(j, "test");
  EXPECT_FALSE(back.slo.has_value());
  EXPECT_FALSE(back.request_goodput.has_value());
  EXPECT_EQ(back.good_requests, 0);
}

TEST(SummaryJson, NoMaxConcurrencyIsNull) {
  Summary s = full_summary();
  s.max_concurrency = 0;
  const json j = summary_to_json(s);
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(summary_from_json(j, "test").max_concurrency, 0);
}

TEST(SummaryJson, SloWithOneLimit) {
  Summary s = full_summary();
  s.slo = results::Slo{0, 40};
  const Summary back = summary_from_json(summary_to_json(s), "test");
  ASSERT_TRUE(back.slo.has_value());
  EXPECT_EQ(back.slo->ttft_ms, 0);
  EXPECT_EQ(back.slo->tpot_ms, 40);
}

TEST(SummaryJson, MissingFieldsKeepTheirDefaults) {
  const Summary s = summary_from_json(json::object(), "old.json");
  const Summary d;
  EXPECT_EQ(s.date, "");
  EXPECT_EQ(s.label, "");
  EXPECT_EQ(s.num_prompts, 0);
  EXPECT_EQ(s.completed, 0);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.rejected, 0);
  EXPECT_EQ(s.total_output_tokens, 0);
  EXPECT_EQ(s.max_concurrency, 0);
  EXPECT_EQ(s.burstiness, d.burstiness);
  EXPECT_FALSE(s.slo.has_value());
  EXPECT_FALSE(s.request_goodput.has_value());
  EXPECT_EQ(s.good_requests, 0);
  EXPECT_FALSE(s.failures_as_inf);
  EXPECT_FALSE(s.drained);
  EXPECT_FALSE(s.accounted);
  EXPECT_TRUE(s.kept_up_notes.empty());
  EXPECT_TRUE(s.failures_by_reason.empty());
  EXPECT_EQ(s.output_token_source, "");
  EXPECT_FALSE(s.prefix_cache.has_value());
  EXPECT_TRUE(s.engine.is_object());
  EXPECT_TRUE(s.engine.empty());
  EXPECT_TRUE(s.settings.is_object());
  EXPECT_TRUE(s.workload.is_object());
}

TEST(SummaryJson, PrefixCacheCountsWithTheirRatesOrNothing) {
  json j = summary_to_json(full_summary());
  EXPECT_EQ(j["prefix_cache"]["queries"], 9216);
  EXPECT_EQ(j["prefix_cache"]["hits"], 8192);
  EXPECT_DOUBLE_EQ(j["prefix_cache"]["hit_rate"].get<double>(), 8192.0 / 9216.0);
  EXPECT_EQ(j["prefix_cache"]["block_queries"], 576);
  EXPECT_EQ(j["prefix_cache"]["block_hits"], 512);
  EXPECT_DOUBLE_EQ(j["prefix_cache"]["block_hit_rate"].get<double>(), 512.0 / 576.0);
  Summary off = full_summary();
  off.prefix_cache.reset();
  EXPECT_FALSE(summary_to_json(off).contains("prefix_cache"));  // not measured: absent, not zeros
  j["prefix_cache"]["hits"] = "many";
  const std::string e = error_of([&] { summary_from_json(j, "s.json"); });
  EXPECT_THAT(e, StartsWith("s.json prefix_cache"));
  EXPECT_THAT(e, HasSubstr("\"hits\""));
}

// The client's own cost: every field back as written; the event loop's CPU per request null (and read back as
// not measured) for a client without one, and absent from files written before it existed.
TEST(SummaryJson, ClientCostRoundTripsWithItsCpuPerRequestOrNull) {
  Summary s = full_summary();
  ClientCost c;
  c.busy_fraction = 0.125;
  c.busy_source = "event loop";
  c.cpu_per_request_us = 93.5;
  c.chunk_lag_p50_ms = 0.002;
  c.chunk_lag_p99_ms = 0.25;
  c.chunk_lag_max_ms = 3.5;
  c.chunks = 4096;
  s.client_cost = c;
  json j = summary_to_json(s);
  EXPECT_DOUBLE_EQ(j["client_cost"]["cpu_per_request_us"].get<double>(), 93.5);
  Summary back = summary_from_json(json::parse(j.dump()), "s.json");
  ASSERT_TRUE(back.client_cost.has_value());
  EXPECT_DOUBLE_EQ(back.client_cost->busy_fraction, 0.125);
  EXPECT_EQ(back.client_cost->busy_source, "event loop");
  EXPECT_DOUBLE_EQ(back.client_cost->cpu_per_request_us, 93.5);
  EXPECT_DOUBLE_EQ(back.client_cost->chunk_lag_p50_ms, 0.002);
  EXPECT_DOUBLE_EQ(back.client_cost->chunk_lag_p99_ms, 0.25);
  EXPECT_DOUBLE_EQ(back.client_cost->chunk_lag_max_ms, 3.5);
  EXPECT_EQ(back.client_cost->chunks, 4096);

  s.client_cost->busy_source = "callbacks";
  s.client_cost->cpu_per_request_us = -1;
  j = summary_to_json(s);
  EXPECT_TRUE(j["client_cost"]["cpu_per_request_us"].is_null());
  EXPECT_LT(summary_from_json(j, "s.json").client_cost->cpu_per_request_us, 0);
  j["client_cost"].erase("cpu_per_request_us");
  EXPECT_LT(summary_from_json(j, "old.json").client_cost->cpu_per_request_us, 0);
  j["client_cost"]["cpu_per_request_us"] = "fast";
  EXPECT_THAT(error_of([&] { summary_from_json(j, "s.json"); }), HasSubstr("cpu_per_request_us"));
}

TEST(SummaryJson, KeptUpDefaultsToTrueWhenAbsent) {
  EXPECT_TRUE(summary_from_json(json::object(), "old.json").kept_up);
  EXPECT_TRUE(summary_from_json(json{{"kept_up", nullptr}}, "old.json").kept_up);
  EXPECT_FALSE(summary_from_json(json{{"kept_up", false}}, "new.json").kept_up);
  EXPECT_TRUE(summary_from_json(json{{"kept_up", true}}, "new.json").kept_up);
}

TEST(SummaryJson, NullObjectsAreEmpty) {
  const Summary s = summary_from_json(json{{"engine", nullptr}, {"settings", nullptr}, {"workload", nullptr}}, "t");
  EXPECT_TRUE(s.engine.is_object());
  EXPECT_TRUE(s.settings.is_object());
  EXPECT_TRUE(s.workload.is_object());
}

TEST(SummaryJson, WrongTypeNamesWhereAndTheField) {
  struct Case {
    const char* key;
    json value;
    const char* says;
  };
  const Case cases[] = {
      {"num_prompts", "ten", "field \"num_prompts\" is not a number"},
      {"request_rate", "fast", "field \"request_rate\" is not a number"},
      {"p99_ttft_ms", json::array({1}), "field \"p99_ttft_ms\" is not a number"},
      {"duration", true, "field \"duration\" is not a number"},
      {"completed", json::object(), "field \"completed\" is not a number"},
      {"request_goodput", "x", "field \"request_goodput\" is not a number"},
      {"label", 5, "field \"label\" is not a string"},
      {"model_id", json::array(), "field \"model_id\" is not a string"},
      {"kept_up", "yes", "field \"kept_up\" is not true or false"},
      {"accounted", 1, "field \"accounted\" is not true or false"},
      {"engine", 3, "field \"engine\" is not an object"},
      {"settings", "x", "field \"settings\" is not an object"},
      {"workload", json::array(), "field \"workload\" is not an object"},
      {"failures_by_reason", 2, "field \"failures_by_reason\" is not an object"},
      {"prefix_cache", "warm", "field \"prefix_cache\" is not an object"},
  };
  for (const Case& c : cases) {
    json j = summary_to_json(full_summary());
    j[c.key] = c.value;
    const std::string e = error_of([&] { summary_from_json(j, "runs/a/summary.json"); });
    EXPECT_THAT(e, StartsWith("runs/a/summary.json: ")) << c.key;
    EXPECT_THAT(e, HasSubstr(c.says)) << c.key;
  }
}

TEST(SummaryJson, WrongTypeInsideTheSloNamesIt) {
  json j = summary_to_json(full_summary());
  j["slo"]["tpot_ms"] = "low";
  const std::string e = error_of([&] { summary_from_json(j, "s.json"); });
  EXPECT_THAT(e, StartsWith("s.json"));
  EXPECT_THAT(e, HasSubstr("slo"));
  EXPECT_THAT(e, HasSubstr("\"tpot_ms\""));
}

TEST(SummaryJson, NotAnObjectIsAnError) {
  for (const json& j : {json::array({1, 2}), json(3), json("summary"), json(nullptr)}) {
    const std::string e = error_of([&] { summary_from_json(j, "x/summary.json"); });
    EXPECT_THAT(e, StartsWith("x/summary.json: ")) << j.dump();
    EXPECT_THAT(e, HasSubstr("not a JSON object")) << j.dump();
  }
}

TEST(SummaryJson, WriteAndReadThroughAFile) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "summary.json";
  Summary s = full_summary();
  s.request_rate = kInf;
  s.ttft.p99 = kNaN;
  results::write_summary_json(path, s);
  ASSERT_TRUE(fs::is_regular_file(path));
  EXPECT_FALSE(fs::exists(dir / "summary.json.tmp"));
  const std::string text = results::read_text_file(path);
  EXPECT_THAT(text, HasSubstr("\"request_rate\": \"inf\""));
  EXPECT_THAT(text, HasSubstr("\"p99_ttft_ms\": null"));
  EXPECT_EQ(text.back(), '\n');
  const Summary back = results::read_summary_json(path);
  results_test::expect_same_summary(s, back);
  fs::remove_all(dir);
}

TEST(SummaryJson, WriteReplacesAnOlderFile) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "summary.json";
  write_text(path, std::string(100000, 'x'));
  Summary s = full_summary();
  s.label = "second";
  results::write_summary_json(path, s);
  EXPECT_EQ(results::read_summary_json(path).label, "second");
  fs::remove_all(dir);
}

TEST(SummaryJson, MalformedFileNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "summary.json";
  write_text(path, "{\"num_prompts\": 10,");
  const std::string e = error_of([&] { results::read_summary_json(path); });
  EXPECT_THAT(e, StartsWith(path.string() + ": "));
  EXPECT_THAT(e, HasSubstr("invalid JSON"));
  fs::remove_all(dir);
}

TEST(SummaryJson, WrongTypeInAFileNamesTheFileAndField) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "summary.json";
  write_text(path, R"({"num_prompts": "many"})");
  const std::string e = error_of([&] { results::read_summary_json(path); });
  EXPECT_THAT(e, StartsWith(path.string() + ": "));
  EXPECT_THAT(e, HasSubstr("\"num_prompts\""));
  fs::remove_all(dir);
}

TEST(SummaryJson, MissingFileNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "nowhere" / "summary.json";
  const std::string e = error_of([&] { results::read_summary_json(path); });
  EXPECT_THAT(e, HasSubstr(path.string()));
  fs::remove_all(dir);
}

TEST(SummaryJson, WriteIntoAMissingDirectoryNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("summary_json_");
  const fs::path path = dir / "nowhere" / "summary.json";
  const std::string e = error_of([&] { results::write_summary_json(path, full_summary()); });
  EXPECT_THAT(e, HasSubstr((dir / "nowhere").string()));
  EXPECT_THAT(e, HasSubstr("summary.json"));
  fs::remove_all(dir);
}
