// Prompt templates: the Stanford Alpaca template (with and without input) or the raw instruction (+ input).
#pragma once

#include <string>

namespace loadgen {

enum class PromptTemplate { kAlpaca, kRaw };

/// "alpaca" | "raw"; throws std::invalid_argument naming --prompt-template.
PromptTemplate parse_prompt_template(const std::string& s);
const char* to_string(PromptTemplate t);

/// The text sent to the model for one record.
std::string render_prompt(PromptTemplate t, const std::string& instruction, const std::string& input);

}  // namespace loadgen
