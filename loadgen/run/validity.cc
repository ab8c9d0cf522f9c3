#include "loadgen/run/validity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "loadgen/run/metrics.h"

namespace loadgen {
namespace {

std::string fmt(double v, int prec = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string pct_text(double fraction) { return fmt(100.0 * fraction, fraction * 100 >= 10 ? 0 : 1) + " %"; }

}  // namespace

ValidityOptions mlperf_server_validity() {
  ValidityOptions o;
  o.min_duration_s = 600;
  o.min_requests = 100;
  o.confidence = 0.99;
  o.preset = "mlperf-server";
  return o;
}

int64_t min_values_for_bound(double quantile, double confidence) {
  if (!(quantile > 0 && quantile < 1) || !(confidence > 0 && confidence < 1)) return 0;
  // The largest of n values is below the quantile with probability quantile^n: need that <= 1 - confidence.
  int64_t n = static_cast<int64_t>(std::ceil(std::log(1 - confidence) / std::log(quantile) - 1e-9));
  while (n > 1 && std::pow(quantile, static_cast<double>(n - 1)) <= 1 - confidence) --n;
  while (std::pow(quantile, static_cast<double>(n)) > 1 - confidence) ++n;
  return std::max<int64_t>(n, 1);
}

int64_t upper_bound_rank(int64_t n, double quantile, double confidence) {
  if (n <= 0 || !(quantile > 0 && quantile < 1) || !(confidence > 0 && confidence < 1)) return 0;
  // X ~ Binomial(n, q) values fall below the true quantile; Y = n - X ~ Binomial(n, 1 - q) above it.
  // P(X <= k - 1) = P(Y >= n - k + 1) >= c  <=>  P(Y <= n - k) <= 1 - c. Take the largest j = n - k with
  // P(Y <= j) <= 1 - c, summing Y's probabilities in log space (lgamma) from j = 0.
  const double p = 1 - quantile, alpha = 1 - confidence;
  const double nn = static_cast<double>(n);
  const double lp = std::log(p), lq = std::log(quantile), lgn = std::lgamma(nn + 1);
  double cdf = 0;
  int64_t last = -1;
  for (int64_t j = 0; j <= n; ++j) {
    const double jj = static_cast<double>(j);
    cdf += std::exp(lgn - std::lgamma(jj + 1) - std::lgamma(nn - jj + 1) + jj * lp + (nn - jj) * lq);
    if (cdf > alpha) break;
    last = j;
  }
  if (last < 0) return 0;
  return n - last;
}

results::PercentileBound percentile_bound(const std::string& metric, std::vector<double> values, double percentile,
                                          double confidence) {
  results::PercentileBound b;
  b.metric = metric;
  b.percentile = percentile;
  b.n = static_cast<int64_t>(values.size());
  b.min_n = min_values_for_bound(percentile / 100.0, confidence);
  if (values.empty()) return b;
  std::sort(values.begin(), values.end());
  b.estimate = percentile_sorted(values, percentile);
  b.rank = upper_bound_rank(b.n, percentile / 100.0, confidence);
  if (b.rank > 0) b.upper = values[static_cast<size_t>(b.rank - 1)];
  return b;
}

results::Validity judge_validity(const results::Summary& s, const std::vector<results::RequestRow>& rows,
                                 const ValidityOptions& o) {
  results::Validity v;
  v.confidence = o.confidence;
  v.min_duration_s = o.min_duration_s;
  v.min_requests = o.min_requests;
  v.preset = o.preset;
  auto& why = v.reasons;
  if (const auto& in = s.interruption) {
    if (in->cause == "saturated")
      why.push_back("stopped on saturation (--stop-on-saturation) at " + fmt(in->at_s) + " s: the backlog and TTFT kept growing");
    else if (in->cause == "killed")
      why.push_back("the run was killed: " + std::to_string(in->ended) + " of " + std::to_string(in->scheduled) +
                    " requests left records");
    else
      why.push_back("interrupted by " + in->cause + " at " + fmt(in->at_s) + " s: " + std::to_string(in->sent) + " of " +
                    std::to_string(in->scheduled) + " requests sent, " + std::to_string(in->aborted) + " aborted");
  }
  if (s.duration < o.min_duration_s)
    why.push_back("ran " + fmt(s.duration) + " s, shorter than the minimum duration of " + fmt(o.min_duration_s, 0) +
                  " s (--min-duration)");
  if (s.completed < o.min_requests)
    why.push_back(std::to_string(s.completed) + " requests completed, fewer than the minimum of " +
                  std::to_string(o.min_requests) + " (--min-requests)");
  if (s.failed + s.rejected > 0) {
    std::string first;
    for (const auto& [reason, n] : s.failures_by_reason)
      if (first.empty() || n > s.failures_by_reason.at(first)) first = reason;
    why.push_back(std::to_string(s.failed) + " failed and " + std::to_string(s.rejected) + " rejected requests" +
                  (first.empty() ? "" : " (most: \"" + first + "\")"));
  }
  if (!s.drained && !s.interruption) why.push_back("requests were still in flight when the run stopped (--drain-timeout)");
  if (std::isfinite(s.request_rate) && s.num_prompts >= 2 && !s.interruption) {
    const double tol = std::max(o.rate_tolerance, 3.0 / std::sqrt(static_cast<double>(s.num_prompts)));
    if (!(std::fabs(s.achieved_request_rate / s.request_rate - 1) <= tol))
      why.push_back("requests went out at " + fmt(s.achieved_request_rate, 3) + " req/s, not within " + pct_text(tol) +
                    " of the target " + fmt(s.request_rate, 3) + " req/s");
    if (s.send_lag_p99_ms > o.max_send_lag_p99_ms)
      why.push_back("requests went out late: send lag p99 " + fmt(s.send_lag_p99_ms) + " ms > " +
                    fmt(o.max_send_lag_p99_ms, 0) + " ms");
    const double allowance = std::max(o.drain_allowance_s, o.drain_fraction * s.last_arrival_s);
    if (s.drain_s > allowance)
      why.push_back("the drain after the last arrival took " + fmt(s.drain_s) + " s > " + fmt(allowance) +
                    " s (the engine fell behind the arrivals)");
    if (s.e2el_trend > o.max_e2el_trend)
      why.push_back("growing backlog: the last quarter's median E2E is " + fmt(s.e2el_trend, 1) +
                    "x the first quarter's");
  }
  // The p99 bounds over the same values as the summary's percentiles (ok requests; +inf per failure with
  // --failures-as-inf).
  std::vector<double> ttft, tpot;
  for (const results::RequestRow& r : rows) {
    if (r.status != results::Status::kOk) {
      if (s.failures_as_inf) {
        ttft.push_back(INFINITY);
        tpot.push_back(INFINITY);
      }
      continue;
    }
    if (r.ttft_ms) ttft.push_back(*r.ttft_ms);
    if (r.tpot_ms) tpot.push_back(*r.tpot_ms);
  }
  const std::string conf = pct_text(o.confidence);
  for (auto [name, values] : {std::pair{"ttft", &ttft}, std::pair{"tpot", &tpot}}) {
    results::PercentileBound b = percentile_bound(name, *values, 99, o.confidence);
    if (!b.upper && (b.n > 0 || std::string(name) == "ttft"))
      why.push_back(std::string("p99 ") + (std::string(name) == "ttft" ? "TTFT" : "TPOT") + ": " + std::to_string(b.n) +
                    " values, fewer than the " + std::to_string(b.min_n) + " needed to bound it at " + conf +
                    " confidence");
    v.bounds.push_back(b);
  }
  if (s.client_cost && s.client_cost->busy_fraction > o.busy_warning)
    v.warnings.push_back("the client was busy " + pct_text(s.client_cost->busy_fraction) + " of the run (" +
                         s.client_cost->busy_source + "), more than " + pct_text(o.busy_warning) +
                         ": its own cost may be in the latencies");
  // The SLO on the bound: met only when the bound itself is within the limit.
  if (s.slo) {
    bool all_met = true, unknown = false;
    for (const results::PercentileBound& b : v.bounds) {
      const double limit = b.metric == "ttft" ? s.slo->ttft_ms : s.slo->tpot_ms;
      if (limit <= 0) continue;
      const std::string name = b.metric == "ttft" ? "TTFT" : "TPOT";
      if (!b.upper) {
        unknown = true;
        v.slo_notes.push_back("p99 " + name + " <= " + fmt(limit, 0) + " ms: unknown (no bound from " +
                              std::to_string(b.n) + " values)");
      } else if (*b.upper <= limit) {
        v.slo_notes.push_back("p99 " + name + " <= " + fmt(limit, 0) + " ms: met (bound " + fmt(*b.upper, 2) + " ms)");
      } else {
        all_met = false;
        v.slo_notes.push_back("p99 " + name + " <= " + fmt(limit, 0) + " ms: NOT met (bound " + fmt(*b.upper, 2) +
                              " ms, estimate " + fmt(b.estimate, 2) + " ms)");
      }
    }
    if (!all_met) v.slo_met = false;
    else if (!unknown) v.slo_met = true;
  }
  v.valid = why.empty();
  return v;
}

}  // namespace loadgen
