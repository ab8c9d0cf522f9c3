// String building for error messages and tables (GCC 12 has no <format>).
#pragma once

#include <cstdio>
#include <sstream>
#include <string>

namespace accuracy {

/// Concatenates anything streamable: cat("step ", 3, " of ", n).
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

/// printf-style number formatting, e.g. num(x, "%.3g").
inline std::string num(double value, const char* spec = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

}  // namespace accuracy
