// test-deps: loadgen_lib llm_server_lib
// Reaching a real deployment: --header lines and OPENAI_API_KEY's bearer token on every request (the measured
// streams and the one-off calls), the model name from GET /v1/models, and POST /reset_prefix_cache, against a
// small cpp-httplib server that records what it was sent.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <mutex>
#include <thread>

#include "loadgen/clients/http_call.h"
#include "loadgen/clients/http_client.h"
#include "support/http_test_util.h"

using namespace loadgen;
using namespace http_test;
using namespace std::chrono_literals;

namespace {

class RecordingServer {
 public:
  explicit RecordingServer(bool reset_route = true) {
    std::signal(SIGPIPE, SIG_IGN);
    auto keep = [this](const httplib::Request& q) {
      std::lock_guard<std::mutex> l(mu);
      headers.push_back(q.headers);
      paths.push_back(q.method + " " + q.path);
    };
    http.Get("/v1/models", [this, keep](const httplib::Request& q, httplib::Response& res) {
      keep(q);
      res.set_content(models_body, "application/json");
    });
    if (reset_route)
      http.Post("/reset_prefix_cache", [keep](const httplib::Request& q, httplib::Response& res) {
        keep(q);
        res.set_content("{}", "application/json");
      });
    http.Post("/v1/chat/completions", [keep](const httplib::Request& q, httplib::Response& res) {
      keep(q);
      res.set_content("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n",
                      "text/event-stream");
    });
    port = http.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~RecordingServer() {
    http.stop();
    thread.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
  httplib::Headers last_headers() {
    std::lock_guard<std::mutex> l(mu);
    return headers.back();
  }

  httplib::Server http;
  std::string models_body = R"({"object":"list","data":[{"id":"meta-llama/Llama-2-7b-chat-hf"},{"id":"other"}]})";
  std::mutex mu;
  std::vector<httplib::Headers> headers;
  std::vector<std::string> paths;
  int port = 0;
  std::thread thread;
};

std::string header(const httplib::Headers& h, const std::string& name) {
  auto it = h.find(name);
  return it == h.end() ? "" : it->second;
}

}  // namespace

TEST(RequestHeaders, UserHeadersAndTheBearerToken) {
  EXPECT_EQ(request_headers({"X-Team:  blue ", "X-Trace: 1"}, ""),
            (std::vector<std::string>{"X-Team: blue", "X-Trace: 1"}));
  EXPECT_EQ(request_headers({}, "sk-123"), std::vector<std::string>{"Authorization: Bearer sk-123"});
  // A --header Authorization wins over OPENAI_API_KEY.
  EXPECT_EQ(request_headers({"authorization: Basic abc"}, "sk-123"), std::vector<std::string>{"authorization: Basic abc"});
  for (const char* bad : {"no colon", ": empty name", "two words: x"}) {
    try {
      request_headers({bad}, "");
      ADD_FAILURE() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--header '"), std::string::npos) << e.what();
    }
  }
}

TEST(HttpCall, ModelNameFromV1ModelsAndTheHeadersGoWithIt) {
  RecordingServer s;
  HttpAccess access;
  access.headers = request_headers({"X-Team: blue"}, "sk-9");
  EXPECT_EQ(first_served_model(s.endpoint(), access), "meta-llama/Llama-2-7b-chat-hf");
  const httplib::Headers h = s.last_headers();
  EXPECT_EQ(header(h, "X-Team"), "blue");
  EXPECT_EQ(header(h, "Authorization"), "Bearer sk-9");
  s.models_body = R"({"object":"list","data":[]})";
  try {
    first_served_model(s.endpoint(), access);
    ADD_FAILURE() << "an empty model list was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("listed no model"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--model-name"), std::string::npos);
  }
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  EXPECT_THROW(first_served_model(dead, access, 2), std::runtime_error);
}

TEST(HttpCall, ResetPrefixCacheAndAServerWithoutTheRoute) {
  RecordingServer s;
  reset_prefix_cache(s.endpoint(), {});
  EXPECT_EQ(s.paths.back(), "POST /reset_prefix_cache");
  RecordingServer without(/*reset_route=*/false);  // llama.cpp, TGI: 404
  try {
    reset_prefix_cache(without.endpoint(), {});
    ADD_FAILURE() << "a 404 was taken for a reset";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--reset-prefix-cache: POST"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
}

TEST(HttpCall, TheMeasuredStreamsCarryTheHeaders) {
  RecordingServer s;
  HttpClientOptions o;
  o.endpoint = s.endpoint();
  o.api = HttpApi::kOpenAIChat;
  o.model_name = "m";
  o.access.headers = request_headers({"X-Team: blue"}, "sk-9");
  Collector c;
  auto client = make_http_client(o);
  client->start(&c);
  client->send(item(0, 1));
  ASSERT_TRUE(client->wait_all(30s));
  EXPECT_EQ(c.outcome(0).status, Status::kOk) << c.outcome(0).reason;
  const httplib::Headers h = s.last_headers();
  EXPECT_EQ(header(h, "X-Team"), "blue");
  EXPECT_EQ(header(h, "Authorization"), "Bearer sk-9");
  EXPECT_EQ(s.paths.back(), "POST /v1/chat/completions");
}
