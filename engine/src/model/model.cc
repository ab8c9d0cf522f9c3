// ModelConfig/Tensor helpers, the element conversions, the file mapping, and load_model()'s dispatch to
// the three loaders (llama2c_loader.cc, hf_loader.cc, dummy_model.cc).
#include "model/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/enum_names.h"
#include "engine/engine.h"
#include "model/loaders.h"

namespace engine {

namespace fs = std::filesystem;
using model_detail::fail;

int64_t ModelConfig::num_params() const {
  const int64_t d = dim, q = int64_t(n_heads) * head_dim, kv = int64_t(n_kv_heads) * head_dim;
  const int64_t per_layer = 2 * d          // attn_norm, ffn_norm
                            + q * d        // wq
                            + 2 * kv * d   // wk, wv
                            + d * q        // wo
                            + 3 * d * int64_t(hidden_dim);  // gate, up, down
  int64_t n = int64_t(vocab_size) * d + n_layers * per_layer + d;
  if (!tied_embeddings) n += int64_t(vocab_size) * d;
  return n;
}

void ModelConfig::validate(const std::string& source) const {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) fail(source, "invalid model config: " + what);
  };
  need(dim > 0, "dim (hidden_size) must be > 0, got " + std::to_string(dim));
  need(hidden_dim > 0, "hidden_dim (intermediate_size) must be > 0, got " + std::to_string(hidden_dim));
  need(n_layers > 0, "n_layers must be > 0, got " + std::to_string(n_layers));
  need(n_heads > 0, "n_heads must be > 0, got " + std::to_string(n_heads));
  need(n_kv_heads > 0, "n_kv_heads must be > 0, got " + std::to_string(n_kv_heads));
  need(n_heads % n_kv_heads == 0, "n_heads (" + std::to_string(n_heads) + ") must be a multiple of n_kv_heads (" +
                                      std::to_string(n_kv_heads) + ")");
  need(head_dim > 0 && head_dim % 2 == 0, "head_dim must be even and > 0 (RoPE rotates pairs), got " +
                                              std::to_string(head_dim));
  need(vocab_size > 0, "vocab_size must be > 0, got " + std::to_string(vocab_size));
  need(max_seq_len > 0, "max_seq_len must be > 0, got " + std::to_string(max_seq_len));
  need(rope_theta > 0, "rope_theta must be > 0");
  need(norm_eps > 0, "norm_eps (rms_norm_eps) must be > 0");
  need(bos_id >= 0 && bos_id < vocab_size, "bos_id " + std::to_string(bos_id) + " outside the vocabulary");
  need(eos_id >= 0 && eos_id < vocab_size, "eos_id " + std::to_string(eos_id) + " outside the vocabulary");
}

namespace {
constexpr auto kDTypeNames =
    common::enum_names<DType>({{DType::kF32, "f32"}, {DType::kF16, "f16"}, {DType::kBF16, "bf16"}});
}  // namespace

const char* to_string(DType d) { return kDTypeNames.name(d); }

size_t dtype_size(DType d) { return d == DType::kF32 ? 4 : 2; }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::vector<float> Tensor::to_f32() const {
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 0) return out;
  // memcpy-based reads: mmapped safetensors data need not be aligned to the element size.
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (dtype == DType::kF32) {
    std::memcpy(out.data(), bytes, static_cast<size_t>(n) * 4);
    return out;
  }
  const bool bf16 = dtype == DType::kBF16;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    out[i] = bf16 ? model_detail::bf16_to_f32(h) : model_detail::f16_to_f32(h);
  }
  return out;
}

ModelWeights load_model(const std::string& source, uint64_t dummy_seed) {
  static const std::string kDummy = "dummy:";
  if (source.rfind(kDummy, 0) == 0) return model_detail::load_dummy(source.substr(kDummy.size()), dummy_seed);
  std::error_code ec;
  if (source.empty()) fail("<model>", "no model given (a llama2.c .bin, an HF directory, or dummy:<preset>)");
  if (fs::is_directory(source, ec)) return model_detail::load_hf_dir(source);
  if (!fs::exists(source, ec)) fail(source, "no such file or directory (expected a llama2.c .bin, an HF directory "
                                            "with config.json, or dummy:<preset>)");
  const std::string ext = fs::path(source).extension().string();
  if (ext == ".safetensors" || ext == ".json")
    fail(source, "pass the HF model directory (with config.json and the .safetensors files), not one file in it");
  return model_detail::load_llama2c(source);
}

ModelConfig load_model_config(const std::string& source) {
  static const std::string kDummy = "dummy:";
  if (source.rfind(kDummy, 0) == 0) return model_detail::dummy_config(source.substr(kDummy.size()));
  std::error_code ec;
  if (source.empty()) fail("<model>", "no model given (a llama2.c .bin, an HF directory, or dummy:<preset>)");
  if (fs::is_directory(source, ec)) {
    ModelConfig c = model_detail::read_hf_config((fs::path(source) / "config.json").string());
    c.name = source;
    return c;
  }
  if (!fs::exists(source, ec)) fail(source, "no such file or directory (expected a llama2.c .bin, an HF directory "
                                            "with config.json, or dummy:<preset>)");
  return model_detail::read_llama2c_config(model_detail::map_file(source));
}

namespace model_detail {

void fail(const std::string& file, const std::string& what) { throw ModelLoadError(file + ": " + what); }

float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // subnormal half: value = mant * 2^-24; normalize into a float
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // keep NaN a NaN
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest, ties to even
  return uint16_t(bits >> 16);
}

MappedFile map_file(const std::string& path) {
  MappedFile m;
  m.path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  m.size = static_cast<size_t>(st.st_size);
  if (m.size == 0) {
    ::close(fd);
    fail(path, "file is empty");
  }
  void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(errno));
  const size_t size = m.size;
  m.data = static_cast<const uint8_t*>(p);
  m.keepalive = std::shared_ptr<const void>(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  return m;
}

}  // namespace model_detail
}  // namespace engine

namespace engine {

void perturb_layer0_wq(ModelWeights& w, float factor) {
  if (w.layers.empty()) return;
  Tensor& wq = w.layers[0].wq;
  auto copy = std::make_shared<std::vector<float>>(wq.to_f32());
  for (float& x : *copy) x *= 1.0f + factor;
  wq.dtype = DType::kF32;
  wq.data = copy->data();
  w.storage.push_back(std::shared_ptr<const void>(copy, copy->data()));
}

}  // namespace engine
