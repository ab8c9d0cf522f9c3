// What submit() checks before a request is queued: a request that could never be served is refused up
// front with InvalidRequestError (naming the request, the field and the numbers), so that nothing the
// engine thread takes in can fail for reasons the caller could have known.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "engine/engine.h"

namespace engine {

/// "request 'tag'", or "request" when the caller gave no tag: how messages name a request.
std::string request_name(const Request& r);

/// Throws InvalidRequestError unless `r` can be served by an engine described by `info`: `prompt` (the
/// request's prompt as token ids, encoded by the caller) is non-empty, prompt and forced token ids are in
/// the vocabulary, the sampling parameters are in range, and prompt + max_new_tokens fit both
/// max_model_len and the KV pool.
void validate_request(const Request& r, std::span<const int32_t> prompt, const EngineInfo& info);

}  // namespace engine
