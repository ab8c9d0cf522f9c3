#include "reports/sweep_table.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "reports/svg_chart.h"

namespace reports {

using results::AutoProbe;
using results::AutoResult;
using results::batch_size_label;
using results::qps_label;
using results::Status;
using results::Summary;
using results::SweepCell;

namespace {

const SweepCell* find_cell(const SweepData& s, int batch_size, double qps) {
  // The last cell wins: an auto search may probe the same rate twice only by mistake, but a repeated
  // grid cell (none today) should show its latest result.
  const SweepCell* found = nullptr;
  for (const SweepCell& c : s.cells)
    if (c.concurrency == 0 && c.batch_size == batch_size && std::fabs(c.qps - qps) <= 1e-9 * std::max(1.0, qps))
      found = &c;
  return found;
}

const SweepCell* find_closed_cell(const SweepData& s, int batch_size, int concurrency) {
  const SweepCell* found = nullptr;
  for (const SweepCell& c : s.cells)
    if (c.concurrency == concurrency && c.batch_size == batch_size) found = &c;
  return found;
}

std::string pad_left(const std::string& s, size_t width) {
  // Width in characters, counting a UTF-8 sequence once.
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return chars >= width ? s : std::string(width - chars, ' ') + s;
}

/// The columns laid out, each as wide as its widest cell, heads over a rule.
std::string grid(const std::vector<std::string>& heads, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(heads.size());
  for (size_t i = 0; i < heads.size(); ++i) {
    width[i] = heads[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
  }
  std::ostringstream o;
  for (size_t i = 0; i < heads.size(); ++i) o << (i ? " | " : "") << pad_left(heads[i], width[i]);
  o << "\n";
  for (size_t i = 0; i < heads.size(); ++i) o << (i ? "-+-" : "") << std::string(width[i], '-');
  o << "\n";
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) o << (i ? " | " : "") << pad_left(r[i], width[i]);
    o << "\n";
  }
  return o.str();
}

}  // namespace

std::string sweep_table(const SweepData& s) {
  // Column contents first, so every column is as wide as its widest cell.
  std::vector<std::string> heads = {"batch size"};
  for (double q : s.qps) heads.push_back(qps_label(q) + " QPS");
  std::vector<std::vector<std::string>> rows;
  bool any_lagging = false, any_lost = false;
  for (int bs : s.batch_sizes) {
    std::vector<std::string> row = {batch_size_label(bs)};
    for (double q : s.qps) {
      const SweepCell* c = find_cell(s, bs, q);
      if (!c) {
        row.push_back("-");
      } else if (c->status != Status::kOk || !c->summary) {
        row.push_back("failed");
      } else {
        const Summary& sm = *c->summary;
        std::string cell = svg::format_number(sm.duration, 4) + " s / " + svg::format_number(sm.ttft.p99, 4) + " ms";
        if (!sm.kept_up) cell += "*", any_lagging = true;
        if (sm.failed + sm.rejected > 0)
          cell += "!", any_lost = true;
        row.push_back(cell);
      }
    }
    rows.push_back(row);
  }
  std::ostringstream o;
  o << "Total time (s) / p99 TTFT (ms) per batch size (rows) and target rate (columns)\n";
  o << grid(heads, rows);
  if (any_lagging) o << "* the run did not keep up with its schedule (see its summary's kept_up notes)\n";
  if (any_lost) o << "! some requests failed or were rejected (sweep.csv's failed column, the summary's reasons)\n";
  for (const SweepCell& c : s.cells)
    if (c.status != Status::kOk && c.concurrency == 0)
      o << "failed: batch size " << batch_size_label(c.batch_size) << ", " << qps_label(c.qps)
        << " QPS: " << c.error << "\n";
  return o.str();
}

std::string concurrency_table(const SweepData& s) {
  if (s.concurrency.empty()) return "";
  std::vector<std::string> heads = {"batch size"};
  for (int c : s.concurrency) heads.push_back("C=" + std::to_string(c));
  std::vector<std::vector<std::string>> rows;
  bool any_lost = false;
  for (int bs : s.batch_sizes) {
    std::vector<std::string> row = {batch_size_label(bs)};
    for (int conc : s.concurrency) {
      const SweepCell* c = find_closed_cell(s, bs, conc);
      if (!c) {
        row.push_back("-");
      } else if (c->status != Status::kOk || !c->summary) {
        row.push_back("failed");
      } else {
        const Summary& sm = *c->summary;
        std::string cell = svg::format_number(sm.request_throughput, 4) + " req/s / " +
                           svg::format_number(sm.ttft.p99, 4) + " ms";
        if (sm.failed + sm.rejected > 0) cell += "!", any_lost = true;
        row.push_back(cell);
      }
    }
    rows.push_back(row);
  }
  std::ostringstream o;
  o << "Closed loop: requests/s / p99 TTFT (ms) per batch size (rows) and requests in flight (columns)\n";
  o << grid(heads, rows);
  if (any_lost) o << "! some requests failed or were rejected (sweep.csv's failed column, the summary's reasons)\n";
  for (const SweepCell& c : s.cells)
    if (c.status != Status::kOk && c.concurrency > 0)
      o << "failed: batch size " << batch_size_label(c.batch_size) << ", concurrency " << c.concurrency << ": "
        << c.error << "\n";
  return o.str();
}

std::string auto_table(const SweepData& s) {
  if (!s.autoq) return "";
  const AutoResult& a = *s.autoq;
  std::ostringstream o;
  o << "Max sustainable QPS with p99 TTFT <= "
    << (a.slo.ttft_ms > 0 ? svg::format_number(a.slo.ttft_ms) + " ms" : std::string("(no limit)"))
    << " and p99 TPOT <= "
    << (a.slo.tpot_ms > 0 ? svg::format_number(a.slo.tpot_ms) + " ms" : std::string("(no limit)")) << "\n";
  for (size_t i = 0; i < s.batch_sizes.size() && i < a.max_qps.size(); ++i)
    o << "  batch size " << pad_left(batch_size_label(s.batch_sizes[i]), 6) << ": "
      << (a.max_qps[i] > 0 ? qps_label(a.max_qps[i]) + " QPS" : std::string("none (the lowest probe failed)"))
      << "\n";
  o << "Probes, in the order they ran:\n";
  o << "  batch size |      QPS | p99 TTFT ms | p99 TPOT ms | meets SLO\n";
  for (const AutoProbe& p : a.probes)
    o << "  " << pad_left(batch_size_label(p.batch_size), 10) << " | " << pad_left(qps_label(p.qps), 8) << " | "
      << pad_left(svg::format_number(p.p99_ttft_ms), 11) << " | " << pad_left(svg::format_number(p.p99_tpot_ms), 11)
      << " | " << (p.ok ? "yes" : "no") << "\n";
  return o.str();
}

}  // namespace reports
