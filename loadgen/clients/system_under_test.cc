#include "loadgen/clients/system_under_test.h"

#include <iostream>
#include <stdexcept>
#include <string>

#include "engine/engine.h"
#include "loadgen/clients/client_inprocess.h"
#include "loadgen/clients/http_call.h"
#include "loadgen/clients/http_client.h"
#include "loadgen/clients/warmup.h"
#include "engine/tokenizer.h"

namespace loadgen {
namespace {

SystemUnderTest in_process(const engine::EngineConfig& config) {
  SystemUnderTest sut;
  auto client = std::make_unique<InProcessClient>(config);
  engine::Engine* eng = &client->engine();
  const engine::EngineInfo& info = eng->info();
  sut.tokenize = [eng](const std::string& text, bool add_bos) { return eng->tokenize(text, add_bos); };
  sut.engine_stats = [eng] { return eng->stats(); };
  sut.tokenizer = engine::load_tokenizer(info.tokenizer == "bytes" ? "" : info.tokenizer);
  sut.max_model_len = info.max_model_len;
  sut.in_process = true;
  sut.vocab_size = info.vocab_size;
  sut.backend = "in-process " + info.backend;
  sut.model_id = info.model;
  sut.tokenizer_id = info.tokenizer;
  sut.engine = {{"model", info.model},
                {"backend", info.backend},
                {"dtype", info.dtype},
                {"kv_cache_dtype", info.kv_cache_dtype},
                {"batch_size", info.max_num_seqs},
                {"max_num_batched_tokens", info.max_num_batched_tokens},
                {"block_size", info.block_size},
                {"num_kv_blocks", info.num_kv_blocks},
                {"max_model_len", info.max_model_len},
                {"vocab_size", info.vocab_size},
                {"num_params", info.num_params},
                {"tokenizer", info.tokenizer},
                {"deterministic", config.deterministic},
                {"enable_prefix_caching", config.enable_prefix_caching},
                {"tensor_parallel_size", info.tensor_parallel_size},
                {"threads", config.num_threads}};
  sut.client = std::move(client);
  return sut;
}

/// Sends one short request through a client of its own and waits for it, so that a server that is down, a
/// wrong --api or --model-name, or a server that cannot generate at all stops the run before it starts,
/// with the reason, instead of after the whole schedule as N failed requests. Not recorded.
void preflight(const HttpClientOptions& o) {
  WarmupRouter check;  // declared first: the client may still call it while it shuts down
  std::unique_ptr<Client> client = make_http_client(o);
  client->start(&check);
  WorkItem w;
  w.prompt = "Hello";
  w.max_new_tokens = 1;
  const double wait_s = (o.request_timeout_s > 0 ? o.request_timeout_s : 600.0) + 5.0;
  const WarmupResult r = check.run(*client, {w}, 1, wait_s);
  const std::string what =
      "--endpoint " + o.endpoint + " (--api " + to_string(o.api) + "): the check request before the run ";
  const std::string skip = " (--no-preflight runs anyway)";
  if (r.done < 1) throw std::runtime_error(what + "had no answer in " + std::to_string(int(wait_s)) + " s" + skip);
  if (r.ok < 1) throw std::runtime_error(what + "failed: " + r.first_failure + skip);
}

SystemUnderTest remote(const SutConfig& c) {
  SystemUnderTest sut;
  HttpClientOptions o = c.http;
  // No --model-name: the server's own first model, as vllm bench serve does. A server without /v1/models
  // (or one that is down: the check request below then names the real failure) gets "llama2", said aloud.
  if (o.model_name.empty()) {
    try {
      o.model_name = first_served_model(o.endpoint, o.access);
    } catch (const std::exception& e) {
      o.model_name = kDefaultModelName;
      std::cerr << "loadgen: " << e.what() << "; sending model \"" << o.model_name
                << "\" (--model-name sets it)\n";
    }
  }
  if (c.preflight) preflight(o);
  sut.client = make_http_client(o);
  // Lengths are measured with --tokenizer (the server's own tokenizer.model); without one, bytes.
  std::shared_ptr<engine::Tokenizer> tok = engine::load_tokenizer(o.tokenizer);
  sut.tokenize = [tok](const std::string& text, bool add_bos) { return tok->encode(text, add_bos); };
  sut.tokenizer = tok;
  sut.max_model_len = c.remote_max_model_len;
  sut.vocab_size = tok->vocab_size();
  sut.backend = to_string(o.api);
  sut.model_id = o.model_name;
  sut.tokenizer_id = tok->describe();
  sut.engine = {{"endpoint", o.endpoint}, {"api", to_string(o.api)}, {"model", o.model_name}};
  return sut;
}

}  // namespace

SystemUnderTest make_system_under_test(const SutConfig& config) {
  return config.in_process() ? in_process(config.engine) : remote(config);
}

}  // namespace loadgen
