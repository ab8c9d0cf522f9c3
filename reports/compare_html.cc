#include "reports/compare_html.h"

#include <cmath>
#include <sstream>

#include "reports/html_page.h"
#include "reports/html_report.h"
#include "reports/run_series.h"
#include "reports/svg_chart.h"
#include "results/files.h"
#include "results/sweep.h"

namespace reports {
namespace {

using html::h;

constexpr const char* kCss =
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1360px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:13px}"
    "th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f4f4f4}"
    "td.key{text-align:left}.slower{color:#b00;font-weight:600}.faster{color:#070;font-weight:600}"
    ".warn{color:#a60}.charts{display:flex;flex-wrap:wrap;gap:12px}p.meta{color:#666}";

std::string num(double v) { return svg::format_number(v, 4); }

std::string head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<link rel=\"icon\" href=\"data:,\"/>\n<title>" +
         h(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<h1>" + h(title) + "</h1>\n";
}

std::string verdict_class(const std::string& v) { return v == "slower" ? "slower" : v == "faster" ? "faster" : "key"; }

std::string metrics_table(const results::Comparison& c) {
  std::ostringstream o;
  o << "<table><tr><th class=\"key\">metric (ms)</th><th>A</th><th>A interval</th><th>B</th><th>B interval</th>"
       "<th>B / A</th><th>ratio interval</th><th class=\"key\">verdict (B against A)</th></tr>\n";
  for (const results::MetricComparison& m : c.metrics)
    o << "<tr><td class=\"key\">" << h(m.metric) << "</td><td>" << num(m.a) << "</td><td>" << num(m.a_lo) << " - "
      << num(m.a_hi) << "</td><td>" << num(m.b) << "</td><td>" << num(m.b_lo) << " - " << num(m.b_hi) << "</td><td>"
      << num(m.ratio) << "</td><td>" << num(m.ratio_lo) << " - " << num(m.ratio_hi) << "</td><td class=\""
      << verdict_class(m.verdict) << "\">" << h(m.verdict) << "</td></tr>\n";
  o << "</table>\n<p class=\"meta\">Percentile bootstrap, " << c.resamples << " resamples (seed " << c.seed
    << "); each interval at " << num(100 * c.per_metric_confidence) << " % so that all " << c.metrics.size()
    << " verdicts hold together at " << num(100 * c.confidence) << " % (Bonferroni).</p>\n";
  return o.str();
}

std::string warnings(const std::vector<std::string>& w) {
  std::string o;
  for (const std::string& s : w) o += "<p class=\"warn\">warning: " + h(s) + "</p>\n";
  return o;
}

}  // namespace

std::string render_compare_html(const results::Comparison& c, const results::RunData& a, const results::RunData& b) {
  std::ostringstream o;
  o << head("loadgen compare") << "<p class=\"meta\">A: " << h(c.a_label) << " (" << h(c.a_dir) << ")<br/>B: "
    << h(c.b_label) << " (" << h(c.b_dir) << ")</p>\n"
    << warnings(c.warnings) << metrics_table(c) << "<div class=\"charts\">\n";
  for (const char* metric : {"ttft", "tpot", "e2el"}) {
    svg::Chart chart;
    chart.id = std::string("cmp-") + metric;
    chart.title = std::string(metric == std::string("ttft") ? "TTFT" : metric == std::string("tpot") ? "TPOT" : "E2E") +
                  " distribution, A and B";
    chart.x_label = "ms (log scale)";
    chart.y_label = "fraction of requests";
    chart.log_x = true;
    chart.y_max = 1;
    chart.width = 660;
    chart.height = 330;
    chart.series.push_back(svg::cdf_series("A: " + a.label, ok_latencies_ms(a, metric)));
    chart.series.push_back(svg::cdf_series("B: " + b.label, ok_latencies_ms(b, metric)));
    o << "<div>" << svg::render(chart) << "</div>\n";
  }
  o << "</div>\n</body>\n</html>\n";
  return o.str();
}

std::string render_sweep_compare_html(const results::SweepComparison& c) {
  std::ostringstream o;
  o << head("loadgen compare (sweeps)") << "<p class=\"meta\">A: " << h(c.a_dir) << "<br/>B: " << h(c.b_dir) << "</p>\n"
    << warnings(c.warnings);
  for (const results::SweepComparisonCell& cell : c.cells) {
    o << "<h2>batch " << h(results::batch_size_label(cell.batch_size)) << ", " << h(results::qps_label(cell.qps))
      << " QPS</h2>\n" << warnings(cell.comparison.warnings) << metrics_table(cell.comparison);
  }
  o << "</body>\n</html>\n";
  return o.str();
}

void write_compare_html(const std::filesystem::path& path, const std::string& html) {
  results::write_file_atomically(path, html);
}

}  // namespace reports
