// config.json of an HF Llama directory -> ModelConfig. Every required field that is missing or has the
// wrong type is named in the error, with the file.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/loaders.h"

namespace engine::model_detail {
namespace {

using json = nlohmann::json;

int get_int(const json& j, const std::string& path, const char* key) {
  if (!j.contains(key)) fail(path, std::string("missing field \"") + key + "\"");
  const json& v = j.at(key);
  if (!v.is_number_integer()) fail(path, std::string("field \"") + key + "\" must be an integer, got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x <= 0 || x > (int64_t(1) << 30))
    fail(path, std::string("field \"") + key + "\" out of range: " + std::to_string(x));
  return int(x);
}

int get_int_or(const json& j, const std::string& path, const char* key, int def) {
  if (!j.contains(key) || j.at(key).is_null()) return def;
  return get_int(j, path, key);
}

double get_num_or(const json& j, const std::string& path, const char* key, double def) {
  if (!j.contains(key) || j.at(key).is_null()) return def;
  const json& v = j.at(key);
  if (!v.is_number()) fail(path, std::string("field \"") + key + "\" must be a number, got " + v.dump());
  return v.get<double>();
}

/// bos/eos may be an int or (eos in newer configs) a list of ints; the first one is used.
int get_token_id_or(const json& j, const std::string& path, const char* key, int def) {
  if (!j.contains(key) || j.at(key).is_null()) return def;
  const json& v = j.at(key);
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
  fail(path, std::string("field \"") + key + "\" must be a token id or a list of them, got " + v.dump());
}

}  // namespace

ModelConfig read_hf_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "missing config.json (an HF model directory needs config.json + *.safetensors)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "expected a JSON object at the top level");

  ModelConfig c;
  c.name = path;
  c.dim = get_int(j, path, "hidden_size");
  c.hidden_dim = get_int(j, path, "intermediate_size");
  c.n_layers = get_int(j, path, "num_hidden_layers");
  c.n_heads = get_int(j, path, "num_attention_heads");
  c.n_kv_heads = get_int_or(j, path, "num_key_value_heads", c.n_heads);
  c.vocab_size = get_int(j, path, "vocab_size");
  c.max_seq_len = get_int(j, path, "max_position_embeddings");
  if (!j.contains("head_dim") && c.dim % c.n_heads != 0)
    fail(path, "hidden_size " + std::to_string(c.dim) + " is not a multiple of num_attention_heads " +
                   std::to_string(c.n_heads) + " and there is no \"head_dim\"");
  c.head_dim = get_int_or(j, path, "head_dim", c.dim / c.n_heads);
  c.norm_eps = float(get_num_or(j, path, "rms_norm_eps", 1e-6));  // transformers' LlamaConfig default

  // RoPE: newer transformers keep theta (and the scaling type) under rope_parameters, older ones at the
  // top level with an optional rope_scaling object. Only plain RoPE is implemented.
  double theta = get_num_or(j, path, "rope_theta", 10000.0);
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!j.contains(key) || j.at(key).is_null()) continue;
    const json& rp = j.at(key);
    if (!rp.is_object()) fail(path, std::string("field \"") + key + "\" must be an object");
    if (rp.contains("rope_theta")) theta = get_num_or(rp, path, "rope_theta", theta);
    std::string type = "default";
    for (const char* tkey : {"rope_type", "type"})
      if (rp.contains(tkey) && rp.at(tkey).is_string()) type = rp.at(tkey).get<std::string>();
    if (type != "default")
      fail(path, std::string("field \"") + key + "\" asks for RoPE type \"" + type +
                     "\"; only plain (\"default\") RoPE is supported");
  }
  c.rope_theta = float(theta);

  if (j.contains("tie_word_embeddings") && !j.at("tie_word_embeddings").is_null()) {
    if (!j.at("tie_word_embeddings").is_boolean()) fail(path, "field \"tie_word_embeddings\" must be true/false");
    c.tied_embeddings = j.at("tie_word_embeddings").get<bool>();
  }
  c.bos_id = get_token_id_or(j, path, "bos_token_id", 1);
  c.eos_id = get_token_id_or(j, path, "eos_token_id", 2);
  c.validate(path);
  return c;
}

}  // namespace engine::model_detail
