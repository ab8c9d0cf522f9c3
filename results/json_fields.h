// How the result codecs put numbers into JSON and take typed fields out of it. JSON has no infinity or NaN:
// non-finite numbers are written as the strings "inf" / "-inf" and NaN as null, and read back the same way.
// Readers name the file (and line or field) in every error. For the codecs in results/ only.
#pragma once

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace results::json_fields {

using nlohmann::json;

inline json number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

template <typename T>
json opt(const std::optional<T>& v) {
  if (!v) return nullptr;
  if constexpr (std::is_floating_point_v<T>) return number(*v);
  else return *v;
}

[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

/// Absent or null: nothing; a number, or "inf" / "-inf" / "nan": that value; anything else is an error.
inline std::optional<double> opt_double(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  fail(where, std::string("field \"") + key + "\" is not a number");
}

inline std::optional<int64_t> opt_int(const json& o, const char* key, const std::string& where) {
  const std::optional<double> v = opt_double(o, key, where);
  if (!v) return std::nullopt;
  return static_cast<int64_t>(*v);
}

inline std::string opt_string(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return "";
  if (!it->is_string()) fail(where, std::string("field \"") + key + "\" is not a string");
  return it->get<std::string>();
}

inline std::optional<bool> opt_bool(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) fail(where, std::string("field \"") + key + "\" is not true or false");
  return it->get<bool>();
}

template <typename T>
std::vector<T> number_array(const json& o, const char* key, const std::string& where) {
  std::vector<T> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) fail(where, std::string("field \"") + key + "\" is not an array");
  for (const json& v : *it) {
    if (!v.is_number()) fail(where, std::string("field \"") + key + "\" holds a non-number");
    out.push_back(v.get<T>());
  }
  return out;
}

/// An object-valued field (engine, settings, ...): absent or null gives {}.
inline json opt_object(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return json::object();
  if (!it->is_object()) fail(where, std::string("field \"") + key + "\" is not an object");
  return *it;
}

}  // namespace results::json_fields
