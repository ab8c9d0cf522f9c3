// Pieces the HTML pages share (report.html: html_report, sweep_html; compare.html: compare_html): escaped
// text, numbers as the tables print them, the settings list and the charts' frame.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "reports/svg_chart.h"

namespace reports::html {

/// Text escaped for HTML (and XML) content and attribute values.
std::string h(const std::string& s);

/// A number with `significant` digits (svg::format_number); infinite values read "inf" / "-inf" (a rate of
/// inf, latencies under --failures-as-inf) rather than format_number's "-".
std::string num(double v, int significant = 4);

/// Settings as a compact multi-column list of "key value" lines, nested objects as dotted keys
/// ("engine.batch_size") in the object's key order; empty values are left out.
std::string settings_table(const nlohmann::json& obj);

/// A chart of the report's size with its id, title and axis labels, no series yet.
svg::Chart make_chart(const std::string& id, const std::string& title, const std::string& x_label,
                      const std::string& y_label);

/// The chart rendered as inline SVG in a <div>.
std::string chart_div(const svg::Chart& c);

}  // namespace reports::html
