#include "reports/sweep_html.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>
#include <vector>

#include "reports/html_page.h"
#include "reports/svg_chart.h"
#include "results/sweep_json.h"

namespace reports {
namespace {

using html::chart_div;
using html::h;
using html::make_chart;
using html::num;
using html::settings_table;
using results::AutoProbe;
using results::AutoResult;
using results::batch_size_label;
using results::qps_label;
using results::Status;
using results::Summary;
using results::SweepCell;
using results::SweepData;
using svg::format_number;

/// One number of a summary, for the charts.
using SummaryField = double (*)(const Summary&);

// One cell of a sweep table: "-" where the grid has no such cell, the error of a failed one, else text(summary)
// and how many requests it lost; `shade_lag` shades a run that did not keep up with its schedule.
template <typename Text>
void cell_td(std::ostringstream& o, const SweepCell* cell, bool shade_lag, Text text) {
  if (!cell) {
    o << "<td>-</td>";
    return;
  }
  if (cell->status != Status::kOk || !cell->summary) {
    o << "<td class=\"failed\" title=\"" << h(cell->error) << "\">failed: " << h(cell->error.substr(0, 60))
      << "</td>";
    return;
  }
  const Summary& sm = *cell->summary;
  o << "<td" << (shade_lag && !sm.kept_up ? " class=\"lag\" title=\"did not keep up with the schedule\"" : "")
    << ">" << h(text(sm));
  const double lost = static_cast<double>(sm.failed + sm.rejected);
  if (lost > 0) o << " <span class=\"bad\">(" << format_number(lost) << " lost)</span>";
  o << "</td>";
}

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
      cell_td(o, cell, true, [](const Summary& sm) { return num(sm.duration) + " s / " + num(sm.ttft.p99) + " ms"; });
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
      cell_td(o, cell, false,
              [](const Summary& sm) { return num(sm.request_throughput) + " req/s / " + num(sm.ttft.p99) + " ms"; });
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

}  // namespace

std::string sweep_section_html(const SweepData& s, size_t index) {
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

}  // namespace reports
