// Prompt scoring (vLLM prompt_logprobs, OpenAI echo + logprobs, TGI decoder_input_details) on an engine that
// computes logits for generated steps only: the request becomes prompt[0] with prompt[1:] forced (the engine's
// teacher forcing), so forced step i carries the logits that score prompt token i + 1 given the tokens before
// it; generation then goes on from the whole prompt as asked. A prompt holding the eos token is scored with
// ignore_eos on (a forced eos would otherwise end it).
#pragma once

#include "request_parser.h"

namespace server {

/// Rewrites `parsed.request` (its prompt_tokens already tokenized) for scoring when it asks for prompt
/// logprobs, and turns on logits capture for every step when any logprobs are asked. Returns the number of
/// forced prompt steps (0 when the prompt is not scored). Throws BadRequest for max_tokens 0 with a
/// one-token prompt (nothing to score or generate).
int prepare_logprobs(ParsedRequest& parsed, int eos_id);

}  // namespace server
