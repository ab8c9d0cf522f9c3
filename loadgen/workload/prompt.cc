// The Stanford Alpaca prompt templates, verbatim from tatsu-lab/stanford_alpaca train.py (PROMPT_DICT).
#include "loadgen/workload/prompt.h"

#include <stdexcept>

namespace loadgen {

std::string render_prompt(PromptTemplate t, const std::string& instruction, const std::string& input) {
  if (t == PromptTemplate::kRaw) return input.empty() ? instruction : instruction + "\n\n" + input;
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:";
  return "Below is an instruction that describes a task, paired with an input that provides further context. "
         "Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
         "\n\n### Input:\n" + input + "\n\n### Response:";
}

}  // namespace loadgen
