// Numbers for people: tables, chart labels, directory names ("bs16_qps0.5").
#pragma once

#include <string>

namespace common {

/// Up to `significant` significant digits, no trailing zeros, no exponent for ordinary magnitudes
/// (1e-4 <= |v| < 1e9). Non-finite values print as "-".
std::string format_number(double value, int significant = 4);

}  // namespace common
