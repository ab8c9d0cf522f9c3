// test-deps: accuracy
// Top-K logits files (version 2) and their comparisons: a round trip, dense vs top-K built from the same rows
// (passes), a planted change (caught at its step and token), the stop at the first divergence, an unmapped
// token, and the union KL against the exact KL of the dense comparison when K is the whole vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "accuracy/allclose.h"
#include "accuracy/logits_file.h"
#include "accuracy/topk_compare.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using namespace accuracy;

namespace {

constexpr int kVocab = 64;

RequestLogits dense(const std::string& id, int steps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  RequestLogits r;
  r.id = id;
  r.prompt_tokens = {1, 5, 9};
  for (int s = 0; s < steps; ++s) {
    int best = 0;
    for (int v = 0; v < kVocab; ++v) {
      r.logits.push_back(d(rng));
      if (r.logits.back() > r.logits[s * kVocab + best]) best = v;
    }
    r.tokens.push_back(best);
  }
  return r;
}

// The top-K view of a dense request, computed here in long double (independently of the comparator).
RequestLogits top_k_of(const RequestLogits& d, int k) {
  RequestLogits r;
  r.id = d.id;
  r.prompt_tokens = d.prompt_tokens;
  r.tokens = d.tokens;
  for (int s = 0; s < d.n_steps(); ++s) {
    const float* row = d.logits.data() + s * kVocab;
    long double m = *std::max_element(row, row + kVocab), sum = 0;
    for (int v = 0; v < kVocab; ++v) sum += std::exp(static_cast<long double>(row[v]) - m);
    const long double lse = m + std::log(sum);
    std::vector<int> idx(kVocab);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return row[a] > row[b]; });
    r.token_logprobs.push_back(static_cast<float>(row[d.tokens[s]] - lse));
    for (int i = 0; i < k; ++i) {
      r.top_ids.push_back(idx[i]);
      r.top_logprobs.push_back(static_cast<float>(row[idx[i]] - lse));
    }
  }
  return r;
}

TEST(TopKFile, RoundTripAsVersion2) {
  const fs::path dir = testing_paths::fresh_test_dir("topk_file_");
  FileInfo info;
  info.model = "m";
  info.vocab_size = kVocab;
  info.top_k = 5;
  RequestLogits r = top_k_of(dense("3", 4, 1), 5);
  r.top_ids[2] = kUnmapped;
  r.unmapped = 1;
  {
    LogitsWriter w((dir / "t.h5").string(), info, {.top_k_version = 2});
    w.write(r);
    EXPECT_THROW(w.write(dense("4", 2, 2)), LogitsFileError);  // dense rows into a top-K file: refused, named
    w.close();
  }
  LogitsReader rd((dir / "t.h5").string());
  EXPECT_EQ(rd.info().top_k, 5);
  const RequestLogits back = rd.read("3");
  EXPECT_EQ(back.tokens, r.tokens);
  EXPECT_EQ(back.top_ids, r.top_ids);
  EXPECT_EQ(back.top_logprobs, r.top_logprobs);
  EXPECT_EQ(back.token_logprobs, r.token_logprobs);
  EXPECT_EQ(back.unmapped, 1);
  EXPECT_TRUE(back.logits.empty());
  fs::remove_all(dir);
}

TEST(TopKCompare, DenseAgainstItsOwnTopKPasses) {
  const RequestLogits d = dense("0", 6, 3);
  const RequestComparison c = compare_topk_request(d, 0, top_k_of(d, 20), 20, kVocab, AllcloseOptions{.logprob_atol = 1e-6});
  EXPECT_TRUE(c.passed) << c.failure_message({});
  EXPECT_EQ(c.steps, 6);
  EXPECT_EQ(c.top1_agreement, 1.0);
  EXPECT_EQ(c.min_overlap, 1.0);
  EXPECT_LT(c.max_logprob_diff, 1e-6);
  EXPECT_LT(c.max_kl, 1e-9);
}

TEST(TopKCompare, APlantedChangeIsNamedByStepAndToken) {
  const RequestLogits d = dense("7", 6, 4);
  RequestLogits changed = d;
  changed.logits[2 * kVocab + d.tokens[2]] += 0.5f;  // BASE's chosen token at step 2 is more likely in NEW
  AllcloseOptions o;
  o.logprob_atol = 1e-3;
  const RequestComparison c = compare_topk_request(d, 0, top_k_of(changed, 20), 20, kVocab, o);
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.topk_fail.step, 2);
  EXPECT_EQ(c.topk_fail.token, d.tokens[2]);
  EXPECT_GT(c.max_logprob_diff, 0.1);
  const std::string msg = c.failure_message(o);
  EXPECT_NE(msg.find("request 7: step 2, token " + std::to_string(d.tokens[2])), std::string::npos) << msg;
}

TEST(TopKCompare, StopsAtTheFirstDivergence) {
  const RequestLogits d = dense("1", 8, 5);
  RequestLogits other = top_k_of(d, 10);
  other.tokens[3] = (other.tokens[3] + 1) % kVocab;  // NEW chose another token at step 3: later contexts differ
  other.tokens[5] = (other.tokens[5] + 1) % kVocab;
  const RequestComparison c = compare_topk_request(d, 0, other, 10, kVocab, AllcloseOptions{});
  EXPECT_EQ(c.first_token_mismatch, 3);
  EXPECT_EQ(c.steps, 4);  // steps 0..3 compared, step 3 included (its context is still the same)
}

TEST(TopKCompare, AnUnmappedChosenTokenFailsAndSaysSo) {
  const RequestLogits d = dense("2", 3, 6);
  RequestLogits base = top_k_of(d, 5);
  base.tokens[1] = kUnmapped;
  const RequestComparison c = compare_topk_request(base, 5, d, 0, kVocab, AllcloseOptions{});
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.topk_fail.step, 1);
  EXPECT_NE(c.topk_fail.why.find("did not map"), std::string::npos);
}

// With K = vocab the union is everything and nothing is floored: the approximation is the exact KL.
TEST(TopKCompare, UnionKlIsExactWhenKIsTheVocabulary) {
  for (uint32_t seed = 10; seed < 20; ++seed) {
    const RequestLogits a = dense("5", 3, seed);
    RequestLogits b = dense("5", 3, seed + 100);
    b.tokens = a.tokens;
    const RequestComparison exact = compare_request(a, b, kVocab, AllcloseOptions{});
    const RequestComparison approx = compare_topk_request(a, 0, top_k_of(b, kVocab), kVocab, kVocab, AllcloseOptions{});
    EXPECT_NEAR(approx.max_kl, exact.max_kl, 1e-5 * (1 + exact.max_kl)) << "seed " << seed;
  }
}

}  // namespace
