// test-deps: engine_internals
// Choosing a backend from EngineConfig: the CPU backend computes in float32 only, so asking it for bf16 is an
// error that says so (before the config was typed, "--backend cpu --dtype bf16" silently ran f32).
#include "backend/backend.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/engine.h"

namespace engine {
namespace {

TEST(MakeBackend, CpuIsFloat32Only) {
  EngineConfig c;
  c.backend = BackendKind::kCpu;
  for (ComputeDType d : {ComputeDType::kAuto, ComputeDType::kF32}) {
    c.dtype = d;
    EXPECT_EQ(make_backend(c)->dtype(), "f32") << to_string(d);
  }
  c.dtype = ComputeDType::kBf16;
  try {
    make_backend(c);
    ADD_FAILURE() << "the cpu backend accepted bf16";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("f32 only: dtype bf16 is not supported"), std::string::npos) << e.what();
  }
  c.dtype = ComputeDType::kAuto;
  c.kv_cache_dtype = KvCacheDType::kFp8;  // an fp8 KV cache is a CUDA feature
  EXPECT_THROW(make_backend(c), ModelLoadError);
  // The engine refuses bf16 the same way (llm-serve and API users reach it there).
  EngineConfig ec;
  ec.model = "dummy:tiny";
  ec.dtype = ComputeDType::kBf16;
  ec.background_thread = false;
  EXPECT_THROW(Engine{ec}, ModelLoadError);
}

TEST(MakeBackend, NamesRoundTrip) {
  EXPECT_STREQ(to_string(BackendKind::kCuda), "cuda");
  EXPECT_EQ(parse_backend_kind("cpu", "--backend"), BackendKind::kCpu);
  EXPECT_EQ(parse_compute_dtype("bf16", "--dtype"), ComputeDType::kBf16);
  try {
    parse_compute_dtype("fp8", "--dtype");
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "--dtype: expected auto, f32 or bf16, got 'fp8'");
  }
#ifndef LLM_HAVE_CUDA
  EngineConfig c;
  c.backend = BackendKind::kCuda;
  EXPECT_THROW(make_backend(c), ModelLoadError);  // this build has no CUDA backend: a clear error
#endif
}

}  // namespace
}  // namespace engine
