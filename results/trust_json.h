// summary.json's trust fields (docs/formats.md): "interrupted" and "interruption", "validity", "client_cost" and
// "steady_state". Called by summary_json.cc; readers take files without them (older runs) as absent.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "results/summary.h"

namespace results {

void put_trust_fields(nlohmann::json& j, const Summary& s);
/// Throws std::runtime_error "<where>: ..." naming the field of the wrong type.
void get_trust_fields(const nlohmann::json& j, const std::string& where, Summary* s);

nlohmann::json validity_to_json(const Validity& v);
Validity validity_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace results
