// What the HTTP client tests share: a ClientCallbacks that keeps every call, an OpenAI stream chunk, a work
// item, and a loopback port nothing listens on.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loadgen/clients/client.h"

namespace http_test {

using loadgen::ClientCallbacks;
using loadgen::Clock;
using loadgen::Outcome;
using loadgen::WorkItem;

struct Rec {
  int sent = 0, done = 0;
  std::vector<int> chunk_tokens;
  std::vector<std::string> chunk_text;
  std::vector<Clock::time_point> chunk_times;
  Clock::time_point sent_at{}, done_at{};
  Outcome outcome;
};

class Collector : public ClientCallbacks {
 public:
  void on_sent(uint64_t i, Clock::time_point t) override {
    std::lock_guard<std::mutex> l(mu);
    recs[i].sent++;
    recs[i].sent_at = t;
  }
  void on_chunk(uint64_t i, int n, std::string_view text, Clock::time_point t) override {
    std::lock_guard<std::mutex> l(mu);
    recs[i].chunk_tokens.push_back(n);
    recs[i].chunk_text.emplace_back(text);
    recs[i].chunk_times.push_back(t);
  }
  void on_done(uint64_t i, const Outcome& o, Clock::time_point t) override {
    std::lock_guard<std::mutex> l(mu);
    recs[i].done++;
    recs[i].outcome = o;
    recs[i].done_at = t;
  }
  Rec get(uint64_t i) {
    std::lock_guard<std::mutex> l(mu);
    return recs[i];
  }
  /// Request i's outcome; throws std::logic_error unless it ended exactly once.
  Outcome outcome(uint64_t i) {
    std::lock_guard<std::mutex> l(mu);
    const auto it = recs.find(i);
    if (it == recs.end() || it->second.done != 1)
      throw std::logic_error("request " + std::to_string(i) + " ended " +
                             std::to_string(it == recs.end() ? 0 : it->second.done) + " times");
    return it->second.outcome;
  }
  /// Waits up to 2 s for request i's first streamed chunk; true when it came.
  bool wait_first_chunk(uint64_t i) {
    for (int n = 0; n < 2000 && get(i).chunk_tokens.empty(); ++n)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return !get(i).chunk_tokens.empty();
  }
  std::mutex mu;
  std::map<uint64_t, Rec> recs;
};

inline std::string openai_chunk(const std::string& text) {
  return "data: " + nlohmann::json({{"choices", {{{"index", 0}, {"text", text}, {"finish_reason", nullptr}}}}}).dump() + "\n\n";
}

inline WorkItem item(uint64_t index, int max_new = 8) {
  WorkItem w;
  w.index = index;
  w.prompt = "Say something";
  w.max_new_tokens = max_new;
  return w;
}

/// Binds port 0, reads the port, closes: nothing listens there afterwards (connecting is refused).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace http_test
