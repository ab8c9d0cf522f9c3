// test-deps: accuracy
// Issue 4, Must show 1: loadgen replays a reference file through the engine with teacher forcing
// (--reference BASE.h5 --dump-logits NEW.h5) and acc_allclose finds every request within rtol/atol 1e-4.
// Runs the built binaries as a user would.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "accuracy/logits_file.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int rc = -1;
  std::string output;
  std::string last_line() const {
    std::string s = output;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    size_t nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
  }
};

// For the shell: '...' (the paths in these tests hold no quote characters).
std::string quote(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += '\'';
  return s;
}

Result run(const std::string& cmd) {
  Result r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class AccuracyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* exe : {"loadgen/loadgen", "accuracy/acc_allclose"})
      if (!fs::exists(testing_paths::binary(exe))) GTEST_FAIL() << "not built: " << testing_paths::binary(exe);
    dir_ = fs::temp_directory_path() /
           (std::string("accuracy_e2e_") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // loadgen with teacher forcing from `reference`, then acc_allclose at rtol = atol = 1e-4.
  void replay_and_compare(const std::string& model_args, const fs::path& reference) {
    const fs::path out = dir_ / "new.h5";
    Result lg = run(quote(testing_paths::binary("loadgen/loadgen")) + " " + model_args + " --reference " +
                    quote(reference) + " --dump-logits " + quote(out) + " --quiet --out " + quote(dir_ / "run"));
    ASSERT_EQ(lg.rc, 0) << lg.output;
    ASSERT_TRUE(fs::exists(out)) << lg.output;
    EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
    EXPECT_EQ(accuracy::LogitsReader(out.string()).ids(), accuracy::LogitsReader(reference.string()).ids());

    Result cmp = run(quote(testing_paths::binary("accuracy/acc_allclose")) + " " + quote(reference) + " " +
                     quote(out) + " --rtol 1e-4 --atol 1e-4");
    EXPECT_EQ(cmp.rc, 0) << cmp.output;
    EXPECT_EQ(cmp.last_line(), "passed 8/8") << cmp.output;
  }

  fs::path dir_;
};

}  // namespace

TEST_F(AccuracyE2E, TinyLlamaReproducesTransformersLogits) {
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  REQUIRE_SHARED("models/tiny-llama/model.safetensors");
  REQUIRE_SHARED("models/llama2-tokenizer/tokenizer.model");
  replay_and_compare("--model " + quote(testing_paths::shared("models/tiny-llama")) + " --tokenizer " +
                         quote(testing_paths::shared("models/llama2-tokenizer/tokenizer.model")),
                     testing_paths::shared("references/tiny-llama_visible.h5"));
}

TEST_F(AccuracyE2E, Stories260KReproducesTransformersLogits) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  replay_and_compare("--model " + quote(testing_paths::shared("models/stories260K/stories260K.bin")),
                     testing_paths::shared("references/stories260K_visible.h5"));
}
