// test-deps: accuracy
// Issue 4, Must show 1: loadgen replays a reference file through the engine with teacher forcing
// (--reference BASE.h5 --dump-logits NEW.h5) and acc_allclose finds every request within rtol/atol 1e-4.
// Runs the built binaries as a user would, on stories260K and tiny-llama.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "accuracy/logits_file.h"
#include "support/process_util.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;

namespace {

using Result = process_util::CommandResult;

std::string quote(const fs::path& p) { return process_util::shell_quote(p); }
Result run(const std::string& cmd) { return process_util::run_shell(cmd); }

class AccuracyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* exe : {"loadgen/loadgen", "accuracy/acc_allclose"})
      if (!fs::exists(testing_paths::binary(exe))) GTEST_FAIL() << "not built: " << testing_paths::binary(exe);
    dir_ = testing_paths::fresh_test_dir("accuracy_e2e_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // loadgen with teacher forcing from `reference` into NEW; checks NEW lines up with the reference request by
  // request (same ids, prompts and, forced, the same tokens) and returns its path.
  fs::path replay(const std::string& model_args, const fs::path& reference) {
    const fs::path out = dir_ / "new.h5";
    Result lg = run(quote(testing_paths::binary("loadgen/loadgen")) + " " + model_args + " --reference " +
                    quote(reference) + " --dump-logits " + quote(out) + " --quiet --out " + quote(dir_ / "run"));
    EXPECT_EQ(lg.rc, 0) << lg.output;
    EXPECT_TRUE(fs::exists(out)) << lg.output;
    EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
    if (!fs::exists(out)) return out;
    accuracy::LogitsReader base(reference.string()), cand(out.string());
    EXPECT_EQ(cand.ids(), base.ids());
    EXPECT_EQ(cand.info().vocab_size, base.info().vocab_size);
    for (const auto& id : base.ids()) {
      if (!cand.has(id)) continue;
      accuracy::RequestLogits b = base.read(id), c = cand.read(id);
      EXPECT_EQ(c.prompt_tokens, b.prompt_tokens) << "request " << id;
      EXPECT_EQ(c.tokens, b.tokens) << "request " << id << ": forced tokens not followed";
    }
    return out;
  }

  Result compare(const fs::path& reference, const fs::path& candidate, const std::string& extra = "") {
    return run(quote(testing_paths::binary("accuracy/acc_allclose")) + " " + quote(reference) + " " +
               quote(candidate) + " --rtol 1e-4 --atol 1e-4 " + extra);
  }

  fs::path dir_;
};

}  // namespace

TEST_F(AccuracyE2E, Stories260KReproducesTransformersLogits) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const fs::path ref = testing_paths::shared("references/stories260K_visible.h5");
  fs::path out = replay("--model " + quote(testing_paths::shared("models/stories260K/stories260K.bin")), ref);
  Result cmp = compare(ref, out);
  EXPECT_EQ(cmp.rc, 0) << cmp.output;
  EXPECT_EQ(cmp.last_line(), "passed 8/8") << cmp.output;
}

TEST_F(AccuracyE2E, TinyLlamaReplaysTheReference) {
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  REQUIRE_SHARED("models/tiny-llama/model.safetensors");
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  const fs::path ref = testing_paths::shared("references/tiny-llama_visible.h5");
  fs::path out = replay("--model " + quote(testing_paths::shared("models/tiny-llama")) + " --tokenizer " +
                            quote(testing_paths::shared("models/llama2-tokenizer/tokenizer.model")),
                        ref);
  const fs::path json = dir_ / "cmp.json";
  Result cmp = compare(ref, out, "--json " + quote(json));
  ASSERT_TRUE(fs::exists(json)) << cmp.output;
  std::ifstream in(json);
  nlohmann::json j = nlohmann::json::parse(in);
  // Whatever the numbers, every request was compared like with like over all 12 steps.
  ASSERT_EQ(j["requests"].size(), 8u);
  for (const auto& r : j["requests"]) {
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(r["steps"], 12) << r.dump();
  }
  EXPECT_EQ(cmp.rc, 0) << cmp.output;
  EXPECT_EQ(cmp.last_line(), "passed 8/8") << cmp.output;
}
