#include "reports/run_series.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

namespace reports {
namespace {

using results::RequestRow;
using results::RunData;
using results::Status;

// Sums per-time deltas into a step series starting at 0 (ties applied together, one point per instant).
svg::Series step_from_events(std::string name, std::vector<std::pair<double, double>> events) {
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  svg::Series s{std::move(name), {}, {}, svg::SeriesStyle::kStep};
  if (events.empty()) return s;
  s.x.push_back(std::min(0.0, events.front().first));
  s.y.push_back(0);
  double level = 0;
  for (size_t i = 0; i < events.size();) {
    const double t = events[i].first;
    for (; i < events.size() && events[i].first == t; ++i) level += events[i].second;
    s.x.push_back(t);
    s.y.push_back(std::max(0.0, level));
  }
  return s;
}

}  // namespace

std::vector<double> ok_latencies_ms(const RunData& run, const std::string& metric) {
  std::vector<double> v;
  for (const RequestRow& r : run.requests) {
    if (r.status != Status::kOk) continue;
    const std::optional<double>& x = metric == "ttft" ? r.ttft_ms : metric == "tpot" ? r.tpot_ms : r.e2el_ms;
    if (x && std::isfinite(*x)) v.push_back(*x);
  }
  return v;
}

svg::Series tokens_in_flight(const RunData& run) {
  std::vector<std::pair<double, double>> ev;
  if (run.has_chunks) {
    for (const RequestRow& r : run.requests) {
      if (!r.send_s || !std::isfinite(*r.send_s)) continue;
      const double prompt = r.prompt_tokens.value_or(0);
      double held = prompt;
      ev.emplace_back(*r.send_s, prompt);
      for (size_t i = 0; i < r.chunk_times_s.size(); ++i) {
        const double k = i < r.chunk_tokens.size() ? r.chunk_tokens[i] : 1;
        ev.emplace_back(r.chunk_times_s[i], k);
        held += k;
      }
      const double end = r.end_s.value_or(r.chunk_times_s.empty() ? *r.send_s : r.chunk_times_s.back());
      ev.emplace_back(end, -held);
    }
  }
  return step_from_events(run.label, std::move(ev));
}

svg::Series requests_in_flight(const RunData& run) {
  std::vector<std::pair<double, double>> ev;
  for (const RequestRow& r : run.requests) {
    if (!r.send_s || !std::isfinite(*r.send_s) || !r.end_s) continue;
    ev.emplace_back(*r.send_s, 1);
    ev.emplace_back(*r.end_s, -1);
  }
  return step_from_events(run.label, std::move(ev));
}

}  // namespace reports
