// Builds the Client a run measures from the settings (in-process engine, or a server through
// make_http_client) together with what the workload needs to know about it: its tokenizer (for prompt and
// output lengths), context length, and a description for the summary.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/engine.h"
#include "engine/tokenizer.h"
#include "loadgen/clients/client.h"
#include "loadgen/clients/http_client.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

/// What to measure: the in-process engine, or a server when http.endpoint is set.
struct SutConfig {
  engine::EngineConfig engine;    ///< the in-process engine
  HttpClientOptions http;         ///< the server to measure instead (http.endpoint non-empty)
  int remote_max_model_len = 0;   ///< a server's context as --max-model-len gives it (0: unknown)
  bool preflight = true;          ///< a server: one unrecorded check request before the run
  bool in_process() const { return http.endpoint.empty(); }
};

struct SystemUnderTest {
  std::unique_ptr<Client> client;
  TokenizeFn tokenize;            ///< the model's tokenizer (engine's, or --tokenizer for remote)
  /// The same tokenizer as an object (the synthetic datasets draw from its pieces).
  std::shared_ptr<const engine::Tokenizer> tokenizer;
  int max_model_len = 0;          ///< 0: unknown (remote without --max-model-len)
  bool in_process = false;        ///< prompts go as token ids; logits capture and teacher forcing possible
  int vocab_size = 0;
  std::string backend;            ///< summary.backend: "in-process cpu" | "openai" ...
  std::string model_id, tokenizer_id;
  nlohmann::json engine = nlohmann::json::object();  ///< summary.engine
  std::function<engine::EngineStats()> engine_stats;  ///< the in-process engine's counters; empty for a server
};

/// Throws engine::ModelLoadError / std::invalid_argument naming the file or option.
SystemUnderTest make_system_under_test(const SutConfig& config);

}  // namespace loadgen
