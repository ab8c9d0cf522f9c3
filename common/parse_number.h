// The one way a number is read from text (an option value, a list item, a line of a trace file).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace common {

/// `text` as a double when the whole of it is one number in std::stod's syntax ("5", " 0.25", "1e3", "inf");
/// nothing when it is empty, not a number, or has anything after the number.
inline std::optional<double> parse_double(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != text.size()) return std::nullopt;
  return v;
}

}  // namespace common
