// test-deps: accuracy
// Runs the built acc_allclose binary: exit codes (0 all pass, 1 some fail, 2 usage/file error), the final
// `passed P/N` line, the error lines and the --json file.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "accuracy/logits_file.h"
#include "support/process_util.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;

namespace {

using Result = process_util::CommandResult;

std::string quote(const std::string& s) { return process_util::shell_quote(s); }

Result run(const std::string& args) {
  return process_util::run_shell(process_util::shell_quote(testing_paths::binary("accuracy/acc_allclose")) + " " + args);
}

class AccAllcloseCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing_paths::binary("accuracy/acc_allclose")))
      GTEST_FAIL() << "acc_allclose is not built (build the acc_allclose target) at " << testing_paths::binary("accuracy/acc_allclose");
    dir_ = testing_paths::fresh_test_dir("acc_allclose_cli_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A copy of `ref` with request `skip` left out and `edit` applied to the others.
  template <class Edit>
  std::string copy_of(const std::string& ref, const std::string& name, const std::string& skip, Edit edit) {
    accuracy::LogitsReader in(ref);
    std::string path = (dir_ / name).string();
    accuracy::LogitsWriter out(path, in.info());
    for (const auto& id : in.ids()) {
      if (id == skip) continue;
      accuracy::RequestLogits r = in.read(id);
      edit(r);
      out.write(r);
    }
    out.close();
    return path;
  }

  fs::path dir_;
};

}  // namespace

TEST_F(AccAllcloseCli, ReferencesAgainstThemselvesPass) {
  for (const char* name : {"references/tiny-llama_visible.h5", "references/stories260K_visible.h5"}) {
    REQUIRE_SHARED(name);
    std::string ref = quote(testing_paths::shared(name).string());
    Result r = run(ref + " " + ref + " --rtol 1e-4 --atol 1e-4");
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_EQ(r.last_line(), "passed 8/8") << r.output;
  }
}

TEST_F(AccAllcloseCli, PerturbedLogitExitsOneAndSaysWhere) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  std::string ref = testing_paths::shared("references/stories260K_visible.h5").string();
  std::string cand = copy_of(ref, "perturbed.h5", "", [](accuracy::RequestLogits& r) {
    if (r.id == "5") r.logits[10 * 512 + 300] = 100.0f;  // stories260K logits are far below 100
  });
  Result res = run(quote(ref) + " " + quote(cand));
  EXPECT_EQ(res.rc, 1) << res.output;
  EXPECT_EQ(res.last_line(), "passed 7/8") << res.output;
  EXPECT_NE(res.output.find("error: request 5: logits differ at step 10, vocab index 300: base "), std::string::npos)
      << res.output;
  EXPECT_NE(res.output.find("\n5 "), std::string::npos) << res.output;  // a table row for request 5

  // The first 10 steps are untouched: --steps 10 passes.
  res = run(quote(ref) + " " + quote(cand) + " --steps 10");
  EXPECT_EQ(res.rc, 0) << res.output;
  EXPECT_EQ(res.last_line(), "passed 8/8");
}

TEST_F(AccAllcloseCli, MissingRequestExitsOne) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  std::string ref = testing_paths::shared("references/stories260K_visible.h5").string();
  std::string cand = copy_of(ref, "fewer.h5", "3", [](accuracy::RequestLogits&) {});
  Result res = run(quote(ref) + " " + quote(cand));
  EXPECT_EQ(res.rc, 1) << res.output;
  EXPECT_NE(res.output.find("error: request 3: missing from NEW (" + cand + ")"), std::string::npos) << res.output;
  EXPECT_EQ(res.last_line(), "passed 7/8");
}

TEST_F(AccAllcloseCli, JsonReport) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  std::string ref = quote(testing_paths::shared("references/stories260K_visible.h5").string());
  std::string json = (dir_ / "report.json").string();
  Result res = run(ref + " " + ref + " --steps 3 --json " + quote(json));
  ASSERT_EQ(res.rc, 0) << res.output;
  std::ifstream in(json);
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["summary"], "passed 8/8");
  EXPECT_EQ(j["max_steps"], 3);
  EXPECT_EQ(j["requests"].size(), 8u);
  EXPECT_EQ(j["requests"][0]["steps"], 3);
}

TEST_F(AccAllcloseCli, FileAndUsageErrorsExitTwo) {
  std::string missing = (dir_ / "missing.h5").string();
  std::string text = (dir_ / "notes.h5").string();
  std::ofstream(text) << "plain text\n";
  Result res = run(quote(missing) + " " + quote(missing));
  EXPECT_EQ(res.rc, 2);
  EXPECT_NE(res.output.find("logits file " + missing + ": no such file"), std::string::npos) << res.output;
  res = run(quote(text) + " " + quote(text));
  EXPECT_EQ(res.rc, 2);
  EXPECT_NE(res.output.find("logits file " + text + ": not an HDF5 file"), std::string::npos) << res.output;

  EXPECT_EQ(run("").rc, 2);
  EXPECT_EQ(run("a.h5").rc, 2);
  EXPECT_EQ(run("a.h5 b.h5 --rtol -1").rc, 2);
  EXPECT_EQ(run("a.h5 b.h5 --no-such-option").rc, 2);
  Result help = run("--help");
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.output.find("--atol"), std::string::npos);
}
