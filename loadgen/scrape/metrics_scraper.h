// Samples a server's Prometheus /metrics on a thread of its own, every interval, for the length of a run
// (--scrape-metrics). A scrape that fails (no answer, an HTTP error, text that does not parse) is recorded
// with its reason and the run goes on; the summary says how many failed.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loadgen/clients/client.h"
#include "loadgen/clients/http_call.h"
#include "results/server_metrics.h"

namespace loadgen {

/// One scrape of `url` now: the page parsed and its gauges read, or `error` set.
results::ServerScrape scrape_once(const std::string& url, const HttpAccess& access, double timeout_s);

class MetricsScraper {
 public:
  MetricsScraper(std::string url, HttpAccess access, double interval_s);
  ~MetricsScraper();  ///< stops the thread if still running
  MetricsScraper(const MetricsScraper&) = delete;
  MetricsScraper& operator=(const MetricsScraper&) = delete;

  /// Scrapes at once, then every interval until stop().
  void start();
  /// Stops and returns every scrape, t_s counted from `t0` (the run's start; a scrape before it is negative).
  std::vector<results::ServerScrape> stop(Clock::time_point t0);
  results::ScrapeSummary summary() const;

 private:
  void loop();

  std::string url_;
  HttpAccess access_;
  double interval_s_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::pair<Clock::time_point, results::ServerScrape>> scrapes_;
};

}  // namespace loadgen
