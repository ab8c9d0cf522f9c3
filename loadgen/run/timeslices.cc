#include "loadgen/run/timeslices.h"

#include <algorithm>
#include <cmath>

#include "loadgen/run/metrics.h"

namespace loadgen {
namespace {

double pct(std::vector<double> v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return percentile_sorted(v, p);
}

}  // namespace

std::vector<results::Timeslice> timeslices(const std::vector<results::RequestRow>& rows, double width_s) {
  std::vector<results::Timeslice> out;
  if (!(width_s > 0)) return out;
  double last = 0;
  for (const results::RequestRow& r : rows) {
    if (r.send_s) last = std::max(last, *r.send_s);
    if (r.end_s) last = std::max(last, *r.end_s);
    if (!r.chunk_times_s.empty()) last = std::max(last, r.chunk_times_s.back());
  }
  if (!std::isfinite(last)) return out;
  const size_t n = static_cast<size_t>(std::floor(last / width_s)) + 1;
  out.resize(n);
  std::vector<std::vector<double>> ttft(n), tpot(n);
  std::vector<double> tokens(n, 0);
  auto slot = [&](double t) -> std::optional<size_t> {
    if (!std::isfinite(t) || t < 0) return std::nullopt;
    return std::min(n - 1, static_cast<size_t>(std::floor(t / width_s)));
  };
  for (const results::RequestRow& r : rows) {
    if (r.send_s)
      if (auto i = slot(*r.send_s)) ++out[*i].started;
    for (size_t k = 0; k < r.chunk_times_s.size(); ++k)
      if (auto i = slot(r.chunk_times_s[k])) tokens[*i] += k < r.chunk_tokens.size() ? r.chunk_tokens[k] : 1;
    if (!r.end_s) continue;
    const auto i = slot(*r.end_s);
    if (!i) continue;
    ++out[*i].ended;
    if (r.status != results::Status::kOk) continue;
    if (r.ttft_ms) ttft[*i].push_back(*r.ttft_ms);
    if (r.tpot_ms) tpot[*i].push_back(*r.tpot_ms);
  }
  for (size_t i = 0; i < n; ++i) {
    results::Timeslice& t = out[i];
    t.start_s = static_cast<double>(i) * width_s;
    t.end_s = t.start_s + width_s;
    t.output_tokens_per_s = tokens[i] / width_s;
    t.ttft_p50_ms = pct(ttft[i], 50);
    t.ttft_p99_ms = pct(ttft[i], 99);
    t.tpot_p50_ms = pct(tpot[i], 50);
    t.tpot_p99_ms = pct(tpot[i], 99);
  }
  return out;
}

std::optional<results::SteadyState> steady_state(const std::vector<results::RequestRow>& rows) {
  // Requests in flight as a step function: +1 at each send, -1 at each end.
  std::vector<std::pair<double, int>> ev;
  double last_arrival = 0;
  for (const results::RequestRow& r : rows) {
    last_arrival = std::max(last_arrival, r.scheduled_s);
    if (!r.send_s || !r.end_s) continue;
    ev.emplace_back(*r.send_s, 1);
    ev.emplace_back(*r.end_s, -1);
  }
  if (ev.empty() || !(last_arrival > 0)) return std::nullopt;
  std::sort(ev.begin(), ev.end());
  auto level_at = [&](double t) {
    int level = 0;
    for (const auto& [time, d] : ev) {
      if (time > t) break;
      level += d;
    }
    return level;
  };
  // The plateau: the median level over 200 evenly spaced moments of the arrivals' second half.
  std::vector<double> levels;
  for (int k = 0; k < 200; ++k) levels.push_back(level_at(last_arrival * (0.5 + 0.5 * k / 199.0)));
  std::sort(levels.begin(), levels.end());
  const double plateau = percentile_sorted(levels, 50);
  double start = 0;
  int level = 0;
  for (const auto& [time, d] : ev) {
    level += d;
    if (level >= std::max(1.0, plateau)) {
      start = time;
      break;
    }
  }
  results::SteadyState st;
  st.start_s = start;
  st.end_s = last_arrival;
  st.plateau_in_flight = plateau;
  std::vector<double> ttft, tpot, itl, e2el;
  for (const results::RequestRow& r : rows) {
    if (r.status != results::Status::kOk || r.scheduled_s < start || r.scheduled_s > last_arrival) continue;
    ++st.requests;
    if (r.ttft_ms) ttft.push_back(*r.ttft_ms);
    if (r.tpot_ms) tpot.push_back(*r.tpot_ms);
    if (r.e2el_ms) e2el.push_back(*r.e2el_ms);
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  if (st.requests == 0) return std::nullopt;
  st.ttft = distribution(ttft);
  st.tpot = distribution(tpot);
  st.itl = distribution(itl);
  st.e2el = distribution(e2el);
  return st;
}

}  // namespace loadgen
