// test-deps: engine llm_server_lib
// llm-serve's parts: request parsing/validation and response formats on strings (no socket), the
// Prometheus text, then the whole HttpServer in-process on dummy:tiny, driven with cpp-httplib's client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "api_format.h"
#include "common/byte_size.h"
#include "http_server.h"
#include "metrics.h"
#include "request_parser.h"
#include "server_options.h"
#include "support/test_paths.h"

using namespace server;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

ParseLimits limits() {
  ParseLimits l;
  l.max_new_tokens = 2048;
  l.vocab_size = 512;
  return l;
}

// The field a body is refused for ("" when it is accepted).
std::string openai_bad_field(const std::string& body) {
  try {
    parse_openai_completion(body, limits());
    return "";
  } catch (const BadRequest& e) {
    return e.field;
  }
}

std::string tgi_bad_field(const std::string& body) {
  try {
    parse_tgi_generate(body, false, true, limits());
    return "";
  } catch (const BadRequest& e) {
    return e.field;
  }
}

}  // namespace

// ================================================================ request parsing

TEST(RequestParser, OpenAICompletionFields) {
  ParsedRequest p = parse_openai_completion(
      R"({"model":"m","prompt":"Hello","max_tokens":12,"temperature":0,"top_p":0.5,"top_k":7,"seed":42,
          "stop":["\n\n","END"],"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}})",
      limits());
  EXPECT_EQ(p.api, Api::kOpenAI);
  EXPECT_EQ(p.model, "m");
  EXPECT_EQ(p.request.prompt, "Hello");
  EXPECT_EQ(p.request.sampling.max_new_tokens, 12);
  EXPECT_EQ(p.request.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(p.request.sampling.top_p, 0.5f);
  EXPECT_EQ(p.request.sampling.top_k, 7);
  EXPECT_EQ(p.request.sampling.seed, 42u);
  EXPECT_EQ(p.request.sampling.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(p.request.sampling.ignore_eos);
  EXPECT_TRUE(p.stream);
  // Defaults: max_tokens 16, temperature 1 (OpenAI's), no stream; stop as one string; token-id prompt.
  p = parse_openai_completion(R"({"prompt":[1,5,9],"stop":"x"})", limits());
  EXPECT_EQ(p.request.prompt_tokens, (std::vector<int32_t>{1, 5, 9}));
  EXPECT_EQ(p.request.sampling.max_new_tokens, 16);
  EXPECT_EQ(p.request.sampling.temperature, 1.0f);
  EXPECT_EQ(p.request.sampling.stop, std::vector<std::string>{"x"});
  EXPECT_FALSE(p.stream);
}

TEST(RequestParser, OpenAIErrorsNameTheField) {
  EXPECT_EQ(openai_bad_field("{"), "body");
  EXPECT_EQ(openai_bad_field("[1,2]"), "body");
  EXPECT_EQ(openai_bad_field(""), "body");
  EXPECT_EQ(openai_bad_field(R"({"max_tokens":3})"), "prompt");
  EXPECT_EQ(openai_bad_field(R"({"prompt":5})"), "prompt");
  EXPECT_EQ(openai_bad_field(R"({"prompt":["a","b"]})"), "prompt");
  EXPECT_EQ(openai_bad_field(R"({"prompt":[1,512]})"), "prompt[1]");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":"10"})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":0})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":2049})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":1e30})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":1e999})"), "body");  // overflows a double
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":99999999999999999999999})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":2.5})"), "max_tokens");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","max_tokens":4.0})"), "");  // integral floats are integers
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","temperature":-1})"), "temperature");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","temperature":"hot"})"), "temperature");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","top_p":0})"), "top_p");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","top_p":1.5})"), "top_p");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","top_k":-5})"), "top_k");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","seed":-1})"), "seed");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","stop":[1]})"), "stop[0]");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","stop":{"a":1}})"), "stop");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","stop":[""]})"), "stop");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","stream":"yes"})"), "stream");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","stream_options":1})"), "stream_options");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","n":2})"), "n");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","model":7})"), "model");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","ignore_eos":1})"), "ignore_eos");
  EXPECT_EQ(openai_bad_field(std::string(40, '[') + std::string(40, ']')), "body");
  EXPECT_EQ(openai_bad_field(R"({"prompt":"x","temperature":null,"unknown_field":[1]})"), "");
}

TEST(RequestParser, TgiFields) {
  ParsedRequest p = parse_tgi_generate(
      R"({"inputs":"Hi","parameters":{"max_new_tokens":5,"do_sample":true,"temperature":0.8,"top_k":3,"top_p":0.9,
          "seed":1,"stop":["."],"return_full_text":true,"details":true,"ignore_eos":true},"stream":true})",
      false, true, limits());
  EXPECT_EQ(p.api, Api::kTgi);
  EXPECT_EQ(p.request.prompt, "Hi");
  EXPECT_EQ(p.request.sampling.max_new_tokens, 5);
  EXPECT_FLOAT_EQ(p.request.sampling.temperature, 0.8f);
  EXPECT_EQ(p.request.sampling.top_k, 3);
  EXPECT_TRUE(p.return_full_text);
  EXPECT_TRUE(p.details);
  EXPECT_TRUE(p.request.sampling.ignore_eos);
  EXPECT_TRUE(p.stream);
  // Greedy unless sampling is asked for; do_sample=false wins over a temperature; stream only from the body
  // on the route that reads it.
  EXPECT_EQ(parse_tgi_generate(R"({"inputs":"x"})", false, true, limits()).request.sampling.temperature, 0.0f);
  EXPECT_EQ(parse_tgi_generate(R"({"inputs":"x","parameters":{"do_sample":true}})", false, true, limits()).request.sampling.temperature, 1.0f);
  EXPECT_EQ(parse_tgi_generate(R"({"inputs":"x","parameters":{"do_sample":false,"temperature":0.5}})", false, true, limits())
                .request.sampling.temperature, 0.0f);
  EXPECT_FALSE(parse_tgi_generate(R"({"inputs":"x","stream":true})", false, false, limits()).stream);
  EXPECT_TRUE(parse_tgi_generate(R"({"inputs":"x"})", true, false, limits()).stream);
  EXPECT_EQ(parse_tgi_generate(R"({"inputs":"x"})", false, true, limits()).request.sampling.max_new_tokens, 100);
}

TEST(RequestParser, TgiErrorsNameTheField) {
  EXPECT_EQ(tgi_bad_field(R"({"parameters":{}})"), "inputs");
  // A list is a prompt of token ids (teacher forcing over TGI): its bad element is named.
  EXPECT_EQ(tgi_bad_field(R"({"inputs":["a"]})"), "inputs[0]");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":[]})"), "inputs");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":7})"), "inputs");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":[]})"), "parameters");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"max_new_tokens":-3}})"), "parameters.max_new_tokens");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"max_new_tokens":true}})"), "parameters.max_new_tokens");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"top_p":2}})"), "parameters.top_p");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"do_sample":"no"}})"), "parameters.do_sample");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"stop":"."}})"), "");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"stop":[null]}})"), "parameters.stop[0]");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"details":0}})"), "parameters.details");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","stream":"true"})"), "stream");
  EXPECT_EQ(tgi_bad_field(R"({"inputs":"x","parameters":{"repetition_penalty":1.2}})"), "parameters.repetition_penalty");
}

TEST(RequestParser, JsonDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(json_depth(R"({"a":"[[[[{{{{"})", 32), 1);
  EXPECT_EQ(json_depth(R"({"a":"\"[[","b":[[1]]})", 32), 3);
  EXPECT_EQ(json_depth(std::string(100000, '['), 32), 33);  // stops counting past the limit
}

// ================================================================ response formats

TEST(ApiFormat, OpenAIChunksAndFinal) {
  OpenAIMeta m{"cmpl-7", 1700000000, "stories"};
  std::string c = openai_token_chunk(m, "Hi \"x\"");
  ASSERT_EQ(c.rfind("data: ", 0), 0u);
  ASSERT_EQ(c.substr(c.size() - 2), "\n\n");
  json j = json::parse(c.substr(6));
  EXPECT_EQ(j["choices"][0]["text"], "Hi \"x\"");
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(j["object"], "text_completion");
  engine::FinishEvent fin;
  fin.reason = engine::FinishReason::kEos;
  fin.prompt_tokens = 4;
  fin.output_tokens = 9;
  j = json::parse(openai_final_chunk(m, fin).substr(6));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["total_tokens"], 13);
  j = json::parse(openai_response(m, "all", fin));
  EXPECT_EQ(j["choices"][0]["text"], "all");
  EXPECT_EQ(j["usage"]["completion_tokens"], 9);
}

TEST(ApiFormat, TgiEvents) {
  engine::TokenEvent t;
  t.token = 2;
  t.text = "";
  engine::FinishEvent fin;
  fin.reason = engine::FinishReason::kLength;
  fin.output_tokens = 3;
  TgiFinal f{"abc", true, 9};
  std::string e = tgi_stream_event(&t, true, &f, &fin);
  ASSERT_EQ(e.rfind("data:", 0), 0u);
  json j = json::parse(e.substr(5));
  EXPECT_EQ(j["token"]["id"], 2);
  EXPECT_EQ(j["token"]["special"], true);
  EXPECT_EQ(j["generated_text"], "abc");
  EXPECT_EQ(j["details"]["finish_reason"], "length");
  EXPECT_EQ(j["details"]["generated_tokens"], 3);
  j = json::parse(tgi_stream_event(nullptr, false, nullptr, nullptr).substr(5));
  EXPECT_TRUE(j["token"].is_null());
  EXPECT_TRUE(j["generated_text"].is_null());
  j = json::parse(tgi_error_body("bad", "validation", "inputs"));
  EXPECT_EQ(j["field"], "inputs");
  j = json::parse(openai_error_body("bad", "invalid_request_error", "max_tokens"));
  EXPECT_EQ(j["error"]["param"], "max_tokens");
}

// ================================================================ metrics

TEST(ServerMetrics, PrometheusText) {
  ServerMetrics m;
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 200);
  m.count_request("/generate", 400);
  m.count_generation(engine::FinishReason::kLength, 10, 5, 0.05, 0.01, 0.1);
  m.count_generation(engine::FinishReason::kLength, 10, 1, 2.0, -1, 2.0);
  engine::EngineStats st;
  st.running = 3;
  st.waiting = 2;
  st.kv_blocks_total = 100;
  st.kv_blocks_used = 25;
  engine::EngineInfo info;
  info.model = "a\"b";
  const std::string t = m.render(st, info);
  auto has = [&](const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has(R"(llm_requests_total{route="/v1/completions",status="200"} 2)")) << t;
  EXPECT_TRUE(has(R"(llm_requests_total{route="/generate",status="400"} 1)"));
  EXPECT_TRUE(has("llm_prompt_tokens_total 20"));
  EXPECT_TRUE(has("llm_generation_tokens_total 6"));
  EXPECT_TRUE(has(R"(llm_time_to_first_token_seconds_bucket{le="0.10000000000000001"} 1)"));
  EXPECT_TRUE(has(R"(llm_time_to_first_token_seconds_bucket{le="+Inf"} 2)"));
  EXPECT_TRUE(has("llm_time_to_first_token_seconds_count 2"));
  EXPECT_TRUE(has("llm_time_per_output_token_seconds_count 1"));
  EXPECT_TRUE(has("llm_num_requests_running 3"));
  EXPECT_TRUE(has("llm_num_requests_waiting 2"));
  EXPECT_TRUE(has("llm_kv_cache_usage_ratio 0.25"));
  EXPECT_NE(t.find(R"(model="a\"b")"), std::string::npos);
}

TEST(ServerMetrics, PrefixCacheCountersAndHitRate) {
  ServerMetrics m;
  engine::EngineStats st;
  auto has = [&](const std::string& t, const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  std::string t = m.render(st, engine::EngineInfo{});
  EXPECT_TRUE(has(t, "llm_prefix_cache_hit_rate 0")) << t;  // nothing queried yet: 0, not NaN
  st.prefix_cache_queries = 800;
  st.prefix_cache_hits = 600;
  st.prefix_cache_block_queries = 49;
  st.prefix_cache_block_hits = 37;
  t = m.render(st, engine::EngineInfo{});
  EXPECT_TRUE(has(t, "# TYPE llm_prefix_cache_queries_total counter"));
  EXPECT_TRUE(has(t, "llm_prefix_cache_queries_total 800"));
  EXPECT_TRUE(has(t, "llm_prefix_cache_hits_total 600"));
  EXPECT_TRUE(has(t, "llm_prefix_cache_block_queries_total 49"));
  EXPECT_TRUE(has(t, "llm_prefix_cache_block_hits_total 37"));
  EXPECT_TRUE(has(t, "llm_prefix_cache_hit_rate 0.75"));
}

// ================================================================ settings

TEST(ServerOptions, PrefixCachingFromTheCommandLineOrTheConfigFile) {
  int code = -1;
  const char* argv[] = {"llm-serve", "--model", "dummy:tiny", "--enable-prefix-caching"};
  auto s = parse_serve_command_line(4, argv, &code);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->engine.enable_prefix_caching);
  EXPECT_NE(describe(*s).find("prefix-caching"), std::string::npos);
  const auto cfg = std::filesystem::temp_directory_path() / ("llm_serve_prefix_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(cfg) << "engine:\n  enable-prefix-caching: true\n";
  ServeSettings from_file;
  apply_config_file(cfg.string(), from_file);
  EXPECT_TRUE(from_file.engine.enable_prefix_caching);
  std::ofstream(cfg) << "enable_prefix_caching: sometimes\n";
  ServeSettings bad;
  try {
    apply_config_file(cfg.string(), bad);
    ADD_FAILURE() << "a non-boolean value was taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("enable_prefix_caching: bad value 'sometimes'"), std::string::npos) << e.what();
  }
  std::filesystem::remove(cfg);
}

TEST(ServerOptions, CommandLineWinsOverConfigFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("llm_serve_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cfg = dir / "serve.yaml";
  std::ofstream(cfg) << "engine:\n  model: dummy:tiny\n  batch-size: 8\n  kv_memory: 64M\nport: 9000\nqps: 5\n";
  const std::string cfg_s = cfg.string();
  const char* argv[] = {"llm-serve", "--config", cfg_s.c_str(), "--batch-size", "4", "--max-waiting", "7"};
  int code = -1;
  auto s = parse_serve_command_line(7, argv, &code);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->engine.model, "dummy:tiny");
  EXPECT_EQ(s->engine.max_num_seqs, 4);
  EXPECT_EQ(s->engine.kv_memory_bytes, 64ll << 20);
  EXPECT_EQ(s->engine.max_waiting, 7);
  EXPECT_EQ(s->server.port, 9000);
  std::ofstream(cfg) << "batch_size: lots\n";
  const char* argv2[] = {"llm-serve", "--config", cfg_s.c_str()};
  EXPECT_FALSE(parse_serve_command_line(3, argv2, &code).has_value());
  EXPECT_EQ(code, 2);
  EXPECT_EQ(common::parse_byte_size("1.5G", "--kv-memory"), int64_t(1.5 * (1 << 30)));
  // KB/MB/GB are powers of 1000 here as in loadgen (llm-serve read "2GB" as 2 GiB before they shared a parser).
  const char* argv3[] = {"llm-serve", "--model", "dummy:tiny", "--kv-memory", "2GB"};
  s = parse_serve_command_line(5, argv3, &code);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->engine.kv_memory_bytes, 2000000000);
  const char* argv4[] = {"llm-serve", "--model", "dummy:tiny", "--kv-memory", "2GiB"};
  s = parse_serve_command_line(5, argv4, &code);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->engine.kv_memory_bytes, int64_t(2) << 30);
  EXPECT_THROW(common::parse_byte_size("12 parsecs", "--kv-memory"), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

TEST(ServerOptions, TensorParallelSizeIsCheckedBeforeTheServerStarts) {
  int code = 0;
  const char* ok[] = {"llm-serve", "--model", "dummy:tiny"};
  auto s = parse_serve_command_line(3, ok, &code);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->engine.tensor_parallel_size, 1);
  const char* bad[] = {"llm-serve", "--model", "dummy:llama-2-70b", "--backend", "cuda", "--tensor-parallel-size", "3"};
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse_serve_command_line(7, bad, &code).has_value());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--tensor-parallel-size 3: dummy:llama-2-70b's attention heads"), std::string::npos) << err;
  const char* cpu[] = {"llm-serve", "--model", "dummy:tiny", "--tensor-parallel-size", "2"};
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse_serve_command_line(5, cpu, &code).has_value());
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("the cpu backend runs on one device"), std::string::npos);
}

// ================================================================ the server in-process on dummy:tiny

namespace {

class ServerFixture : public ::testing::Test {
 protected:
  void start(engine::EngineConfig cfg = {}) {
    cfg.model = "dummy:tiny";
    cfg.kv_memory_bytes = 32 << 20;  // 512 blocks: plenty here, and quick to allocate
    engine_ = std::make_unique<engine::Engine>(cfg);
    ServerOptions o;
    o.port = 0;
    o.http_threads = 32;
    server_ = std::make_unique<HttpServer>(*engine_, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    cli_->set_read_timeout(30, 0);
    cli_->set_tcp_nodelay(true);
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    engine_.reset();
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return cli_->Post(path.c_str(), body, "application/json");
  }
  // SSE body → the data payloads, in order.
  static std::vector<std::string> events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find("\n\n", pos);
      if (end == std::string::npos) break;
      std::string ev = body.substr(pos, end - pos);
      pos = end + 2;
      if (ev.rfind("data:", 0) != 0) continue;  // comments
      ev = ev.substr(5);
      if (!ev.empty() && ev[0] == ' ') ev.erase(0, 1);
      out.push_back(ev);
    }
    return out;
  }
  // What the engine itself generates for a greedy request (the reference the HTTP answers must equal).
  std::string engine_text(const std::string& prompt, int n) {
    struct Sink : engine::RequestSink {
      std::string text;
      std::atomic<bool> done{false};
      void on_token(const engine::TokenEvent& e) override { text += e.text; }
      void on_finish(const engine::FinishEvent&) override { done = true; }
    };
    auto sink = std::make_shared<Sink>();
    engine::Request r;
    r.prompt = prompt;
    r.sampling.max_new_tokens = n;
    r.sampling.ignore_eos = true;
    engine_->submit(r, sink);
    for (int i = 0; i < 3000 && !sink->done; ++i) std::this_thread::sleep_for(5ms);
    return sink->text;
  }

  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> cli_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

TEST_F(ServerFixture, HealthModelsMetricsAndUnknownRoutes) {
  start();
  auto r = cli_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
  r = cli_->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["data"][0]["id"], "dummy:tiny");
  r = cli_->Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("/nope"), std::string::npos);
  r = post("/v1/completions", R"({"prompt":"Hi","max_tokens":3,"temperature":0})");
  ASSERT_TRUE(r);
  r = cli_->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find(R"(llm_requests_total{route="/v1/completions",status="200"} 1)"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("llm_generation_tokens_total 3"), std::string::npos);
  EXPECT_NE(r->body.find("llm_kv_blocks_total"), std::string::npos);
}

TEST_F(ServerFixture, OpenAINonStreamedAndStreamedEqualTheEngine) {
  start();
  const std::string want = engine_text("Once upon a time", 9);
  auto r = post("/v1/completions", R"({"model":"x","prompt":"Once upon a time","max_tokens":9,"temperature":0,"ignore_eos":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["text"], want);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 9);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 17);  // bos + 16 bytes
  EXPECT_EQ(j["model"], "x");

  r = post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":9,"temperature":0,"ignore_eos":true,"stream":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto ev = events(r->body);
  ASSERT_EQ(ev.size(), 11u);  // 9 tokens, the usage chunk, [DONE]
  std::string text;
  for (int i = 0; i < 9; ++i) {
    json c = json::parse(ev[i]);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
    text += c["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, want);
  json fin = json::parse(ev[9]);
  EXPECT_EQ(fin["usage"]["completion_tokens"], 9);
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(ev[10], "[DONE]");
}

TEST_F(ServerFixture, TgiAndCompetitionRoutes) {
  start();
  const std::string want = engine_text("Hello", 6);
  const std::string body = R"({"inputs":"Hello","parameters":{"max_new_tokens":6,"details":true,"ignore_eos":true},"stream":true})";
  for (const char* path : {"/generate_stream", "/models/llama2/generate"}) {
    auto r = post(path, body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << path << " " << r->body;
    auto ev = events(r->body);
    ASSERT_EQ(ev.size(), 6u) << path;  // one event per token; the last carries generated_text + details
    std::string text;
    for (size_t i = 0; i < ev.size(); ++i) {
      json e = json::parse(ev[i]);
      text += e["token"]["text"].get<std::string>();
      EXPECT_EQ(e["generated_text"].is_null(), i + 1 < ev.size());
    }
    json last = json::parse(ev.back());
    EXPECT_EQ(last["generated_text"], want);
    EXPECT_EQ(text, want);
    EXPECT_EQ(last["details"]["generated_tokens"], 6);
    EXPECT_EQ(last["details"]["finish_reason"], "length");
  }
  // /generate and /models/<name>/generate without "stream": one JSON answer; return_full_text prepends.
  auto r = post("/generate", R"({"inputs":"Hello","parameters":{"max_new_tokens":6,"ignore_eos":true,"return_full_text":true}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["generated_text"], "Hello" + want);
  r = post("/models/llama2/generate", R"({"inputs":"Hello","parameters":{"max_new_tokens":6,"ignore_eos":true}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["generated_text"], want);
}

TEST_F(ServerFixture, BadRequestsAre400NamingTheField) {
  start();
  struct Case {
    const char* path;
    std::string body;
    std::string field;
  } cases[] = {
      {"/v1/completions", "{\"prompt\": ", "body"},
      {"/v1/completions", R"({"prompt":"x","max_tokens":-1})", "max_tokens"},
      {"/v1/completions", R"({"prompt":"x","max_tokens":"many"})", "max_tokens"},
      {"/v1/completions", R"({"max_tokens":4})", "prompt"},
      {"/v1/completions", R"({"prompt":")" + std::string(100, 'a') + R"(","max_tokens":2000})", "prompt"},
      {"/generate", R"({"inputs":"x","parameters":{"top_p":7}})", "parameters.top_p"},
      {"/generate_stream", R"({"inputs":42})", "inputs"},
      {"/models/m/generate", R"({"inputs":")" + std::string(3000, 'a') + R"("})", "inputs"},
  };
  for (const auto& c : cases) {
    auto r = post(c.path, c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << c.path << " " << c.body.substr(0, 60);
    json j = json::parse(r->body);
    const std::string field = j["error"].is_object() ? j["error"]["param"].get<std::string>() : j["field"].get<std::string>();
    EXPECT_EQ(field, c.field) << r->body;
  }
}

// A client that reads two tokens and hangs up: its engine request is aborted and its KV blocks freed long
// before its 1,500 tokens would have been generated (the engine is stepped slowly by the test).
TEST_F(ServerFixture, ClientDisconnectAbortsTheEngineRequest) {
  engine::EngineConfig cfg;
  cfg.background_thread = false;
  start(cfg);
  std::atomic<bool> stepping{true};
  std::thread stepper([&] {
    while (stepping) {
      engine_->step();
      std::this_thread::sleep_for(2ms);
    }
  });
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = R"({"prompt":"Hi","max_tokens":1500,"temperature":0,"ignore_eos":true,"stream":true})";
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    chunks += static_cast<int>(std::count(data, data + len, '\n') / 2);
    return chunks < 2;  // hang up
  };
  httplib::Response res;
  httplib::Error err;
  cli_->send(req, res, err);
  EXPECT_GE(chunks, 2);
  bool freed = false;
  for (int i = 0; i < 500 && !freed; ++i) {
    auto st = engine_->stats();
    freed = st.running == 0 && st.waiting == 0 && st.kv_blocks_used == 0;
    if (!freed) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(freed) << "running " << engine_->stats().running << " kv used " << engine_->stats().kv_blocks_used;
  EXPECT_LT(engine_->stats().generated_tokens_total, 1500);
  stepping = false;
  stepper.join();
  auto m = cli_->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find(R"(status="499"} 1)"), std::string::npos) << m->body;
}

// An engine that never steps, max_waiting 1: the second request is refused with 503; stop() then ends the
// first one's stream with an error event (graceful shutdown aborts what is in flight).
TEST_F(ServerFixture, QueueFullIs503AndStopAbortsInFlight) {
  engine::EngineConfig cfg;
  cfg.background_thread = false;
  cfg.max_waiting = 1;
  start(cfg);
  std::string first_body;
  int first_status = 0;
  std::thread first([&] {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    auto r = c.Post("/v1/completions", R"({"prompt":"a","max_tokens":5,"stream":true})", "application/json");
    if (r) first_status = r->status, first_body = r->body;
  });
  for (int i = 0; i < 500 && engine_->stats().waiting < 1; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(engine_->stats().waiting, 1);
  auto r = post("/v1/completions", R"({"prompt":"b","max_tokens":5})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("queue full"), std::string::npos) << r->body;
  // Caller-stepped engine: the abort is carried out at the next step, so keep stepping while stopping.
  std::atomic<bool> joined{false};
  std::thread stepper([&] {
    while (!joined) {
      engine_->step();
      std::this_thread::sleep_for(2ms);
    }
  });
  server_->stop();
  first.join();
  joined = true;
  stepper.join();
  EXPECT_EQ(first_status, 200);
  // The stepper may run a step before the stop reaches the request, so tokens can come first; the stream then
  // ends with the abort's error event and [DONE].
  auto ev = events(first_body);
  ASSERT_GE(ev.size(), 2u) << first_body;
  EXPECT_EQ(ev.back(), "[DONE]") << first_body;
  EXPECT_NE(ev[ev.size() - 2].find("aborted"), std::string::npos) << first_body;
  for (size_t i = 0; i + 2 < ev.size(); ++i)
    EXPECT_EQ(ev[i].find("\"error\""), std::string::npos) << "event " << i << " of " << first_body;
}
