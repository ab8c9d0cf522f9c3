// HF transformers Llama directories: config.json + model.safetensors, or shards listed in
// model.safetensors.index.json. Tensors stay in the mmapped files in their stored dtype (F32/BF16/F16);
// HF checkpoints already use the half RoPE pairing, so nothing is permuted.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "model/loaders.h"
#include "model/safetensors.h"

namespace engine::model_detail {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// The safetensors files of `dir`: model.safetensors, else the shards named in the index, else every
/// *.safetensors file (sorted).
std::vector<std::string> weight_files(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors")) return {(dir / "model.safetensors").string()};
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(index.string(), std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(index.string(), "missing object \"weight_map\"");
    std::set<std::string> files;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail(index.string(), "weight_map entry \"" + name + "\" is not a file name");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail(index.string(), "weight_map entry \"" + name + "\" names a file outside the directory: " + f);
      files.insert(f);
    }
    std::vector<std::string> out;
    for (const auto& f : files) {
      if (!fs::exists(dir / f)) fail((dir / f).string(), "missing shard named in " + index.string());
      out.push_back((dir / f).string());
    }
    return out;
  }
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty())
    fail(dir.string(), "no model.safetensors, model.safetensors.index.json or *.safetensors file");
  return out;
}

}  // namespace

ModelWeights load_hf_dir(const std::string& dir_str) {
  const fs::path dir(dir_str);
  ModelConfig c = read_hf_config((dir / "config.json").string());
  c.name = dir_str;
  SafetensorsSet st;
  const std::vector<std::string> files = weight_files(dir);
  for (const auto& f : files) st.add_file(f);
  const std::string where = files.size() == 1 ? files[0] : dir_str + " (" + std::to_string(files.size()) + " shards)";

  const int64_t d = c.dim, q = int64_t(c.n_heads) * c.head_dim, kv = int64_t(c.n_kv_heads) * c.head_dim;
  const int64_t hid = c.hidden_dim, V = c.vocab_size;
  ModelWeights w;
  w.config = c;
  w.tok_embeddings = st.get("model.embed_tokens.weight", {V, d}, where);
  w.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto& l = w.layers[i];
    l.attn_norm = st.get(p + "input_layernorm.weight", {d}, where);
    l.wq = st.get(p + "self_attn.q_proj.weight", {q, d}, where);
    l.wk = st.get(p + "self_attn.k_proj.weight", {kv, d}, where);
    l.wv = st.get(p + "self_attn.v_proj.weight", {kv, d}, where);
    l.wo = st.get(p + "self_attn.o_proj.weight", {d, q}, where);
    l.ffn_norm = st.get(p + "post_attention_layernorm.weight", {d}, where);
    l.w_gate = st.get(p + "mlp.gate_proj.weight", {hid, d}, where);
    l.w_up = st.get(p + "mlp.up_proj.weight", {hid, d}, where);
    l.w_down = st.get(p + "mlp.down_proj.weight", {d, hid}, where);
  }
  w.final_norm = st.get("model.norm.weight", {d}, where);
  // A tied checkpoint usually omits lm_head.weight (safetensors refuses shared storage); use the embedding.
  if (c.tied_embeddings || !st.has("lm_head.weight")) {
    w.lm_head = w.tok_embeddings;
    w.config.tied_embeddings = true;
  } else {
    w.lm_head = st.get("lm_head.weight", {V, d}, where);
  }
  w.storage = st.storage();
  return w;
}

}  // namespace engine::model_detail
