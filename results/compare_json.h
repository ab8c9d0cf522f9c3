// compare.json (docs/formats.md): `loadgen compare A B`'s result, for two runs or two sweeps.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "results/comparison.h"

namespace results {

nlohmann::json comparison_to_json(const Comparison& c);
nlohmann::json sweep_comparison_to_json(const SweepComparison& c);
/// Atomic (tmp + rename); throws std::runtime_error naming the file.
void write_compare_json(const std::filesystem::path& path, const nlohmann::json& j);

}  // namespace results
