// Builds the Client a run measures from the settings (in-process engine, or a server through
// make_http_client) together with what the workload needs to know about it: its tokenizer (for prompt and
// output lengths), context length, and a description for the summary.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "loadgen/clients/client.h"
#include "loadgen/cli/settings.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

struct SystemUnderTest {
  std::unique_ptr<Client> client;
  TokenizeFn tokenize;            ///< the model's tokenizer (engine's, or --tokenizer for remote)
  int max_model_len = 0;          ///< 0: unknown (remote without --max-model-len)
  bool in_process = false;        ///< prompts go as token ids; logits capture and teacher forcing possible
  int vocab_size = 0;
  std::string backend;            ///< summary.backend: "in-process cpu" | "openai" ...
  std::string model_id, tokenizer_id;
  nlohmann::json engine = nlohmann::json::object();  ///< summary.engine
};

/// Throws engine::ModelLoadError / std::invalid_argument naming the file or option.
SystemUnderTest make_system_under_test(const RunSettings& s);

}  // namespace loadgen
