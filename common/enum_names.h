// The one table from an enum's values to the names users type and files hold ("poisson", "length-desc",
// "ok"), with the lookups every enum needs: name of a value, value of a name, and a parse that throws a
// message naming the option and the choices ("--arrival: expected poisson, constant or gamma, got 'x'").
//
//   inline constexpr auto kArrivalNames = common::enum_names<Arrival>({{Arrival::kPoisson, "poisson"}, ...});
//   kArrivalNames.name(a);  kArrivalNames.find("gamma");  kArrivalNames.parse(text, "--arrival");
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace common {

template <typename E, size_t N>
struct EnumNames {
  std::array<std::pair<E, std::string_view>, N> entries;

  /// The value's name; "unknown" for a value outside the table (a cast from a bad integer).
  constexpr const char* name(E value) const {
    for (const auto& [v, n] : entries)
      if (v == value) return n.data();
    return "unknown";
  }
  constexpr std::optional<E> find(std::string_view text) const {
    for (const auto& [v, n] : entries)
      if (n == text) return v;
    return std::nullopt;
  }
  /// "a, b or c": the choices as a message lists them.
  std::string choices() const {
    std::string out;
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) out += i + 1 == N ? " or " : ", ";
      out += entries[i].second;
    }
    return out;
  }
  /// The value named `text`; throws std::invalid_argument "<what>: expected <choices>, got '<text>'".
  E parse(std::string_view text, std::string_view what) const {
    if (const std::optional<E> v = find(text)) return *v;
    throw std::invalid_argument(std::string(what) + ": expected " + choices() + ", got '" + std::string(text) + "'");
  }
};

/// Builds the table; N is the number of entries given (the names must be string literals: they are
/// returned as C strings).
template <typename E, size_t N>
constexpr EnumNames<E, N> enum_names(const std::pair<E, std::string_view> (&entries)[N]) {
  EnumNames<E, N> t{};
  for (size_t i = 0; i < N; ++i) t.entries[i] = entries[i];
  return t;
}

}  // namespace common
