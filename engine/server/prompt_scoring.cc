#include "prompt_scoring.h"

#include <algorithm>

namespace server {

int prepare_logprobs(ParsedRequest& parsed, int eos_id) {
  engine::Request& r = parsed.request;
  int forced = 0;
  if (parsed.logprobs.prompt_top_k >= 0) {
    if (r.prompt_tokens.size() < 2 && r.sampling.max_new_tokens == 0)
      throw BadRequest(parsed.api == Api::kOpenAI ? "max_tokens" : "parameters.max_new_tokens",
                       "0 needs a prompt of at least 2 tokens (the first token has no log-probability)");
    std::vector<int32_t> prompt = std::move(r.prompt_tokens);
    r.prompt_tokens = {prompt.front()};
    r.forced_tokens.assign(prompt.begin() + 1, prompt.end());
    forced = static_cast<int>(r.forced_tokens.size());
    r.sampling.max_new_tokens += forced;
    if (std::find(r.forced_tokens.begin(), r.forced_tokens.end(), eos_id) != r.forced_tokens.end())
      r.sampling.ignore_eos = true;
  }
  if (parsed.logprobs.any()) r.capture_logits_steps = r.sampling.max_new_tokens;
  return forced;
}

}  // namespace server
