// test-deps: loadgen_cli llm_server_lib
// Must show 1 (issue 12): every HTTP API × every dataset kind against llm-serve's server (in this process, on
// dummy:tiny): every request ok, and each request's prompt and output token counts equal those of the
// in-process run of the same settings (same seeds, same byte tokenizer). One more API is one more line of
// kApis; one more dataset kind one more line of kDatasets.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <thread>

#include "engine/engine.h"
#include "http_server.h"
#include "loadgen/cli/resolve.h"
#include "loadgen/clients/system_under_test.h"
#include "loadgen/run/run.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

const char* const kApis[] = {
    "openai",
    "tgi",
    "llm-serving",
};

struct DatasetKind {
  const char* name;
  std::function<void(RunSettings&)> set;
};

const DatasetKind kDatasets[] = {
    {"alpaca", [](RunSettings& s) { s.dataset = testing_paths::source("datasets/sample_alpaca.json").string(); }},
    {"sharegpt", [](RunSettings& s) { s.dataset = testing_paths::source("datasets/sample_sharegpt.json").string(); }},
    {"random", [](RunSettings& s) { s.dataset = "random", s.input_len = 48, s.range_ratio = 0.5, s.output_len = 6; }},
    {"prefix",
     [](RunSettings& s) { s.dataset = "prefix", s.input_len = 64, s.prefix_len = 40, s.num_prefixes = 2, s.output_len = 6; }},
};

/// llm-serve's HTTP server on dummy:tiny, on a free loopback port, for the life of the object.
class ServedDummy {
 public:
  ServedDummy() {
    engine::EngineConfig c;
    c.model = "dummy:tiny";
    c.kv_memory_bytes = 64ll << 20;
    engine_ = std::make_unique<engine::Engine>(c);
    server::ServerOptions o;
    o.port = 0;
    o.http_threads = 32;
    http_ = std::make_unique<server::HttpServer>(*engine_, o);
    port_ = http_->bind();
    thread_ = std::thread([this] { http_->run(); });
  }
  ~ServedDummy() {
    http_->stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<server::HttpServer> http_;
  int port_ = 0;
  std::thread thread_;
};

RunSettings base_settings(const DatasetKind& d) {
  RunSettings s;
  s.model = "dummy:tiny";
  s.kv_memory = "64MiB";
  s.num_requests = 8;
  s.rate = "inf";
  s.max_new_tokens = 8;  // reference lengths clamped (Alpaca, ShareGPT)
  s.quiet = true;
  d.set(s);
  return s;
}

RunResult run(const RunSettings& s) {
  const RunConfig c = resolve(s);
  SystemUnderTest sut = make_system_under_test(c.sut);
  return run_benchmark(c, sut);
}

TEST(WorkloadMatrix, MustShow1_EveryApiAndDatasetMatchesTheInProcessRun) {
  ServedDummy served;
  for (const DatasetKind& d : kDatasets) {
    const RunResult local = run(base_settings(d));
    ASSERT_EQ(local.records.size(), 8u) << d.name;
    for (const char* api : kApis) {
      SCOPED_TRACE(std::string(d.name) + " over --api " + api);
      RunSettings s = base_settings(d);
      s.endpoint = served.endpoint();
      s.api = api;
      const RunResult remote = run(s);
      ASSERT_EQ(remote.records.size(), local.records.size());
      EXPECT_EQ(remote.summary.completed, 8);
      for (size_t i = 0; i < remote.records.size(); ++i) {
        const RequestRecord &a = local.records[i], &b = remote.records[i];
        EXPECT_EQ(b.status, Status::kOk) << b.reason;
        EXPECT_EQ(b.sample_id, a.sample_id) << i;
        EXPECT_EQ(b.prompt_tokens, a.prompt_tokens) << "request " << i;
        EXPECT_EQ(b.output_tokens, a.output_tokens) << "request " << i;
        EXPECT_GT(b.prompt_tokens, 1);
      }
    }
  }
}

}  // namespace
}  // namespace loadgen
