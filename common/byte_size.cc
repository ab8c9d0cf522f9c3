#include "common/byte_size.h"

#include <cmath>
#include <stdexcept>

#include "common/parse_number.h"

namespace common {

int64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t end = text.find_first_not_of("0123456789.eE+-");
  if (end == std::string::npos) end = text.size();
  const std::string number = text.substr(0, end);
  std::string unit = text.substr(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  const std::optional<double> v = parse_double(number);
  if (!v) throw std::invalid_argument(what + ": expected a size like 512MiB or 2GB, got '" + text + "'");
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB" || unit == "K") mult = 0x1p10;
  else if (unit == "MiB" || unit == "M") mult = 0x1p20;
  else if (unit == "GiB" || unit == "G") mult = 0x1p30;
  else if (unit == "TiB" || unit == "T") mult = 0x1p40;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else if (unit == "TB") mult = 1e12;
  else
    throw std::invalid_argument(what + ": unknown unit '" + unit + "' in '" + text + "' (" + kByteSizeUnits + ")");
  const double bytes = *v * mult;
  if (!(bytes >= 1)) throw std::invalid_argument(what + ": must be > 0, got '" + text + "'");
  if (!std::isfinite(bytes) || bytes > 9.0e18) throw std::invalid_argument(what + ": too large: '" + text + "'");
  return static_cast<int64_t>(bytes);
}

}  // namespace common
