#include "loadgen/scrape/server_gauges.h"

#include <cmath>
#include <initializer_list>
#include <string_view>

namespace loadgen {

namespace {

/// The first of `names` that the page has: the sum (or mean) of its samples.
std::optional<double> gauge(const std::vector<results::MetricSample>& samples, std::initializer_list<std::string_view> names,
                            bool mean) {
  for (std::string_view name : names) {
    double sum = 0;
    int n = 0;
    for (const results::MetricSample& s : samples)
      if (s.name == name && std::isfinite(s.value)) sum += s.value, ++n;
    if (n > 0) return mean ? sum / n : sum;
  }
  return std::nullopt;
}

}  // namespace

void read_server_gauges(results::ServerScrape& scrape) {
  const auto& s = scrape.samples;
  scrape.running = gauge(s, {"vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size",
                             "llamacpp:requests_processing", "llm_num_requests_running"}, false);
  scrape.waiting = gauge(s, {"vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size",
                             "llamacpp:requests_deferred", "llm_num_requests_waiting"}, false);
  scrape.kv_cache_usage = gauge(s, {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage",
                                    "llamacpp:kv_cache_usage_ratio", "llm_kv_cache_usage_ratio"}, true);
}

}  // namespace loadgen
