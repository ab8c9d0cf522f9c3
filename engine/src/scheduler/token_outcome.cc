#include "scheduler/token_outcome.h"

#include <algorithm>

namespace engine {

TokenOutcome append_token(Sequence& seq, int32_t token, int eos_id) {
  seq.output_tokens.push_back(token);
  const SamplingParams& sp = seq.sampling;
  std::optional<FinishReason> by_token;
  if (token == eos_id && !sp.ignore_eos) by_token = FinishReason::kEos;
  else if (std::find(sp.stop_token_ids.begin(), sp.stop_token_ids.end(), token) != sp.stop_token_ids.end())
    by_token = FinishReason::kStop;
  const bool at_length = seq.num_output_tokens() >= sp.max_new_tokens;

  TokenOutcome out;
  if (seq.decoder) {
    if (!by_token) out.text = seq.stop_matcher.push(seq.decoder->push(token));
    if ((by_token || at_length) && !seq.stop_matcher.matched()) {
      out.text += seq.stop_matcher.push(seq.decoder->flush());
      out.text += seq.stop_matcher.flush();
    }
  }
  if (by_token) out.finish = by_token;
  else if (seq.stop_matcher.matched()) out.finish = FinishReason::kStop;
  else if (at_length) out.finish = FinishReason::kLength;
  return out;
}

}  // namespace engine
