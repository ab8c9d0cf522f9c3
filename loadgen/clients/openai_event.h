// One OpenAI stream chunk (completions or chat) decoded in one pass without a DOM: nlohmann's tree of a
// 140-byte chunk was most of the client thread's time per chunk (1.7 µs). The result is decode_api_event's
// for the same text; whatever this reader does not take — not an OpenAI chunk (TGI, [DONE], a whole
// response), an error event, duplicate keys it reads, prompt_logprobs, a logprobs value it is not asked to
// defer, JSON the strict scanner refuses — is nullopt, and the caller decodes the text as before, so every
// error and every rare case stays the DOM's (tests/loadgen/clients/openai_event_test.cc compares the two on
// random and broken chunks).
#pragma once

#include <optional>
#include <string_view>

#include "loadgen/clients/http_api.h"
#include "loadgen/clients/logprobs_deferred.h"

namespace loadgen {

/// decode_api_event(data) for an OpenAI chunk whose choices[0].logprobs is null or absent; with `deferred`,
/// also one whose logprobs is an object or array, passed over by its brackets alone and returned there (as
/// decode_api_event_deferring does). nullopt: not taken, decode it the usual way.
std::optional<ApiEvent> decode_openai_chunk(std::string_view data, LogprobsJson* deferred);

}  // namespace loadgen
