#include "reports/verdict_writer.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace reports {
namespace {

std::string f(double v, int prec = 2) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

void line(std::ostream& out, const char* key, const std::string& value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-28s", key);
  out << buf << value << '\n';
}

}  // namespace

void write_verdict_block(std::ostream& out, const results::Summary& s) {
  if (const auto& in = s.interruption)
    line(out, "Interrupted:", in->cause + (in->at_s > 0 ? " at " + f(in->at_s, 1) + " s" : std::string()) + ": " +
                                  std::to_string(in->scheduled) + " scheduled = " + std::to_string(in->sent) +
                                  " sent + " + std::to_string(in->scheduled - in->sent) + " not sent; sent = " +
                                  std::to_string(in->ended) + " ended + " + std::to_string(in->aborted) + " aborted");
  if (const auto& c = s.client_cost)
    line(out, "Client cost:", "busy " + f(100 * c->busy_fraction, 2) + " % of the run (" + c->busy_source + ")" +
                                  (c->cpu_per_request_us >= 0 ? ", CPU " + f(c->cpu_per_request_us, 1) +
                                                                    " us a request (one core: ~" +
                                                                    f(1e3 / c->cpu_per_request_us, 1) + "k req/s)"
                                                              : std::string()) +
                                  "; chunk arrival -> record lag p50 " + f(c->chunk_lag_p50_ms, 3) + " ms, p99 " +
                                  f(c->chunk_lag_p99_ms, 3) + " ms");
  if (const auto& st = s.steady_state)
    line(out, "Steady state:", "requests scheduled " + f(st->start_s, 1) + "-" + f(st->end_s, 1) + " s (" +
                                   std::to_string(st->requests) + " ok): TTFT p50 " + f(st->ttft.median) + " p99 " +
                                   f(st->ttft.p99) + " ms, TPOT p50 " + f(st->tpot.median) + " p99 " + f(st->tpot.p99) +
                                   " ms");
  const results::Validity& v = s.validity;
  const std::string conf = f(100 * v.confidence, v.confidence * 100 == std::floor(v.confidence * 100) ? 0 : 1) + " %";
  for (const results::PercentileBound& b : v.bounds) {
    const std::string key = "p99 " + std::string(b.metric == "ttft" ? "TTFT" : "TPOT") + " (ms):";
    if (b.n == 0) continue;
    line(out, key.c_str(), f(b.estimate) + (b.upper ? ", upper bound " + f(*b.upper) + " at " + conf + " (value " +
                                                          std::to_string(b.rank) + " of " + std::to_string(b.n) + ")"
                                                    : ", no upper bound at " + conf + " (" + std::to_string(b.n) +
                                                          " values, " + std::to_string(b.min_n) + " needed)"));
  }
  if (s.slo) {
    line(out, "SLO on the bound:", !v.slo_met ? "unknown" : *v.slo_met ? "met" : "NOT met");
    for (const std::string& n : v.slo_notes) out << "  - " << n << '\n';
  }
  std::string verdict = v.valid ? "VALID" : "INVALID";
  verdict += " (min " + f(v.min_duration_s, 0) + " s, " + std::to_string(v.min_requests) + " requests, p99 bounds at " +
             conf + (v.preset.empty() ? "" : "; " + v.preset) + ")";
  line(out, "Verdict:", verdict);
  for (const std::string& r : v.reasons) out << "  - " << r << '\n';
  for (const std::string& w : v.warnings) out << "  ! " << w << '\n';
}

}  // namespace reports
