// A small, dependency-free SVG chart writer for the HTML report: line / step / marker series on linear or
// log-x axes with "nice" ticks, a legend, and optional horizontal reference lines (e.g. an SLO). The output is a
// standalone <svg> element meant to be inlined into an HTML page: no scripts, no external fonts or images.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/format_number.h"

namespace reports::svg {

/// Escapes text for XML text nodes and attribute values (& < > " '); control characters other than
/// tab/newline are replaced by '?', since XML 1.0 cannot carry them at all.
std::string escape_xml(std::string_view text);

/// Evenly spaced "nice" ticks (steps of 1, 2 or 5 × 10^k) that cover [lo, hi] with about `target` intervals.
/// `lo`/`hi` are the widened axis bounds (the first and last tick). A degenerate range (lo == hi) is widened
/// around the value so that a chart of one point still has an axis.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int target = 5);

/// Ticks for a log10 axis covering [lo, hi] (both > 0): bounds are widened to 1, 2 or 5 × 10^k; ticks are
/// the decades, plus the 2s and 5s between them when the range spans three decades or fewer.
Ticks log_ticks(double lo, double hi);

/// A tick label with as many decimals as `step` needs ("0.25", "40", "1.5k" style is not used: plain numbers
/// stay unambiguous when copied out of the page).
std::string format_tick(double value, double step);

/// A number for a table or a label (common/format_number.h).
using common::format_number;

/// Maps data values onto pixels, linearly or by log10. A value outside the domain maps outside the range
/// (the chart clips); a non-positive value on a log scale maps to NaN (the point is dropped).
class Scale {
 public:
  Scale(double domain_lo, double domain_hi, double pixel_lo, double pixel_hi, bool log);
  double operator()(double v) const;

 private:
  double d0_, d1_, p0_, p1_;
  bool log_;
};

enum class SeriesStyle {
  kLine,     ///< straight segments between points, in x order as given
  kStep,     ///< horizontal then vertical segments (an empirical CDF, a count over time)
  kMarkers,  ///< a line with a dot at every point (a few sweep cells)
};

struct Series {
  std::string name;
  std::vector<double> x, y;  ///< same length; non-finite points break the line
  SeriesStyle style = SeriesStyle::kLine;
};

/// A dashed horizontal line across the plot with a label, e.g. the TTFT SLO.
struct ReferenceLine {
  double y = 0;
  std::string label;
};

struct Chart {
  std::string id;  ///< unique within the page (used for the clip path); derived from the title when empty
  std::string title, x_label, y_label;
  int width = 640, height = 340;
  bool log_x = false;
  bool log_y = false;       ///< log10 y axis (latencies spanning decades); non-positive values are dropped
  bool y_from_zero = true;  ///< start the y axis at 0 when all values are positive
  bool x_from_zero = false; ///< the same for x (linear axes only)
  double y_max = 0;         ///< when > 0, fixes the top of the y axis (1 for a CDF)
  std::vector<Series> series;
  std::vector<ReferenceLine> reference_lines;
};

/// The chart as one <svg> element. Series beyond the palette reuse its colours with dashes.
std::string render(const Chart& chart);

/// Empirical CDF of the finite values as a step series: y = fraction of values <= x.
Series cdf_series(std::string name, std::vector<double> values);

/// The colour a series of this index gets (the HTML legend of tables reuses it).
std::string_view series_colour(size_t index);

}  // namespace reports::svg
