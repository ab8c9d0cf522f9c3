#include "loadgen/scrape/metrics_scraper.h"

#include <algorithm>

#include "common/thread_name.h"
#include "loadgen/scrape/prometheus_text.h"
#include "loadgen/scrape/server_gauges.h"

namespace loadgen {

results::ServerScrape scrape_once(const std::string& url, const HttpAccess& access, double timeout_s) {
  results::ServerScrape s;
  const HttpAnswer a = http_call("GET", url, "", access, timeout_s);
  if (!a.ok()) {
    s.error = "GET " + url + ": " + a.describe();
    return s;
  }
  try {
    s.samples = parse_prometheus_text(a.body).samples;
  } catch (const PrometheusParseError& e) {
    s.error = url + ": not Prometheus text: " + e.what();
    return s;
  }
  read_server_gauges(s);
  return s;
}

MetricsScraper::MetricsScraper(std::string url, HttpAccess access, double interval_s)
    : url_(std::move(url)), access_(std::move(access)), interval_s_(interval_s) {}

MetricsScraper::~MetricsScraper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetricsScraper::start() { thread_ = std::thread([this] {
    common::name_this_thread("lg-scrape");
    loop();
  }); }

void MetricsScraper::loop() {
  // A scrape may take at most the interval (bounded to [0.2 s, 5 s]) so that a hung server cannot hold the
  // samples back for long; the next one starts on its own schedule.
  const double timeout = std::clamp(interval_s_, 0.2, 5.0);
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_s_));
  Clock::time_point next = Clock::now();
  for (;;) {
    const Clock::time_point at = Clock::now();
    results::ServerScrape s = scrape_once(url_, access_, timeout);
    std::unique_lock<std::mutex> lock(mu_);
    scrapes_.emplace_back(at, std::move(s));
    next += period;
    if (next < Clock::now()) next = Clock::now();  // fell behind (a slow scrape): no burst to catch up
    if (cv_.wait_until(lock, next, [&] { return stopping_; })) return;
  }
}

std::vector<results::ServerScrape> MetricsScraper::stop(Clock::time_point t0) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<results::ServerScrape> out;
  for (auto& [at, s] : scrapes_) {
    s.t_s = std::chrono::duration<double>(at - t0).count();
    out.push_back(s);
  }
  return out;
}

results::ScrapeSummary MetricsScraper::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  results::ScrapeSummary sum;
  sum.url = url_;
  for (const auto& [at, s] : scrapes_) {
    ++sum.scrapes;
    if (!s.error.empty()) {
      ++sum.failures;
      if (sum.first_error.empty()) sum.first_error = s.error;
    }
  }
  return sum;
}

}  // namespace loadgen
