// test-deps: engine_internals
// validate_request: each refusal names the request (by tag), the field and the numbers.
#include "request_validation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace engine {
namespace {

EngineInfo info() {
  EngineInfo i;
  i.vocab_size = 100;
  i.max_model_len = 64;
  i.block_size = 16;
  i.num_kv_blocks = 2;  // 32 tokens of KV
  return i;
}

Request request(int max_new) {
  Request r;
  r.tag = "s7";
  r.sampling.max_new_tokens = max_new;
  return r;
}

// The message validate_request throws, or "" when it accepts.
std::string refusal(const Request& r, std::vector<int32_t> prompt) {
  try {
    validate_request(r, prompt, info());
  } catch (const InvalidRequestError& e) {
    return e.what();
  }
  return "";
}

TEST(RequestValidation, AcceptsWhatFits) {
  EXPECT_EQ(refusal(request(30), {1, 2}), "");  // 32 tokens: the whole pool
}

TEST(RequestValidation, NamesTheRequestAndTheField) {
  EXPECT_EQ(refusal(request(4), {}), "request 's7': empty prompt");
  EXPECT_EQ(refusal(request(4), {1, 100}), "request 's7': prompt_tokens[1] = 100 is outside the vocabulary [0, 100)");
  Request forced = request(4);
  forced.forced_tokens = {-1};
  EXPECT_EQ(refusal(forced, {1}), "request 's7': forced_tokens[0] = -1 is outside the vocabulary [0, 100)");
  EXPECT_EQ(refusal(request(0), {1}), "request 's7': max_new_tokens must be >= 1, got 0");
  Request untagged = request(0);
  untagged.tag.clear();
  EXPECT_EQ(refusal(untagged, {1}), "request: max_new_tokens must be >= 1, got 0");
}

TEST(RequestValidation, SamplingParametersInRange) {
  Request r = request(4);
  r.sampling.temperature = -1;
  EXPECT_NE(refusal(r, {1}).find("temperature must be a finite number >= 0"), std::string::npos);
  r = request(4);
  r.sampling.top_k = -1;
  EXPECT_EQ(refusal(r, {1}), "request 's7': top_k must be >= 0, got -1");
  r = request(4);
  r.sampling.top_p = 0;
  EXPECT_NE(refusal(r, {1}).find("top_p must be in (0, 1]"), std::string::npos);
  r = request(4);
  r.sampling.stop = {""};
  EXPECT_EQ(refusal(r, {1}), "request 's7': empty stop string");
  r = request(4);
  r.capture_logits_steps = -1;
  EXPECT_EQ(refusal(r, {1}), "request 's7': capture_logits_steps must be >= 0");
}

TEST(RequestValidation, PromptPlusOutputMustFitMaxModelLenAndThePool) {
  EXPECT_EQ(refusal(request(60), std::vector<int32_t>(5, 1)),
            "request 's7': prompt of 5 tokens + max_new_tokens 60 = 65 tokens exceeds max_model_len 64");
  EXPECT_EQ(refusal(request(30), std::vector<int32_t>(3, 1)),
            "request 's7': 33 tokens need 3 KV blocks but the pool has only 2");
}

}  // namespace
}  // namespace engine
