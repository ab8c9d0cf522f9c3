// test-deps: loadgen_lib llm_server_lib
// test-serial: HttpClient.ThousandConcurrentStreams
// loadgen's HTTP client (make_http_client) against small cpp-httplib servers written here: streams, HTTP
// errors, timeouts, refused and reset connections, 1,000 concurrent streams, a sustained rate. What it does
// with the bytes is tests/http_stream_test.cc.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "support/http_test_util.h"
#include "loadgen/clients/http_client.h"
#include "support/test_paths.h"

using namespace loadgen;
using namespace http_test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------- a test server on a free loopback port

class TestServer {
 public:
  explicit TestServer(int threads = 16) {
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_tcp_nodelay(true);
    std::signal(SIGPIPE, SIG_IGN);
  }
  ~TestServer() { stop(); }
  void start() {
    int fd = -1;
    http.set_socket_options([&fd](int s) {
      int yes = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      fd = s;
    });
    port = http.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    ::listen(fd, SOMAXCONN);  // httplib's compiled backlog is 5
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(1ms);
  }
  void stop() {
    if (thread.joinable()) {
      http.stop();
      thread.join();
    }
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
  httplib::Server http;
  int port = -1;
  std::thread thread;
};

std::unique_ptr<Client> client_for(const std::string& endpoint, const std::string& api, double timeout_s = 30) {
  HttpClientOptions o;
  o.endpoint = endpoint;
  o.api = *kHttpApiNames.find(api);
  o.request_timeout_s = timeout_s;
  return make_http_client(o);
}

}  // namespace

// ================================================================ the client against live servers

TEST(HttpClient, RejectsBadOptions) {
  HttpClientOptions o;
  o.endpoint = "127.0.0.1:80";
  EXPECT_THROW(make_http_client(o), std::invalid_argument);
  o.endpoint = "http://127.0.0.1:80/v1";
  EXPECT_THROW(make_http_client(o), std::invalid_argument);
}

// An OpenAI-style server streaming 5 tokens 20 ms apart: chunk times follow the server's pacing.
TEST(HttpClient, StreamsOpenAIChunksWithTheirArrivalTimes) {
  TestServer s;
  std::atomic<int> requests{0};
  s.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    json body = json::parse(req.body);
    const int n = body["max_tokens"];
    res.set_chunked_content_provider("text/event-stream", [n](size_t, httplib::DataSink& sink) {
      for (int i = 0; i < n; ++i) {
        std::this_thread::sleep_for(20ms);
        std::string t = "t";
        t += std::to_string(i);
        std::string c = openai_chunk(t);
        sink.write(c.data(), c.size());
      }
      std::string fin = "data: " + json({{"choices", {{{"text", ""}, {"finish_reason", "length"}}}},
                                          {"usage", {{"prompt_tokens", 2}, {"completion_tokens", n}}}}).dump() +
                        "\n\ndata: [DONE]\n\n";
      sink.write(fin.data(), fin.size());
      sink.done();
      return true;
    });
  });
  s.start();
  Collector c;
  auto client = client_for(s.endpoint(), "openai");
  client->start(&c);
  for (uint64_t i = 0; i < 4; ++i) client->send(item(i, 5));
  ASSERT_TRUE(client->wait_all(20s));
  EXPECT_EQ(requests.load(), 4);
  for (uint64_t i = 0; i < 4; ++i) {
    Rec r = c.get(i);
    EXPECT_EQ(r.sent, 1);
    EXPECT_EQ(r.done, 1);
    EXPECT_EQ(r.outcome.status, Status::kOk) << r.outcome.reason;
    EXPECT_EQ(r.outcome.output_tokens, 5);
    EXPECT_EQ(r.outcome.count_source, TokenCountSource::kUsage);
    EXPECT_EQ(r.outcome.text, "t0t1t2t3t4");
    ASSERT_EQ(r.chunk_times.size(), 5u);
    // Streamed, not buffered: the chunks arrived spread over the server's ~80 ms of pacing.
    const double spread = std::chrono::duration<double>(r.chunk_times.back() - r.chunk_times.front()).count();
    EXPECT_GT(spread, 0.05);
    EXPECT_LE(r.sent_at, r.chunk_times.front());
  }
}

// TGI events without details and no usage: counted by re-tokenizing with --tokenizer, else by chunks.
TEST(HttpClient, CountsByTokenizerOrChunksWithoutUsage) {
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  TestServer s;
  s.http.Post("/generate_stream", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [](size_t, httplib::DataSink& sink) {
      const char* words[] = {"Hello", " world", ",", " again"};
      for (int i = 0; i < 4; ++i) {
        json ev = {{"token", {{"id", i}, {"text", words[i]}, {"special", false}}},
                   {"generated_text", i == 3 ? json("Hello world, again") : json(nullptr)}};
        std::string e = "data:" + ev.dump() + "\n\n";
        sink.write(e.data(), e.size());
      }
      sink.done();
      return true;
    });
  });
  s.start();
  for (bool with_tokenizer : {false, true}) {
    HttpClientOptions o;
    o.endpoint = s.endpoint();
    o.api = HttpApi::kTgi;
    if (with_tokenizer) o.tokenizer = testing_paths::shared("models/llama2-tokenizer/tokenizer.model").string();
    Collector c;
    auto client = make_http_client(o);
    client->start(&c);
    client->send(item(0));
    ASSERT_TRUE(client->wait_all(10s));
    Rec r = c.get(0);
    ASSERT_EQ(r.outcome.status, Status::kOk) << r.outcome.reason;
    EXPECT_EQ(r.outcome.text, "Hello world, again");
    if (with_tokenizer) {
      EXPECT_EQ(r.outcome.count_source, TokenCountSource::kRetokenized);
      EXPECT_EQ(r.outcome.output_tokens, 4);  // ▁Hello ▁world , ▁again
    } else {
      EXPECT_EQ(r.outcome.count_source, TokenCountSource::kChunks);
      EXPECT_EQ(r.outcome.output_tokens, 4);
    }
  }
}

TEST(HttpClient, HttpErrorsAreFailedWithStatusAndBody) {
  TestServer s;
  s.http.Post(R"(/models/([^/]+)/generate)", [&](const httplib::Request& req, httplib::Response& res) {
    json b = json::parse(req.body);
    EXPECT_EQ(req.matches[1], "llama2");
    EXPECT_EQ(b["stream"], true);
    if (b["parameters"]["max_new_tokens"] == 1) {
      res.status = 503;
      res.set_content(R"({"error":"queue full"})", "application/json");
    } else {
      res.status = 400;
      res.set_content(R"({"error":"inputs: required"})", "application/json");
    }
  });
  s.start();
  Collector c;
  auto client = client_for(s.endpoint(), "llm-serving");
  client->start(&c);
  client->send(item(0, 1));
  client->send(item(1, 2));
  ASSERT_TRUE(client->wait_all(10s));
  EXPECT_EQ(c.get(0).outcome.status, Status::kFailed);
  EXPECT_EQ(c.get(0).outcome.reason, R"(HTTP 503: {"error":"queue full"})");
  EXPECT_EQ(c.get(1).outcome.reason, R"(HTTP 400: {"error":"inputs: required"})");
  EXPECT_TRUE(c.get(1).chunk_tokens.empty());
}

TEST(HttpClient, RequestTimeoutEndsTheRequest) {
  TestServer s;
  std::atomic<bool> release{false};
  s.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [&](size_t, httplib::DataSink& sink) {
      std::string c = openai_chunk("a");
      sink.write(c.data(), c.size());
      for (int i = 0; i < 500 && !release; ++i) std::this_thread::sleep_for(10ms);  // then stalls
      return false;
    });
  });
  s.start();
  Collector c;
  auto client = client_for(s.endpoint(), "openai", /*timeout_s=*/0.5);
  client->start(&c);
  const auto t0 = Clock::now();
  client->send(item(0));
  ASSERT_TRUE(client->wait_all(10s));
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  release = true;
  Rec r = c.get(0);
  EXPECT_EQ(r.outcome.status, Status::kFailed);
  EXPECT_EQ(r.outcome.reason, "timeout after 0.5 s");
  EXPECT_EQ(r.chunk_tokens.size(), 1u);  // what arrived before the timeout is kept
  EXPECT_LT(took, 3.0);
}

TEST(HttpClient, ConnectionRefused) {
  const int port = free_loopback_port();
  Collector c;
  auto client = client_for("http://127.0.0.1:" + std::to_string(port), "tgi");
  client->start(&c);
  for (uint64_t i = 0; i < 3; ++i) client->send(item(i));
  ASSERT_TRUE(client->wait_all(10s));
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.get(i).outcome.status, Status::kFailed);
    EXPECT_EQ(c.get(i).outcome.reason, "connection refused");
    EXPECT_EQ(c.get(i).sent, 1);
    EXPECT_EQ(c.get(i).done, 1);
  }
}

// The server drops the connection after two tokens (chunked body never terminated): "connection reset".
TEST(HttpClient, ServerDroppingTheStreamIsConnectionReset) {
  TestServer s;
  s.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [](size_t, httplib::DataSink& sink) {
      std::string c = openai_chunk("a") + openai_chunk("b");
      sink.write(c.data(), c.size());
      std::this_thread::sleep_for(50ms);
      return false;  // httplib closes the socket mid-body
    });
  });
  s.start();
  Collector c;
  auto client = client_for(s.endpoint(), "openai");
  client->start(&c);
  client->send(item(0));
  ASSERT_TRUE(client->wait_all(10s));
  Rec r = c.get(0);
  EXPECT_EQ(r.outcome.status, Status::kFailed);
  EXPECT_EQ(r.outcome.reason, "connection reset");
  EXPECT_EQ(r.outcome.text, "ab");
}

// 1,000 streams open at the same time on one client thread: the server holds every stream until all
// 1,000 are connected, then answers each with 4 tokens at once.
TEST(HttpClient, ThousandConcurrentStreams) {
  constexpr int kStreams = 1000;
  TestServer s(kStreams + 50);
  std::mutex mu;
  std::condition_variable cv;
  int connected = 0;
  s.http.Post("/generate_stream", [&](const httplib::Request&, httplib::Response& res) {
    bool all = false;
    {
      std::lock_guard<std::mutex> l(mu);
      all = ++connected == kStreams;
    }
    if (all) cv.notify_all();  // once: 1,000 waiters woken per connect would be a million wake-ups
    res.set_chunked_content_provider("text/event-stream", [&](size_t, httplib::DataSink& sink) {
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_for(l, 60s, [&] { return connected >= kStreams; });
      }
      std::string out;
      for (int i = 0; i < 4; ++i)
        out += "data:" + json({{"token", {{"id", i}, {"text", "x"}, {"special", false}}},
                                {"generated_text", i == 3 ? json("xxxx") : json(nullptr)},
                                {"details", i == 3 ? json({{"generated_tokens", 4}}) : json(nullptr)}}).dump() + "\n\n";
      sink.write(out.data(), out.size());
      sink.done();
      return true;
    });
  });
  s.start();
  Collector c;
  auto client = client_for(s.endpoint(), "tgi", 120);
  client->start(&c);
  const auto t0 = Clock::now();
  for (int i = 0; i < kStreams; ++i) client->send(item(i, 4));
  ASSERT_TRUE(client->wait_all(120s));
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  int ok = 0;
  std::map<std::string, int> reasons;
  for (int i = 0; i < kStreams; ++i) {
    Rec r = c.get(i);
    EXPECT_EQ(r.done, 1);
    if (r.outcome.status == Status::kOk && r.outcome.output_tokens == 4) ++ok;
    else reasons[r.outcome.reason]++;
  }
  EXPECT_EQ(ok, kStreams);
  for (auto& [why, n] : reasons) ADD_FAILURE() << n << " x " << why;
  EXPECT_EQ(connected, kStreams);
  std::printf("[ info ] %d concurrent streams, all ok, in %.3f s\n", kStreams, took);
}

TEST(HttpClient, DestroyingTheClientEndsEveryRequest) {
  TestServer s;
  std::atomic<bool> release{false};
  s.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [&](size_t, httplib::DataSink& sink) {
      for (int i = 0; i < 300 && !release; ++i) std::this_thread::sleep_for(10ms);
      return false;
    });
  });
  s.start();
  Collector c;
  {
    auto client = client_for(s.endpoint(), "openai");
    client->start(&c);
    for (uint64_t i = 0; i < 5; ++i) client->send(item(i));
    std::this_thread::sleep_for(100ms);
  }
  release = true;
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(c.get(i).done, 1);
    EXPECT_EQ(c.get(i).outcome.status, Status::kFailed);
  }
}

// --max-connections 3 with 40 requests sent at once: never more than 3 in the server at a time, every one
// served, in the order sent; and destroying the client with requests still waiting for a connection ends
// each of them.
TEST(HttpClient, MaxConnectionsBoundsOpenRequestsAndServesTheBacklogInOrder) {
  TestServer s(16);
  std::mutex mu;
  int open = 0, most = 0;
  std::vector<int> order;
  s.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard l(mu);
      most = std::max(most, ++open);
      order.push_back(json::parse(req.body).value("max_tokens", -1));
    }
    std::this_thread::sleep_for(5ms);
    {
      std::lock_guard l(mu);
      --open;
    }
    res.set_content(openai_chunk("x") + "data: [DONE]\n\n", "text/event-stream");
  });
  s.start();
  constexpr int kRequests = 40;
  HttpClientOptions o;
  o.endpoint = s.endpoint();
  o.max_connections = 3;
  {
    Collector c;
    auto client = make_http_client(o);
    client->start(&c);
    for (int i = 0; i < kRequests; ++i) client->send(item(i, 1 + i));  // max_tokens names the request
    ASSERT_TRUE(client->wait_all(60s));
    for (int i = 0; i < kRequests; ++i) {
      EXPECT_EQ(c.get(i).done, 1) << i;
      EXPECT_EQ(c.get(i).outcome.status, Status::kOk) << i << ": " << c.get(i).outcome.reason;
    }
    std::lock_guard l(mu);
    EXPECT_LE(most, 3);
    EXPECT_GE(most, 2);  // the cap is used, not one at a time
    ASSERT_EQ(order.size(), static_cast<size_t>(kRequests));
    // Three connections may reorder neighbours, never more than the cap apart.
    for (int i = 0; i < kRequests; ++i) EXPECT_LE(std::abs(order[i] - (1 + i)), 3) << i;
  }
  Collector c;
  {
    auto client = make_http_client(o);
    client->start(&c);
    for (int i = 0; i < kRequests; ++i) client->send(item(i, 1));
  }  // destroyed at once: most are still waiting for a connection
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(c.get(i).done, 1) << i;
}

// How many requests/s one client thread sustains against a server that answers at once (a one-token
// stream over 32 keep-alive connections), and its own send → done time. Printed, not asserted: speed
// is the bench's business, correctness (every request ok) is this test's.
TEST(HttpClient, SustainedRateAgainstAnInstantServer) {
  TestServer s(40);
  // cpp-httplib drops a connection on which no request arrives within 5 s. On a starved machine libcurl can
  // connect and then not run for that long (seen on the 2-core CI: "Empty reply from server" for the first
  // requests, 6 s after "Trying"). What is measured here is the client, not the server's idle policy.
  s.http.set_keep_alive_timeout(60);
  s.http.set_read_timeout(60);
  s.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(openai_chunk("x") +
                        "data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}],"
                        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
                    "text/event-stream");
  });
  s.start();
  constexpr int kRequests = 3000;
  HttpClientOptions o;
  o.endpoint = s.endpoint();
  o.max_connections = 32;
  Collector c;
  auto client = make_http_client(o);
  client->start(&c);
  const auto t0 = Clock::now();
  for (int i = 0; i < kRequests; ++i) client->send(item(i, 1));
  ASSERT_TRUE(client->wait_all(120s));
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  int ok = 0;
  std::string first_failure;  // request index and reason of the first one not ok, for the failure message
  std::vector<double> first_ms;  // sent (connection ready) -> first token chunk: the HTTP round trip
  for (int i = 0; i < kRequests; ++i) {
    Rec r = c.get(i);
    const bool good = r.outcome.status == Status::kOk && r.outcome.output_tokens == 1;
    ok += good;
    if (!good && first_failure.empty())
      first_failure = "request " + std::to_string(i) + ": " + r.outcome.reason + " (" +
                      std::to_string(r.outcome.output_tokens) + " tokens)";
    if (!r.chunk_times.empty()) first_ms.push_back(std::chrono::duration<double, std::milli>(r.chunk_times[0] - r.sent_at).count());
  }
  EXPECT_EQ(ok, kRequests) << "first failure: " << first_failure << "; took " << took << " s";
  std::sort(first_ms.begin(), first_ms.end());
  // A chunk is never stamped before its request was sent (TTFT >= 0), however long the loop stays busy.
  ASSERT_FALSE(first_ms.empty());
  EXPECT_GE(first_ms.front(), 0.0);
  std::printf("[ info ] %d one-token streams over 32 connections in %.3f s: %.0f requests/s; sent->first chunk "
              "p50 %.3f ms p99 %.3f ms\n", kRequests, took, kRequests / took, first_ms[first_ms.size() / 2],
              first_ms[first_ms.size() * 99 / 100]);
}
