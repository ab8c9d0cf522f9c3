// Prompt templates: the Stanford Alpaca template (with and without input) or the raw instruction (+ input).
#pragma once

#include <string>

#include "common/enum_names.h"

namespace loadgen {

enum class PromptTemplate { kAlpaca, kRaw };

inline constexpr auto kPromptTemplateNames =
    common::enum_names<PromptTemplate>({{PromptTemplate::kAlpaca, "alpaca"}, {PromptTemplate::kRaw, "raw"}});
inline const char* to_string(PromptTemplate t) { return kPromptTemplateNames.name(t); }

/// The text sent to the model for one record.
std::string render_prompt(PromptTemplate t, const std::string& instruction, const std::string& input);

}  // namespace loadgen
