// Engine::Impl's constructor: the settings checked, the model and tokenizer loaded, the backend made and the
// weights uploaded, the KV pool sized and allocated, the scheduler and runner made, EngineInfo filled in.
#include <filesystem>
#include <stdexcept>
#include <string>

#include "engine_impl.h"
#include "kv/kv_sizing.h"
#include "model/model.h"

namespace engine {
namespace {

// <model dir>/tokenizer.model when it exists (a directory model, or the folder of a model file); else "".
std::string default_tokenizer_path(const std::string& model) {
  if (model.rfind("dummy:", 0) == 0) return "";
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(model);
  fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
  fs::path t = dir / "tokenizer.model";
  return fs::exists(t, ec) ? t.string() : "";
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("EngineConfig: " + what);
}

}  // namespace

Engine::Impl::Impl(const EngineConfig& c) : config(c) {
  require(c.max_num_seqs >= 1, "max_num_seqs must be >= 1, got " + std::to_string(c.max_num_seqs));
  require(c.max_num_batched_tokens >= 1, "max_num_batched_tokens must be >= 1, got " + std::to_string(c.max_num_batched_tokens));
  require(c.block_size >= 1, "block_size must be >= 1, got " + std::to_string(c.block_size));
  require(c.num_kv_blocks >= 0, "num_kv_blocks must be >= 0, got " + std::to_string(c.num_kv_blocks));
  require(c.kv_memory_bytes >= 0, "kv_memory_bytes must be >= 0, got " + std::to_string(c.kv_memory_bytes));
  require(c.max_model_len >= 0, "max_model_len must be >= 0, got " + std::to_string(c.max_model_len));
  require(c.max_waiting >= 0, "max_waiting must be >= 0, got " + std::to_string(c.max_waiting));

  // Before the weights: a split that cannot work must not cost a 70B load first.
  check_tensor_parallel(c, "tensor_parallel_size");
  ModelWeights weights = load_model(c.model, c.dummy_seed);
  if (c.test_perturb_weight != 0) perturb_layer0_wq(weights, c.test_perturb_weight);
  const ModelConfig& mc = weights.config;

  std::string tok_path = c.tokenizer.empty() ? default_tokenizer_path(c.model) : c.tokenizer;
  tokenizer = load_tokenizer(tok_path);
  if (tokenizer->vocab_size() > mc.vocab_size)
    throw ModelLoadError("tokenizer " + tokenizer->describe() + " has " + std::to_string(tokenizer->vocab_size()) +
                         " tokens but model " + c.model + " has a vocabulary of " + std::to_string(mc.vocab_size));

  int max_model_len = c.max_model_len > 0 ? c.max_model_len : mc.max_seq_len;
  require(max_model_len <= mc.max_seq_len, "max_model_len " + std::to_string(max_model_len) +
                                               " exceeds the context length " + std::to_string(mc.max_seq_len) +
                                               " of " + c.model);
  require(c.enable_chunked_prefill || c.max_num_batched_tokens >= max_model_len,
          "without chunked prefill max_num_batched_tokens (" + std::to_string(c.max_num_batched_tokens) +
              ") must be >= max_model_len (" + std::to_string(max_model_len) + ")");

  backend = make_backend(c);
  backend->load(weights);

  const int64_t num_blocks =
      kv_pool_blocks(c, max_model_len, {backend->kv_bytes_per_token(), backend->default_kv_budget_bytes()});
  backend->allocate_kv_cache(num_blocks, c.block_size);

  SchedulerConfig sc;
  sc.max_num_seqs = c.max_num_seqs;
  sc.max_num_batched_tokens = c.max_num_batched_tokens;
  sc.enable_chunked_prefill = c.enable_chunked_prefill;
  sc.eos_id = tokenizer->eos_id();
  sc.num_kv_blocks = num_blocks;
  sc.block_size = c.block_size;
  sc.enable_prefix_caching = c.enable_prefix_caching;
  scheduler = std::make_unique<Scheduler>(sc);
  runner = std::make_unique<ModelRunner>(*backend, mc.vocab_size, c.block_size);

  info.model = c.model;
  info.backend = backend->name();
  info.dtype = backend->dtype();
  info.kv_cache_dtype = to_string(c.kv_cache_dtype);
  info.vocab_size = mc.vocab_size;
  info.max_model_len = max_model_len;
  info.bos_id = tokenizer->bos_id();
  info.eos_id = tokenizer->eos_id();
  info.max_num_seqs = c.max_num_seqs;
  info.max_num_batched_tokens = c.max_num_batched_tokens;
  info.block_size = c.block_size;
  info.num_kv_blocks = num_blocks;
  info.num_params = mc.num_params();
  info.tokenizer = tokenizer->describe();
  info.tensor_parallel_size = c.tensor_parallel_size;
  stats = std::make_unique<StatsRecorder>(num_blocks);
}

}  // namespace engine
