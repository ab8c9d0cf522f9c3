#include "common/format_number.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace common {

std::string format_number(double value, int significant) {
  if (!std::isfinite(value)) return "-";
  if (value == 0) return "0";
  const double mag = std::fabs(value);
  char buf[64];
  if (mag >= 1e9 || mag < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.*g", significant, value);
    return buf;
  }
  const int int_digits = static_cast<int>(std::floor(std::log10(mag))) + 1;
  const int decimals = std::max(0, significant - int_digits);
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

}  // namespace common
