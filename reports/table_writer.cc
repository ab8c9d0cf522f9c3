#include "reports/table_writer.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "reports/verdict_writer.h"

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

void dist_row(std::ostream& out, const char* name, const results::Distribution& d) {
  char buf[256];
  if (d.count == 0) {
    std::snprintf(buf, sizeof buf, "%-6s %9s  (no values)\n", name, "-");
  } else {
    std::snprintf(buf, sizeof buf, "%-6s %10s %10s %10s %10s %10s %10s %10s %8lld\n", name, f(d.mean).c_str(),
                  f(d.median).c_str(), f(d.std).c_str(), f(d.p90).c_str(), f(d.p95).c_str(), f(d.p99).c_str(),
                  f(d.max).c_str(), static_cast<long long>(d.count));
  }
  out << buf;
}

}  // namespace

void write_summary_table(std::ostream& out, const results::Summary& s) {
  const std::string rule(86, '=');
  const std::string thin(86, '-');
  out << rule << '\n';
  line(out, "Benchmark:", s.label.empty() ? s.backend : s.label);
  line(out, "Model:", s.model_id + (s.tokenizer_id.empty() ? "" : "  (tokenizer " + s.tokenizer_id + ")"));
  line(out, "Requests:", std::to_string(s.num_prompts) + " scheduled = " + std::to_string(s.completed) +
                             " completed + " + std::to_string(s.failed) + " failed + " + std::to_string(s.rejected) +
                             " rejected  (" + (s.accounted ? "all accounted for" : "NOT ACCOUNTED FOR") + ")");
  std::string target = std::isinf(s.request_rate)
                           ? "inf (all at t = 0)"
                           : f(s.request_rate) + " req/s (this schedule: " + f(s.scheduled_request_rate) + " req/s)";
  if (s.max_concurrency > 0) target += ", max concurrency " + std::to_string(s.max_concurrency);
  line(out, "Target request rate:", target);
  line(out, "Achieved send rate:", f(s.achieved_request_rate) + " req/s");
  line(out, "Exec Time (s):", f(s.duration, 3) + "  (first scheduled arrival -> last completion)");
  line(out, "Last arrival / drain (s):", f(s.last_arrival_s, 3) + " / " + f(s.drain_s, 3));
  line(out, "Request throughput:", f(s.request_throughput, 3) + " req/s");
  if (s.slo) {
    std::string slo;
    if (s.slo->ttft_ms > 0) slo += "TTFT <= " + f(s.slo->ttft_ms, 0) + " ms ";
    if (s.slo->tpot_ms > 0) slo += "TPOT <= " + f(s.slo->tpot_ms, 0) + " ms ";
    line(out, "Goodput:", f(s.request_goodput.value_or(0), 3) + " req/s (" + std::to_string(s.good_requests) +
                              " requests met " + slo + ")");
  }
  line(out, "Input tokens:", std::to_string(s.total_input_tokens) + "  (" + f(s.input_throughput, 1) + " tok/s)");
  line(out, "Output tokens:", std::to_string(s.total_output_tokens) + "  (" + f(s.output_throughput, 1) +
                                  " tok/s, counted by " + (s.output_token_source.empty() ? "-" : s.output_token_source) +
                                  ")");
  if (s.first_token_source.find("reasoning") != std::string::npos)
    line(out, "First token counted:", s.first_token_source + " (a reasoning_content delta counts as the first token)");
  line(out, "Total token throughput:", f(s.total_token_throughput, 1) + " tok/s");
  if (const auto& pc = s.prefix_cache)
    line(out, "Prefix cache hit rate:", f(100.0 * pc->hit_rate(), 1) + " % of " + std::to_string(pc->queries) +
                                            " prompt tokens (" + std::to_string(pc->block_hits) + " of " +
                                            std::to_string(pc->block_queries) + " full blocks)");
  if (const auto& sm = s.server_metrics)
    line(out, "Server metrics:", sm->failed() ? "scraping failed (" + std::to_string(sm->failures) + " of " +
                                                    std::to_string(sm->scrapes) + "): " + sm->first_error
                                              : std::to_string(sm->scrapes - sm->failures) + " scrapes of " + sm->url +
                                                    (sm->failures > 0 ? " (" + std::to_string(sm->failures) + " failed)" : ""));
  line(out, "Send lag (ms):", "p50 " + f(s.send_lag_p50_ms, 3) + "  p99 " + f(s.send_lag_p99_ms, 3) + "  max " +
                                  f(s.send_lag_max_ms, 3));
  out << thin << '\n';
  char head[256];
  std::snprintf(head, sizeof head, "%-6s %10s %10s %10s %10s %10s %10s %10s %8s\n", "(ms)", "mean", "median", "std",
                "p90", "p95", "p99", "max", "n");
  out << head;
  dist_row(out, "TTFT", s.ttft);
  dist_row(out, "TPOT", s.tpot);
  dist_row(out, "ITL", s.itl);
  dist_row(out, "E2E", s.e2el);
  for (const results::TurnLatency& t : s.ttft_by_turn) {  // multi-turn: TTFT of each turn index
    const std::string name = "TTFT." + std::to_string(t.turn);
    dist_row(out, name.c_str(), t.ttft);
  }
  out << "(latencies from the scheduled arrival; " << (s.failures_as_inf ? "failures counted as +inf" : "successful requests only")
      << ")\n";
  out << thin << '\n';
  if (!s.failures_by_reason.empty()) {
    out << "Failures by reason:\n";
    for (const auto& [reason, n] : s.failures_by_reason) out << "  " << n << "  " << reason << '\n';
  }
  if (s.kept_up && std::isinf(s.request_rate)) {
    line(out, "Kept up:", "yes (offline run, all sent at t = 0: every request finished, none failed)");
  } else if (s.kept_up) {
    line(out, "Kept up:", "yes (sent on schedule, drained promptly, no growing backlog, none failed)");
  } else {
    line(out, "Kept up:", "NO");
    for (const auto& note : s.kept_up_notes) out << "  - " << note << '\n';
  }
  write_verdict_block(out, s);
  out << rule << '\n';
}

}  // namespace reports
