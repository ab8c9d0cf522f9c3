// JSON text appended straight to a std::string, for the codecs that write a line per request while a run is
// going (requests.jsonl): no DOM, no allocation per value, numbers by std::to_chars. Same output rules as
// json_fields.h: a double is written shortest-round-trip, NaN as null and ±infinity as "inf" / "-inf" (a
// number_array element that is not finite is null, as nlohmann writes it); strings are escaped as RFC 8259
// requires and bytes that are not valid UTF-8 become U+FFFD, so every line parses.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace results::json_text {

void append_string(std::string& out, std::string_view s);  ///< with the quotes
void append_double(std::string& out, double v);             ///< NaN: null; ±inf: "inf" / "-inf"
void append_int(std::string& out, int64_t v);
void append_uint(std::string& out, uint64_t v);
void append_double_array(std::string& out, std::span<const double> v);  ///< non-finite elements: null
void append_int_array(std::string& out, std::span<const int> v);

/// `"key":` (the key is a literal the caller knows needs no escaping).
inline void append_key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

template <typename T>
void append_opt(std::string& out, const std::optional<T>& v) {
  if (!v) out += "null";
  else if constexpr (std::is_floating_point_v<T>) append_double(out, *v);
  else append_int(out, static_cast<int64_t>(*v));
}

}  // namespace results::json_text
