#include "reports/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>

namespace reports::svg {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Tableau 10: distinguishable, and readable on white.
constexpr std::string_view kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

// Pixel coordinates with one decimal: enough for a screen, and keeps the page small.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

struct Point {
  double x, y;
};

// A series in pixel space, split into runs of consecutive drawable points.
using Polyline = std::vector<Point>;

// Keeps at most four points per pixel column (first, min, max, last, in their original order), so a series of
// a million chunk times draws the same picture as the full data in a page of a few kilobytes.
Polyline decimate(const Polyline& line, double plot_width) {
  if (line.size() <= static_cast<size_t>(4 * plot_width) + 8) return line;
  Polyline out;
  size_t i = 0;
  while (i < line.size()) {
    const long column = std::lround(std::floor(line[i].x));
    size_t j = i, lo = i, hi = i;
    while (j < line.size() && std::lround(std::floor(line[j].x)) == column) {
      if (line[j].y < line[lo].y) lo = j;
      if (line[j].y > line[hi].y) hi = j;
      ++j;
    }
    size_t keep[] = {i, lo, hi, j - 1};
    std::sort(std::begin(keep), std::end(keep));
    for (size_t k = 0; k < 4; ++k)
      if (k == 0 || keep[k] != keep[k - 1]) out.push_back(line[keep[k]]);
    i = j;
  }
  return out;
}

std::string path_data(const Polyline& line) {
  std::string d;
  for (size_t i = 0; i < line.size(); ++i) {
    d += (i == 0 ? "M" : "L");
    d += px(line[i].x) + " " + px(line[i].y);
  }
  return d;
}

std::string sanitize_id(const std::string& id, const std::string& title) {
  std::string out;
  for (char c : id)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') out += c;
  if (!out.empty()) return out;
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: deterministic across runs, unlike std::hash
  for (unsigned char c : title) h = (h ^ c) * 1099511628211ULL;
  char buf[32];
  std::snprintf(buf, sizeof buf, "chart-%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string truncate_label(const std::string& s, size_t max_chars) {
  if (s.size() <= max_chars) return s;
  size_t cut = max_chars - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 char
  return s.substr(0, cut) + "\xE2\x80\xA6";                                        // "…"
}

}  // namespace

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += '?';
        else
          out += c;
    }
  }
  return out;
}

Ticks nice_ticks(double lo, double hi, int target) {
  Ticks t;
  if (!std::isfinite(lo) || !std::isfinite(hi)) return nice_ticks(0, 1, target);
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) {
    // One value: widen around it (a flat series still needs an axis with ticks).
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.5;
    if (lo >= 0 && lo - pad < 0) {
      lo = 0;
      hi = hi == 0 ? 1 : hi + pad;
    } else {
      lo -= pad;
      hi += pad;
    }
  }
  target = std::max(target, 1);
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  t.step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / t.step + 1e-9);
  const double last = std::ceil(hi / t.step - 1e-9);
  t.lo = first * t.step;
  t.hi = last * t.step;
  for (double k = first; k <= last + 1e-9; k += 1) {
    double v = k * t.step;
    if (std::fabs(v) < t.step * 1e-9) v = 0;  // no "-0"
    t.values.push_back(v);
  }
  return t;
}

Ticks log_ticks(double lo, double hi) {
  Ticks t;
  if (!(lo > 0) || !(hi > 0) || !std::isfinite(lo) || !std::isfinite(hi)) return log_ticks(1, 10);
  if (lo > hi) std::swap(lo, hi);
  // Candidate ticks 1, 2, 5 × 10^k; the bounds snap outward onto them.
  auto candidates = [](int k0, int k1) {
    std::vector<double> c;
    for (int k = k0; k <= k1; ++k)
      for (double m : {1.0, 2.0, 5.0}) c.push_back(m * std::pow(10.0, k));
    return c;
  };
  const int k0 = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int k1 = static_cast<int>(std::ceil(std::log10(hi))) + 1;
  const std::vector<double> c = candidates(k0, k1);
  t.lo = c.front();
  for (double v : c)
    if (v <= lo * (1 + 1e-9)) t.lo = v;
  t.hi = c.back();
  for (auto it = c.rbegin(); it != c.rend(); ++it)
    if (*it >= hi * (1 - 1e-9)) t.hi = *it;
  if (t.hi <= t.lo) t.hi = t.lo * 2;  // one value exactly on a candidate
  const double decades = std::log10(t.hi / t.lo);
  for (double v : c) {
    if (v < t.lo * (1 - 1e-9) || v > t.hi * (1 + 1e-9)) continue;
    const double mantissa = v / std::pow(10.0, std::floor(std::log10(v) + 1e-9));
    const bool decade = std::fabs(mantissa - 1) < 1e-6;
    if (decade || decades <= 3) t.values.push_back(v);
  }
  t.step = 0;  // labels of a log axis use format_number
  return t;
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return "-";
  if (step <= 0) return format_number(value, 3);
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 9);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

Scale::Scale(double domain_lo, double domain_hi, double pixel_lo, double pixel_hi, bool log)
    : d0_(domain_lo), d1_(domain_hi), p0_(pixel_lo), p1_(pixel_hi), log_(log) {
  if (log_) {
    d0_ = std::log10(d0_);
    d1_ = std::log10(d1_);
  }
  if (!(d1_ != d0_)) d1_ = d0_ + 1;
}

double Scale::operator()(double v) const {
  if (!std::isfinite(v)) return kNaN;
  if (log_) {
    if (v <= 0) return kNaN;
    v = std::log10(v);
  }
  return p0_ + (v - d0_) / (d1_ - d0_) * (p1_ - p0_);
}

std::string_view series_colour(size_t index) { return kPalette[index % kPaletteSize]; }

Series cdf_series(std::string name, std::vector<double> values) {
  Series s;
  s.name = std::move(name);
  s.style = SeriesStyle::kStep;
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
               values.end());
  std::sort(values.begin(), values.end());
  if (values.empty()) return s;
  const double n = static_cast<double>(values.size());
  s.x.push_back(values.front());
  s.y.push_back(0);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i + 1 < values.size() && values[i + 1] == values[i]) continue;  // one step per distinct value
    s.x.push_back(values[i]);
    s.y.push_back(static_cast<double>(i + 1) / n);
  }
  return s;
}

std::string render(const Chart& chart) {
  const std::string id = sanitize_id(chart.id, chart.title);
  const double width = std::max(chart.width, 200), height = std::max(chart.height, 150);
  const bool has_legend = std::any_of(chart.series.begin(), chart.series.end(),
                                      [](const Series& s) { return !s.name.empty(); });
  const double left = 64, top = 30, bottom = 46, right = has_legend ? 176 : 16;
  const double plot_w = width - left - right, plot_h = height - top - bottom;

  // Data bounds over every drawable point (and the reference lines, which must stay visible).
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : chart.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const double x = s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (chart.log_x && x <= 0) || (chart.log_y && y <= 0)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  const bool has_data = std::isfinite(xmin);
  for (const ReferenceLine& r : chart.reference_lines)
    if (std::isfinite(r.y) && (!chart.log_y || r.y > 0)) ymin = std::min(ymin, r.y), ymax = std::max(ymax, r.y);
  if (!std::isfinite(ymin)) ymin = chart.log_y ? 1 : 0, ymax = chart.log_y ? 10 : 1;
  if (!has_data) xmin = chart.log_x ? 1 : 0, xmax = chart.log_x ? 10 : 1;
  if (chart.y_from_zero && !chart.log_y && ymin > 0) ymin = 0;
  if (chart.x_from_zero && !chart.log_x && xmin > 0) xmin = 0;
  if (chart.y_max > 0) ymax = chart.y_max;

  const Ticks xt = chart.log_x ? log_ticks(xmin, xmax) : nice_ticks(xmin, xmax, 6);
  const Ticks yt = chart.log_y ? log_ticks(ymin, ymax) : nice_ticks(ymin, ymax, 5);
  const Scale sx(xt.lo, xt.hi, left, left + plot_w, chart.log_x);
  const Scale sy(yt.lo, yt.hi, top + plot_h, top, chart.log_y);

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<title>" << escape_xml(chart.title) << "</title>\n";
  o << "<defs><clipPath id=\"" << id << "-clip\"><rect x=\"" << px(left) << "\" y=\"" << px(top)
    << "\" width=\"" << px(plot_w) << "\" height=\"" << px(plot_h) << "\"/></clipPath></defs>\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"#fff\"/>\n";
  o << "<text x=\"" << px(left + plot_w / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" "
    << "font-weight=\"bold\">" << escape_xml(chart.title) << "</text>\n";

  // Grid and tick labels.
  o << "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
  for (double v : xt.values)
    o << "<line x1=\"" << px(sx(v)) << "\" y1=\"" << px(top) << "\" x2=\"" << px(sx(v)) << "\" y2=\""
      << px(top + plot_h) << "\"/>\n";
  for (double v : yt.values)
    o << "<line x1=\"" << px(left) << "\" y1=\"" << px(sy(v)) << "\" x2=\"" << px(left + plot_w) << "\" y2=\""
      << px(sy(v)) << "\"/>\n";
  o << "</g>\n<g fill=\"#333\">\n";
  for (double v : xt.values)
    o << "<text x=\"" << px(sx(v)) << "\" y=\"" << px(top + plot_h + 15) << "\" text-anchor=\"middle\">"
      << escape_xml(chart.log_x ? format_number(v, 3) : format_tick(v, xt.step)) << "</text>\n";
  for (double v : yt.values)
    o << "<text x=\"" << px(left - 6) << "\" y=\"" << px(sy(v) + 4) << "\" text-anchor=\"end\">"
      << escape_xml(chart.log_y ? format_number(v, 3) : format_tick(v, yt.step)) << "</text>\n";
  o << "</g>\n";
  o << "<rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\"" << px(plot_w) << "\" height=\""
    << px(plot_h) << "\" fill=\"none\" stroke=\"#888\"/>\n";
  o << "<text x=\"" << px(left + plot_w / 2) << "\" y=\"" << px(height - 8) << "\" text-anchor=\"middle\">"
    << escape_xml(chart.x_label) << "</text>\n";
  o << "<text transform=\"translate(14 " << px(top + plot_h / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << escape_xml(chart.y_label) << "</text>\n";
  if (!has_data)
    o << "<text x=\"" << px(left + plot_w / 2) << "\" y=\"" << px(top + plot_h / 2)
      << "\" text-anchor=\"middle\" fill=\"#999\">no data</text>\n";

  // Series, clipped to the plot area.
  std::ostringstream markers;
  o << "<g clip-path=\"url(#" << id << "-clip)\" fill=\"none\" stroke-width=\"1.6\">\n";
  for (const ReferenceLine& r : chart.reference_lines) {
    const double y = sy(r.y);
    if (!std::isfinite(y)) continue;
    o << "<line x1=\"" << px(left) << "\" y1=\"" << px(y) << "\" x2=\"" << px(left + plot_w) << "\" y2=\"" << px(y)
      << "\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n";
    const double label_y = y - 4 < top + 12 ? y + 13 : y - 4;  // below the line when it is at the top edge
    o << "<text x=\"" << px(left + plot_w - 4) << "\" y=\"" << px(label_y)
      << "\" text-anchor=\"end\" fill=\"#c00\" stroke=\"none\">" << escape_xml(r.label) << "</text>\n";
  }
  for (size_t si = 0; si < chart.series.size(); ++si) {
    const Series& s = chart.series[si];
    const std::string_view colour = series_colour(si);
    const std::string dash = si >= kPaletteSize ? " stroke-dasharray=\"5 3\"" : "";
    std::vector<Polyline> runs(1);
    Point prev{kNaN, kNaN};
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const Point p{sx(s.x[i]), sy(s.y[i])};
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
        if (!runs.back().empty()) runs.emplace_back();
        prev = {kNaN, kNaN};
        continue;
      }
      if (s.style == SeriesStyle::kStep && std::isfinite(prev.x)) runs.back().push_back({p.x, prev.y});
      runs.back().push_back(p);
      prev = p;
    }
    for (const Polyline& run : runs) {
      if (run.empty()) continue;
      o << "<path d=\"" << path_data(decimate(run, plot_w)) << "\" stroke=\"" << colour << "\"" << dash
        << "/>\n";
      if (s.style == SeriesStyle::kMarkers)  // unclipped: a point on the axis stays a whole dot
        for (const Point& p : run)
          markers << "<circle cx=\"" << px(p.x) << "\" cy=\"" << px(p.y) << "\" r=\"3\" fill=\"" << colour
            << "\" stroke=\"none\"/>\n";
    }
  }
  o << "</g>\n" << markers.str();

  // Legend: one row per named series, to the right of the plot.
  if (has_legend) {
    const double lx = left + plot_w + 12;
    const size_t rows = static_cast<size_t>(std::max(1.0, (plot_h - 4) / 14));
    const size_t named = static_cast<size_t>(std::count_if(chart.series.begin(), chart.series.end(),
                                                           [](const Series& s) { return !s.name.empty(); }));
    const size_t capacity = named <= rows ? named : rows - 1;  // else the last row says "+k more"
    size_t shown = 0;
    o << "<g>\n";
    for (size_t si = 0; si < chart.series.size() && shown < capacity; ++si) {
      if (chart.series[si].name.empty()) continue;
      const double y = top + 8 + 14 * shown++;
      o << "<line x1=\"" << px(lx) << "\" y1=\"" << px(y) << "\" x2=\"" << px(lx + 18) << "\" y2=\"" << px(y)
        << "\" stroke=\"" << series_colour(si) << "\" stroke-width=\"3\""
        << (si >= kPaletteSize ? " stroke-dasharray=\"5 3\"" : "") << "/>\n";
      o << "<text x=\"" << px(lx + 24) << "\" y=\"" << px(y + 4) << "\">"
        << escape_xml(truncate_label(chart.series[si].name, 24)) << "</text>\n";
    }
    if (shown < named)
      o << "<text x=\"" << px(lx) << "\" y=\"" << px(top + 12 + 14 * shown) << "\" fill=\"#666\">+"
        << (named - shown) << " more</text>\n";
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace reports::svg
