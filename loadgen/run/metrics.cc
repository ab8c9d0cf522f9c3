#include "loadgen/run/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>


namespace loadgen {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : percentile_sorted(v, 50);
}

std::string fmt(double v, int prec = 1) {
  std::ostringstream ss;
  ss.setf(std::ios::fixed);
  ss.precision(prec);
  ss << v;
  return ss.str();
}

}  // namespace

double percentile_sorted(const std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  if (frac == 0.0 || v[lo] == v[hi]) return v[lo];  // also keeps inf - inf out of the sum
  return v[lo] + (v[hi] - v[lo]) * frac;
}

results::Distribution distribution(std::vector<double> v) {
  results::Distribution d;
  d.count = static_cast<int64_t>(v.size());
  if (v.empty()) return d;
  // The order statistics the percentiles interpolate between, selected (each nth_element works on what is
  // above the last one) instead of a full sort: a run's ITL values number in the hundreds of thousands, and
  // the summary, the steady state and the timeslices each take their distribution. The percentiles and max are
  // the sorted version's exactly; mean and std may differ in the last bits (another summation order).
  const size_t last = v.size() - 1;
  std::vector<size_t> ks;
  for (double p : {50.0, 90.0, 95.0, 99.0}) {
    const size_t lo = static_cast<size_t>(std::floor(p / 100.0 * static_cast<double>(last)));
    ks.push_back(lo);
    ks.push_back(std::min(lo + 1, last));
  }
  ks.push_back(last);
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  size_t from = 0;
  for (size_t k : ks) {
    std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    from = k + 1;
  }
  const double n = static_cast<double>(v.size());
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / n;
  double ss = 0;
  for (double x : v) ss += (x - d.mean) * (x - d.mean);
  d.std = std::isinf(d.mean) ? kInf : std::sqrt(ss / n);
  d.median = percentile_sorted(v, 50);
  d.p90 = percentile_sorted(v, 90);
  d.p95 = percentile_sorted(v, 95);
  d.p99 = percentile_sorted(v, 99);
  d.max = v.back();
  return d;
}

results::RequestRow request_row(const RequestRecord& r) {
  results::RequestRow row;
  row.index = r.index;
  row.sample_id = r.sample_id;
  row.status = r.status;
  row.error = r.reason;
  row.scheduled_s = r.scheduled_s;
  if (!std::isnan(r.send_s)) row.send_s = r.send_s;
  if (r.done) row.end_s = r.end_s;
  if (r.prompt_tokens >= 0) row.prompt_tokens = r.prompt_tokens;
  if (r.done && r.output_tokens >= 0) row.output_tokens = r.output_tokens;
  row.chunk_times_s = r.chunk_times_s;
  row.chunk_tokens = r.chunk_tokens;
  if (r.session_id >= 0) row.session_id = r.session_id, row.turn = r.turn;
  for (size_t i = 0; i < r.chunk_tokens.size(); ++i)
    if (r.chunk_tokens[i] > 0) {
      row.first_token_s = r.chunk_times_s[i];
      break;
    }
  // ITL: a chunk of k tokens after a gap g is k gaps of g/k (the first chunk's extra tokens have no gap).
  double prev = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i < r.chunk_tokens.size(); ++i) {
    const int k = r.chunk_tokens[i];
    if (k <= 0) continue;
    if (!std::isnan(prev)) {
      const double gap_ms = (r.chunk_times_s[i] - prev) * 1000.0 / k;
      for (int j = 0; j < k; ++j) row.itl_ms.push_back(gap_ms);
    }
    prev = r.chunk_times_s[i];
  }
  if (r.status != Status::kOk) return row;
  if (row.first_token_s) row.ttft_ms = (*row.first_token_s - r.scheduled_s) * 1000.0;
  row.e2el_ms = (r.end_s - r.scheduled_s) * 1000.0;
  if (row.ttft_ms && r.output_tokens > 1) row.tpot_ms = (*row.e2el_ms - *row.ttft_ms) / (r.output_tokens - 1);
  return row;
}

std::vector<results::RequestRow> request_rows(const std::vector<RequestRecord>& records) {
  std::vector<results::RequestRow> rows;
  rows.reserve(records.size());
  for (const auto& r : records) rows.push_back(request_row(r));
  return rows;
}

RequestRecord record_from_row(const results::RequestRow& row) {
  RequestRecord r;
  r.index = row.index;
  r.sample_id = row.sample_id;
  r.scheduled_s = row.scheduled_s;
  r.send_s = row.send_s.value_or(std::numeric_limits<double>::quiet_NaN());
  r.chunk_times_s = row.chunk_times_s;
  r.chunk_tokens = row.chunk_tokens;
  r.done = row.end_s.has_value();
  r.end_s = row.end_s.value_or(std::numeric_limits<double>::quiet_NaN());
  r.status = row.status;
  r.reason = row.error;
  r.prompt_tokens = row.prompt_tokens.value_or(-1);
  r.output_tokens = row.output_tokens.value_or(-1);
  r.count_source = TokenCountSource::kChunks;
  return r;
}

results::Summary summarize(const std::vector<RequestRecord>& records, const MetricsOptions& o) {
  results::Summary s;
  s.num_prompts = static_cast<int64_t>(records.size());
  s.request_rate = o.target_rate;
  s.slo = o.slo;
  s.failures_as_inf = o.failures_as_inf;
  std::vector<double> ttft, tpot, itl, e2el, lag, sends, ok_e2el_in_order;
  std::map<int, std::vector<double>> ttft_by_turn;  // multi-turn runs
  double first_sched = kInf, last_sched = -kInf, last_end = -kInf;
  std::set<std::string> sources, first_tokens;
  bool all_done = true;
  int64_t unfinished = 0;
  for (const auto& r : records) {
    first_sched = std::min(first_sched, r.scheduled_s);
    last_sched = std::max(last_sched, r.scheduled_s);
    if (!std::isnan(r.send_s)) {
      lag.push_back((r.send_s - r.scheduled_s) * 1000.0);
      sends.push_back(r.send_s);
    }
    if (!r.done) {
      all_done = false;
      ++unfinished;
    }
    else last_end = std::max(last_end, r.end_s);
    const results::RequestRow row = request_row(r);
    if (r.status != Status::kOk) {
      (r.status == Status::kRejected ? s.rejected : s.failed) += 1;
      std::string reason = r.reason.empty() ? "unknown" : r.reason.substr(0, 120);
      s.failures_by_reason[reason] += 1;
      if (o.failures_as_inf) {
        if (r.session_id >= 0) ttft_by_turn[r.turn].push_back(kInf);
        ttft.push_back(kInf);
        tpot.push_back(kInf);
        e2el.push_back(kInf);
      }
      continue;
    }
    ++s.completed;
    s.total_input_tokens += std::max(r.prompt_tokens, 0);
    s.total_output_tokens += std::max(r.output_tokens, 0);
    sources.insert(to_string(r.count_source));
    if (r.first_token != FirstToken::kNone) first_tokens.insert(to_string(r.first_token));
    if (row.ttft_ms) ttft.push_back(*row.ttft_ms);
    if (row.ttft_ms && r.session_id >= 0) ttft_by_turn[r.turn].push_back(*row.ttft_ms);
    if (row.tpot_ms) tpot.push_back(*row.tpot_ms);
    e2el.push_back(*row.e2el_ms);
    ok_e2el_in_order.push_back(*row.e2el_ms);
    itl.insert(itl.end(), row.itl_ms.begin(), row.itl_ms.end());
    bool good = true;
    if (o.slo && o.slo->ttft_ms > 0 && !(row.ttft_ms && *row.ttft_ms <= o.slo->ttft_ms)) good = false;
    if (o.slo && o.slo->tpot_ms > 0 && row.tpot_ms && *row.tpot_ms > o.slo->tpot_ms) good = false;
    s.good_requests += good;
  }
  s.accounted = s.completed + s.failed + s.rejected == s.num_prompts;
  s.drained = all_done;
  s.duration = records.empty() || last_end == -kInf ? 0.0 : std::max(0.0, last_end - first_sched);
  s.last_arrival_s = records.empty() ? 0.0 : last_sched;
  s.drain_s = last_end == -kInf ? 0.0 : last_end - last_sched;
  if (s.duration > 0) {
    s.request_throughput = s.completed / s.duration;
    s.input_throughput = s.total_input_tokens / s.duration;
    s.output_throughput = s.total_output_tokens / s.duration;
    s.total_token_throughput = (s.total_input_tokens + s.total_output_tokens) / s.duration;
    if (o.slo) s.request_goodput = s.good_requests / s.duration;
  }
  s.ttft = distribution(ttft);
  for (auto& [turn, values] : ttft_by_turn) s.ttft_by_turn.push_back({turn, distribution(std::move(values))});
  s.tpot = distribution(tpot);
  s.itl = distribution(itl);
  s.e2el = distribution(e2el);
  results::Distribution lag_d = distribution(lag);
  s.send_lag_p50_ms = lag_d.median;
  s.send_lag_p99_ms = lag_d.p99;
  s.send_lag_max_ms = lag_d.max;
  std::sort(sends.begin(), sends.end());
  s.achieved_request_rate = sends.size() < 2 ? 0.0
                            : sends.back() > sends.front()
                                ? static_cast<double>(sends.size() - 1) / (sends.back() - sends.front())
                                : kInf;
  s.scheduled_request_rate = records.size() < 2 ? 0.0
                             : last_sched > first_sched ? static_cast<double>(records.size() - 1) / (last_sched - first_sched)
                                                        : kInf;
  for (const auto& src : sources) s.output_token_source += (s.output_token_source.empty() ? "" : "+") + src;
  for (const auto& k : first_tokens) s.first_token_source += (s.first_token_source.empty() ? "" : "+") + k;
  // The latency trend tells a backlog that grows (overload) from a steady queue.
  if (ok_e2el_in_order.size() >= 8) {
    const size_t q = ok_e2el_in_order.size() / 4;
    std::vector<double> first(ok_e2el_in_order.begin(), ok_e2el_in_order.begin() + q);
    std::vector<double> last(ok_e2el_in_order.end() - q, ok_e2el_in_order.end());
    const double m0 = median_of(first);
    s.e2el_trend = m0 > 0 ? median_of(last) / m0 : 0.0;
  }
  // Kept up: every request accounted for and finished, none failed, and for an open-loop rate also the
  // schedule met (rate and send lag) and no growing backlog. -X inf is a throughput test: no rate to meet.
  auto& notes = s.kept_up_notes;
  if (!s.drained) notes.push_back(std::to_string(unfinished) + " requests had not finished when the run stopped");
  if (s.failed + s.rejected > 0)
    notes.push_back(std::to_string(s.failed) + " failed and " + std::to_string(s.rejected) + " rejected requests");
  if (std::isfinite(o.target_rate) && records.size() >= 2) {
    // Against the drawn schedule's own rate: a Poisson draw of N gaps is itself off the target by ~1/sqrt(N).
    if (s.achieved_request_rate < o.min_rate_fraction * s.scheduled_request_rate)
      notes.push_back("requests went out at " + fmt(s.achieved_request_rate, 2) + "/s, below the schedule's " +
                      fmt(s.scheduled_request_rate, 2) + "/s");
    if (s.send_lag_p99_ms > o.max_send_lag_p99_ms)
      notes.push_back("requests went out late: send lag p99 " + fmt(s.send_lag_p99_ms) + " ms > " +
                      fmt(o.max_send_lag_p99_ms, 0) + " ms");
    const double offered = std::min(o.target_rate, s.achieved_request_rate);
    if (offered > 0 && s.request_throughput < o.min_throughput_fraction * offered)
      notes.push_back("completions (" + fmt(s.request_throughput, 2) + " req/s over the run) fell short of arrivals (" +
                      fmt(offered, 2) + " req/s): " + fmt(s.drain_s, 1) + " s of draining after the last arrival");
    if (s.e2el_trend > o.max_e2el_trend)
      notes.push_back("the engine fell behind: the last quarter's median E2E is " + fmt(s.e2el_trend, 1) +
                      "x the first quarter's");
  }
  s.kept_up = notes.empty();
  return s;
}

}  // namespace loadgen
