// summary.json <-> Summary (docs/formats.md): keys named as in vLLM's benchmark result where the meaning is
// the same. Every number goes through one rule: +-inf as the strings "inf"/"-inf", NaN as null. Readers get the
// typed Summary back; a measurement missing from an older file reads as NaN (tables show "-"), while counts,
// strings, flags and objects keep their defaults (kept_up: true).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "results/summary.h"

namespace results {

nlohmann::json summary_to_json(const Summary& s);
/// Throws std::runtime_error "<where>: field \"...\" is not a number" (and so on) for a field of the wrong type.
Summary summary_from_json(const nlohmann::json& j, const std::string& where);

/// Writes / reads summary.json; errors name the file.
void write_summary_json(const std::filesystem::path& path, const Summary& s);
Summary read_summary_json(const std::filesystem::path& path);

}  // namespace results
