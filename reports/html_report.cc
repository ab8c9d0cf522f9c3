#include "reports/html_report.h"
#include "reports/server_charts.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <sstream>
#include <stdexcept>

#include "reports/trust_html.h"
#include "results/files.h"
#include "results/sweep_json.h"

namespace reports {
namespace fs = std::filesystem;
using nlohmann::json;
using results::AutoProbe;
using results::AutoResult;
using results::batch_size_label;
using results::qps_label;
using results::RequestRow;
using results::Status;
using results::Summary;
using results::SweepCell;
using svg::escape_xml;
using svg::format_number;

/// One number of a summary, for tables and charts.
using SummaryField = double (*)(const Summary&);

namespace {

// No '>' anywhere in the CSS: the page stays well-formed XML as well as HTML, which the tests check.
constexpr const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}p.meta{color:#666;margin:2px 0}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.key,th.key{text-align:left}
td.failed{color:#b00;text-align:left}.bad{color:#b00}td.lag{background:#fff4e0}td.ok{color:#070}td.bad{color:#b00}
.scroll{overflow-x:auto}.charts{display:flex;flex-wrap:wrap;gap:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.kv{column-count:3;column-gap:28px;font-size:13px;margin:6px 0}
.kv div{break-inside:avoid;padding:1px 0;border-bottom:1px solid #eee;overflow-wrap:anywhere}
.kv .k{color:#666;display:inline-block;min-width:160px}
)";

std::string h(const std::string& s) { return escape_xml(s); }

// Infinite values (a rate of inf, latencies under --failures-as-inf) read "inf" rather than format_number's "-".
std::string num(double v, int significant = 4) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return format_number(v, significant);
}

std::string json_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return format_number(v.get<double>(), 6);
  return v.dump();
}

// Nested settings objects as dotted keys ("engine.batch_size"), in the file's key order.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>* out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out->emplace_back(prefix, json_value_text(j));
  }
}

// Settings as a compact multi-column list of "key value" lines; empty values are left out.
std::string settings_table(const json& obj) {
  std::vector<std::pair<std::string, std::string>> rows;
  flatten(obj, "", &rows);
  std::ostringstream o;
  o << "<div class=\"kv\">\n";
  for (const auto& [k, v] : rows)
    if (!v.empty() && v != "\"\"" && v != "null")
      o << "<div><span class=\"k\">" << h(k) << "</span> " << h(v) << "</div>\n";
  o << "</div>\n";
  return o.str();
}

std::string chart_div(const svg::Chart& c) { return "<div>" + svg::render(c) + "</div>\n"; }

svg::Chart make_chart(const std::string& id, const std::string& title, const std::string& x_label,
                      const std::string& y_label) {
  svg::Chart c;
  c.id = id;
  c.title = title;
  c.x_label = x_label;
  c.y_label = y_label;
  c.width = 660;
  c.height = 330;
  return c;
}

// ---- sweep section ----

std::string sweep_html_table(const SweepData& s) {
  std::ostringstream o;
  o << "<div class=\"scroll\"><table><tr><th class=\"key\">batch size</th>";
  for (double q : s.qps) o << "<th>" << h(qps_label(q)) << " QPS</th>";
  o << "</tr>\n";
  for (int bs : s.batch_sizes) {
    o << "<tr><th class=\"key\">" << h(batch_size_label(bs)) << "</th>";
    for (double q : s.qps) {
      const SweepCell* cell = nullptr;
      for (const SweepCell& c : s.cells)
        if (c.concurrency == 0 && c.batch_size == bs && std::fabs(c.qps - q) <= 1e-9 * std::max(1.0, q)) cell = &c;
      if (!cell) {
        o << "<td>-</td>";
      } else if (cell->status != Status::kOk || !cell->summary) {
        o << "<td class=\"failed\" title=\"" << h(cell->error) << "\">failed: " << h(cell->error.substr(0, 60))
          << "</td>";
      } else {
        const Summary& sm = *cell->summary;
        o << "<td" << (!sm.kept_up ? " class=\"lag\" title=\"did not keep up with the schedule\"" : "") << ">"
          << num(sm.duration) << " s / " << num(sm.ttft.p99) << " ms";
        const double lost = static_cast<double>(sm.failed + sm.rejected);
        if (lost > 0) o << " <span class=\"bad\">(" << format_number(lost) << " lost)</span>";
        o << "</td>";
      }
    }
    o << "</tr>\n";
  }
  o << "</table></div>\n<p class=\"meta\">Each cell: total time (first scheduled arrival to last completion) / "
       "p99 TTFT. Shaded: the run did not keep up with its schedule.</p>\n";
  return o.str();
}

// The closed-loop cells (--concurrency): rows batch size, columns requests in flight.
std::string concurrency_html_table(const SweepData& s) {
  std::ostringstream o;
  o << "<div class=\"scroll\"><table><tr><th class=\"key\">batch size</th>";
  for (int c : s.concurrency) o << "<th>C=" << c << "</th>";
  o << "</tr>\n";
  for (int bs : s.batch_sizes) {
    o << "<tr><th class=\"key\">" << h(batch_size_label(bs)) << "</th>";
    for (int conc : s.concurrency) {
      const SweepCell* cell = nullptr;
      for (const SweepCell& c : s.cells)
        if (c.concurrency == conc && c.batch_size == bs) cell = &c;
      if (!cell) {
        o << "<td>-</td>";
      } else if (cell->status != Status::kOk || !cell->summary) {
        o << "<td class=\"failed\" title=\"" << h(cell->error) << "\">failed: " << h(cell->error.substr(0, 60))
          << "</td>";
      } else {
        const Summary& sm = *cell->summary;
        o << "<td>" << num(sm.request_throughput) << " req/s / " << num(sm.ttft.p99) << " ms";
        const double lost = static_cast<double>(sm.failed + sm.rejected);
        if (lost > 0) o << " <span class=\"bad\">(" << format_number(lost) << " lost)</span>";
        o << "</td>";
      }
    }
    o << "</tr>\n";
  }
  o << "</table></div>\n<p class=\"meta\">Closed loop: each cell keeps C requests in flight, sending the next "
       "as one finishes; request throughput / p99 TTFT.</p>\n";
  return o.str();
}

// One series per batch size over the target rates, from each ok cell's summary.
svg::Chart sweep_chart(const SweepData& s, const std::string& id, const std::string& title, SummaryField field,
                       const std::string& y_label) {
  svg::Chart c = make_chart(id, title, "target QPS", y_label);
  c.x_from_zero = true;
  for (int bs : s.batch_sizes) {
    std::vector<std::pair<double, double>> pts;
    for (const SweepCell& cell : s.cells)
      if (cell.batch_size == bs && cell.status == Status::kOk && cell.summary && std::isfinite(cell.qps))
        pts.emplace_back(cell.qps, field(*cell.summary));
    std::sort(pts.begin(), pts.end());
    svg::Series series{bs > 0 ? "batch " + std::to_string(bs) : "server", {}, {}, svg::SeriesStyle::kMarkers};
    for (auto [x, y] : pts) series.x.push_back(x), series.y.push_back(y);
    c.series.push_back(std::move(series));
  }
  return c;
}

std::string auto_section(const SweepData& s, const std::string& id) {
  if (!s.autoq) return "";
  const AutoResult& a = *s.autoq;
  std::ostringstream o;
  o << "<h3>Max sustainable QPS</h3>\n<p>SLO: p99 TTFT &lt;= "
    << (a.slo.ttft_ms > 0 ? format_number(a.slo.ttft_ms) + " ms" : std::string("(none)")) << ", p99 TPOT &lt;= "
    << (a.slo.tpot_ms > 0 ? format_number(a.slo.tpot_ms) + " ms" : std::string("(none)")) << "</p>\n<table><tr>"
    << "<th class=\"key\">batch size</th><th>max QPS meeting the SLO</th></tr>\n";
  for (size_t i = 0; i < s.batch_sizes.size() && i < a.max_qps.size(); ++i)
    o << "<tr><td class=\"key\">" << h(batch_size_label(s.batch_sizes[i])) << "</td><td><b>"
      << (a.max_qps[i] > 0 ? h(qps_label(a.max_qps[i])) : std::string("none")) << "</b></td></tr>\n";
  o << "</table>\n<table><tr><th>#</th><th>batch size</th><th>QPS</th><th>p99 TTFT ms</th><th>p99 TPOT ms</th>"
       "<th>meets SLO</th></tr>\n";
  for (size_t i = 0; i < a.probes.size(); ++i) {
    const AutoProbe& p = a.probes[i];
    o << "<tr><td>" << i + 1 << "</td><td>" << h(batch_size_label(p.batch_size)) << "</td><td>"
      << h(qps_label(p.qps)) << "</td><td>" << format_number(p.p99_ttft_ms) << "</td><td>"
      << format_number(p.p99_tpot_ms) << "</td><td class=\"" << (p.ok ? "ok\">yes" : "bad\">no") << "</td></tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

std::string sweep_section(const LoadedSweep& ls, size_t index) {
  const SweepData& s = ls.sweep;
  const std::string id = "sweep" + std::to_string(index);
  size_t failed = 0;
  for (const SweepCell& c : s.cells) failed += c.status != Status::kOk;
  std::ostringstream o;
  o << "<h2>Sweep " << h(s.dir.filename().empty() ? s.dir.parent_path().filename().string() : s.dir.filename().string())
    << "</h2>\n<p class=\"meta\">" << h(s.dir.string()) << ": " << s.cells.size() << " cells, " << failed
    << " failed</p>\n";
  if (!s.batch_sizes.empty() && !s.qps.empty()) o << sweep_html_table(s);
  if (!s.batch_sizes.empty() && !s.concurrency.empty()) o << concurrency_html_table(s);
  o << auto_section(s, id);
  std::vector<svg::Chart> charts = {
      sweep_chart(s, id + "-dur", "Total time against rate", [](const Summary& m) { return m.duration; }, "seconds"),
      sweep_chart(s, id + "-otp", "Output throughput against rate",
                  [](const Summary& m) { return m.output_throughput; }, "tokens/s"),
      sweep_chart(s, id + "-rtp", "Request throughput against rate",
                  [](const Summary& m) { return m.request_throughput; }, "requests/s"),
      sweep_chart(s, id + "-ttft", "p99 TTFT against rate", [](const Summary& m) { return m.ttft.p99; }, "ms"),
      sweep_chart(s, id + "-tpot", "p99 TPOT against rate", [](const Summary& m) { return m.tpot.p99; }, "ms")};
  // p99 latencies of an overloaded cell run to minutes while a healthy one's are milliseconds: a log axis
  // keeps both readable once the values span more than two decades.
  for (svg::Chart* c : {&charts[3], &charts[4]}) {
    double lo = INFINITY, hi = 0;
    for (const svg::Series& se : c->series)
      for (double y : se.y)
        if (y > 0 && std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
    if (hi > 100 * lo) c->log_y = true, c->y_label += " (log scale)";
  }
  if (s.autoq && s.autoq->slo.ttft_ms > 0) charts[3].reference_lines.push_back({s.autoq->slo.ttft_ms, "SLO"});
  if (s.autoq && s.autoq->slo.tpot_ms > 0) charts[4].reference_lines.push_back({s.autoq->slo.tpot_ms, "SLO"});
  o << "<div class=\"charts\">\n";
  for (const svg::Chart& c : charts) o << chart_div(c);
  o << "</div>\n<details open=\"open\"><summary>Sweep settings</summary>\n" << settings_table(s.settings)
    << "</details>\n";
  return o.str();
}

// ---- runs section ----

struct Row {
  const char* title;
  SummaryField field;  // nullptr for a heading row
  int significant;
};
#define LLM_FIELD(expr) [](const Summary& m) { return static_cast<double>(m.expr); }
const Row kSummaryRows[] = {
    {"Target rate (req/s)", LLM_FIELD(request_rate), 4},
    {"Achieved rate (req/s)", LLM_FIELD(achieved_request_rate), 4},
    {"Requests", LLM_FIELD(num_prompts), 9},
    {"Completed", LLM_FIELD(completed), 9},
    {"Failed", LLM_FIELD(failed), 9},
    {"Rejected", LLM_FIELD(rejected), 9},
    {"Total time (s)", LLM_FIELD(duration), 5},
    {"Request throughput (req/s)", LLM_FIELD(request_throughput), 4},
    {"Request goodput (req/s)",
     [](const Summary& m) { return m.request_goodput.value_or(std::numeric_limits<double>::quiet_NaN()); }, 4},
    {"Output throughput (tok/s)", LLM_FIELD(output_throughput), 5},
    {"Total token throughput (tok/s)", LLM_FIELD(total_token_throughput), 5},
    {"Input tokens", LLM_FIELD(total_input_tokens), 9},
    {"Output tokens", LLM_FIELD(total_output_tokens), 9},
    {"TTFT", nullptr, 0},
    {"mean (ms)", LLM_FIELD(ttft.mean), 4},
    {"median (ms)", LLM_FIELD(ttft.median), 4},
    {"p99 (ms)", LLM_FIELD(ttft.p99), 4},
    {"max (ms)", LLM_FIELD(ttft.max), 4},
    {"TPOT", nullptr, 0},
    {"mean (ms)", LLM_FIELD(tpot.mean), 4},
    {"median (ms)", LLM_FIELD(tpot.median), 4},
    {"p99 (ms)", LLM_FIELD(tpot.p99), 4},
    {"ITL", nullptr, 0},
    {"mean (ms)", LLM_FIELD(itl.mean), 4},
    {"p99 (ms)", LLM_FIELD(itl.p99), 4},
    {"E2E latency", nullptr, 0},
    {"mean (ms)", LLM_FIELD(e2el.mean), 4},
    {"median (ms)", LLM_FIELD(e2el.median), 4},
    {"p99 (ms)", LLM_FIELD(e2el.p99), 4},
    {"Did the run keep up?", nullptr, 0},
    {"send lag p99 (ms)", LLM_FIELD(send_lag_p99_ms), 4},
    {"send lag max (ms)", LLM_FIELD(send_lag_max_ms), 4},
};
#undef LLM_FIELD

std::string summary_table(const std::vector<const RunData*>& runs) {
  std::ostringstream o;
  o << "<div class=\"scroll\"><table><tr><th class=\"key\">metric</th>";
  for (size_t i = 0; i < runs.size(); ++i)
    o << "<th><span class=\"swatch\" style=\"background:" << svg::series_colour(i) << "\"></span>"
      << h(runs[i]->label) << "</th>";
  o << "</tr>\n";
  for (const Row& r : kSummaryRows) {
    if (!r.field) {
      o << "<tr><th class=\"key\" colspan=\"" << runs.size() + 1 << "\">" << h(r.title) << "</th></tr>\n";
      continue;
    }
    o << "<tr><td class=\"key\">" << h(r.title) << "</td>";
    for (const RunData* run : runs) o << "<td>" << num(r.field(run->summary), r.significant) << "</td>";
    o << "</tr>\n";
  }
  struct Flag {
    const char* name;
    bool Summary::*value;
  };
  for (const Flag& flag : {Flag{"kept_up", &Summary::kept_up}, Flag{"drained", &Summary::drained},
                           Flag{"accounted", &Summary::accounted}}) {
    o << "<tr><td class=\"key\">" << flag.name << "</td>";
    for (const RunData* run : runs)
      o << "<td class=\"" << (run->summary.*flag.value ? "ok\">yes" : "bad\">no") << "</td>";
    o << "</tr>\n";
  }
  o << "<tr><td class=\"key\">output token count from</td>";
  for (const RunData* run : runs)
    o << "<td>" << h(run->summary.output_token_source.empty() ? "-" : run->summary.output_token_source) << "</td>";
  o << "</tr>\n<tr><td class=\"key\">failures</td>";
  for (const RunData* run : runs) {
    std::string text;
    for (const auto& [reason, n] : run->summary.failures_by_reason)
      text += (text.empty() ? "" : "; ") + reason + ": " + std::to_string(n);
    o << "<td class=\"key\">" << h(text.empty() ? "none" : text) << "</td>";
  }
  o << "</tr>\n</table></div>\n";
  return o.str();
}

std::string runs_section(const std::vector<const RunData*>& runs, bool settings_open) {
  std::ostringstream o;
  o << "<h2>Runs (" << runs.size() << ")</h2>\n" << summary_table(runs) << trust_table_html(runs);
  struct Cdf {
    const char* metric;
    const char* title;
  };
  std::vector<svg::Chart> charts;
  for (const Cdf& m : {Cdf{"ttft", "TTFT distribution"}, Cdf{"tpot", "TPOT distribution"},
                       Cdf{"e2el", "End-to-end latency distribution"}}) {
    svg::Chart c = make_chart(std::string("cdf-") + m.metric, m.title, "ms (log scale)", "fraction of requests");
    c.log_x = true;
    c.y_max = 1;
    for (const RunData* run : runs) c.series.push_back(svg::cdf_series(run->label, ok_latencies_ms(*run, m.metric)));
    charts.push_back(std::move(c));
  }
  svg::Chart tokens = make_chart("inflight-tokens", "Tokens in flight (prompt + generated so far)",
                                 "seconds from run start", "tokens");
  svg::Chart requests = make_chart("inflight-requests", "Requests in flight", "seconds from run start", "requests");
  for (const RunData* run : runs) {
    tokens.series.push_back(tokens_in_flight(*run));
    requests.series.push_back(requests_in_flight(*run));
  }
  charts.push_back(std::move(tokens));
  charts.push_back(std::move(requests));
  for (svg::Chart& c : server_charts(runs)) charts.push_back(std::move(c));
  for (svg::Chart& c : timeslice_charts(runs)) charts.push_back(std::move(c));
  o << "<div class=\"charts\">\n";
  for (const svg::Chart& c : charts) o << chart_div(c);
  o << "</div>\n<h3>Settings</h3>\n";
  for (const RunData* run : runs) {
    const Summary& sm = run->summary;
    json settings = {{"date", sm.date}, {"backend", sm.backend}, {"model_id", sm.model_id},
                     {"tokenizer_id", sm.tokenizer_id}, {"engine", sm.engine}, {"settings", sm.settings}};
    if (sm.slo) settings["slo"] = {{"ttft_ms", sm.slo->ttft_ms}, {"tpot_ms", sm.slo->tpot_ms}};
    o << "<details" << (settings_open ? " open=\"open\"" : "") << "><summary>" << h(run->label) << " ("
      << h(run->dir.string()) << ")</summary>\n" << settings_table(settings) << "</details>\n";
  }
  return o.str();
}

std::string cell_label(const SweepCell& c) {
  return (c.batch_size > 0 ? "bs" + std::to_string(c.batch_size) + " \xC2\xB7 " : std::string()) +
         (c.concurrency > 0 ? "C=" + std::to_string(c.concurrency) : qps_label(c.qps) + " QPS");
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

// Sums per-time deltas into a step series starting at 0 (ties applied together, one point per instant).
static svg::Series step_from_events(std::string name, std::vector<std::pair<double, double>> events) {
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

ReportInput load_report_input(const std::vector<fs::path>& dirs, std::vector<std::string>* warnings) {
  ReportInput in;
  for (const fs::path& dir : dirs) {
    if (results::is_sweep_dir(dir)) {
      LoadedSweep ls{results::load_sweep(dir), {}};
      for (const SweepCell& c : ls.sweep.cells) {
        if (c.status != Status::kOk || c.dir.empty()) continue;
        try {
          RunData run = results::load_run(dir / c.dir);
          run.label = cell_label(c);
          ls.cells.push_back(std::move(run));
        } catch (const std::exception& e) {
          if (warnings) warnings->push_back(std::string("skipping sweep cell: ") + e.what());
        }
      }
      in.sweeps.push_back(std::move(ls));
    } else if (results::is_run_dir(dir)) {
      in.runs.push_back(results::load_run(dir));
    } else {
      throw std::runtime_error(dir.string() + ": neither a run directory (summary.json) nor a sweep (sweep.json)");
    }
  }
  // Two runs of the same label (e.g. two default runs) stay apart in legends.
  std::map<std::string, int> seen;
  for (RunData& r : in.runs)
    if (++seen[r.label] > 1) r.label += " (" + r.dir.filename().string() + ")";
  return in;
}

std::string render_html_report(const ReportInput& in) {
  std::vector<const RunData*> runs;
  for (const LoadedSweep& s : in.sweeps)
    for (const RunData& r : s.cells) runs.push_back(&r);
  for (const RunData& r : in.runs) runs.push_back(&r);

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
    << "<link rel=\"icon\" href=\"data:,\"/>\n"  // no favicon request
    << "<title>" << h(in.title) << "</title>\n<style>" << kCss << "</style>\n</head>\n<body>\n";
  o << "<h1>" << h(in.title) << "</h1>\n<p class=\"meta\">" << in.sweeps.size() << " sweep(s), " << in.runs.size()
    << " single run(s). Latencies are measured from each request's scheduled arrival; TPOT = (E2E - TTFT) / "
       "(output tokens - 1).</p>\n";
  for (size_t i = 0; i < in.sweeps.size(); ++i) o << sweep_section(in.sweeps[i], i);
  if (!runs.empty()) o << runs_section(runs, in.sweeps.empty() && runs.size() <= 2);
  o << "</body>\n</html>\n";
  return o.str();
}

void write_html_report(const ReportInput& input, const fs::path& path) {
  results::write_file_atomically(path, render_html_report(input));
}

}  // namespace reports
