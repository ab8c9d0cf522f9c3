// ShareGPT conversations as vLLM's benchmark reads them: a JSON array (or JSON lines) of
// {id, conversations: [{from, value}, ...]}, "from" being human/user, gpt/assistant (chatgpt, bing, bard,
// model) or system. A record becomes one conversation Sample: its system message, then one Turn per human
// message with the gpt message that follows it (the reference answer). The turns run from the first human
// message up to the first break in the human/gpt alternation; the single-turn workload uses only the first
// (vLLM's: the first human turn is the prompt, the next gpt turn gives the output length).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "loadgen/workload/dataset.h"

namespace loadgen {

/// An object holding "conversations": the record is ShareGPT rather than Alpaca (format detection).
bool looks_like_sharegpt(const nlohmann::json& record);

/// Fills `out` (id = `id`) from one record. Returns "" or what is wrong, naming the turn and the record's own
/// "id" when it has one: a non-object, "conversations" missing or not a list, a turn without a string "from"
/// or "value", an empty value, an unknown role, no human turn, no gpt turn after the first human turn.
std::string sharegpt_sample(const nlohmann::json& record, int64_t id, Sample* out);

}  // namespace loadgen
