// Prometheus metrics of llm-serve (text exposition format 0.0.4): requests by route and status, finish
// reasons, prompt/generation tokens, TTFT / TPOT / E2E histograms, and the engine's running/waiting/KV
// gauges read at scrape time. Updates are a mutex-guarded add: cheap next to one decode step.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace server {

/// Cumulative histogram with fixed upper bounds (seconds); +Inf implied.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  /// Appends "<name>_bucket{le=...} n", "_sum", "_count" lines.
  void render(const std::string& name, std::string& out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  ///< per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  /// One answered request: route ("/v1/completions"...) and HTTP status (499: the client went away).
  void count_request(const std::string& route, int status);
  /// One finished generation: its finish reason, token counts and latencies (seconds; tpot < 0: n/a).
  void count_generation(engine::FinishReason reason, int prompt_tokens, int output_tokens, double ttft_s,
                        double tpot_s, double e2e_s);
  std::string render(const engine::EngineStats& stats, const engine::EngineInfo& info) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> finished_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace server
