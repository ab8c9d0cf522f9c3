// test-deps: engine_internals
// check_tensor_parallel() (engine.h) and the Engine constructor: N = 1 reads nothing, a shape that does not
// split is named from the model's config alone (no weights: the 70B preset's would not fit this machine),
// and what the backend and the build lack is said.
#include <gtest/gtest.h>

#include <string>

#include "engine/engine.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace {

std::string error_of(const engine::EngineConfig& c) {
  try {
    engine::check_tensor_parallel(c, "--tensor-parallel-size");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

engine::EngineConfig config(const std::string& model, int n, engine::BackendKind backend) {
  engine::EngineConfig c;
  c.model = model;
  c.tensor_parallel_size = n;
  c.backend = backend;
  return c;
}

TEST(CheckTensorParallel, OneRankReadsNoModel) {
  EXPECT_EQ(error_of(config("/no/such/model.bin", 1, engine::BackendKind::kCpu)), "");
}

TEST(CheckTensorParallel, A70bShapeIsCheckedFromItsPresetTableAlone) {
  const auto e = error_of(config("dummy:llama-2-70b", 3, engine::BackendKind::kCuda));
  EXPECT_EQ(e, "--tensor-parallel-size 3: dummy:llama-2-70b's attention heads (n_heads, num_attention_heads) 64 "
               "does not split into 3 equal parts");
  const engine::ModelConfig c = engine::load_model_config("dummy:llama-2-70b");
  EXPECT_EQ(c.dim, 8192);
  EXPECT_EQ(c.n_layers, 80);
  EXPECT_EQ(c.n_heads, 64);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.hidden_dim, 28672);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_NEAR(double(c.num_params()), 68.98e9, 0.01e9);
}

TEST(CheckTensorParallel, TheCpuBackendRunsOneRank) {
  EXPECT_NE(error_of(config("dummy:llama-2-7b", 2, engine::BackendKind::kCpu))
                .find("--tensor-parallel-size 2: the cpu backend runs on one device"),
            std::string::npos);
  EXPECT_EQ(error_of(config("dummy:llama-2-7b", -1, engine::BackendKind::kCpu)),
            "--tensor-parallel-size -1: must be >= 1");
}

TEST(CheckTensorParallel, CudaWithoutWhatItNeedsIsNamed) {
  const std::string e = error_of(config("dummy:llama-2-7b", 2, engine::BackendKind::kCuda));
#ifndef LLM_HAVE_CUDA
  EXPECT_EQ(e, "--tensor-parallel-size 2: this build has no CUDA backend: configure with --preset cuda");
#else
  EXPECT_NE(e.find("--tensor-parallel-size 2: "), std::string::npos) << e;
#endif
}

TEST(CheckTensorParallel, ReadsTheShapeOfCheckpointsWithoutTheirWeights) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("models/tiny-llama/config.json");
  const std::string bin = testing_paths::shared("models/stories260K/stories260K.bin").string();
  const std::string hf = testing_paths::shared("models/tiny-llama").string();
  for (const std::string& m : {bin, hf}) {
    const engine::ModelConfig want = engine::load_model(m).config, got = engine::load_model_config(m);
    EXPECT_EQ(got.dim, want.dim);
    EXPECT_EQ(got.n_heads, want.n_heads);
    EXPECT_EQ(got.n_kv_heads, want.n_kv_heads);
    EXPECT_EQ(got.head_dim, want.head_dim);
    EXPECT_EQ(got.hidden_dim, want.hidden_dim);
    EXPECT_EQ(got.vocab_size, want.vocab_size);
  }
  EXPECT_NE(error_of(config(bin, 8, engine::BackendKind::kCuda)).find("intermediate size (hidden_dim, intermediate_size) 172"),
            std::string::npos);
}

TEST(CheckTensorParallel, TheEngineRefusesASplitBeforeLoading) {
  engine::EngineConfig c = config("dummy:llama-2-70b", 2, engine::BackendKind::kCpu);
  c.background_thread = false;
  try {
    engine::Engine e(c);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tensor_parallel_size 2: the cpu backend runs on one device"),
              std::string::npos);
  }
}

}  // namespace
