// The server's side of a run: its Prometheus /metrics sampled during the run (--scrape-metrics), one scrape a
// second, as server_metrics.jsonl holds them (docs/formats.md) and the HTML report draws them. Plain data.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace results {

/// One sample of the Prometheus text: name{labels} value (a histogram's _bucket/_sum/_count are samples too).
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  bool operator==(const MetricSample&) const = default;
};

/// One scrape, and the three gauges a serving engine's load shows in (whatever the server calls them:
/// loadgen/scrape/server_gauges.h knows vLLM's, SGLang's, TGI's, llama.cpp's and llm-serve's names).
struct ServerScrape {
  double t_s = 0;                        ///< seconds from the run's start (the schedule's t0), as requests.jsonl
  std::string error;                     ///< "" when the scrape answered and parsed
  std::optional<double> running;         ///< requests in the running batch
  std::optional<double> waiting;         ///< requests queued
  std::optional<double> kv_cache_usage;  ///< fraction of the KV cache in use, 0..1
  std::vector<MetricSample> samples;     ///< everything the page held
  bool operator==(const ServerScrape&) const = default;
};

/// summary.json's "server_metrics": where the samples came from and whether scraping worked.
struct ScrapeSummary {
  std::string url;
  int64_t scrapes = 0;       ///< attempts
  int64_t failures = 0;      ///< of those, no answer or unparsable
  std::string first_error;   ///< the first failure's reason
  bool failed() const { return scrapes > 0 && failures == scrapes; }
};

}  // namespace results
