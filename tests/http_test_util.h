// What the HTTP client tests share: a ClientCallbacks that keeps every call, an OpenAI stream chunk, and a
// work item.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/client.h"

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

}  // namespace http_test
