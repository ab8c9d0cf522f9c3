#include "loadgen/workload/think_time.h"

#include <cmath>
#include <optional>
#include <random>
#include <stdexcept>

#include "common/format_number.h"
#include "common/parse_number.h"

namespace loadgen {
namespace {

/// "2", "2s", "500ms" -> seconds (>= 0); nullopt when it is not one.
std::optional<double> seconds(std::string s) {
  double scale = 1;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "ms") == 0) s.resize(s.size() - 2), scale = 1e-3;
  else if (!s.empty() && s.back() == 's') s.pop_back();
  const std::optional<double> v = common::parse_double(s);
  if (!v || !(*v >= 0) || !std::isfinite(*v)) return std::nullopt;
  return *v * scale;
}

}  // namespace

ThinkTime parse_think_time(const std::string& text) {
  const std::string form = "--think-time: expected seconds (2, 2s, 500ms), exp:MEAN or uniform:LO,HI, got '" + text + "'";
  ThinkTime t;
  const size_t colon = text.find(':');
  if (colon == std::string::npos) {
    const auto v = seconds(text);
    if (!v) throw std::invalid_argument(form);
    t.a = *v;
    return t;
  }
  const std::string kind = text.substr(0, colon), args = text.substr(colon + 1);
  if (kind == "exp") {
    const auto v = seconds(args);
    if (!v || !(*v > 0)) throw std::invalid_argument(form + " (the mean must be > 0)");
    t.kind = ThinkKind::kExponential;
    t.a = *v;
  } else if (kind == "uniform") {
    const size_t comma = args.find(',');
    const auto lo = comma == std::string::npos ? std::nullopt : seconds(args.substr(0, comma));
    const auto hi = comma == std::string::npos ? std::nullopt : seconds(args.substr(comma + 1));
    if (!lo || !hi || *hi < *lo) throw std::invalid_argument(form + " (uniform needs 0 <= LO <= HI)");
    t.kind = ThinkKind::kUniform;
    t.a = *lo;
    t.b = *hi;
  } else {
    throw std::invalid_argument(form);
  }
  return t;
}

std::string to_string(const ThinkTime& t) {
  switch (t.kind) {
    case ThinkKind::kConstant: return common::format_number(t.a);
    case ThinkKind::kExponential: return "exp:" + common::format_number(t.a);
    case ThinkKind::kUniform: return "uniform:" + common::format_number(t.a) + "," + common::format_number(t.b);
  }
  return "";
}

std::vector<double> think_times(int64_t n, const ThinkTime& t, uint64_t seed) {
  std::vector<double> out(static_cast<size_t>(std::max<int64_t>(n, 0)), t.a);
  std::mt19937_64 rng(seed);
  if (t.kind == ThinkKind::kExponential) {
    std::exponential_distribution<double> d(1.0 / t.a);
    for (double& v : out) v = d(rng);
  } else if (t.kind == ThinkKind::kUniform) {
    std::uniform_real_distribution<double> d(t.a, t.b);
    for (double& v : out) v = d(rng);
  }
  return out;
}

}  // namespace loadgen
