#include "reports/trust_html.h"

#include <cmath>
#include <sstream>

namespace reports {
namespace {

using results::RunData;

std::string h(const std::string& s) { return svg::escape_xml(s); }
std::string num(double v, int significant = 4) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return svg::format_number(v, significant);
}

std::string bound_text(const results::Validity& v, const std::string& metric) {
  for (const results::PercentileBound& b : v.bounds) {
    if (b.metric != metric) continue;
    if (b.n == 0) return "-";
    return num(b.estimate) + (b.upper ? " / <b>" + num(*b.upper) + "</b>" : std::string(" / no bound (") +
                                                                                 std::to_string(b.n) + " of " +
                                                                                 std::to_string(b.min_n) + ")");
  }
  return "-";
}

}  // namespace

std::string trust_table_html(const std::vector<const RunData*>& runs) {
  std::ostringstream o;
  o << "<h3>Can these runs be trusted?</h3>\n<div class=\"scroll\"><table><tr><th class=\"key\">check</th>";
  for (size_t i = 0; i < runs.size(); ++i)
    o << "<th><span class=\"swatch\" style=\"background:" << svg::series_colour(i) << "\"></span>" << h(runs[i]->label)
      << "</th>";
  o << "</tr>\n<tr><td class=\"key\">verdict</td>";
  for (const RunData* r : runs) {
    const results::Validity& v = r->summary.validity;
    o << "<td class=\"" << (v.valid ? "ok\"><b>VALID</b>" : "bad\"><b>INVALID</b>") << "</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">reasons</td>";
  for (const RunData* r : runs) {
    const results::Validity& v = r->summary.validity;
    std::string text;
    for (const std::string& s : v.reasons) text += "<div>" + h(s) + "</div>";
    for (const std::string& s : v.warnings) text += "<div>warning: " + h(s) + "</div>";
    o << "<td class=\"key\" style=\"white-space:normal;max-width:420px\">" << (text.empty() ? "none" : text) << "</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">p99 TTFT / upper bound (ms)</td>";
  for (const RunData* r : runs) o << "<td>" << bound_text(r->summary.validity, "ttft") << "</td>";
  o << "</tr>\n<tr><td class=\"key\">p99 TPOT / upper bound (ms)</td>";
  for (const RunData* r : runs) o << "<td>" << bound_text(r->summary.validity, "tpot") << "</td>";
  o << "</tr>\n<tr><td class=\"key\">confidence, minimums</td>";
  for (const RunData* r : runs) {
    const results::Validity& v = r->summary.validity;
    o << "<td>" << num(100 * v.confidence) << " %, " << num(v.min_duration_s) << " s, " << v.min_requests
      << " requests" << (v.preset.empty() ? "" : " (" + h(v.preset) + ")") << "</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">SLO on the bound</td>";
  for (const RunData* r : runs) {
    const results::Validity& v = r->summary.validity;
    if (!r->summary.slo) o << "<td>-</td>";
    else if (!v.slo_met) o << "<td>unknown</td>";
    else o << "<td class=\"" << (*v.slo_met ? "ok\">met" : "bad\">NOT met") << "</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">client busy / chunk lag p99</td>";
  for (const RunData* r : runs) {
    if (const auto& c = r->summary.client_cost)
      o << "<td>" << num(100 * c->busy_fraction, 3) << " % (" << h(c->busy_source) << ") / " << num(c->chunk_lag_p99_ms, 3)
        << " ms</td>";
    else
      o << "<td>-</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">interrupted</td>";
  for (const RunData* r : runs) {
    if (const auto& in = r->summary.interruption)
      o << "<td class=\"bad\">" << h(in->cause) << ": " << in->sent << " of " << in->scheduled << " sent, " << in->ended
        << " ended, " << in->aborted << " aborted</td>";
    else
      o << "<td>no</td>";
  }
  o << "</tr>\n<tr><td class=\"key\">steady window (s): p99 TTFT / TPOT (ms)</td>";
  for (const RunData* r : runs) {
    if (const auto& st = r->summary.steady_state)
      o << "<td>" << num(st->start_s) << "-" << num(st->end_s) << ": " << num(st->ttft.p99) << " / " << num(st->tpot.p99)
        << "</td>";
    else
      o << "<td>-</td>";
  }
  o << "</tr>\n</table></div>\n<p class=\"meta\">Upper bounds: the order statistic at or above the true p99 with the "
       "stated confidence (binomial, as MLPerf's early stopping); the SLO is judged on the bound.</p>\n";
  return o.str();
}

std::vector<svg::Chart> timeslice_charts(const std::vector<const RunData*>& runs) {
  svg::Chart tok, ttft;
  tok.id = "slices-tok";
  tok.title = "Output tokens/s per timeslice";
  tok.x_label = "seconds from run start";
  tok.y_label = "tokens/s";
  ttft.id = "slices-ttft";
  ttft.title = "p99 TTFT per timeslice";
  ttft.x_label = "seconds from run start";
  ttft.y_label = "ms";
  for (svg::Chart* c : {&tok, &ttft}) c->width = 660, c->height = 330;
  bool any = false;
  for (const RunData* r : runs) {
    svg::Series a{r->label, {}, {}, svg::SeriesStyle::kStep}, b{r->label, {}, {}, svg::SeriesStyle::kMarkers};
    for (const results::Timeslice& t : r->timeslices) {
      a.x.push_back(t.start_s);
      a.y.push_back(t.output_tokens_per_s);
      b.x.push_back((t.start_s + t.end_s) / 2);
      b.y.push_back(t.ttft_p99_ms);  // NaN (no request ended) breaks the line
    }
    any = any || !r->timeslices.empty();
    tok.series.push_back(std::move(a));
    ttft.series.push_back(std::move(b));
  }
  if (!any) return {};
  return {tok, ttft};
}

}  // namespace reports
