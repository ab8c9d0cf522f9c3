// --api openai-chat's own costs. (1) The SSE chat-chunk parse rate: a vLLM-shaped chat stream (role frame,
// content frames, closing frame, usage chunk, [DONE]) through HttpResponse (SSE framing + JSON decoding +
// the chunk callback), whole and in TCP-sized reads. (2) loadgen's ceiling against a server that answers at
// once (cpp-httplib, a one-token chat stream): requests/s through run_schedule (dispatcher, recorder,
// HttpClient) over 32 connections, with and without the run directory's record log; (3) the same ceiling for
// 16-token completions with and without --dump-logprobs --top-logprobs 20; and 1,000 streams held open together.
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <csignal>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/completion_stream.h"
#include "common/cpu_time.h"
#include "results/record_log.h"
#include "loadgen/clients/http_client.h"
#include "loadgen/clients/http_response.h"
#include "loadgen/run/logprobs_dump.h"
#include "loadgen/run/run.h"

namespace {

using loadgen::Clock;
using nlohmann::json;

std::string frame(const json& delta, const json& finish = nullptr) {
  return "data: " + json({{"id", "chatcmpl-42"}, {"object", "chat.completion.chunk"}, {"created", 1733000000},
                          {"model", "meta-llama/Llama-2-7b-chat-hf"},
                          {"choices", json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr},
                                                    {"finish_reason", finish}}})}}).dump() + "\n\n";
}

std::string chat_stream(int tokens) {
  std::string s = frame({{"role", "assistant"}, {"content", ""}});
  for (int i = 0; i < tokens; ++i) s += frame({{"content", i % 3 ? " word" : " the"}});
  s += frame(json::object(), "length");
  s += "data: " + json({{"id", "chatcmpl-42"}, {"object", "chat.completion.chunk"}, {"choices", json::array()},
                        {"usage", {{"prompt_tokens", 100}, {"completion_tokens", tokens}, {"total_tokens", 100 + tokens}}}})
                      .dump() + "\n\ndata: [DONE]\n\n";
  return s;
}

class CountingCallbacks : public loadgen::ClientCallbacks {
 public:
  void on_sent(uint64_t, Clock::time_point) override {}
  void on_chunk(uint64_t, int n, std::string_view, Clock::time_point) override { chunks += n; }
  void on_done(uint64_t, const loadgen::Outcome&, Clock::time_point) override {}
  int64_t chunks = 0;
};

/// range(0): bytes per read (0: the whole stream at once).
void BM_ChatSseParse(benchmark::State& state) {
  const int kTokens = 256;
  const std::string stream = chat_stream(kTokens);
  const size_t piece = state.range(0) > 0 ? static_cast<size_t>(state.range(0)) : stream.size();
  CountingCallbacks cb;
  const auto t = Clock::now();
  for (auto _ : state) {
    loadgen::HttpResponse r(0, &cb, nullptr);
    r.on_headers(200, "text/event-stream");
    for (size_t pos = 0; pos < stream.size(); pos += piece)
      r.on_body(std::string_view(stream).substr(pos, piece), t);
    const loadgen::Outcome o = r.finish(t);
    if (o.output_tokens != kTokens) state.SkipWithError("wrong token count");
    benchmark::DoNotOptimize(o);
  }
  state.SetItemsProcessed(state.iterations() * (kTokens + 4));  // items: SSE chunks (frames) parsed
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_ChatSseParse)->Arg(0)->Arg(1448)->Arg(64);

/// CPU time of one thread, read from any thread (0 once it cannot be read).
double thread_cpu_s(pthread_t t) { return std::max(0.0, common::thread_cpu_seconds(t)); }

/// cpp-httplib's task queue on threads of our own, so the server's CPU time can be told from the client's in
/// one process: what the process spent minus server_cpu_s() is what loadgen spent.
class CountedPool : public httplib::TaskQueue {
 public:
  explicit CountedPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~CountedPool() override { shutdown(); }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lk(mu_);
      jobs_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  double cpu_s() {
    double s = 0;
    for (auto& t : threads_)
      if (t.joinable()) s += thread_cpu_s(t.native_handle());
    return s;
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

/// A cpp-httplib server on a free loopback port with a raised listen backlog.
class InstantServer {
 public:
  explicit InstantServer(int threads) {
    std::signal(SIGPIPE, SIG_IGN);
    http.new_task_queue = [this, threads] {
      pool = new CountedPool(threads);
      return pool;
    };
    http.set_tcp_nodelay(true);
    http.set_keep_alive_timeout(60);
    http.set_read_timeout(60);
  }
  void start() {
    int fd = -1;
    http.set_socket_options([&fd](int s) {
      int yes = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      fd = s;
    });
    port = http.bind_to_any_port("127.0.0.1");
    ::listen(fd, SOMAXCONN);
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~InstantServer() {
    http.stop();
    if (thread.joinable()) thread.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
  /// CPU seconds the server has spent: its accept loop and its request threads.
  double server_cpu_s() { return thread_cpu_s(thread.native_handle()) + (pool ? pool->cpu_s() : 0.0); }
  httplib::Server http;
  int port = 0;
  std::thread thread;
  CountedPool* pool = nullptr;  // owned by http, alive while it listens
};

/// What each request asks for: the API, tokens and --top-logprobs (-1: none).
struct Ask {
  loadgen::HttpApi api = loadgen::HttpApi::kOpenAIChat;
  int tokens = 1;
  int top_logprobs = -1;
};

/// `make_observer` (optional) gets the run's items, which die when this returns: `finish_observer` runs
/// while they still live (a LogprobsDump's writer thread reads them until it is closed).
loadgen::RunResult run_against(const std::string& endpoint, int n, int max_connections,
                               std::shared_ptr<results::RecordLog> record_log = nullptr, Ask ask = {},
                               const std::function<loadgen::RequestObserver*(const std::vector<loadgen::WorkItem>&)>&
                                   make_observer = nullptr,
                               const std::function<void()>& finish_observer = nullptr) {
  loadgen::HttpClientOptions o;
  o.endpoint = endpoint;
  o.api = ask.api;
  o.model_name = "m";
  o.max_connections = max_connections;
  o.request_timeout_s = 120;
  auto client = loadgen::make_http_client(o);
  std::vector<loadgen::WorkItem> items(n);
  for (int i = 0; i < n; ++i) {
    items[i].index = i;
    items[i].sample_id = i;
    items[i].prompt = "Give three tips for staying healthy.";
    items[i].max_new_tokens = ask.tokens;
    items[i].top_logprobs = ask.top_logprobs;
  }
  std::vector<int> plen(n, 10);
  std::vector<double> arrivals(n, 0.0);  // -X inf
  loadgen::RunPlan plan;
  plan.metrics.target_rate = std::numeric_limits<double>::infinity();
  plan.record_log = std::move(record_log);
  loadgen::RunResult r =
      loadgen::run_schedule(*client, items, plen, arrivals, plan, make_observer ? make_observer(items) : nullptr);
  if (finish_observer) finish_observer();
  return r;
}

/// Requests/s loadgen sustains with --api openai-chat over 32 keep-alive connections when the server costs nothing;
/// the second argument 1: with the run directory's record log on (each ended request appended to requests.jsonl
/// and requests.csv, as a real run does), the cost of "nothing lost".
void BM_ChatInstantServer32Connections(benchmark::State& state) {
  InstantServer s(40);
  const std::string body = frame({{"role", "assistant"}, {"content", ""}}) + frame({{"content", "x"}}) +
                           frame(json::object(), "length") +
                           "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\n"
                           "data: [DONE]\n\n";
  s.http.Post("/v1/chat/completions",
              [&](const httplib::Request&, httplib::Response& res) { res.set_content(body, "text/event-stream"); });
  s.start();
  const int n = static_cast<int>(state.range(0));
  results::Summary sm;
  const bool log = state.range(1) != 0;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "chat_stream_bench_records";
  for (auto _ : state) {
    sm = run_against(s.endpoint(), n, 32, log ? std::make_shared<results::RecordLog>(dir) : nullptr).summary;
    if (sm.completed != n) state.SkipWithError("not every request was ok");
  }
  state.counters["requests_per_s"] = sm.request_throughput;
  state.counters["ttft_p50_ms"] = sm.ttft.median;
  state.counters["ttft_p99_ms"] = sm.ttft.p99;
}
BENCHMARK(BM_ChatInstantServer32Connections)->Args({3000, 0})->Args({3000, 1})->Args({3000, 0})->Args({3000, 1})->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// --dump-logprobs --top-logprobs K against a server that costs nothing: 16-token OpenAI completions streams
/// (each chunk with K alternatives when K >= 0, as llm-serve sends them), 32 connections, the top-K file written
/// by LogprobsDump on its thread as in a real run (closed inside the timed region). range(1) = the K the server
/// sends (-1: no logprobs field); range(2) = 1: the client asks for them and captures them, 0: it asks for
/// none (a server that sends them anyway: the same bytes on the wire, nothing captured). Two overheads:
/// 1 - requests_per_s(20, 1) / requests_per_s(-1, 0) is what logprobs cost the client in all (4.7x the
/// bytes from the server included); 1 - requests_per_s(20, 1) / requests_per_s(20, 0) is the capture alone.
/// requests_per_s is the run's own (first send to last completion); the JSON the dump spooled during the run
/// is read and written in close(), after it: close_ms, and in client_cpu_us.
void BM_CompletionsInstantServerTopLogprobs(benchmark::State& state) {
  constexpr int kTokens = 16;
  const int n = static_cast<int>(state.range(0));
  const int server_k = static_cast<int>(state.range(1));
  const int k = state.range(2) != 0 ? server_k : -1;  // what the client asks for and captures
  InstantServer s(40);
  const std::string body = bench::completion_stream(server_k, kTokens);
  s.http.Post("/v1/completions",
              [&](const httplib::Request&, httplib::Response& res) { res.set_content(body, "text/event-stream"); });
  s.start();
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "chat_stream_bench_logprobs.h5";
  results::Summary sm;
  double client_cpu_s = 0;
  for (auto _ : state) {
    const double cpu0 = common::process_cpu_seconds(), server0 = s.server_cpu_s();
    std::unique_ptr<loadgen::LogprobsDump> dump;
    double open_s = 0;  // the dump's set-up (its spool's memory faulted in), before the run
    auto make = [&](const std::vector<loadgen::WorkItem>& items) -> loadgen::RequestObserver* {
      if (k < 0) return nullptr;
      accuracy::FileInfo info;
      info.vocab_size = 32000;
      info.top_k = std::max(k, 1);
      const auto t0 = std::chrono::steady_clock::now();
      dump = std::make_unique<loadgen::LogprobsDump>(path.string(), info, items, loadgen::TokenIdMap(), nullptr);
      open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return dump.get();
    };
    double close_s = 0;
    sm = run_against(s.endpoint(), n, 32, nullptr, {loadgen::HttpApi::kOpenAI, kTokens, k}, make, [&] {
           const auto t0 = std::chrono::steady_clock::now();
           if (dump) dump->close();  // inside the timed region: the reading is the client's cost too
           close_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
         }).summary;
    state.counters["open_ms"] = 1e3 * open_s;
    state.counters["close_ms"] = 1e3 * close_s;
    client_cpu_s = (common::process_cpu_seconds() - cpu0) - (s.server_cpu_s() - server0);
    if (sm.completed != n) state.SkipWithError("not every request was ok");
  }
  state.counters["requests_per_s"] = sm.request_throughput;
  // loadgen's CPU time per request (every thread of the process but the server's: client, dispatcher, the
  // dump's writer): 1e6 / this is the client's ceiling on one core whatever else the machine runs.
  state.counters["client_cpu_us"] = 1e6 * client_cpu_s / n;
  // The event loop's own CPU per request (summary.json's client_cost.cpu_per_request_us): the thread every
  // chunk goes through, whose ceiling is the client's when the writer and the server have cores of their own.
  state.counters["loop_cpu_us"] = sm.client_cost ? sm.client_cost->cpu_per_request_us : -1;
  state.counters["top_k"] = k;
  state.counters["server_k"] = server_k;
  state.counters["body_bytes"] = static_cast<double>(body.size());
  std::filesystem::remove(path);
}
BENCHMARK(BM_CompletionsInstantServerTopLogprobs)
    ->Args({10000, -1, 0})->Args({10000, 20, 0})->Args({10000, 20, 1})->Args({10000, -1, 0})->Args({10000, 20, 0})->Args({10000, 20, 1})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Streams the way a server decodes: N chat streams at once, each sending one token chunk every 10 ms (32 of
/// them), so most of the event loop's wake-ups find a few sockets ready among many open ones. The event loop's
/// CPU per chunk, at N = 16 and 256: what a chunk costs the client as concurrency grows.
void BM_ChatPacedStreams(benchmark::State& state) {
  const int streams = static_cast<int>(state.range(0));
  constexpr int kTokens = 32;
  InstantServer s(streams + 16);
  const std::string token = frame({{"content", " x"}});
  const std::string tail = frame(json::object(), "length") +
                           "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":32}}\n\n"
                           "data: [DONE]\n\n";
  s.http.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    auto sent = std::make_shared<int>(0);
    res.set_chunked_content_provider("text/event-stream", [&, sent](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (++*sent <= kTokens) return sink.write(token.data(), token.size());
      sink.write(tail.data(), tail.size());
      sink.done();
      return true;
    });
  });
  s.start();
  results::Summary sm;
  for (auto _ : state) {
    sm = run_against(s.endpoint(), 4 * streams, streams, nullptr, {loadgen::HttpApi::kOpenAIChat, kTokens, -1}).summary;
    if (sm.completed != 4 * streams) state.SkipWithError("not every stream was ok");
  }
  const double cpu = sm.client_cost ? sm.client_cost->cpu_per_request_us : -1;
  state.counters["loop_cpu_us_per_request"] = cpu;
  state.counters["loop_cpu_us_per_chunk"] = cpu / kTokens;
  state.counters["busy_fraction"] = sm.client_cost ? sm.client_cost->busy_fraction : -1;
}
BENCHMARK(BM_ChatPacedStreams)->Arg(16)->Arg(256)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// 1,000 chat streams open at once: the server holds every one until all have connected, then each streams
/// 16 tokens. Completion of all of them, and the client's TTFT spread.
void BM_ChatThousandConcurrentStreams(benchmark::State& state) {
  constexpr int kStreams = 1000;
  InstantServer s(kStreams + 50);
  std::mutex mu;
  std::condition_variable cv;
  int connected = 0;
  std::string tokens;
  for (int i = 0; i < 16; ++i) tokens += frame({{"content", " x"}});
  tokens += frame(json::object(), "length") +
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":16}}\n\ndata: [DONE]\n\n";
  const std::string role = frame({{"role", "assistant"}, {"content", ""}});
  s.http.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (++connected == kStreams) cv.notify_all();
    }
    auto sent_role = std::make_shared<bool>(false);
    res.set_chunked_content_provider("text/event-stream", [&, sent_role](size_t, httplib::DataSink& sink) {
      if (!*sent_role) {
        *sent_role = true;
        return sink.write(role.data(), role.size());
      }
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_for(l, std::chrono::seconds(60), [&] { return connected >= kStreams; });
      }
      sink.write(tokens.data(), tokens.size());
      sink.done();
      return true;
    });
  });
  s.start();
  results::Summary sm;
  for (auto _ : state) {
    sm = run_against(s.endpoint(), kStreams, 0).summary;
    if (sm.completed != kStreams) state.SkipWithError("not every stream was ok");
  }
  state.counters["completed"] = static_cast<double>(sm.completed);
  state.counters["wall_s"] = sm.duration;
  state.counters["ttft_p50_ms"] = sm.ttft.median;
  state.counters["ttft_p99_ms"] = sm.ttft.p99;
  state.counters["output_tokens"] = static_cast<double>(sm.total_output_tokens);
}
BENCHMARK(BM_ChatThousandConcurrentStreams)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
