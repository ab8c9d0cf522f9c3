// test-deps: loadgen_lib
// The Prometheus text parser on real pages' shapes (vLLM's, llama.cpp's, ours) and the format's corners:
// labels with escapes, histograms, comments, timestamps, NaN and infinities, and lines that are wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "loadgen/scrape/prometheus_text.h"
#include "loadgen/scrape/server_gauges.h"

using namespace loadgen;
using results::MetricSample;

TEST(PrometheusText, SamplesLabelsCommentsAndTimestamps) {
  const PrometheusPage p = parse_prometheus_text(
      "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-2-7b\"} 3.0\n"
      "\n"
      "   # an indented comment\n"
      "plain_total 17 1712345678901\n"
      "spaced { a = \"1\" , b=\"2\", } 4.5e2\r\n"
      "no_labels{} -2\n");
  ASSERT_EQ(p.samples.size(), 4u);
  EXPECT_EQ(p.samples[0].name, "vllm:num_requests_running");
  EXPECT_EQ(p.samples[0].labels.at("model_name"), "meta-llama/Llama-2-7b");
  EXPECT_EQ(p.samples[0].labels.at("engine"), "0");
  EXPECT_EQ(p.samples[0].value, 3.0);
  EXPECT_EQ(p.types.at("vllm:num_requests_running"), "gauge");
  EXPECT_EQ(p.samples[1].value, 17);  // the timestamp is not the value
  EXPECT_EQ(p.samples[2].labels.size(), 2u);
  EXPECT_EQ(p.samples[2].labels.at("b"), "2");
  EXPECT_EQ(p.samples[2].value, 450);
  EXPECT_TRUE(p.samples[3].labels.empty());
  EXPECT_EQ(p.samples[3].value, -2);
}

TEST(PrometheusText, LabelEscapes) {
  const PrometheusPage p =
      parse_prometheus_text("m{path=\"C:\\\\dir\\\\x\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",brace=\"}{,=\"} 1\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].labels.at("path"), "C:\\dir\\x");
  EXPECT_EQ(p.samples[0].labels.at("quote"), "say \"hi\"");
  EXPECT_EQ(p.samples[0].labels.at("nl"), "a\nb");
  EXPECT_EQ(p.samples[0].labels.at("brace"), "}{,=");
}

TEST(PrometheusText, HistogramsAndSpecialValues) {
  const PrometheusPage p = parse_prometheus_text(
      "# TYPE vllm:time_to_first_token_seconds histogram\n"
      "vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"m\"} 0.0\n"
      "vllm:time_to_first_token_seconds_bucket{le=\"0.5\",model_name=\"m\"} 7.0\n"
      "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 9.0\n"
      "vllm:time_to_first_token_seconds_sum{model_name=\"m\"} 1.25\n"
      "vllm:time_to_first_token_seconds_count{model_name=\"m\"} 9.0\n"
      "g_nan NaN\n"
      "g_inf +Inf\n"
      "g_ninf -Inf\n"
      "# EOF\n"
      "after_eof 1\n");
  ASSERT_EQ(p.samples.size(), 8u);
  EXPECT_EQ(p.types.at("vllm:time_to_first_token_seconds"), "histogram");
  EXPECT_EQ(p.samples[2].labels.at("le"), "+Inf");
  EXPECT_EQ(p.samples[2].value, 9.0);
  EXPECT_EQ(p.samples[3].name, "vllm:time_to_first_token_seconds_sum");
  EXPECT_TRUE(std::isnan(p.samples[5].value));
  EXPECT_EQ(p.samples[6].value, INFINITY);
  EXPECT_EQ(p.samples[7].value, -INFINITY);
}

TEST(PrometheusText, BadLinesNameTheLine) {
  auto error = [](const std::string& text) {
    try {
      parse_prometheus_text(text);
      return std::string();
    } catch (const PrometheusParseError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(error("ok 1\nm{a=\"x} 1\n").find("line 2: the value of label a is not closed"), std::string::npos);
  EXPECT_NE(error("m{a=x} 1\n").find("line 1: expected '\"'"), std::string::npos);
  EXPECT_NE(error("m seven\n").find("'seven' is not a number"), std::string::npos);
  EXPECT_NE(error("m\n").find("expected a value"), std::string::npos);
  EXPECT_NE(error("m 1 2 3\n").find("unexpected text"), std::string::npos);
  EXPECT_NE(error("9m 1\n").find("expected a metric name"), std::string::npos);
  EXPECT_NE(error("m{a=\"1\" b=\"2\"} 1\n").find("expected ',' or '}'"), std::string::npos);
  EXPECT_EQ(error(""), "");
}

TEST(ServerGauges, EachServersNames) {
  struct Case {
    const char* page;
    double running, waiting, kv;
  };
  const Case cases[] = {
      {"vllm:num_requests_running{model_name=\"m\"} 4\nvllm:num_requests_waiting{model_name=\"m\"} 2\n"
       "vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\n", 4, 2, 0.25},
      {"vllm:num_requests_running{engine=\"0\"} 1\nvllm:num_requests_running{engine=\"1\"} 2\n"  // summed
       "vllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc{engine=\"0\"} 0.2\nvllm:gpu_cache_usage_perc{engine=\"1\"} 0.4\n",
       3, 0, 0.3},
      {"sglang:num_running_reqs 5\nsglang:num_queue_reqs 1\nsglang:token_usage 0.5\n", 5, 1, 0.5},
      {"llamacpp:requests_processing 2\nllamacpp:requests_deferred 7\nllamacpp:kv_cache_usage_ratio 0.125\n", 2, 7, 0.125},
      {"llm_num_requests_running 8\nllm_num_requests_waiting 3\nllm_kv_cache_usage_ratio 0.75\n", 8, 3, 0.75},
  };
  for (const Case& c : cases) {
    results::ServerScrape s;
    s.samples = parse_prometheus_text(c.page).samples;
    read_server_gauges(s);
    ASSERT_TRUE(s.running && s.waiting && s.kv_cache_usage) << c.page;
    EXPECT_DOUBLE_EQ(*s.running, c.running) << c.page;
    EXPECT_DOUBLE_EQ(*s.waiting, c.waiting) << c.page;
    EXPECT_DOUBLE_EQ(*s.kv_cache_usage, c.kv) << c.page;
  }
  results::ServerScrape tgi;
  tgi.samples = parse_prometheus_text("tgi_batch_current_size 6\ntgi_queue_size 2\n").samples;
  read_server_gauges(tgi);
  EXPECT_EQ(tgi.running, 6);
  EXPECT_EQ(tgi.waiting, 2);
  EXPECT_FALSE(tgi.kv_cache_usage.has_value());  // TGI exports none
}
