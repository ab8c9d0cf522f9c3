#include "reports/html_report.h"

#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "reports/html_page.h"
#include "reports/run_series.h"
#include "reports/server_charts.h"
#include "reports/sweep_html.h"
#include "reports/trust_html.h"
#include "results/files.h"
#include "results/sweep_json.h"

namespace reports {
namespace fs = std::filesystem;
using html::chart_div;
using html::h;
using html::make_chart;
using html::num;
using html::settings_table;
using nlohmann::json;
using results::qps_label;
using results::Status;
using results::Summary;
using results::SweepCell;

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

// The runs section: one column per run.

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
  for (size_t i = 0; i < in.sweeps.size(); ++i) o << sweep_section_html(in.sweeps[i].sweep, i);
  if (!runs.empty()) o << runs_section(runs, in.sweeps.empty() && runs.size() <= 2);
  o << "</body>\n</html>\n";
  return o.str();
}

void write_html_report(const ReportInput& input, const fs::path& path) {
  results::write_file_atomically(path, render_html_report(input));
}

}  // namespace reports
