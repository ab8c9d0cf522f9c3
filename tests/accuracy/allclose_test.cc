// test-deps: accuracy
// The comparator catches what it must (issue 4, Must show 2): a perturbed logit, a NaN, a missing request on
// either side, a different prompt, a different vocab size, a different step count — each with its exact
// message — and its statistics (max abs/rel, top-1 agreement, KL) agree with a plain float64 computation.
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>

#include "accuracy/allclose.h"
#include "accuracy/logits_file.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using namespace accuracy;

namespace {

class AllcloseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_paths::fresh_test_dir("allclose_test_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Three requests "0", "1", "2" of 5 steps over a vocabulary of `vocab`, seeded.
  std::vector<RequestLogits> requests(int vocab = 50) const {
    std::vector<RequestLogits> out;
    for (int k = 0; k < 3; ++k) {
      std::mt19937 rng(100 + k);
      std::normal_distribution<float> logit(0.0f, 3.0f);
      RequestLogits r;
      r.id = std::to_string(k);
      r.prompt_tokens = {1, 10 + k, 20 + k, 30 + k};
      for (int s = 0; s < 5; ++s) r.tokens.push_back(3 + s + k);
      for (int i = 0; i < 5 * vocab; ++i) r.logits.push_back(logit(rng));
      out.push_back(std::move(r));
    }
    return out;
  }

  std::string write(const std::string& name, const std::vector<RequestLogits>& reqs, int vocab = 50) const {
    std::string path = (dir_ / name).string();
    FileInfo info;
    info.model = "test";
    info.vocab_size = vocab;
    LogitsWriter w(path, info);
    for (const auto& r : reqs) w.write(r);
    w.close();
    return path;
  }

  fs::path dir_;
};

}  // namespace

TEST_F(AllcloseTest, IdenticalFilesPass) {
  auto reqs = requests();
  std::string base = write("base.h5", reqs), cand = write("new.h5", reqs);
  ComparisonReport rep = compare_logits_files(base, cand, {});
  EXPECT_TRUE(rep.all_passed());
  EXPECT_TRUE(rep.errors.empty());
  EXPECT_EQ(rep.summary_line(), "passed 3/3");
  for (const auto& r : rep.requests) {
    EXPECT_TRUE(r.passed);
    EXPECT_EQ(r.steps, 5);
    EXPECT_EQ(r.max_abs, 0.0);
    EXPECT_EQ(r.top1_agreement, 1.0);
    EXPECT_NEAR(r.max_kl, 0.0, 1e-12);
    EXPECT_EQ(r.first_fail.step, -1);
  }
}

TEST_F(AllcloseTest, PerturbedLogitFailsNamingRequestStepAndIndex) {
  auto reqs = requests(), cand = reqs;
  reqs[1].logits[2 * 50 + 17] = 1.25f;
  cand[1].logits[2 * 50 + 17] = 1.5f;
  reqs[1].logits[3 * 50 + 4] = 1.25f;  // a later, smaller failure: the first one in (step, index) order is named
  cand[1].logits[3 * 50 + 4] = 1.26f;
  cand[2].logits[7] = reqs[2].logits[7] + 0.0009f;  // inside atol + rtol|base|: still passes
  ComparisonReport rep = compare_logits_files(write("base.h5", reqs), write("new.h5", cand), {});
  EXPECT_FALSE(rep.all_passed());
  EXPECT_EQ(rep.summary_line(), "passed 2/3");
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_EQ(rep.errors[0],
            "request 1: logits differ at step 2, vocab index 17: base 1.25, new 1.5 "
            "(|diff| 0.25 > atol + rtol*|base| = 0.00225)");
  const RequestComparison& r1 = rep.requests[1];
  EXPECT_EQ(r1.first_fail.step, 2);
  EXPECT_EQ(r1.first_fail.index, 17);
  EXPECT_FLOAT_EQ(r1.max_abs, 0.25);
  EXPECT_FLOAT_EQ(r1.max_rel, 0.2);
  EXPECT_TRUE(rep.requests[2].passed);
}

TEST_F(AllcloseTest, ToleranceBoundaryFollowsNumpyRule) {
  RequestLogits base = requests()[0], cand = base;
  AllcloseOptions opt{.rtol = 0.5, .atol = 0.25};
  base.logits[0] = 2.0f, cand.logits[0] = 3.25f;  // |diff| 1.25 == 0.25 + 0.5·2: passes (<=)
  EXPECT_TRUE(compare_request(base, cand, 50, opt).passed);
  cand.logits[0] = 3.5f;  // 1.5 > 1.25
  RequestComparison r = compare_request(base, cand, 50, opt);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.failure_message(opt),
            "request 0: logits differ at step 0, vocab index 0: base 2, new 3.5 (|diff| 1.5 > atol + rtol*|base| = 1.25)");
  // The tolerance scales with |base|, not |new| (numpy's asymmetric rule).
  cand.logits[0] = 2.0f, base.logits[0] = 3.5f;  // 1.5 <= 0.25 + 0.5·3.5
  EXPECT_TRUE(compare_request(base, cand, 50, opt).passed);
}

TEST_F(AllcloseTest, NanNeverPasses) {
  auto reqs = requests(), cand = reqs;
  reqs[0].logits[5] = 0.5f;
  cand[0].logits[5] = std::numeric_limits<float>::quiet_NaN();
  reqs[2].logits[9] = std::numeric_limits<float>::quiet_NaN();  // NaN on both sides fails too
  cand[2].logits[9] = std::numeric_limits<float>::quiet_NaN();
  reqs[1].logits[3] = cand[1].logits[3] = std::numeric_limits<float>::infinity();  // equal infinities pass
  ComparisonReport rep = compare_logits_files(write("base.h5", reqs), write("new.h5", cand), {});
  EXPECT_EQ(rep.summary_line(), "passed 1/3");
  ASSERT_EQ(rep.errors.size(), 2u);
  EXPECT_EQ(rep.errors[0], "request 0: logits differ at step 0, vocab index 5: base 0.5, new nan (NaN never passes)");
  EXPECT_EQ(rep.errors[1], "request 2: logits differ at step 0, vocab index 9: base nan, new nan (NaN never passes)");
  EXPECT_TRUE(std::isinf(rep.requests[0].max_abs));
  EXPECT_TRUE(rep.requests[1].passed);
}

TEST_F(AllcloseTest, MissingRequestOnEitherSideIsNamed) {
  auto reqs = requests();
  std::string base = write("base.h5", reqs);
  std::string fewer = write("fewer.h5", {reqs[0], reqs[2]});
  ComparisonReport rep = compare_logits_files(base, fewer, {});
  EXPECT_EQ(rep.summary_line(), "passed 2/3");
  EXPECT_EQ(rep.errors, (std::vector<std::string>{"request 1: missing from NEW (" + fewer + ")"}));
  EXPECT_FALSE(rep.all_passed());

  RequestLogits extra = reqs[0];
  extra.id = "12";
  std::string more = write("more.h5", {reqs[0], reqs[1], reqs[2], extra});
  rep = compare_logits_files(base, more, {});
  EXPECT_EQ(rep.summary_line(), "passed 3/4");
  EXPECT_EQ(rep.errors, (std::vector<std::string>{"request 12: missing from BASE (" + base + ")"}));
  EXPECT_FALSE(rep.all_passed());
}

TEST_F(AllcloseTest, DifferentPromptIsAnError) {
  auto reqs = requests(), cand = reqs;
  cand[2].prompt_tokens[1] = 999;
  ComparisonReport rep = compare_logits_files(write("base.h5", reqs), write("new.h5", cand), {});
  EXPECT_EQ(rep.summary_line(), "passed 2/3");
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_EQ(rep.errors[0], "request 2: prompts differ (prompt_sha256 " + prompt_sha256(reqs[2].prompt_tokens) +
                               " in BASE, " + prompt_sha256(cand[2].prompt_tokens) + " in NEW)");
}

TEST_F(AllcloseTest, DifferentVocabSizeIsAnError) {
  ComparisonReport rep =
      compare_logits_files(write("base.h5", requests(50), 50), write("new.h5", requests(60), 60), {});
  EXPECT_EQ(rep.summary_line(), "passed 0/3");
  EXPECT_EQ(rep.errors, (std::vector<std::string>{"vocab sizes differ: BASE has 50, NEW has 60; no logits compared"}));
  EXPECT_FALSE(rep.all_passed());
}

TEST_F(AllcloseTest, DifferentStepCountsAreAnErrorUnlessStepsLimitsThem) {
  auto reqs = requests(), cand = reqs;
  cand[0].tokens.resize(3);
  cand[0].logits.resize(3 * 50);
  std::string base = write("base.h5", reqs), shorter = write("new.h5", cand);
  ComparisonReport rep = compare_logits_files(base, shorter, {});
  EXPECT_EQ(rep.summary_line(), "passed 2/3");
  EXPECT_EQ(rep.errors, (std::vector<std::string>{"request 0: step counts differ (BASE 5, NEW 3)"}));
  EXPECT_EQ(rep.requests[0].steps, 3);  // the common steps were still compared

  rep = compare_logits_files(base, shorter, {.max_steps = 3});
  EXPECT_TRUE(rep.all_passed());
  EXPECT_EQ(rep.summary_line(), "passed 3/3");
}

TEST_F(AllcloseTest, StatisticsMatchPlainFloat64) {
  const int vocab = 50, steps = 5;
  RequestLogits base = requests(vocab)[1], cand = base;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  for (auto& v : cand.logits) v += noise(rng);
  RequestComparison r = compare_request(base, cand, vocab, {});

  double max_abs = 0, max_rel = 0, max_kl = 0;
  int agree = 0;
  for (int s = 0; s < steps; ++s) {
    const float* b = &base.logits[s * vocab];
    const float* c = &cand.logits[s * vocab];
    double zb = 0, zc = 0;
    int ab = 0, ac = 0;
    for (int v = 0; v < vocab; ++v) {
      max_abs = std::max(max_abs, std::fabs(double(c[v]) - b[v]));
      max_rel = std::max(max_rel, std::fabs(double(c[v]) - b[v]) / std::fabs(double(b[v])));
      zb += std::exp(double(b[v]));
      zc += std::exp(double(c[v]));
      if (b[v] > b[ab]) ab = v;
      if (c[v] > c[ac]) ac = v;
    }
    double kl = 0;
    for (int v = 0; v < vocab; ++v) {
      double p = std::exp(double(b[v])) / zb, q = std::exp(double(c[v])) / zc;
      kl += p * std::log(p / q);
    }
    max_kl = std::max(max_kl, kl);
    agree += ab == ac;
  }
  EXPECT_FALSE(r.passed);
  EXPECT_DOUBLE_EQ(r.max_abs, max_abs);
  EXPECT_DOUBLE_EQ(r.max_rel, max_rel);
  EXPECT_NEAR(r.max_kl, max_kl, 1e-9 * std::max(1.0, max_kl));
  EXPECT_GT(r.max_kl, 0.0);
  EXPECT_DOUBLE_EQ(r.top1_agreement, agree / 5.0);
}

TEST_F(AllcloseTest, JsonAndTableCarryTheResults) {
  auto reqs = requests(), cand = reqs;
  cand[1].logits[60] += 1.0f;
  ComparisonReport rep = compare_logits_files(write("base.h5", reqs), write("new.h5", cand), {});
  nlohmann::json j = nlohmann::json::parse(to_json(rep));
  EXPECT_EQ(j["passed"], 2);
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["all_passed"], false);
  EXPECT_EQ(j["summary"], "passed 2/3");
  EXPECT_EQ(j["requests"][1]["first_fail"]["step"], 1);
  EXPECT_EQ(j["requests"][1]["first_fail"]["index"], 10);
  EXPECT_TRUE(j["requests"][0]["first_fail"].is_null());
  std::string table = worst_table(rep, 1);
  EXPECT_NE(table.find("\n1 "), std::string::npos) << table;  // the failing request is the worst row
  EXPECT_NE(table.find("1/10"), std::string::npos) << table;
  EXPECT_EQ(table.find("\n0 "), std::string::npos) << table;
}

TEST_F(AllcloseTest, ReferenceAgainstItselfPasses) {
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  std::string ref = testing_paths::shared("references/tiny-llama_visible.h5").string();
  ComparisonReport rep = compare_logits_files(ref, ref, {.rtol = 1e-4, .atol = 1e-4});
  EXPECT_TRUE(rep.all_passed());
  EXPECT_EQ(rep.summary_line(), "passed 8/8");
}
