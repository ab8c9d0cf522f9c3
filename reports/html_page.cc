#include "reports/html_page.h"

#include <cmath>
#include <sstream>
#include <utility>
#include <vector>

namespace reports::html {
namespace {

using nlohmann::json;

std::string json_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return svg::format_number(v.get<double>(), 6);
  return v.dump();
}

void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>* out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out->emplace_back(prefix, json_value_text(j));
  }
}

}  // namespace

std::string h(const std::string& s) { return svg::escape_xml(s); }

std::string num(double v, int significant) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return svg::format_number(v, significant);
}

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

std::string chart_div(const svg::Chart& c) { return "<div>" + svg::render(c) + "</div>\n"; }

}  // namespace reports::html
