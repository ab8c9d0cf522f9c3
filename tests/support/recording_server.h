// A small OpenAI-completions server for tests (cpp-httplib, a free loopback port) that records what it was
// sent: every request's prompt, when it arrived and when its answer was written, and the answer itself. Each
// answer is unique ("<n>:w0 w1 ..." for the n-th request, one word per streamed chunk, max_tokens of them),
// so a test can tell which earlier answer a later prompt repeats. `fail_request` makes that request (by
// arrival order, 0-based) a 500 instead.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace testing_support {

class RecordingServer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Seen {
    std::string prompt;
    std::string answer;
    Clock::time_point received, answered;  ///< answered: after the last byte was handed to the socket
    bool failed = false;
  };

  explicit RecordingServer(int fail_request = -1) : fail_request_(fail_request) {
    std::signal(SIGPIPE, SIG_IGN);
    http_.new_task_queue = [] { return new httplib::ThreadPool(16); };
    http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    int fd = -1;
    http_.set_socket_options([&fd](int s) {
      int yes = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      fd = s;
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    ::listen(fd, SOMAXCONN);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~RecordingServer() {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    const auto now = Clock::now();
    const nlohmann::json body = nlohmann::json::parse(req.body);
    size_t n;
    {
      std::lock_guard lk(mu_);
      n = seen_.size();
      seen_.push_back({body.value("prompt", ""), "", now, now, static_cast<int>(n) == fail_request_});
    }
    if (static_cast<int>(n) == fail_request_) {
      res.status = 500;
      res.set_content(R"({"error": "the test server fails this one"})", "application/json");
      return;
    }
    const int tokens = body.value("max_tokens", 1);
    res.set_chunked_content_provider("text/event-stream", [this, n, tokens](size_t, httplib::DataSink& sink) {
      std::string answer;
      for (int i = 0; i < tokens; ++i) {
        const std::string word = (i == 0 ? std::to_string(n) + ":" : " ") + "w" + std::to_string(i);
        answer += word;
        const std::string chunk =
            "data: " + nlohmann::json({{"choices", {{{"index", 0}, {"text", word}, {"finish_reason", nullptr}}}}}).dump() + "\n\n";
        sink.write(chunk.data(), chunk.size());
      }
      const std::string fin =
          "data: " + nlohmann::json({{"choices", {{{"index", 0}, {"text", ""}, {"finish_reason", "length"}}}},
                                     {"usage", {{"prompt_tokens", 1}, {"completion_tokens", tokens}}}}).dump() +
          "\n\ndata: [DONE]\n\n";
      sink.write(fin.data(), fin.size());
      {
        std::lock_guard lk(mu_);
        seen_[n].answer = answer;
        seen_[n].answered = Clock::now();
      }
      sink.done();
      return true;
    });
  }

  int fail_request_;
  httplib::Server http_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

}  // namespace testing_support
