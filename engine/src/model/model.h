// Model description and weights as loaded from a file (or made up for dummy:<preset>), before any backend
// sees them. Every loader produces this one form; backends convert dtypes as they need.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace engine {

struct ModelConfig {
  std::string name;
  int dim = 0;          ///< hidden size
  int hidden_dim = 0;   ///< SwiGLU intermediate size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;   ///< grouped-query attention: n_heads % n_kv_heads == 0
  int head_dim = 0;     ///< dim / n_heads unless the config says otherwise
  int vocab_size = 0;
  int max_seq_len = 0;  ///< context length
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;
  int bos_id = 1;
  int eos_id = 2;

  int64_t num_params() const;
  /// Throws ModelLoadError naming `source` when a field is missing or inconsistent.
  void validate(const std::string& source) const;
};

enum class DType { kF32, kF16, kBF16 };
const char* to_string(DType d);
size_t dtype_size(DType d);

/// A view of one weight matrix/vector. Row-major, PyTorch Linear convention: [out_features, in_features].
struct Tensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  ///< owned by ModelWeights::storage
  int64_t numel() const;
  /// Copies the tensor into float32 (converting bf16/f16).
  std::vector<float> to_f32() const;
};

/// RoPE convention of all loaded weights: HF/NeoX "half" pairing, dims (i, i + head_dim/2) rotate together
/// with frequency theta^(-2i/head_dim). The llama2.c loader permutes wq/wk rows from the interleaved
/// (2i, 2i+1) layout so backends implement one convention.
struct ModelWeights {
  ModelConfig config;
  Tensor tok_embeddings;  ///< [vocab, dim]
  struct Layer {
    Tensor attn_norm;     ///< [dim]
    Tensor wq;            ///< [n_heads*head_dim, dim]
    Tensor wk;            ///< [n_kv_heads*head_dim, dim]
    Tensor wv;            ///< [n_kv_heads*head_dim, dim]
    Tensor wo;            ///< [dim, n_heads*head_dim]
    Tensor ffn_norm;      ///< [dim]
    Tensor w_gate;        ///< [hidden, dim]  (llama2.c w1)
    Tensor w_up;          ///< [hidden, dim]  (llama2.c w3)
    Tensor w_down;        ///< [dim, hidden]  (llama2.c w2)
  };
  std::vector<Layer> layers;
  Tensor final_norm;      ///< [dim]
  Tensor lm_head;         ///< [vocab, dim]; same data as tok_embeddings when tied
  std::vector<std::shared_ptr<const void>> storage;  ///< mmaps and buffers the tensors point into
};

/// Loads `source`: a llama2.c .bin, an HF directory (config.json + *.safetensors), or "dummy:<preset>".
/// Throws ModelLoadError naming the file and what is wrong.
ModelWeights load_model(const std::string& source, uint64_t dummy_seed = 0);

/// The ModelConfig of `source` without its weights: config.json of an HF directory, the header of a llama2.c
/// .bin (mapped, not read), or a dummy preset's table (nothing allocated). Throws ModelLoadError as load_model.
ModelConfig load_model_config(const std::string& source);

/// Testing only (EngineConfig::test_perturb_weight): layer 0's wq becomes a float32 copy scaled by
/// (1 + factor). The loaded tensor itself is not written (it may be a read-only mapping).
void perturb_layer0_wq(ModelWeights& w, float factor);

/// Seeded random bf16 weights of any valid shape `c` (what dummy:<preset> loads), e.g. for tests of shapes no
/// preset has. Each element depends only on (seed, tensor index, element index).
ModelWeights make_dummy_weights(const ModelConfig& c, uint64_t seed);

/// Names of the dummy presets (dummy:tiny, dummy:llama-100m, dummy:llama-2-7b, ...).
std::vector<std::string> dummy_presets();

}  // namespace engine
