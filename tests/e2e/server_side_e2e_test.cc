// test-deps: loadgen_cli llm_server_lib
// loadgen against llm-serve (its HTTP server in this process, on dummy:tiny) through the whole run path
// (resolve -> system under test -> run_benchmark -> run directory -> report): --api openai-chat with the model
// name taken from /v1/models, the server's /metrics scraped into server_metrics.jsonl and drawn in the report,
// a metrics URL that does not answer (the run goes on, the summary says so), and --reset-prefix-cache.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "engine/engine.h"
#include "http_server.h"
#include "loadgen/cli/resolve.h"
#include "loadgen/clients/system_under_test.h"
#include "loadgen/run/run.h"
#include "reports/html_report.h"
#include "results/run_dir.h"
#include "support/http_test_util.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

namespace fs = std::filesystem;

class ServedDummy {
 public:
  explicit ServedDummy(bool prefix_caching = false, std::string model = "dummy:tiny", std::string tokenizer = "") {
    engine::EngineConfig c;
    c.model = std::move(model);
    c.tokenizer = std::move(tokenizer);
    c.kv_memory_bytes = 64ll << 20;
    c.enable_prefix_caching = prefix_caching;
    engine_ = std::make_unique<engine::Engine>(c);
    server::ServerOptions o;
    o.port = 0;
    o.http_threads = 32;
    o.chat_template = server::ChatTemplate::kPlain;
    http_ = std::make_unique<server::HttpServer>(*engine_, o);
    port_ = http_->bind();
    thread_ = std::thread([this] { http_->run(); });
  }
  ~ServedDummy() {
    http_->stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  engine::Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<server::HttpServer> http_;
  int port_ = 0;
  std::thread thread_;
};

RunSettings chat_settings(const std::string& endpoint) {
  RunSettings s;
  s.tokenizer = "";  // bytes, as dummy:tiny
  s.num_requests = 12;
  s.rate = "inf";
  s.output_len = 6;
  s.quiet = true;
  s.endpoint = endpoint;
  s.api = "openai-chat";
  return s;
}

RunResult run(const RunSettings& s) {
  const RunConfig c = resolve(s);
  SystemUnderTest sut = make_system_under_test(c.sut);
  return run_benchmark(c, sut);
}

}  // namespace

TEST(ServerSideEndToEnd, ChatRunIsAllOkWithTheServedModelNameAndScrapedMetrics) {
  // A model whose every token is text (tiny-llama with the Llama 2 tokenizer): dummy:tiny's random byte tokens
  // are often no character at all, and a chat stream has no delta for a token without text (as vLLM's), so
  // such a request could have no first token.
  REQUIRE_SHARED("models/tiny-llama/model.safetensors");
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  const std::string model = testing_paths::shared("models/tiny-llama").string();
  const std::string tokenizer = testing_paths::shared("models/llama2-tokenizer/tokenizer.model").string();
  ServedDummy served(false, model, tokenizer);
  RunSettings s = chat_settings(served.endpoint());
  s.tokenizer = tokenizer;
  s.scrape_interval_s = 0.05;  // several scrapes even in a short run
  const RunConfig c = resolve(s);
  EXPECT_EQ(c.workload.prompt_template, PromptTemplate::kRaw);  // one user message, no Alpaca template
  EXPECT_EQ(c.server_side.scrape, ScrapeMode::kIfAnswers);
  const RunResult r = run(s);
  EXPECT_EQ(r.summary.completed, 12);
  EXPECT_EQ(r.summary.failed, 0);
  EXPECT_EQ(r.summary.model_id, model);  // no --model-name: the first of GET /v1/models
  EXPECT_EQ(r.summary.first_token_source, "content");
  EXPECT_EQ(r.summary.output_token_source, "usage");
  for (const RequestRecord& rec : r.records) {
    EXPECT_EQ(rec.status, Status::kOk) << rec.reason;
    EXPECT_EQ(rec.output_tokens, 6);
    ASSERT_FALSE(rec.chunk_times_s.empty());
  }
  // The server's side: every scrape answered, llm-serve's gauges read.
  ASSERT_TRUE(r.summary.server_metrics.has_value());
  EXPECT_EQ(r.summary.server_metrics->url, served.endpoint() + "/metrics");
  EXPECT_GE(r.summary.server_metrics->scrapes, 1);
  EXPECT_EQ(r.summary.server_metrics->failures, 0) << r.summary.server_metrics->first_error;
  ASSERT_FALSE(r.server_metrics.empty());
  for (const results::ServerScrape& sc : r.server_metrics) {
    EXPECT_TRUE(sc.running.has_value());
    EXPECT_TRUE(sc.waiting.has_value());
    EXPECT_TRUE(sc.kv_cache_usage.has_value());
    EXPECT_FALSE(sc.samples.empty());
  }
  // Written, read back, drawn.
  const fs::path dir = testing_paths::fresh_test_dir("llm_server_side_");
  results::write_run_dir(dir, r.summary, r.rows, r.server_metrics);
  ASSERT_TRUE(fs::exists(dir / "server_metrics.jsonl"));
  const results::RunData back = results::load_run(dir);
  ASSERT_EQ(back.server_metrics.size(), r.server_metrics.size());
  EXPECT_EQ(back.server_metrics[0].running, r.server_metrics[0].running);
  EXPECT_EQ(back.server_metrics[0].samples, r.server_metrics[0].samples);
  ASSERT_TRUE(back.summary.server_metrics.has_value());
  EXPECT_EQ(back.summary.server_metrics->scrapes, r.summary.server_metrics->scrapes);
  EXPECT_EQ(back.summary.first_token_source, "content");
  std::vector<std::string> warnings;
  const std::string html = reports::render_html_report(reports::load_report_input({dir}, &warnings));
  EXPECT_NE(html.find("Server: requests running and waiting"), std::string::npos);
  EXPECT_NE(html.find("in flight (client)"), std::string::npos);
  EXPECT_NE(html.find("Server: KV-cache use"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ServerSideEndToEnd, AMetricsUrlThatDoesNotAnswerLeavesTheRunAloneAndTheSummarySaysSo) {
  ServedDummy served;
  RunSettings s = chat_settings(served.endpoint());
  s.scrape_metrics = "http://127.0.0.1:" + std::to_string(http_test::free_loopback_port()) + "/metrics";
  s.scrape_interval_s = 0.05;
  const RunResult r = run(s);
  EXPECT_EQ(r.summary.completed, 12);
  ASSERT_TRUE(r.summary.server_metrics.has_value());
  EXPECT_TRUE(r.summary.server_metrics->failed());
  EXPECT_NE(r.summary.server_metrics->first_error.find(s.scrape_metrics), std::string::npos)
      << r.summary.server_metrics->first_error;
  // "off" scrapes nothing; the default with no answer at the start scrapes nothing either.
  s.scrape_metrics = "off";
  EXPECT_FALSE(run(s).summary.server_metrics.has_value());
  EXPECT_THROW(
      {
        RunSettings bad = s;
        bad.scrape_metrics = "localhost:9/metrics";
        resolve(bad);
      },
      std::invalid_argument);
}

TEST(ServerSideEndToEnd, ResetPrefixCacheBeforeTheRunMeansNoHitFromTheLastRun) {
  ServedDummy served(/*prefix_caching=*/true);
  RunSettings s = chat_settings(served.endpoint());
  s.api = "openai";
  s.num_requests = 4;
  s.scrape_metrics = "off";
  s.max_concurrency = 1;  // one at a time: a request may hit only what earlier runs left
  run(s);                                                  // fills the cache
  const int64_t after_first = served.engine().stats().prefix_cache_hits;
  run(s);                                                  // the same prompts: hits
  const int64_t after_second = served.engine().stats().prefix_cache_hits;
  EXPECT_GT(after_second, after_first);
  // With the reset the third run's first request finds nothing cached (its later ones may hit the first's).
  s.reset_prefix_cache = true;
  s.num_requests = 1;
  const RunResult r = run(s);
  EXPECT_EQ(r.summary.completed, 1);
  EXPECT_EQ(served.engine().stats().prefix_cache_hits, after_second);
  EXPECT_EQ(to_json(resolve(s))["reset_prefix_cache"], true);
}

}  // namespace loadgen
