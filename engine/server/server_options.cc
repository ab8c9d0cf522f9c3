#include "server_options.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#include "common/byte_size.h"

namespace server {

namespace {

std::string norm_key(std::string k) {
  for (char& c : k)
    if (c == '-') c = '_';
  return k;
}

template <class T>
T as(const YAML::Node& n, const std::string& where) {
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    throw std::runtime_error(where + ": bad value '" + (n.IsScalar() ? n.Scalar() : std::string("<not a scalar>")) + "'");
  }
}

// key → how it sets ServeSettings. Aliases cover the EngineConfig field names and loadgen's option names.
using Setter = std::function<void(ServeSettings&, const YAML::Node&, const std::string&)>;
const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> m = [] {
    std::map<std::string, Setter> s;
    auto e = [&](std::initializer_list<const char*> keys, Setter f) {
      for (const char* k : keys) s[k] = f;
    };
    e({"model"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.model = as<std::string>(n, w); });
    e({"tokenizer"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.tokenizer = as<std::string>(n, w); });
    e({"backend"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.engine.backend = engine::parse_backend_kind(as<std::string>(n, w), w);
    });
    e({"dtype"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.engine.dtype = engine::parse_compute_dtype(as<std::string>(n, w), w);
    });
    e({"kv_cache_dtype"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.engine.kv_cache_dtype = engine::parse_kv_cache_dtype(as<std::string>(n, w), w);
    });
    e({"dummy_seed"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.dummy_seed = as<uint64_t>(n, w); });
    e({"batch_size", "max_num_seqs"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.max_num_seqs = as<int>(n, w); });
    e({"max_batched_tokens", "max_num_batched_tokens"},
      [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.max_num_batched_tokens = as<int>(n, w); });
    e({"block_size"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.block_size = as<int>(n, w); });
    e({"kv_blocks", "num_kv_blocks"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.num_kv_blocks = as<int64_t>(n, w); });
    e({"kv_memory", "kv_memory_bytes"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.engine.kv_memory_bytes = common::parse_byte_size(as<std::string>(n, w), w);
    });
    e({"gpu_memory_utilization"},
      [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.gpu_memory_utilization = as<double>(n, w); });
    e({"max_model_len"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.max_model_len = as<int>(n, w); });
    e({"chunked_prefill", "enable_chunked_prefill"},
      [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.enable_chunked_prefill = as<bool>(n, w); });
    e({"deterministic"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.deterministic = as<bool>(n, w); });
    e({"tensor_parallel_size"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.engine.tensor_parallel_size = as<int>(n, w);
    });
    e({"enable_prefix_caching", "prefix_caching"},
      [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.enable_prefix_caching = as<bool>(n, w); });
    e({"threads", "num_threads"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.num_threads = as<int>(n, w); });
    e({"max_waiting"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.engine.max_waiting = as<int>(n, w); });
    e({"host"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.server.host = as<std::string>(n, w); });
    e({"port"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.server.port = as<int>(n, w); });
    e({"http_threads"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.server.http_threads = as<int>(n, w); });
    e({"chat_template"}, [](ServeSettings& x, const YAML::Node& n, const std::string& w) {
      x.server.chat_template = kChatTemplateNames.parse(as<std::string>(n, w), w);
    });
    e({"served_model_name", "model_name"},
      [](ServeSettings& x, const YAML::Node& n, const std::string& w) { x.server.served_model_name = as<std::string>(n, w); });
    return s;
  }();
  return m;
}

void apply_map(const YAML::Node& map, const std::string& path, const std::string& prefix, ServeSettings& s) {
  for (const auto& kv : map) {
    const std::string key = norm_key(kv.first.as<std::string>());
    const std::string where = path + ": " + prefix + key;
    if ((key == "engine" || key == "server") && kv.second.IsMap()) {
      apply_map(kv.second, path, prefix + key + ".", s);
      continue;
    }
    auto it = setters().find(key);
    if (it == setters().end()) {
      // The file may be shared with loadgen, whose run keys (qps, duration, ...) mean nothing here.
      std::fprintf(stderr, "llm-serve: %s: key not used by llm-serve, ignored\n", where.c_str());
      continue;
    }
    if (!kv.second.IsScalar()) throw std::runtime_error(where + ": expected a single value");
    it->second(s, kv.second, where);
  }
}

}  // namespace

void apply_config_file(const std::string& path, ServeSettings& settings) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::runtime_error(path + ": cannot read the config file");
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(path + ": not valid YAML/JSON: " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw std::runtime_error(path + ": the config must be a mapping of option: value");
  apply_map(root, path, "", settings);
}

std::optional<ServeSettings> parse_serve_command_line(int argc, const char* const* argv, int* exit_code) {
  CLI::App app{"llm-serve: serves the engine over HTTP (OpenAI /v1/completions, TGI /generate[_stream], "
               "/models/<name>/generate, /health, /v1/models, /metrics)"};
  ServeSettings cli;  // values as given on the command line
  std::string config, kv_memory, backend, dtype, kv_cache_dtype;
  app.add_option("--config", config, "YAML or JSON file with the options below (command line wins)");
  auto* o_model = app.add_option("--model", cli.engine.model, "llama2.c .bin, HF directory, or dummy:<preset>");
  auto* o_tok = app.add_option("--tokenizer", cli.engine.tokenizer, "tokenizer.model (default: next to the model, else bytes)");
  auto* o_backend = app.add_option("--backend", backend, "cpu | cuda");
  auto* o_dtype = app.add_option("--dtype", dtype, "auto | f32 | bf16 (cpu: f32 only)");
  auto* o_kvd = app.add_option("--kv-cache-dtype", kv_cache_dtype, "auto | fp8 (cuda, bf16 mode)");
  auto* o_seed = app.add_option("--dummy-seed", cli.engine.dummy_seed, "seed of dummy:<preset> weights");
  auto* o_perturb = app.add_option("--test-perturb-weight", cli.engine.test_perturb_weight,
                                   "testing: scale layer 0's wq by (1 + this), a planted change")
                        ->group("Testing");
  auto* o_bs = app.add_option("--batch-size", cli.engine.max_num_seqs, "max sequences per step (max_num_seqs)");
  auto* o_mbt = app.add_option("--max-batched-tokens", cli.engine.max_num_batched_tokens, "max tokens per step");
  auto* o_block = app.add_option("--block-size", cli.engine.block_size, "tokens per KV block");
  auto* o_kvb = app.add_option("--kv-blocks", cli.engine.num_kv_blocks, "KV blocks in the pool");
  auto* o_kvm = app.add_option("--kv-memory", kv_memory,
                               std::string("KV pool budget, e.g. 512MiB, 2GB (") + common::kByteSizeUnits + ")");
  auto* o_gpu = app.add_option("--gpu-memory-utilization", cli.engine.gpu_memory_utilization, "cuda: memory fraction");
  auto* o_mml = app.add_option("--max-model-len", cli.engine.max_model_len, "longest prompt + output (0: model's)");
  auto* o_threads = app.add_option("--threads", cli.engine.num_threads, "cpu threads (0: OpenMP default)");
  bool no_chunked = false, deterministic = false;
  auto* o_nochunk = app.add_flag("--no-chunked-prefill", no_chunked, "prefill whole prompts in one step");
  auto* o_det = app.add_flag("--deterministic", deterministic, "batch-invariant kernels");
  bool prefix_caching = false;
  auto* o_prefix = app.add_flag("--enable-prefix-caching", prefix_caching,
                                "reuse the KV cache of full blocks a prompt shares with earlier ones");
  auto* o_tp = app.add_option("--tensor-parallel-size", cli.engine.tensor_parallel_size,
                              "GPUs the model is split over (cuda with NCCL; docs/tensor-parallel.md)");
  auto* o_host = app.add_option("--host", cli.server.host, "address to listen on");
  auto* o_port = app.add_option("--port", cli.server.port, "port (0: any free one, printed)")->check(CLI::Range(0, 65535));
  auto* o_wait = app.add_option("--max-waiting", cli.engine.max_waiting, "503 past this many waiting requests (0: no limit)");
  auto* o_http = app.add_option("--http-threads", cli.server.http_threads, "connections served at once");
  auto* o_name = app.add_option("--served-model-name", cli.server.served_model_name, "id reported by /v1/models");
  std::string chat_template;
  auto* o_chat = app.add_option("--chat-template", chat_template,
                                "how /v1/chat/completions renders messages: llama2 ([INST] ... [/INST]) | plain "
                                "(role: text lines) [llama2]");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }

  ServeSettings s;
  try {
    if (!config.empty()) apply_config_file(config, s);
    if (o_model->count()) s.engine.model = cli.engine.model;
    if (o_tok->count()) s.engine.tokenizer = cli.engine.tokenizer;
    if (o_backend->count()) s.engine.backend = engine::parse_backend_kind(backend, "--backend");
    if (o_dtype->count()) s.engine.dtype = engine::parse_compute_dtype(dtype, "--dtype");
    if (o_kvd->count()) s.engine.kv_cache_dtype = engine::parse_kv_cache_dtype(kv_cache_dtype, "--kv-cache-dtype");
    if (o_seed->count()) s.engine.dummy_seed = cli.engine.dummy_seed;
    if (o_perturb->count()) s.engine.test_perturb_weight = cli.engine.test_perturb_weight;
    if (o_bs->count()) s.engine.max_num_seqs = cli.engine.max_num_seqs;
    if (o_mbt->count()) s.engine.max_num_batched_tokens = cli.engine.max_num_batched_tokens;
    if (o_block->count()) s.engine.block_size = cli.engine.block_size;
    if (o_kvb->count()) s.engine.num_kv_blocks = cli.engine.num_kv_blocks;
    if (o_kvm->count()) s.engine.kv_memory_bytes = common::parse_byte_size(kv_memory, "--kv-memory");
    if (o_gpu->count()) s.engine.gpu_memory_utilization = cli.engine.gpu_memory_utilization;
    if (o_mml->count()) s.engine.max_model_len = cli.engine.max_model_len;
    if (o_threads->count()) s.engine.num_threads = cli.engine.num_threads;
    if (o_nochunk->count()) s.engine.enable_chunked_prefill = !no_chunked;
    if (o_det->count()) s.engine.deterministic = deterministic;
    if (o_prefix->count()) s.engine.enable_prefix_caching = prefix_caching;
    if (o_tp->count()) s.engine.tensor_parallel_size = cli.engine.tensor_parallel_size;
    engine::check_tensor_parallel(s.engine, o_tp->count() ? "--tensor-parallel-size" : "tensor_parallel_size");
    if (o_host->count()) s.server.host = cli.server.host;
    if (o_port->count()) s.server.port = cli.server.port;
    if (o_wait->count()) s.engine.max_waiting = cli.engine.max_waiting;
    if (o_http->count()) s.server.http_threads = cli.server.http_threads;
    if (o_name->count()) s.server.served_model_name = cli.server.served_model_name;
    if (o_chat->count()) s.server.chat_template = kChatTemplateNames.parse(chat_template, "--chat-template");
    if (s.server.port < 0 || s.server.port > 65535) throw std::runtime_error("port: must be 0..65535");
    if (s.server.http_threads < 1) throw std::runtime_error("--http-threads: must be >= 1");
    if (s.engine.max_waiting < 0) throw std::runtime_error("--max-waiting: must be >= 0");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llm-serve: %s\n", e.what());
    *exit_code = 2;
    return std::nullopt;
  }
  s.engine.background_thread = true;
  return s;
}

std::string describe(const ServeSettings& s) {
  std::ostringstream o;
  const auto& e = s.engine;
  o << "model " << e.model << " backend " << engine::to_string(e.backend) << " dtype " << engine::to_string(e.dtype) << " batch-size " << e.max_num_seqs
    << " max-batched-tokens " << e.max_num_batched_tokens << " block-size " << e.block_size
    << (e.enable_prefix_caching ? " prefix-caching" : "");
  if (e.tensor_parallel_size > 1) o << " tensor-parallel-size " << e.tensor_parallel_size;
  o << " max-waiting "
    << e.max_waiting << " http-threads " << s.server.http_threads << " chat-template "
    << to_string(s.server.chat_template);
  return o.str();
}

}  // namespace server
