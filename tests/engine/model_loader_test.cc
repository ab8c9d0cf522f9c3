// test-deps: engine_internals
// load_model(): the real llama2.c and HF checkpoints in ../shared (shapes, known values, the RoPE row
// permutation), dummy presets (seeded determinism), and every bad-input case on files written to a temp dir.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using engine::DType;
using engine::ModelLoadError;
using engine::ModelWeights;
using engine::Tensor;

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

float f32_at(const Tensor& t, int64_t i) { return t.to_f32()[size_t(i)]; }

// ------------------------------------------------------------------ real checkpoints

TEST(Llama2cLoader, Stories260KShapesAndValues) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const fs::path path = testing_paths::shared("models/stories260K/stories260K.bin");
  const ModelWeights w = engine::load_model(path.string());
  const auto& c = w.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tied_embeddings);
  // 264,128 floats in the file, minus the RoPE tables (512 positions x head_dim) the loader skips.
  EXPECT_EQ(c.num_params(), 264128 - 512 * 8);
  ASSERT_EQ(w.layers.size(), 5u);
  EXPECT_EQ(w.tok_embeddings.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(w.layers[4].wk.shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(w.layers[0].w_down.shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(w.lm_head.data, w.tok_embeddings.data);
  EXPECT_EQ(w.tok_embeddings.dtype, DType::kF32);
  EXPECT_FLOAT_EQ(f32_at(w.tok_embeddings, 0), -0.29474878311157227f);
  EXPECT_FLOAT_EQ(f32_at(w.tok_embeddings, 1), 0.5618956089019775f);

  // wq of layer 1 and wk of layer 3, read straight from the file, against the permuted tensors:
  // new row h*hd + j = old row h*hd + 2j, new row h*hd + hd/2 + j = old row h*hd + 2j + 1.
  const std::vector<char> raw = read_bytes(path);
  auto file_floats = [&](int64_t float_offset, int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    std::memcpy(v.data(), raw.data() + 28 + 4 * float_offset, size_t(4 * n));
    return v;
  };
  const int64_t d = 64, kv = 32, hd = 8, V = 512, L = 5;
  const int64_t wq_off = V * d + L * d, wk_off = wq_off + L * d * d;
  struct Check { const Tensor* t; int64_t off; int heads; };
  for (const Check& ck : {Check{&w.layers[1].wq, wq_off + 1 * d * d, 8}, Check{&w.layers[3].wk, wk_off + 3 * kv * d, 4}}) {
    const std::vector<float> old = file_floats(ck.off, ck.heads * hd * d), now = ck.t->to_f32();
    for (int h = 0; h < ck.heads; ++h)
      for (int j = 0; j < hd / 2; ++j)
        for (int col = 0; col < d; ++col) {
          ASSERT_EQ(now[(h * hd + j) * d + col], old[(h * hd + 2 * j) * d + col]);
          ASSERT_EQ(now[(h * hd + hd / 2 + j) * d + col], old[(h * hd + 2 * j + 1) * d + col]);
        }
  }
  // wv is not rotated, so it stays in place (a view of the mapping).
  const int64_t wv_off = wk_off + L * kv * d;
  EXPECT_EQ(w.layers[0].wv.to_f32(), file_floats(wv_off, kv * d));
}

TEST(HfLoader, TinyLlamaShapesAndValues) {
  REQUIRE_SHARED("models/tiny-llama/model.safetensors");
  const ModelWeights w = engine::load_model(testing_paths::shared("models/tiny-llama").string());
  const auto& c = w.config;
  EXPECT_EQ(c.dim, 96);
  EXPECT_EQ(c.hidden_dim, 256);
  EXPECT_EQ(c.n_layers, 3);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 24);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.max_seq_len, 1024);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);  // read from rope_parameters
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_id, 2);
  EXPECT_NE(w.lm_head.data, w.tok_embeddings.data);
  EXPECT_EQ(w.layers[2].wk.shape, (std::vector<int64_t>{48, 96}));
  EXPECT_EQ(w.layers[2].w_down.shape, (std::vector<int64_t>{96, 256}));
  EXPECT_EQ(w.layers[2].w_down.dtype, DType::kBF16);
  // Values (bf16 bit patterns 0xbe5e 0x3e3b, 0xbd8b 0x3e2d, 0x3f9f, 0xbde0) read with a separate script.
  EXPECT_EQ(f32_at(w.tok_embeddings, 0), -0.216796875f);
  EXPECT_EQ(f32_at(w.tok_embeddings, 1), 0.1826171875f);
  EXPECT_EQ(f32_at(w.layers[2].w_down, 0), -0.06787109375f);
  EXPECT_EQ(f32_at(w.layers[2].w_down, 1), 0.1689453125f);
  EXPECT_EQ(f32_at(w.final_norm, 0), 1.2421875f);
  EXPECT_EQ(f32_at(w.lm_head, 0), -0.109375f);
}

// ------------------------------------------------------------------ dummy presets

TEST(DummyModel, PresetsAndShapes) {
  const auto presets = engine::dummy_presets();
  for (const char* p : {"tiny", "llama-100m", "llama-2-7b"})
    EXPECT_NE(std::find(presets.begin(), presets.end(), p), presets.end()) << p;
  const ModelWeights w = engine::load_model("dummy:tiny", 1);
  EXPECT_EQ(w.config.dim, 256);
  EXPECT_EQ(w.config.hidden_dim, 768);
  EXPECT_EQ(w.config.n_layers, 4);
  EXPECT_EQ(w.config.n_heads, 8);
  EXPECT_EQ(w.config.n_kv_heads, 4);
  EXPECT_EQ(w.config.vocab_size, 512);
  EXPECT_EQ(w.config.max_seq_len, 2048);
  EXPECT_EQ(w.layers[0].wk.shape, (std::vector<int64_t>{128, 256}));
  EXPECT_EQ(w.tok_embeddings.dtype, DType::kBF16);
  for (float v : w.final_norm.to_f32()) ASSERT_EQ(v, 1.0f);
  // Roughly N(0, 0.02): the sample statistics of 196,608 values sit well inside these bounds.
  const std::vector<float> g = w.layers[2].w_gate.to_f32();
  double s = 0, s2 = 0;
  for (float v : g) s += v, s2 += double(v) * v;
  const double mean = s / g.size(), sd = std::sqrt(s2 / g.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(sd, 0.02, 0.002);
}

TEST(DummyModel, Llama100mIsAbout100MParams) {
  const ModelWeights w = engine::load_model("dummy:llama-100m", 0);
  EXPECT_GT(w.config.num_params(), 90'000'000);
  EXPECT_LT(w.config.num_params(), 120'000'000);
  int64_t n = w.tok_embeddings.numel() + w.final_norm.numel();
  for (const auto& l : w.layers)
    for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      n += t->numel();
  EXPECT_EQ(n, w.config.num_params());  // tied: lm_head shares the embedding
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data, b.data, size_t(a.numel()) * engine::dtype_size(a.dtype)) == 0;
}

TEST(DummyModel, SameSeedSameWeightsWhateverTheThreadCount) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const ModelWeights a = engine::load_model("dummy:tiny", 42);
  omp_set_num_threads(std::max(2, saved));
  const ModelWeights b = engine::load_model("dummy:tiny", 42);
  omp_set_num_threads(saved);
  EXPECT_TRUE(same_bytes(a.tok_embeddings, b.tok_embeddings));
  for (size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_TRUE(same_bytes(a.layers[i].wq, b.layers[i].wq));
    EXPECT_TRUE(same_bytes(a.layers[i].w_down, b.layers[i].w_down));
  }
  const ModelWeights c = engine::load_model("dummy:tiny", 43);
  EXPECT_FALSE(same_bytes(a.tok_embeddings, c.tok_embeddings));
  EXPECT_FALSE(same_bytes(a.layers[0].wq, c.layers[0].wq));
  // Different tensors of one model are different streams too.
  EXPECT_NE(a.layers[0].w_gate.to_f32(), a.layers[0].w_up.to_f32());
}

// ------------------------------------------------------------------ helpers

TEST(ModelHelpers, DtypeConversions) {
  EXPECT_STREQ(engine::to_string(DType::kBF16), "bf16");
  EXPECT_STREQ(engine::to_string(DType::kF16), "f16");
  EXPECT_STREQ(engine::to_string(DType::kF32), "f32");
  EXPECT_EQ(engine::dtype_size(DType::kF32), 4u);
  EXPECT_EQ(engine::dtype_size(DType::kF16), 2u);
  // f16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), 3 * 2^-20 (a subnormal), -0, inf
  const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x0030, 0x8000, 0x7c00};
  const float want[] = {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), 3 * std::ldexp(1.0f, -20), -0.0f, INFINITY};
  Tensor t;
  t.dtype = DType::kF16;
  t.shape = {7};
  t.data = h;
  const std::vector<float> got = t.to_f32();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(got[i], want[i]) << i;
  EXPECT_TRUE(std::signbit(got[5]));
  const uint16_t b[] = {0x3f80, 0xc040, 0x3e00};  // bf16 1.0, -3.0, 0.125
  t.dtype = DType::kBF16;
  t.shape = {3};
  t.data = b;
  EXPECT_EQ(t.to_f32(), (std::vector<float>{1.0f, -3.0f, 0.125f}));
}

// ------------------------------------------------------------------ bad input (files written to a temp dir)

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() / ("model_loader_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const void* data, size_t n) {
  std::ofstream out(p, std::ios::binary);
  out.write(static_cast<const char*>(data), std::streamsize(n));
}
void write_text(const fs::path& p, const std::string& s) { write_file(p, s.data(), s.size()); }

/// Expects load_model(source) to throw ModelLoadError whose message contains every one of `parts`.
void expect_load_error(const std::string& source, std::initializer_list<std::string> parts) {
  try {
    engine::load_model(source);
    ADD_FAILURE() << "load_model(" << source << ") did not throw";
  } catch (const ModelLoadError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\": " << msg;
  }
}

/// A llama2.c file with `header` and `n_floats` float32 zeros after it.
void write_llama2c(const fs::path& p, std::vector<int32_t> header, int64_t n_floats) {
  std::vector<char> bytes(28 + 4 * size_t(n_floats), 0);
  std::memcpy(bytes.data(), header.data(), 28);
  write_file(p, bytes.data(), bytes.size());
}
// {dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 10, seq_len 4}: 80 + 8 + 64 + 2*32 + 64 + 8 + 3*128 + 8 + 4*4
constexpr int64_t kSmallFloats = 80 + 8 + 64 + 64 + 64 + 8 + 384 + 8 + 16;
const std::vector<int32_t> kSmallHeader = {8, 16, 1, 2, 1, 10, 4};

TEST(Llama2cLoaderErrors, EachBadFileNamesFileAndProblem) {
  TempDir dir;
  const std::string ok = (dir / "ok.bin").string();
  write_llama2c(ok, kSmallHeader, kSmallFloats);
  EXPECT_EQ(engine::load_model(ok).config.dim, 8);  // the well-formed file loads

  expect_load_error((dir / "absent.bin").string(), {"absent.bin", "no such file"});
  write_text(dir / "empty.bin", "");
  expect_load_error((dir / "empty.bin").string(), {"empty.bin", "empty"});
  write_text(dir / "short.bin", "0123456789");
  expect_load_error((dir / "short.bin").string(), {"short.bin", "too short", "10 bytes"});

  const std::string trunc = (dir / "trunc.bin").string();
  write_llama2c(trunc, kSmallHeader, kSmallFloats - 3);
  expect_load_error(trunc, {"trunc.bin", "size mismatch", std::to_string(28 + 4 * kSmallFloats), "truncated"});
  const std::string longer = (dir / "long.bin").string();
  write_llama2c(longer, kSmallHeader, kSmallFloats + 1);
  expect_load_error(longer, {"long.bin", "size mismatch", "trailing"});

  struct Bad { int field; int32_t value; const char* name; };
  for (const Bad& b : {Bad{0, 0, "dim"}, Bad{3, -2, "n_heads"}, Bad{6, 1 << 30, "seq_len"},
                       Bad{5, 0, "vocab_size"}, Bad{2, 100000, "n_layers"}}) {
    std::vector<int32_t> h = kSmallHeader;
    h[b.field] = b.value;
    const std::string p = (dir / ("bad_" + std::string(b.name) + ".bin")).string();
    write_llama2c(p, h, kSmallFloats);
    expect_load_error(p, {p, "bad llama2.c header", b.name, std::to_string(b.value)});
  }
  std::vector<int32_t> h = kSmallHeader;
  h[3] = 3;  // dim 8 is not a multiple of 3 heads
  write_llama2c(dir / "heads.bin", h, kSmallFloats);
  expect_load_error((dir / "heads.bin").string(), {"heads.bin", "multiple of n_heads"});
  h = kSmallHeader;
  h[4] = 2, h[3] = 4, h[0] = 8;  // head_dim 2 fine; now 4 heads over 3 kv heads
  h[4] = 3;
  write_llama2c(dir / "gqa.bin", h, kSmallFloats);
  expect_load_error((dir / "gqa.bin").string(), {"gqa.bin", "n_kv_heads"});
  // A text file in place of the checkpoint.
  write_text(dir / "text.bin", std::string(200, 'x'));
  expect_load_error((dir / "text.bin").string(), {"text.bin", "bad llama2.c header"});
}

// --- HF directories: config {hidden 8, intermediate 16, 1 layer, 2 heads, 1 kv head, vocab 10}

nlohmann::json small_config() {
  return {{"hidden_size", 8},   {"intermediate_size", 16},          {"num_hidden_layers", 1},
          {"num_attention_heads", 2}, {"num_key_value_heads", 1},  {"vocab_size", 10},
          {"max_position_embeddings", 32}, {"rms_norm_eps", 1e-6}, {"rope_theta", 500000.0},
          {"tie_word_embeddings", false}};
}

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
};

std::vector<StTensor> small_tensors(const std::string& dt) {
  std::vector<StTensor> t = {{"model.embed_tokens.weight", dt, {10, 8}}, {"model.norm.weight", dt, {8}},
                             {"lm_head.weight", dt, {10, 8}}};
  const std::string p = "model.layers.0.";
  for (auto [n, s] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"input_layernorm", {8}}, {"post_attention_layernorm", {8}}, {"self_attn.q_proj", {8, 8}},
           {"self_attn.k_proj", {4, 8}}, {"self_attn.v_proj", {4, 8}}, {"self_attn.o_proj", {8, 8}},
           {"mlp.gate_proj", {16, 8}}, {"mlp.up_proj", {16, 8}}, {"mlp.down_proj", {8, 16}}})
    t.push_back({p + n + ".weight", dt, s});
  return t;
}

/// Writes a safetensors file; element k of every tensor holds the value 0.25 * (k % 8) in its dtype.
void write_safetensors(const fs::path& p, const std::vector<StTensor>& ts) {
  nlohmann::json h = {{"__metadata__", {{"format", "pt"}}}};
  std::vector<uint8_t> data;
  for (const auto& t : ts) {
    int64_t n = 1;
    for (auto s : t.shape) n *= s;
    const size_t begin = data.size();
    for (int64_t k = 0; k < n; ++k) {
      const float v = 0.25f * float(k % 8);
      uint32_t f;
      std::memcpy(&f, &v, 4);
      // 0.25 * j is exact in every dtype: bf16 = top half of the f32 bits; f16 from a table.
      static const uint16_t kF16[8] = {0x0000, 0x3400, 0x3800, 0x3a00, 0x3c00, 0x3d00, 0x3e00, 0x3f00};
      const uint16_t half = kF16[k % 8];
      if (t.dtype == "F32") data.insert(data.end(), reinterpret_cast<uint8_t*>(&f), reinterpret_cast<uint8_t*>(&f) + 4);
      else if (t.dtype == "BF16") data.push_back(uint8_t(f >> 16)), data.push_back(uint8_t(f >> 24));
      else if (t.dtype == "F16") data.push_back(uint8_t(half)), data.push_back(uint8_t(half >> 8));
      else data.push_back(uint8_t(k));
    }
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string js = h.dump();
  const uint64_t n = js.size();
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(js.data(), std::streamsize(js.size()));
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

TEST(HfLoader, SmallDirectoriesInEveryDtypeAndSharded) {
  for (const std::string dt : {"F32", "BF16", "F16"}) {
    TempDir dir;
    write_text(dir / "config.json", small_config().dump());
    write_safetensors(dir / "model.safetensors", small_tensors(dt));
    const ModelWeights w = engine::load_model(dir.path().string());
    EXPECT_EQ(w.config.head_dim, 4);
    EXPECT_FLOAT_EQ(w.config.rope_theta, 500000.0f);
    EXPECT_FLOAT_EQ(w.config.norm_eps, 1e-6f);
    const std::vector<float> v = w.layers[0].w_down.to_f32();
    for (int k = 0; k < 128; ++k) ASSERT_EQ(v[k], 0.25f * float(k % 8)) << dt << " element " << k;
  }
  // Two shards and an index; rope_theta under rope_parameters; lm_head absent -> tied to the embedding.
  TempDir dir;
  nlohmann::json cfg = small_config();
  cfg.erase("rope_theta");
  cfg["rope_parameters"] = {{"rope_theta", 1000.0}, {"rope_type", "default"}};
  write_text(dir / "config.json", cfg.dump());
  std::vector<StTensor> all = small_tensors("BF16"), a, b;
  nlohmann::json index = {{"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == "lm_head.weight") continue;
    (i % 2 ? a : b).push_back(all[i]);
    index["weight_map"][all[i].name] = i % 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(dir / "model-00001-of-00002.safetensors", a);
  write_safetensors(dir / "model-00002-of-00002.safetensors", b);
  write_text(dir / "model.safetensors.index.json", index.dump());
  const ModelWeights w = engine::load_model(dir.path().string());
  EXPECT_FLOAT_EQ(w.config.rope_theta, 1000.0f);
  EXPECT_EQ(w.lm_head.data, w.tok_embeddings.data);
  EXPECT_EQ(w.layers[0].wq.shape, (std::vector<int64_t>{8, 8}));
}

TEST(HfLoaderErrors, ConfigProblemsAreNamed) {
  TempDir dir;
  write_safetensors(dir / "model.safetensors", small_tensors("BF16"));
  const std::string src = dir.path().string(), cfg_path = (dir / "config.json").string();
  expect_load_error(src, {cfg_path, "missing config.json"});
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                            "vocab_size", "max_position_embeddings"}) {
    nlohmann::json c = small_config();
    c.erase(field);
    write_text(dir / "config.json", c.dump());
    expect_load_error(src, {cfg_path, "missing field", field});
  }
  nlohmann::json c = small_config();
  c["num_hidden_layers"] = "one";
  write_text(dir / "config.json", c.dump());
  expect_load_error(src, {cfg_path, "num_hidden_layers", "must be an integer"});
  c = small_config();
  c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  write_text(dir / "config.json", c.dump());
  expect_load_error(src, {cfg_path, "llama3"});
  c = small_config();
  c["num_key_value_heads"] = 3;
  write_text(dir / "config.json", c.dump());
  expect_load_error(src, {cfg_path, "n_kv_heads"});
  write_text(dir / "config.json", "{\"hidden_size\": 8,");
  expect_load_error(src, {cfg_path, "not valid JSON"});
}

TEST(HfLoaderErrors, SafetensorsProblemsAreNamed) {
  TempDir dir;
  write_text(dir / "config.json", small_config().dump());
  const std::string src = dir.path().string(), st = (dir / "model.safetensors").string();
  expect_load_error(src, {src, "no model.safetensors"});

  std::vector<StTensor> ts = small_tensors("BF16");
  ts[5].dtype = "I8";  // a needed tensor in a dtype we do not convert
  write_safetensors(st, ts);
  expect_load_error(src, {st, ts[5].name, "unsupported dtype \"I8\""});

  ts = small_tensors("BF16");
  const std::string gone = ts[7].name;
  ts.erase(ts.begin() + 7);
  write_safetensors(st, ts);
  expect_load_error(src, {st, "missing tensor", gone});

  ts = small_tensors("BF16");
  ts[5].shape = {8, 4};  // q_proj: [8, 8] expected
  write_safetensors(st, ts);
  expect_load_error(src, {st, ts[5].name, "shape [8, 4]", "expected [8, 8]"});

  // Truncated data: the last tensor's offsets now run past the end of the file.
  write_safetensors(st, small_tensors("BF16"));
  std::vector<char> bytes = read_bytes(st);
  write_file(st, bytes.data(), bytes.size() - 10);
  expect_load_error(src, {st, "outside", "truncated"});

  uint64_t absurd = uint64_t(1) << 40;  // header length larger than the file
  write_file(st, &absurd, 4);
  expect_load_error(src, {st, "too short"});
  std::string junk(64, ' ');
  std::memcpy(junk.data(), &absurd, 8);
  write_text(st, junk);
  expect_load_error(src, {st, "header length"});
  const uint64_t n = 20;
  std::string notjson(8, '\0');
  std::memcpy(notjson.data(), &n, 8);
  notjson += "{\"a\": [1, 2, 3 oops}";
  write_text(st, notjson);
  expect_load_error(src, {st, "not valid JSON"});
  // A shape whose element count would overflow 64 bits.
  write_text(st, [] {
    const std::string js = R"({"model.norm.weight": {"dtype": "BF16", "shape": [4294967296, 4294967296, 16],
                              "data_offsets": [0, 2]}})";
    std::string f(8, '\0');
    const uint64_t n = js.size();
    std::memcpy(f.data(), &n, 8);
    return f + js + "xx";
  }());
  expect_load_error(src, {st, "model.norm.weight", "bad shape"});
  // One file of the directory instead of the directory.
  expect_load_error(st, {st, "pass the HF model directory"});
}

TEST(ModelLoadErrors, UnknownDummyPresetListsTheKnownOnes) {
  expect_load_error("dummy:llama-9000", {"dummy:llama-9000", "unknown dummy preset", "dummy:tiny", "dummy:llama-2-7b"});
  expect_load_error("", {"no model given"});
}

}  // namespace
