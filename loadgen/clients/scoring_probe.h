// Teacher forcing over HTTP needs a server that scores a prompt (vLLM prompt_logprobs, OpenAI echo + logprobs,
// TGI decoder_input_details). One unrecorded request, before the run, finds out; a server without it is told
// to the user, and the run falls back to forcing nothing (BASE's prompts generated greedily for BASE's step
// count; acc_allclose then compares up to the first step where the tokens diverge).
#pragma once

#include <string>

#include "loadgen/clients/client.h"
#include "loadgen/clients/http_client.h"

namespace loadgen {

struct ScoringProbe {
  bool scores_prompts = false;
  std::string why;  ///< when not: what the server answered
};

/// Sends `item` (a scoring request: score_steps > 0, top_logprobs >= 0) and waits for it (at most `timeout_s`).
/// Throws std::runtime_error when the request fails for another reason (the server is down, an HTTP error...).
ScoringProbe probe_prompt_scoring(const HttpClientOptions& options, const WorkItem& item, double timeout_s);

/// The fallback of a scoring item: BASE's prompt (as ids), its step count generated greedily, logprobs asked.
WorkItem unforced(const WorkItem& scoring_item);

}  // namespace loadgen
